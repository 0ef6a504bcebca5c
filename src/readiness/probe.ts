/**
 * Probe routes: how the readiness layer proves through the data plane that an Envoy serves a
 * route entry's new backends before the entry is promoted (phase 1), after it (phase 2), and
 * until the probe routes are dropped (phase 3).
 *
 * A probe route is a copy of a route entry's action, placed first in its virtual host and
 * matched only by a request carrying `x-signalbox-probe: <hash>.<k>` (hash: of the entry's
 * desired state; k: the index of the cluster in the entry's weighted_clusters, 0 for a plain
 * `cluster`). It forwards to that one cluster and stamps the same value on the response, so
 * a response that carries it proves this Envoy applied the RouteConfiguration holding it.
 *
 * Pure functions on proto3 JSON (as emitted by src/xds/translate/route.ts): inputs are never
 * mutated, equal inputs give equal outputs.
 */
import { createHash } from 'node:crypto';
import type { Json, JsonObject } from '../xds/proto.js';

export const PROBE_HEADER = 'x-signalbox-probe';

/**
 * Probe requests use a synthetic exact path under this prefix, whatever the original entry
 * matches. Why not a path the original matches: the probe header alone isolates the probe
 * route (normal traffic never carries `<hash>.<k>`), a safe_regex path cannot be sampled, one
 * scheme for every match type keeps the probe route and the request trivially in agreement,
 * and a `.well-known` path is unlikely to reach a real handler with side effects. Rewrites of
 * the original action (prefix_rewrite, regex_rewrite) still apply to it; the backend may
 * answer 404: any status from the backend proves it is served.
 */
export const PROBE_PATH_PREFIX = '/.well-known/signalbox-probe/';

/** The Host a probe uses for a virtual host whose only domain is `*`. */
export const CATCH_ALL_PROBE_HOST = 'probe.signalbox.invalid';

export interface ProbeRequest {
  /** Host header: a concrete name the probe route's virtual host is selected by */
  host: string;
  path: string;
  /** the PROBE_HEADER request value, `<hash>.<k>`, which the response must carry back */
  headerValue: string;
  /** the upstream cluster this probe proves */
  cluster: string;
  /** the route entry (its `name`) this probe stands for */
  routeEntry: string;
  /** the virtual host (its `name`) the probe route sits in; one entry can sit in several */
  virtualHost: string;
}

export type SkipReason =
  /** the entry is not in `from` (or has no name) */
  | 'not-found'
  /** a redirect: no backend to prove */
  | 'redirect'
  /** a direct_response: no backend to prove */
  | 'direct_response'
  /** a route action without a usable cluster (only the invalid-backend placeholder, cluster_header, ...) */
  | 'no-upstream'
  /** no Host could be found that Envoy would route to the probe route's virtual host */
  | 'no-probe-host';

export interface SkippedEntry {
  name: string;
  /** absent for 'not-found' */
  virtualHost?: string;
  reason: SkipReason;
}

export interface ProbeRoutes {
  json: JsonObject;
  /** in `from` order: virtual host, entry, cluster index */
  probes: ProbeRequest[];
  skipped: SkippedEntry[];
}

/** The weighted-cluster name the translator uses for invalid backendRefs (absent on purpose: Envoy answers 500). */
const INVALID_BACKEND_CLUSTER = 'signalbox/invalid-backend-ref';

const HASH_RE = /^[0-9a-f]{1,64}$/;

/**
 * A short hex hash of a JSON value (object keys sorted), suitable as a probe hash: safe in a
 * header and in a path segment. Include everything that makes the desired state of an entry
 * (its JSON, its clusters' and endpoints' versions) so that a new state gets a new hash.
 */
export function probeHash(state: Json, length = 16): string {
  return createHash('sha256').update(canonical(state)).digest('hex').slice(0, length);
}

function canonical(v: Json): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') {
    const keys = Object.keys(v).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

/** The probe path for a probe header value. */
export function probePath(headerValue: string): string {
  return PROBE_PATH_PREFIX + headerValue;
}

/** Whether a route entry is a probe route (it matches on PROBE_HEADER). */
export function isProbeRoute(route: JsonObject): boolean {
  const m = route.match as JsonObject | undefined;
  const headers = m && Array.isArray(m.headers) ? (m.headers as JsonObject[]) : [];
  return headers.some((h) => typeof h?.name === 'string' && h.name.toLowerCase() === PROBE_HEADER);
}

