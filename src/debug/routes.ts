/**
 * `GET /debug/routes`: every HTTPRoute and GRPCRoute with its generation, the status
 * signalbox writes for it (per parent: Accepted, ResolvedRefs, Ready) and, per parent
 * Gateway, what the readiness layer is doing with it (phase, reason, message, per Envoy).
 * The same document in standalone and Kubernetes mode; `signalbox routes` and `signalbox
 * wait` read it.
 */
import type { Condition } from '../gatewayapi/index.js';
import type { Readiness, RouteReadiness } from '../readiness/index.js';
import { routeKey } from '../readiness/compose.js';

/** A route as the provider holds it: its generation and the status written to it (null: none). */
export interface RouteStatusEntry {
  kind: string;
  namespace?: string;
  name: string;
  generation: number;
  status: Record<string, unknown> | null;
}

export interface RouteParentView {
  /** the parent Gateway, `<namespace>/<name>` */
  gateway: string;
  sectionName?: string;
  port?: number;
  controllerName: string;
  conditions: Condition[];
  /** the readiness layer's state of this route on this Gateway (absent: none yet, or readiness off) */
  readiness?: Omit<RouteReadiness, 'route' | 'group'>;
}

export interface RouteView {
  kind: string;
  namespace: string;
  name: string;
  generation: number;
  parents: RouteParentView[];
}

export interface RoutesDocument {
  /** `proved`, `naive` or `off` (no Ready condition) */
  readiness: string;
  routes: RouteView[];
}

interface ParentStatus {
  parentRef?: { name?: string; namespace?: string; sectionName?: string; port?: number };
  controllerName?: string;
  conditions?: Condition[];
}

export function routesDocument(entries: RouteStatusEntry[], readiness?: Readiness): RoutesDocument {
  const routes: RouteView[] = [];
  for (const e of entries) {
    if (e.kind !== 'HTTPRoute' && e.kind !== 'GRPCRoute') continue;
    const namespace = e.namespace ?? 'default';
    const parents = Array.isArray(e.status?.parents) ? (e.status.parents as ParentStatus[]) : [];
    routes.push({
      kind: e.kind,
      namespace,
      name: e.name,
      generation: e.generation,
      parents: parents.map((p) => {
        const gateway = `${p.parentRef?.namespace ?? namespace}/${p.parentRef?.name ?? ''}`;
        const r = readiness?.fleetState(routeKey(e.kind, namespace, e.name), gateway);
        let view: RouteParentView['readiness'];
        if (r) {
          const { route: _route, group: _group, ...rest } = r;
          view = rest;
        }
        return {
          gateway,
          ...(p.parentRef?.sectionName !== undefined ? { sectionName: p.parentRef.sectionName } : {}),
          ...(p.parentRef?.port !== undefined ? { port: p.parentRef.port } : {}),
          controllerName: p.controllerName ?? '',
          conditions: Array.isArray(p.conditions) ? p.conditions : [],
          ...(view ? { readiness: view } : {}),
        };
      }),
    });
  }
  routes.sort((a, b) => {
    const ka = `${a.namespace}/${a.name}/${a.kind}`;
    const kb = `${b.namespace}/${b.name}/${b.kind}`;
    return ka < kb ? -1 : ka > kb ? 1 : 0;
  });
  return { readiness: readiness?.mode ?? 'off', routes };
}
