/**
 * The translator: a set of Gateway API and core objects → an IR per Gateway and the
 * status of every object the controller owns. Pure: no I/O, no clock (the caller passes
 * `now`), never throws on malformed objects (they get a status reason or are set aside).
 */
import { createHash } from 'node:crypto';
import { endpointsOf } from './backend.js';
import { buildClasses, buildGateways } from './gateway.js';
import type { GatewayAddress, GatewayState } from './gateway.js';
import { compileGRPCRule } from './grpcroute.js';
import { covers, isWildcard, specificity } from './hostname.js';
import { compileHTTPRule } from './httproute.js';
import type { CompiledRule } from './httproute.js';
import type {
  IR,
  IRCluster,
  IRGateway,
  IRPort,
  IRRoute,
  IRRouteTable,
  IRSecret,
  IRVirtualHost,
} from './ir.js';
import type { ListenerState } from './listener.js';
import { ObjectSet, sortedValues } from './objects.js';
import type { Rejected } from './objects.js';
import { attachRoute as attachRouteUnsafe, compareRoutes } from './route.js';
import type { AnyRoute, Attachment, ParentStatus } from './route.js';
import type { Condition } from './status.js';
import { DEFAULT_CONTROLLER, GATEWAY_GROUP, key } from './types.js';

export interface TranslateOptions {
  controllerName?: string;
  /** RFC 3339 instant for lastTransitionTime of changed conditions */
  now?: string;
  /** addresses to report in Gateway status */
  addresses?: string[];
  /**
   * Per-Gateway addresses (`namespace/name` → GatewayAddress), when each Gateway has a data
   * plane of its own (`serve --envoy local`): a Gateway's listeners bind its address
   * (IRGateway.address) and its status.addresses report it; its spec.addresses are the
   * requests the caller judged. A Gateway of ours without one gets Programmed=False
   * (AddressNotAssigned) and no IR.
   */
  gatewayAddresses?: ReadonlyMap<string, GatewayAddress>;
  /** reuse compiled rules of unchanged routes across calls */
  cache?: RouteCache;
}

export interface ObjectStatus {
  apiVersion: string;
  kind: string;
  namespace?: string;
  name: string;
  status: Record<string, unknown>;
}

export interface TranslateResult {
  ir: IR;
  statuses: ObjectStatus[];
  rejected: Rejected[];
  /**
   * Gateways (`namespace/name`) whose configuration could not be built (an internal error
   * on a value nobody foresaw): they are not in `ir`; the providers keep serving their last
   * good snapshot and report the error on them.
   */
  failures: Map<string, Error>;
}

interface CachedAttach {
  content: string;
  statusKey: string;
  gwSig: string;
  parents: ParentStatus[];
  atts: { gw: string; listener: string; hostnames: string[] }[];
  /** the route's status object built from `parents` */
  objectStatus?: ObjectStatus;
}

/** What route attachment depends on besides the route: Gateways, their listeners' state, namespaces. */
function gatewaySignature(gateways: Map<string, GatewayState>, objs: ObjectSet, world: string): string {
  const h = createHash('sha256');
  h.update(world);
  for (const g of gateways.values()) {
    h.update(
      JSON.stringify([
        g.key,
        g.accepted,
        g.gw.metadata.generation,
        g.gw.spec,
        g.listeners.map((l) => [l.name, l.ready]),
      ]),
    );
  }
  for (const n of sortedValues(objs.namespaces))
    h.update(JSON.stringify([n.metadata.name, n.metadata.labels]));
  return h.digest('hex');
}

/**
 * Cache of compiled route rules, keyed by route identity, content and listener port; it
 * is dropped whole when any Service or ReferenceGrant changes (backend validity depends
 * on them). Endpoints are never cached: they are read afresh on every translation.
 */