const clone = <T extends Json>(v: T): T => structuredClone(v);
const vhostsOf = (rc: JsonObject): JsonObject[] =>
  Array.isArray(rc.virtual_hosts) ? (rc.virtual_hosts as JsonObject[]) : [];
const routesOf = (vh: JsonObject): JsonObject[] =>
  Array.isArray(vh.routes) ? (vh.routes as JsonObject[]) : [];
const domainsOf = (vh: JsonObject): string[] =>
  Array.isArray(vh.domains) ? (vh.domains as Json[]).filter((d): d is string => typeof d === 'string') : [];

/**
 * `rc` without any probe route; a virtual host left with no route that had only probe routes
 * is dropped (it was added for probes). Phase 3 can use this, or simply the desired `rc`.
 */
export function withoutProbeRoutes(rc: JsonObject): JsonObject {
  const out = clone(rc);
  if (!Array.isArray(out.virtual_hosts)) return out;
  out.virtual_hosts = vhostsOf(out)
    .map((vh) => {
      const routes = routesOf(vh);
      const kept = routes.filter((r) => !isProbeRoute(r));
      if (kept.length === routes.length) return vh;
      return kept.length === 0 ? undefined : { ...vh, routes: kept };
    })
    .filter((vh): vh is JsonObject => vh !== undefined);
  return out;
}

/**
 * `rc` with one probe route per upstream cluster of each named entry, cloned from `from`
 * (default `rc`): in phase 1 `rc` is the served RouteConfiguration (old entries) and `from`
 * the desired one. Probe routes go before the first route of the virtual host of the same
 * name in `rc`; a virtual host only `from` has is added with only the probe routes (with the
 * domains `rc` does not already serve; if it serves them all, the probes go to the virtual
 * host of `rc` that does). Existing probe routes of the same entries are replaced, so the
 * function can be applied to its own output.
 *
 * Throws on a hash that is not 1 to 64 lowercase hex digits, or on one entry named twice
 * with different hashes (caller bugs).
 */
export function withProbeRoutes(
  rc: JsonObject,
  entries: { name: string; hash: string }[],
  from?: JsonObject,
): ProbeRoutes {
  const hashes = new Map<string, string>();
  for (const e of entries) {
    if (!HASH_RE.test(e.hash)) throw new Error(`probe hash of ${e.name} must be 1-64 lowercase hex digits`);
    const prev = hashes.get(e.name);
    if (prev !== undefined && prev !== e.hash)
      throw new Error(`entry ${e.name} named twice with different hashes`);
    hashes.set(e.name, e.hash);
  }
  // read-only: the probe routes are deep copies of its entries
  const src = from ?? rc;
  // a copy of `rc` whose virtual hosts are those of `rc` (shared, never changed: one that gets
  // probe routes is replaced by a copy) and the ones added for probes
  const out: JsonObject = { ...rc };
  // existing probe routes of the named entries go (a second application replaces them); a
  // virtual host that only held such probe routes goes with them
  const ofNamed = (r: JsonObject) => {
    const m = typeof r.name === 'string' ? /^(.*)\/probe\/\d+$/.exec(r.name) : null;
    return m !== null && hashes.has(m[1]) && isProbeRoute(r);
  };
  const outVhosts: JsonObject[] = [];
  for (const vh of vhostsOf(out)) {
    const routes = routesOf(vh);
    const kept = routes.filter((r) => !ofNamed(r));
    if (kept.length === routes.length) outVhosts.push(vh);
    else if (kept.length > 0) outVhosts.push({ ...vh, routes: kept });
  }
  out.virtual_hosts = outVhosts;

  const probes: ProbeRequest[] = [];
  const skipped: SkippedEntry[] = [];
  const found = new Set<string>();
  // probe routes per target virtual host of `out`, in order
  const pending = new Map<JsonObject, JsonObject[]>();
  // probe requests waiting for their virtual host's Host (chosen once every vhost is in place)
  const waiting: { vh: JsonObject; probes: Omit<ProbeRequest, 'host'>[]; entry: string }[] = [];

  for (const svh of vhostsOf(src)) {
    const named = routesOf(svh).filter((r) => typeof r.name === 'string' && hashes.has(r.name));
    if (named.length === 0) continue;
    const target = targetVhost(outVhosts, svh);
    for (const entry of named) {
      const name = entry.name as string;
      found.add(name);
      const built = probeRoutesOf(entry, hashes.get(name)!);
      if ('skip' in built) {
        skipped.push({ name, virtualHost: String(target.name), reason: built.skip });
        continue;
      }
      let list = pending.get(target);
      if (!list) pending.set(target, (list = []));
      list.push(...built.routes);
      waiting.push({
        vh: target,
        entry: name,
        probes: built.probes.map((p) => ({ ...p, routeEntry: name, virtualHost: String(target.name) })),
      });
    }
  }

  const hostOf = new Map<JsonObject, string | undefined>();
  for (const w of waiting) {
    if (!hostOf.has(w.vh))
      hostOf.set(w.vh, probeHost(outVhosts, w.vh, out.ignore_port_in_host_matching === true));
    const host = hostOf.get(w.vh);
    if (host === undefined) {
      skipped.push({ name: w.entry, virtualHost: String(w.vh.name), reason: 'no-probe-host' });
      // keep the probe routes (harmless, unreachable): the output stays a function of the input only
      continue;
    }
    for (const p of w.probes) probes.push({ host, ...p });
  }
  // the probe routes go first in their virtual host (a copy of it, in its place)
  const shared = new Set(vhostsOf(rc));
  const own = new Set(outVhosts.filter((v) => !shared.has(v)));
  for (const [vh, probeRoutes] of pending) {
    const routes = [...probeRoutes, ...routesOf(vh)];
    if (own.has(vh)) vh.routes = routes;
    else outVhosts[outVhosts.indexOf(vh)] = { ...vh, routes };
  }
  for (const name of hashes.keys()) if (!found.has(name)) skipped.push({ name, reason: 'not-found' });
  return { json: out, probes, skipped };
}

