/**
 * `signalbox routes` and `signalbox wait` over GET /debug/routes (src/debug/routes.ts):
 * one row per route and parent Gateway, and whether a route is Ready at its generation.
 */
import type { RouteParentView, RoutesDocument, RouteView } from '../debug/routes.js';
import { CliError, oneLine, table } from './output.js';

export type { RoutesDocument, RouteView };

const cond = (p: RouteParentView, type: string) => p.conditions.find((c) => c.type === type);

/** `httproute/<ns>/<name>`, as the readiness layer names routes. */
export const routeId = (r: { kind: string; namespace: string; name: string }): string =>
  `${r.kind.toLowerCase()}/${r.namespace}/${r.name}`;

/** The routes table: one row per route and parent (a route no Gateway took: one row, no parent). */
export function routesTable(doc: RoutesDocument): string {
  const rows: string[][] = [];
  for (const r of doc.routes) {
    if (r.parents.length === 0) {
      rows.push([routeId(r), String(r.generation), '', '', '', '', '', '', 'no parent Gateway of ours']);
      continue;
    }
    for (const p of r.parents) {
      const ready = cond(p, 'Ready');
      const rd = p.readiness;
      const stale =
        ready && ready.observedGeneration < r.generation ? ` (gen ${ready.observedGeneration})` : '';
      // what explains the route's state: its Ready condition, else the condition that is False
      const failing = ['Accepted', 'ResolvedRefs'].map((t) => cond(p, t)).find((c) => c?.status === 'False');
      const why = ready ?? failing ?? cond(p, 'Accepted');
      rows.push([
        routeId(r),
        String(r.generation),
        p.gateway + (p.sectionName ? `/${p.sectionName}` : '') + (p.port ? `:${p.port}` : ''),
        cond(p, 'Accepted')?.status ?? '',
        cond(p, 'ResolvedRefs')?.status ?? '',
        ready ? `${ready.status}${stale}` : '',
        rd?.phase ?? '',
        why?.reason ?? '',
        oneLine(why?.message ?? '', 300),
      ]);
    }
  }
  const head = doc.readiness === 'off' ? 'readiness off: routes have no Ready condition\n' : '';
  if (rows.length === 0) return head + 'no HTTPRoute or GRPCRoute\n';
  return (
    head +
    table(['ROUTE', 'GEN', 'PARENT', 'ACCEPTED', 'RESOLVEDREFS', 'READY', 'PHASE', 'REASON', 'MESSAGE'], rows)
  );
}

/** `route/<ns>/<name>` (or `httproute/...`, `grpcroute/...`). */
export function parseRouteTarget(
  v: string,
  kind?: string,
): { kind?: 'HTTPRoute' | 'GRPCRoute'; namespace: string; name: string } {
  const m = /^(route|httproute|grpcroute)\/([^/]+)\/([^/]+)$/i.exec(v);
  if (!m) throw new CliError(`"${v}" is not route/<namespace>/<name>`);
  const kinds: Record<string, 'HTTPRoute' | 'GRPCRoute'> = { httproute: 'HTTPRoute', grpcroute: 'GRPCRoute' };
  const fromTarget = kinds[m[1].toLowerCase()];
  const fromOption = kind === undefined ? undefined : kinds[kind.toLowerCase()];
  if (kind !== undefined && !fromOption) throw new CliError(`--kind "${kind}" is not HTTPRoute or GRPCRoute`);
  if (fromTarget && fromOption && fromTarget !== fromOption)
    throw new CliError(`"${v}" and --kind ${kind} name different kinds`);
  return { kind: fromTarget ?? fromOption, namespace: m[2], name: m[3] };
}

export interface WaitVerdict {
  route: string;
  /** Ready=True at the route's current generation on every parent Gateway */
  ready: boolean;
  generation?: number;
  reason: string;
  message: string;
  /** no use waiting (readiness off, an ambiguous name) */
  fatal?: boolean;
  parents?: { gateway: string; ready: boolean; reason: string; message: string; phase?: string }[];
}

/** Whether the route is Ready at its current generation, and if not why. */
export function waitVerdict(
  doc: RoutesDocument,
  t: { kind?: 'HTTPRoute' | 'GRPCRoute'; namespace: string; name: string },
): WaitVerdict {
  const label = `${t.kind ? t.kind.toLowerCase() : 'route'}/${t.namespace}/${t.name}`;
  if (doc.readiness === 'off')
    return {
      route: label,
      ready: false,
      fatal: true,
      reason: 'ReadinessOff',
      message: 'signalbox runs with --readiness off: routes have no Ready condition',
    };
  const found = doc.routes.filter(
    (r) => r.namespace === t.namespace && r.name === t.name && (!t.kind || r.kind === t.kind),
  );
  if (found.length === 0)
    return {
      route: label,
      ready: false,
      reason: 'NotFound',
      message: `no ${t.kind ?? 'HTTPRoute or GRPCRoute'} ${t.namespace}/${t.name}`,
    };
  if (found.length > 1)
    return {
      route: label,
      ready: false,
      fatal: true,
      reason: 'Ambiguous',
      message: `both an HTTPRoute and a GRPCRoute are named ${t.namespace}/${t.name}: say which with --kind`,
    };
  const r = found[0];
  const id = routeId(r);
  if (r.parents.length === 0)
    return {
      route: id,
      ready: false,
      generation: r.generation,
      reason: 'NoParent',
      message: 'no parent Gateway of ours lists this route',
    };
  const parents = r.parents.map((p) => {
    const ready = cond(p, 'Ready');
    const failing = ['Accepted', 'ResolvedRefs'].map((x) => cond(p, x)).find((c) => c?.status === 'False');
    const phase = p.readiness?.phase;
    if (ready?.status === 'True' && ready.observedGeneration === r.generation)
      return { gateway: p.gateway, ready: true, reason: ready.reason, message: ready.message, phase };
    if (ready && ready.observedGeneration !== r.generation)
      return {
        gateway: p.gateway,
        ready: false,
        reason: 'Proving',
        message: `Ready is for generation ${ready.observedGeneration}, the route is at ${r.generation}`,
        phase,
      };
    if (ready)
      return { gateway: p.gateway, ready: false, reason: ready.reason, message: ready.message, phase };
    if (failing)
      return {
        gateway: p.gateway,
        ready: false,
        reason: failing.reason,
        message: `${failing.type}=False: ${failing.message}`,
        phase,
      };
    return {
      gateway: p.gateway,
      ready: false,
      reason: 'NoReadyCondition',
      message: 'no Ready condition yet',
      phase,
    };
  });
  const bad = parents.find((p) => !p.ready);
  return {
    route: id,
    ready: !bad,
    generation: r.generation,
    reason: bad ? bad.reason : 'Ready',
    message: bad
      ? `${bad.gateway}: ${bad.message}`
      : parents.map((p) => `${p.gateway}: ${p.message}`).join('; '),
    parents,
  };
}