export class RouteCache {
  private sig = '';
  /** per route object and listener port: the compiled rules, valid for one content and world */
  private readonly m = new WeakMap<
    object,
    Map<string, { content: string; sig: string; rules: CompiledRule[] }>
  >();
  hits = 0;
  misses = 0;
  /** sorted routes per virtual host (`<table>\0<domain>`), from the previous and the current call */
  vhosts = new Map<string, { input: Entry[]; sorted: IRRoute[] }>();
  vhostsNext = new Map<string, { input: Entry[]; sorted: IRRoute[] }>();
  /** attachment results and parent statuses per route, valid for one content (and status) + Gateway state */
  attach = new WeakMap<object, CachedAttach>();
  /** called at the end of a translation */
  rotate(): void {
    this.vhosts = this.vhostsNext;
    this.vhostsNext = new Map();
  }
  /** a new world (Services, ReferenceGrants) invalidates every compiled rule */
  reset(sig: string): void {
    this.sig = sig;
  }
  get(route: object, port: string, content: string, make: () => CompiledRule[]): CompiledRule[] {
    let byPort = this.m.get(route);
    const e = byPort?.get(port);
    if (e && e.content === content && e.sig === this.sig) {
      this.hits++;
      return e.rules;
    }
    this.misses++;
    const rules = make();
    if (!byPort) this.m.set(route, (byPort = new Map()));
    byPort.set(port, { content, sig: this.sig, rules });
    return rules;
  }
}

/**
 * attachRoute, but a malformed route we did not foresee never takes the others down: its
 * attachments so far are dropped and it is set aside with the error, and the Gateways it
 * names are marked failed (they keep the configuration served before: see `failures`).
 */
function attachRoute(...args: Parameters<typeof attachRouteUnsafe>): ParentStatus[] {
  const [route, , gateways, , , , attach] = args;
  const pending: [GatewayState, Attachment][] = [];
  try {
    const out = attachRouteUnsafe(args[0], args[1], args[2], args[3], args[4], args[5], (gw, a) =>
      pending.push([gw, a]),
    );
    for (const [gw, a] of pending) attach(gw, a);
    return out;
  } catch (err) {
    for (const [, a] of pending) a.listener.attachedRoutes--;
    const what = `${route.kind} ${route.metadata.namespace ?? ''}/${String(route.metadata.name)}: ${String(err).slice(0, 200)}`;
    for (const gw of parentGateways(route, gateways)) gatewayFailures.set(gw, new Error(what));
    internalErrors.push({
      kind: route.kind,
      namespace: route.metadata.namespace,
      name: route.metadata.name,
      reason: `internal error on a malformed value: ${String(err).slice(0, 200)}`,
    });
    return [];
  }
}
let internalErrors: Rejected[] = [];
/** Gateways (`namespace/name`) whose configuration could not be built in this run, and why. */
let gatewayFailures = new Map<string, Error>();

/** Keys of the Gateways of ours a route's parentRefs name (never throws). */
function parentGateways(route: AnyRoute, gateways: ReadonlyMap<string, unknown>): string[] {
  const out: string[] = [];
  try {
    const refs: unknown = route.spec?.parentRefs;
    if (!Array.isArray(refs)) return out;
    for (const ref of refs as { name?: unknown; namespace?: unknown }[]) {
      if (!ref || typeof ref.name !== 'string') continue;
      const ns = typeof ref.namespace === 'string' ? ref.namespace : route.metadata.namespace;
      const k = key(ns, ref.name);
      if (gateways.has(k)) out.push(k);
    }
  } catch {
    /* nothing more to learn from it */
  }
  return out;
}

/** The route with its kind set, once per input object. */
const routeViews = new WeakMap<object, AnyRoute>();
function asRoute(r: object, kind: 'HTTPRoute' | 'GRPCRoute'): AnyRoute {
  let v = routeViews.get(r);
  if (!v || v.kind !== kind) routeViews.set(r, (v = { ...(r as AnyRoute), kind }));
  return v;
}