/** The virtual host of `vhosts` (the output, mutated: a new one may be appended) that takes the probes of `svh`. */
function targetVhost(vhosts: JsonObject[], svh: JsonObject): JsonObject {
  const same = vhosts.find((v) => v.name === svh.name);
  if (same) return same;
  // Envoy refuses a domain served by two virtual hosts of one RouteConfiguration
  const served = new Map<string, JsonObject>();
  for (const v of vhosts) for (const d of domainsOf(v)) served.set(d.toLowerCase(), v);
  const domains = domainsOf(svh);
  const free = domains.filter((d) => !served.has(d.toLowerCase()));
  if (free.length === 0 && domains.length > 0) return served.get(domains[0].toLowerCase())!;
  const added: JsonObject = { ...svh, domains: free, routes: [] };
  vhosts.push(added);
  return added;
}

function probeRoutesOf(
  entry: JsonObject,
  hash: string,
):
  | { skip: SkipReason }
  | { routes: JsonObject[]; probes: { path: string; headerValue: string; cluster: string }[] } {
  if (entry.redirect !== undefined) return { skip: 'redirect' };
  if (entry.direct_response !== undefined) return { skip: 'direct_response' };
  const action = entry.route as JsonObject | undefined;
  if (!action || typeof action !== 'object') return { skip: 'no-upstream' };
  const targets: { k: number; cluster: string; weight?: JsonObject }[] = [];
  if (typeof action.cluster === 'string') targets.push({ k: 0, cluster: action.cluster });
  else {
    const wc = action.weighted_clusters as JsonObject | undefined;
    const list = wc && Array.isArray(wc.clusters) ? (wc.clusters as JsonObject[]) : [];
    list.forEach((c, k) => {
      // the invalid-backend placeholder is absent on purpose: Envoy answers 500, nothing to prove
      if (typeof c.name === 'string' && c.name !== INVALID_BACKEND_CLUSTER)
        targets.push({ k, cluster: c.name, weight: c });
    });
  }
  if (targets.length === 0) return { skip: 'no-upstream' };

  const routes: JsonObject[] = [];
  const probes: { path: string; headerValue: string; cluster: string }[] = [];
  for (const t of targets) {
    const value = `${hash}.${t.k}`;
    const path = probePath(value);
    const r: JsonObject = { ...entry, name: `${String(entry.name)}/probe/${t.k}` };
    r.match = { path, headers: [{ name: PROBE_HEADER, string_match: { exact: value } }] };
    const route: JsonObject = { ...action };
    delete route.weighted_clusters;
    delete route.cluster_header;
    delete route.cluster_specifier_plugin;
    delete route.inline_cluster_specifier_plugin;
    route.cluster = t.cluster;
    if (t.weight) liftClusterWeight(t.weight, r, route);
    r.route = route;
    // the probe header last, so that it wins over any header mutation of the original
    const remove = (r.response_headers_to_remove as Json[] | undefined)?.filter(
      (h) => typeof h !== 'string' || h.toLowerCase() !== PROBE_HEADER,
    );
    if (remove !== undefined) {
      if (remove.length) r.response_headers_to_remove = remove;
      else delete r.response_headers_to_remove;
    }
    r.response_headers_to_add = [
      ...((r.response_headers_to_add as Json[] | undefined) ?? []),
      {
        header: { key: PROBE_HEADER, value: value.replaceAll('%', '%%') },
        append_action: 'OVERWRITE_IF_EXISTS_OR_ADD',
      },
    ];
    routes.push(clone(r));
    probes.push({ path, headerValue: value, cluster: t.cluster });
  }
  return { routes, probes };
}

