/**
 * Route attachment (parentRefs → listeners), per-parent route status, and the spec's
 * precedence order of route matches.
 */
import type { GatewayState } from './gateway.js';
import { gen } from './gateway.js';
import { hostnameError, intersect } from './hostname.js';
import type { CompiledRule } from './httproute.js';
import type { IRRoute } from './ir.js';
import type { ListenerState, RouteKind } from './listener.js';
import { Cond, Conditions, Reason, previousConditions } from './status.js';
import type { Condition } from './status.js';
import type { GRPCRoute, HTTPRoute, ParentRef } from './types.js';
import { GATEWAY_GROUP, key } from './types.js';

export interface Attachment {
  listener: ListenerState;
  hostnames: string[];
  rules: CompiledRule[];
  /** position of the route in the spec's route order */
  order: number;
}

export interface ParentStatus {
  parentRef: ParentRef;
  controllerName: string;
  conditions: Condition[];
}

export type AnyRoute = (HTTPRoute | GRPCRoute) & { kind: RouteKind };

/** Compile a route's rules for a listener port (memoised by the caller). */
export type RuleCompiler = (port: number, protocol: 'HTTP' | 'HTTPS') => CompiledRule[];

export function attachRoute(
  route: AnyRoute,
  order: number,
  gateways: Map<string, GatewayState>,
  controllerName: string,
  now: string,
  compile: RuleCompiler,
  attach: (gw: GatewayState, a: Attachment) => void,
): ParentStatus[] {
  const ns = route.metadata.namespace!;
  const prevParents = (
    route.status as
      { parents?: { parentRef?: ParentRef; controllerName?: string; conditions?: Condition[] }[] } | undefined
  )?.parents;
  const out: ParentStatus[] = [];
  const refs: ParentRef[] = Array.isArray(route.spec.parentRefs) ? route.spec.parentRefs : [];
  const hostnames: unknown[] = Array.isArray(route.spec.hostnames) ? route.spec.hostnames : [];
  const spec = route.spec as { hostnames?: unknown; rules?: unknown };
  let badHost = hostnames.map((h) => hostnameError(h)).find((e) => e);
  if (spec.hostnames !== undefined && !Array.isArray(spec.hostnames)) badHost = 'must be a list';
  if (hostnames.length > 16) badHost = 'more than 16 hostnames';
  let badRules: string | undefined;
  if (spec.rules !== undefined && !Array.isArray(spec.rules)) badRules = 'spec.rules must be a list';
  else if (Array.isArray(spec.rules) && spec.rules.length > 64)
    badRules = 'spec.rules has more than 64 rules';
  const seenRefs = new Set<string>();
  for (const ref of refs) {
    if (!ref || typeof ref !== 'object') continue;
    const group = ref.group ?? GATEWAY_GROUP;
    const kind = ref.kind ?? 'Gateway';
    if (group !== GATEWAY_GROUP || kind !== 'Gateway') continue;
    if (typeof ref.name !== 'string' || (ref.namespace !== undefined && typeof ref.namespace !== 'string'))
      continue;
    const gwKey = key(ref.namespace ?? ns, ref.name);
    const gw = gateways.get(gwKey);
    if (!gw) continue; // not a Gateway of ours
    const badSection = ref.sectionName !== undefined && typeof ref.sectionName !== 'string';
    const badPort = ref.port !== undefined && (typeof ref.port !== 'number' || !Number.isInteger(ref.port));
    if (badSection || badPort) {
      out.push({
        parentRef: { group, kind, namespace: ref.namespace ?? ns, name: ref.name },
        controllerName,
        conditions: new Conditions(gen(route), now)
          .set({
            type: Cond.Accepted,
            status: false,
            reason: Reason.UnsupportedValue,
            message: `parentRef ${badSection ? 'sectionName must be a string' : 'port must be an integer'}`,
          })
          .toArray(),
      });
      continue;
    }
    const refKey = JSON.stringify([gwKey, ref.sectionName ?? null, ref.port ?? null]);
    const prev = Array.isArray(prevParents)
      ? prevParents.find(
          (p) =>
            p?.controllerName === controllerName &&
            JSON.stringify([
              key(
                typeof p.parentRef?.namespace === 'string' ? p.parentRef.namespace : ns,
                typeof p.parentRef?.name === 'string' ? p.parentRef.name : '',
              ),
              p.parentRef?.sectionName ?? null,
              p.parentRef?.port ?? null,
            ]) === refKey,
        )
      : undefined;
    // the same parentRef twice (the CRD forbids it): one status entry, as for one reference
    if (seenRefs.has(refKey)) continue;
    seenRefs.add(refKey);
    const conds = new Conditions(gen(route), now, previousConditions(prev));
    const parentRef: ParentRef = { group, kind, namespace: ref.namespace ?? ns, name: ref.name };
    if (ref.sectionName !== undefined) parentRef.sectionName = ref.sectionName;
    if (ref.port !== undefined) parentRef.port = ref.port;
    out.push({ parentRef, controllerName, conditions: [] });
    const finish = () => (out[out.length - 1].conditions = conds.toArray());
    const resolved = (rules: CompiledRule[]) => {
      const problems = rules.flatMap((r) => r.refProblems);
      conds.set(
        problems.length
          ? {
              type: Cond.ResolvedRefs,
              status: false,
              reason: problems[0].reason,
              message: problems
                .map((p) => p.message)
                .join('; ')
                .slice(0, 2000),
            }
          : {
              type: Cond.ResolvedRefs,
              status: true,
              reason: Reason.ResolvedRefs,
              message: 'All references resolved',
            },
      );
    };
    if (badHost) {
      conds.set({
        type: Cond.Accepted,
        status: false,
        reason: Reason.UnsupportedValue,
        message: `spec.hostnames: ${badHost}`,
      });
      resolved([]);
      finish();
      continue;
    }
    if (badRules) {
      conds.set({ type: Cond.Accepted, status: false, reason: Reason.UnsupportedValue, message: badRules });
      resolved([]);
      finish();
      continue;
    }
    if (!gw.accepted) {
      conds.set({
        type: Cond.Accepted,
        status: false,
        reason: Reason.NoMatchingParent,
        message: `Gateway ${gwKey} is not accepted`,
      });
      resolved([]);
      finish();
      continue;
    }
    let candidates = gw.listeners;
    if (ref.sectionName !== undefined) candidates = candidates.filter((l) => l.name === ref.sectionName);
    if (ref.port !== undefined) candidates = candidates.filter((l) => l.port === ref.port);
    const ready = candidates.filter((l) => l.ready);
    const allowed = ready.filter((l) => l.supportedKinds.includes(route.kind) && l.allowsNamespace(ns));
    const matched = allowed
      .map((l) => ({ l, hostnames: intersect(l.hostname, hostnames as string[]) }))
      .filter((x) => x.hostnames.length > 0);
    // Attachment (a listener's attachedRoutes) rests on the parentRef and allowedRoutes only,
    // not on the listener's own state: the route counts on a listener that is not ready (an
    // invalid certificateRef, a conflict) too, though nothing of it is served there. Its
    // rules are compiled for that listener, so ResolvedRefs still reports its backends.
    let idleRules: CompiledRule[] = [];
    for (const l of candidates) {
      if (l.ready || !l.supportedKinds.includes(route.kind) || !l.allowsNamespace(ns)) continue;
      const hs = intersect(l.hostname, hostnames as string[]);
      if (hs.length === 0) continue;
      idleRules = compile(l.port, l.protocol);
      l.attachedRoutes++;
      attach(gw, { listener: l, hostnames: hs, rules: idleRules, order });
    }
    if (candidates.length === 0 || ready.length === 0) {
      const what = [
        ref.sectionName !== undefined ? `sectionName ${ref.sectionName}` : '',
        ref.port !== undefined ? `port ${ref.port}` : '',
      ]
        .filter(Boolean)
        .join(' and ');
      conds.set({
        type: Cond.Accepted,
        status: false,
        reason: Reason.NoMatchingParent,
        message:
          candidates.length === 0
            ? `Gateway ${gwKey} has no listener with ${what}`
            : `no ready listener of Gateway ${gwKey} matches`,
      });
      resolved(idleRules);
      finish();
      continue;
    }
    if (allowed.length === 0) {
      conds.set({
        type: Cond.Accepted,
        status: false,
        reason: Reason.NotAllowedByListeners,
        message: `no listener of Gateway ${gwKey} allows ${route.kind} from namespace ${ns}`,
      });
      resolved(idleRules);
      finish();
      continue;
    }
    if (matched.length === 0) {
      conds.set({
        type: Cond.Accepted,
        status: false,
        reason: Reason.NoMatchingListenerHostname,
        message: `no listener hostname of Gateway ${gwKey} intersects the route's hostnames`,
      });
      resolved(idleRules);
      finish();
      continue;
    }
    let allRules: CompiledRule[] = [];
    for (const m of matched) {
      const rules = compile(m.l.port, m.l.protocol);
      allRules = rules;
      m.l.attachedRoutes++;
      attach(gw, { listener: m.l, hostnames: m.hostnames, rules, order });
    }
    const invalid = allRules.filter((r) => r.error);
    const total = allRules.length;
    if (total > 0 && invalid.length === total) {
      conds.set({
        type: Cond.Accepted,
        status: false,
        reason: Reason.UnsupportedValue,
        message: invalid
          .map((r) => r.error)
          .join('; ')
          .slice(0, 2000),
      });
    } else {
      conds.set({ type: Cond.Accepted, status: true, reason: Reason.Accepted, message: 'Route is accepted' });
      if (invalid.length) {
        conds.set({
          type: Cond.PartiallyInvalid,
          status: true,
          reason: Reason.UnsupportedValue,
          message: `rules dropped: ${invalid.map((r) => r.error).join('; ')}`.slice(0, 2000),
        });
      }
    }
    resolved(allRules);
    finish();
  }
  return out;
}