/** sort keys of status objects (reused across calls through the cache) */
const statusKeys = new WeakMap<ObjectStatus, string>();

function worldSignature(objs: ObjectSet): string {
  const h = createHash('sha256');
  for (const s of sortedValues(objs.services))
    h.update(JSON.stringify([s.metadata.namespace, s.metadata.name, s.spec]));
  for (const g of sortedValues(objs.referenceGrants))
    h.update(JSON.stringify([g.metadata.namespace, g.metadata.name, g.spec]));
  return h.digest('hex');
}

export function translate(objects: Iterable<unknown>, opts: TranslateOptions = {}): TranslateResult {
  const controllerName = opts.controllerName ?? DEFAULT_CONTROLLER;
  const now = opts.now ?? new Date(0).toISOString().replace('.000Z', 'Z');
  const objs = new ObjectSet(objects);
  internalErrors = [];
  gatewayFailures = new Map();
  const classes = buildClasses(objs, controllerName, now);
  const gateways = buildGateways(objs, classes, now, opts.gatewayAddresses);
  const attachments = new Map<GatewayState, Attachment[]>();
  for (const g of gateways.values()) attachments.set(g, []);
  const statuses: ObjectStatus[] = [];
  const world = opts.cache ? worldSignature(objs) : '';
  opts.cache?.reset(world);
  const gwSig = opts.cache ? gatewaySignature(gateways, objs, world) : '';

  // the spec's order: oldest first, then <namespace>/<name> (keys computed once)
  const routes: { route: AnyRoute; orig: object }[] = [
    ...[...objs.httpRoutes.values()].map((r) => ({ orig: r, route: asRoute(r, 'HTTPRoute') })),
    ...[...objs.grpcRoutes.values()].map((r) => ({ orig: r, route: asRoute(r, 'GRPCRoute') })),
  ]
    .map((x) => ({
      x,
      t:
        typeof x.route.metadata.creationTimestamp === 'string'
          ? Date.parse(x.route.metadata.creationTimestamp) || 0
          : 0,
      k: `${key(x.route.metadata.namespace, x.route.metadata.name)}\0${x.route.kind}`,
    }))
    .sort((a, b) => a.t - b.t || (a.k < b.k ? -1 : a.k > b.k ? 1 : 0))
    .map((y) => y.x);

  for (const [order, { route, orig }] of routes.entries()) {
    const perPort = new Map<string, CompiledRule[]>();
    let content: string | undefined;
    const compile = (port: number, protocol: 'HTTP' | 'HTTPS'): CompiledRule[] => {
      const pk = `${port}/${protocol}`;
      let rules = perPort.get(pk);
      if (!rules) {
        const make = () => {
          const list = Array.isArray(route.spec.rules) ? route.spec.rules : [];
          const ctx = { objs, listenerPort: port, listenerProtocol: protocol };
          return route.kind === 'HTTPRoute'
            ? (list as NonNullable<typeof route.spec.rules>).map((r, i) =>
                compileHTTPRule(route as never, r as never, i, ctx),
              )
            : (list as NonNullable<typeof route.spec.rules>).map((r, i) =>
                compileGRPCRule(route as never, r as never, i, ctx),
              );
        };
        if (opts.cache) {
          // the API server changes resourceVersion on every write; without one, the spec itself
          content ??=
            typeof route.metadata.resourceVersion === 'string' && route.metadata.resourceVersion
              ? `rv:${route.metadata.resourceVersion}`
              : JSON.stringify(route.spec);
          rules = opts.cache.get(orig, pk, content, make);
        } else rules = make();
        perPort.set(pk, rules);
      }
      return rules;
    };
    let parents: ParentStatus[];
    let entry: CachedAttach | undefined;
    const cache = opts.cache;
    if (cache) {
      const rv = typeof route.metadata.resourceVersion === 'string' ? route.metadata.resourceVersion : '';
      const statusKey = rv ? '' : JSON.stringify(route.status ?? null);
      content ??= rv ? `rv:${rv}` : JSON.stringify(route.spec);
      const hit = cache.attach.get(orig);
      if (hit && hit.content === content && hit.statusKey === statusKey && hit.gwSig === gwSig) {
        // `now` is not part of the key: with the same route (and the same status it carries)
        // and the same Gateways, a condition that changed did so when first computed
        // replay: same listeners, hostnames and statuses; rules come from the rule cache
        for (const a of hit.atts) {
          const gw = gateways.get(a.gw)!;
          const l = gw.listeners.find((x) => x.name === a.listener)!;
          l.attachedRoutes++;
          attachments
            .get(gw)!
            .push({ listener: l, hostnames: a.hostnames, rules: compile(l.port, l.protocol), order });
        }
        parents = hit.parents;
        entry = hit;
      } else {
        const atts: CachedAttach['atts'] = [];
        parents = attachRoute(route, order, gateways, controllerName, now, compile, (gw, a) => {
          attachments.get(gw)!.push(a);
          atts.push({ gw: gw.key, listener: a.listener.name, hostnames: a.hostnames });
        });
        entry = { content, statusKey, gwSig, parents, atts };
        cache.attach.set(orig, entry);
      }
    } else {
      parents = attachRoute(route, order, gateways, controllerName, now, compile, (gw, a) =>
        attachments.get(gw)!.push(a),
      );
    }
    if (entry?.objectStatus) statuses.push(entry.objectStatus);
    else if (parents.length) {
      // keep other controllers' entries, replace ours
      const prev = (route.status as { parents?: { controllerName?: string }[] } | undefined)?.parents;
      const others = Array.isArray(prev) ? prev.filter((p) => p && p.controllerName !== controllerName) : [];
      const st: ObjectStatus = {
        apiVersion: `${GATEWAY_GROUP}/v1`,
        kind: route.kind,
        namespace: route.metadata.namespace,
        name: route.metadata.name!,
        status: { parents: [...(others as ParentStatus[]), ...parents] },
      };
      if (entry) entry.objectStatus = st;
      statuses.push(st);
    }
  }

  for (const c of classes.values()) {
    statuses.push({
      apiVersion: `${GATEWAY_GROUP}/v1`,
      kind: 'GatewayClass',
      name: c.cls.metadata.name!,
      status: { conditions: c.conds.toArray() },
    });
  }
  const irGateways: IRGateway[] = [];
  for (const g of gateways.values()) {
    const status: Record<string, unknown> = {};
    if (g.address) status.addresses = [{ type: 'IPAddress', value: g.address }];
    else if (opts.addresses?.length && g.accepted && !opts.gatewayAddresses)
      status.addresses = opts.addresses.map((value) => ({ type: 'IPAddress', value }));
    status.conditions = g.conds.toArray();
    if (g.listeners.length) {
      status.listeners = g.listeners.map((l) => ({
        name: l.name,
        supportedKinds: l.supportedKinds.map((kind) => ({ group: GATEWAY_GROUP, kind })),
        attachedRoutes: l.attachedRoutes,
        conditions: l.conds.toArray() as Condition[],
      }));
    }
    statuses.push({
      apiVersion: `${GATEWAY_GROUP}/v1`,
      kind: 'Gateway',
      namespace: g.gw.metadata.namespace,
      name: g.gw.metadata.name!,
      status,
    });
    // with per-Gateway addresses, one that has none has no data plane to configure
    if (g.accepted && !gatewayFailures.has(g.key) && (!opts.gatewayAddresses || g.address)) {
      try {
        irGateways.push(buildGatewayIR(objs, g, attachments.get(g)!, opts.cache));
      } catch (err) {
        gatewayFailures.set(g.key, err instanceof Error ? err : new Error(String(err)));
      }
    }
  }
  const sk = (s: ObjectStatus): string => {
    let k = statusKeys.get(s);
    if (k === undefined) statusKeys.set(s, (k = `${s.kind}/${s.namespace ?? ''}/${s.name}`));
    return k;
  };
  statuses.sort((a, b) => {
    const ka = sk(a);
    const kb = sk(b);
    return ka < kb ? -1 : ka > kb ? 1 : 0;
  });
  opts.cache?.rotate();
  const rk = (r: Rejected) => JSON.stringify([r.kind, r.namespace ?? '', r.name ?? '', r.reason]);
  const rejected = [...objs.rejected, ...internalErrors].sort((a, b) =>
    rk(a) < rk(b) ? -1 : rk(a) > rk(b) ? 1 : 0,
  );
  return { ir: { gateways: irGateways }, statuses, rejected, failures: gatewayFailures };
}