/**
 * A weighted cluster's own settings move to the probe route, which names the cluster alone:
 * header mutations (Envoy applies the cluster's before the route's, hence placed first),
 * host_rewrite_literal and typed_per_filter_config (the cluster's override the route's).
 */
function liftClusterWeight(w: JsonObject, r: JsonObject, route: JsonObject): void {
  for (const f of [
    'request_headers_to_add',
    'response_headers_to_add',
    'request_headers_to_remove',
    'response_headers_to_remove',
  ]) {
    const own = w[f];
    if (!Array.isArray(own) || own.length === 0) continue;
    const outer = Array.isArray(r[f]) ? (r[f] as Json[]) : [];
    r[f] = [...own, ...outer];
  }
  if (typeof w.host_rewrite_literal === 'string') {
    delete route.auto_host_rewrite;
    delete route.host_rewrite_header;
    delete route.host_rewrite_path_regex;
    route.host_rewrite_literal = w.host_rewrite_literal;
  }
  if (w.typed_per_filter_config && typeof w.typed_per_filter_config === 'object') {
    r.typed_per_filter_config = {
      ...((r.typed_per_filter_config as JsonObject | undefined) ?? {}),
      ...(w.typed_per_filter_config as JsonObject),
    };
  }
}

/**
 * A Host that Envoy routes to `target` among `vhosts`: the first non-wildcard domain, else a
 * name under a wildcard (`*.example.com` → `probe.example.com`, `*` →
 * `probe.signalbox.invalid`): the first candidate that Envoy's virtual host selection (exact,
 * then longest suffix wildcard, then longest prefix wildcard, then `*`) gives to `target`.
 * With `ignorePort` (the RouteConfiguration's ignore_port_in_host_matching, which the
 * translator sets) Envoy strips the Host's port before matching: the probe Host has none (and
 * a domain with a port cannot be selected); without it, a domain's port is kept in the Host.
 */
export function probeHost(vhosts: JsonObject[], target: JsonObject, ignorePort: boolean): string | undefined {
  const domains = domainsOf(target).map((d) => (ignorePort ? stripPort(d) : d).toLowerCase());
  const candidates = [
    ...domains.filter((d) => !d.includes('*')),
    ...domains.filter((d) => d.includes('*')).map(concreteName),
  ];
  return candidates.find((h) => h !== '' && selectVhost(vhosts, h) === target);
}

function stripPort(d: string): string {
  if (d.startsWith('[')) {
    const end = d.indexOf(']');
    return end > 0 ? d.slice(0, end + 1) : d;
  }
  return d.replace(/:\d+$/, '');
}

function concreteName(d: string): string {
  if (d === '*') return CATCH_ALL_PROBE_HOST;
  if (d.startsWith('*')) return 'probe' + d.slice(1);
  if (d.endsWith('*')) return d.slice(0, -1) + CATCH_ALL_PROBE_HOST;
  return d;
}

/** Envoy's virtual host selection for a lowercase Host (after any port stripping). */
function selectVhost(vhosts: JsonObject[], host: string): JsonObject | undefined {
  let exact: JsonObject | undefined;
  let suffix: { len: number; vh: JsonObject } | undefined;
  let prefix: { len: number; vh: JsonObject } | undefined;
  let any: JsonObject | undefined;
  for (const vh of vhosts) {
    for (const raw of domainsOf(vh)) {
      const d = raw.toLowerCase();
      if (d === '*') any ??= vh;
      else if (d.startsWith('*')) {
        const s = d.slice(1);
        // the wildcard matches at least one character
        if (host.length > s.length && host.endsWith(s) && (!suffix || s.length > suffix.len))
          suffix = { len: s.length, vh };
      } else if (d.endsWith('*')) {
        const p = d.slice(0, -1);
        if (host.length > p.length && host.startsWith(p) && (!prefix || p.length > prefix.len))
          prefix = { len: p.length, vh };
      } else if (d === host) exact ??= vh;
    }
  }
  return exact ?? suffix?.vh ?? prefix?.vh ?? any;
}