const PATH_RANK = { Exact: 0, RegularExpression: 1, Prefix: 2 } as const;

/**
 * The spec's precedence of matches across rules and routes: Exact path, then longest
 * prefix (RegularExpression, implementation-specific, sits between them, longest first),
 * then method, most header matches, most query matches; ties go to the older route, then
 * `<namespace>/<name>` order, then rule and match order (`order` encodes all three:
 * route position × 4096 + rule index × 64 + match index; rules and matches are capped at 64).
 */
export function compareRoutes(a: { r: IRRoute; order: number }, b: { r: IRRoute; order: number }): number {
  const ga = a.r.match.grpc;
  const gb = b.r.match.grpc;
  if (ga && gb) {
    // GRPCRoute: most characters of matching service, then method, then most header matches
    if (ga.serviceChars !== gb.serviceChars) return gb.serviceChars - ga.serviceChars;
    if (ga.methodChars !== gb.methodChars) return gb.methodChars - ga.methodChars;
    if (a.r.match.headers.length !== b.r.match.headers.length)
      return b.r.match.headers.length - a.r.match.headers.length;
    return a.order - b.order;
  }
  const pa = a.r.match.path;
  const pb = b.r.match.path;
  if (PATH_RANK[pa.type] !== PATH_RANK[pb.type]) return PATH_RANK[pa.type] - PATH_RANK[pb.type];
  if (pa.value.length !== pb.value.length) return pb.value.length - pa.value.length;
  const ma = a.r.match.method ? 1 : 0;
  const mb = b.r.match.method ? 1 : 0;
  if (ma !== mb) return mb - ma;
  if (a.r.match.headers.length !== b.r.match.headers.length)
    return b.r.match.headers.length - a.r.match.headers.length;
  if (a.r.match.queryParams.length !== b.r.match.queryParams.length)
    return b.r.match.queryParams.length - a.r.match.queryParams.length;
  return a.order - b.order;
}