function buildGatewayIR(
  objs: ObjectSet,
  g: GatewayState,
  atts: Attachment[],
  cache: RouteCache | undefined,
): IRGateway {
  const ns = g.gw.metadata.namespace!;
  const name = g.gw.metadata.name!;
  const ready = g.listeners.filter((l) => l.ready);
  const ports = [...new Set(ready.map((l) => l.port))].sort((a, b) => a - b);
  const clusters = new Map<string, IRCluster>();
  const secrets = new Map<string, IRSecret>();
  const outPorts: IRPort[] = [];
  for (const port of ports) {
    const ls = ready.filter((l) => l.port === port);
    const protocol = ls[0].protocol;
    const tables: IRRouteTable[] = [];
    if (protocol === 'HTTP') {
      tables.push(buildTable(`route-${port}`, ls, ls, atts, clusters, cache, g.key));
    } else {
      for (const l of [...ls].sort(
        (a, b) => specificity(b.hostname) - specificity(a.hostname) || (a.name < b.name ? -1 : 1),
      )) {
        const t = buildTable(`route-${port}-${l.name}`, [l], ls, atts, clusters, cache, g.key);
        t.serverNames = l.hostname ? [l.hostname] : [];
        t.certificates = l.certificates.map((c) => c.name);
        for (const c of l.certificates) secrets.set(c.name, c);
        tables.push(t);
      }
    }
    outPorts.push({ port, protocol, tables });
  }
  // endpoints are read afresh here (compiled rules may come from the cache)
  for (const c of clusters.values()) {
    const [cns, svc, p] = c.name.split('/');
    const sp = objs.services.get(key(cns, svc))?.spec?.ports?.find((x) => x.port === Number(p));
    c.endpoints = endpointsOf(objs, cns, svc, sp?.name, sp?.targetPort);
  }
  const byName = <T extends { name: string }>(m: Map<string, T>) =>
    [...m.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return {
    namespace: ns,
    name,
    group: `${ns}/${name}`,
    ...(g.address ? { address: g.address } : {}),
    ports: outPorts,
    clusters: byName(clusters),
    secrets: byName(secrets),
  };
}

interface Entry {
  r: IRRoute;
  /** route position × 4096 + rule × 64 + match */
  order: number;
  /** 0: the virtual host's own hostname; then less specific hostnames that also cover it */
  rank: number;
  l: ListenerState;
}

/** Sort a virtual host's routes by precedence; with a cache, reuse the last order when its inputs are the same. */
function sortRoutes(id: string, list: Entry[], cache: RouteCache | undefined): IRRoute[] {
  const prev = cache?.vhosts.get(id);
  if (
    prev &&
    prev.input.length === list.length &&
    prev.input.every((x, i) => x.r === list[i].r && x.order === list[i].order && x.rank === list[i].rank)
  ) {
    cache!.vhostsNext.set(id, prev);
    return prev.sorted;
  }
  const sorted = [...list].sort((a, b) => a.rank - b.rank || compareRoutes(a, b)).map((x) => x.r);
  cache?.vhostsNext.set(id, { input: list, sorted });
  return sorted;
}

/** Specificity of a virtual host domain: exact, then wildcards by labels, then "*". */
function domainSpecificity(d: string): number {
  return d === '*' ? -1 : specificity(d);
}

/** Does domain `wide` (a wildcard or "*") also match every request of domain `d`? */
function domainCovers(wide: string, d: string): boolean {
  if (wide === d) return false;
  if (wide === '*') return true;
  return isWildcard(wide) && covers(wide, d);
}

/**
 * One route table: virtual hosts per domain.
 *
 * Hostname precedence (the spec): rules of routes with a more specific matching hostname
 * come first, then those of less specific ones that also match (a route for
 * `*.example.com` or with no hostname still serves `foo.example.com` requests that the
 * `foo.example.com` route does not match). Envoy picks one virtual host per request, so
 * each virtual host lists its own routes, then those of the wider domains covering it.
 *
 * Listener isolation (HTTP): a route's domain reached through a listener is dropped when
 * a more specific listener on the same port also covers it; wider domains only lend
 * routes that came through the listener that owns the narrower domain; and every listener
 * hostname gets a virtual host (empty: 404) so its requests never fall through to a less
 * specific listener's routes.
 */
function buildTable(
  name: string,
  serve: ListenerState[],
  portListeners: ListenerState[],
  atts: Attachment[],
  clusters: Map<string, IRCluster>,
  cache: RouteCache | undefined,
  gwKey: string,
): IRRouteTable {
  const domains = new Map<string, Entry[]>();
  const names = new Map<string, Set<IRRoute>>();
  const serving = new Set(serve);
  const others = portListeners.filter((o) => o.hostname);
  for (const l of serve) if (l.hostname) domains.set(l.hostname, []);
  for (const a of atts) {
    if (!serving.has(a.listener)) continue;
    for (const d of a.hostnames) {
      const shadowed = others.some(
        (o) =>
          o !== a.listener &&
          specificity(o.hostname) > specificity(a.listener.hostname) &&
          covers(o.hostname!, d),
      );
      if (shadowed) continue;
      let list = domains.get(d);
      if (!list) domains.set(d, (list = []));
      let seen = names.get(d);
      if (!seen) names.set(d, (seen = new Set()));
      for (const rule of a.rules) {
        if (rule.error) continue;
        for (const c of rule.clusters) if (!clusters.has(c.name)) clusters.set(c.name, { ...c });
        for (const [j, r] of rule.routes.entries()) {
          if (seen.has(r)) continue;
          seen.add(r);
          list.push({ r, order: a.order * 4096 + rule.index * 64 + j, rank: 0, l: a.listener });
        }
      }
    }
  }
  // the listener that serves requests for a domain: the most specific one covering it
  const ownerOf = (d: string): ListenerState | undefined => {
    let best: ListenerState | undefined;
    for (const l of serve) {
      const ok = !l.hostname || l.hostname === d || (d !== '*' && covers(l.hostname, d));
      if (ok && (!best || specificity(l.hostname) > specificity(best.hostname))) best = l;
    }
    return best;
  };
  const byWidth = [...domains.keys()].sort(
    (a, b) => domainSpecificity(b) - domainSpecificity(a) || (a < b ? -1 : 1),
  );
  const virtualHosts: IRVirtualHost[] = [...domains.keys()].sort().map((d) => {
    const own = domains.get(d)!;
    const owner = ownerOf(d);
    const list: Entry[] = [...own];
    const have = new Set(own.map((e) => e.r));
    let rank = 0;
    for (const wide of byWidth) {
      if (!domainCovers(wide, d)) continue;
      rank++;
      for (const e of domains.get(wide)!) {
        if (e.l !== owner || have.has(e.r)) continue;
        have.add(e.r);
        list.push({ ...e, rank });
      }
    }
    return { name: d, domains: [d], routes: sortRoutes(`${gwKey}\0${name}\0${d}`, list, cache) };
  });
  return { name, listeners: serve.map((l) => l.name), serverNames: [], certificates: [], virtualHosts };
}
