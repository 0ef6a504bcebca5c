/**
 * Route-level views of a Gateway's snapshot, for the readiness layer: which Envoy route
 * entries (and through them which clusters and endpoints) belong to which Gateway API route,
 * a fingerprint of what each route serves, and the composition of a snapshot in which some
 * routes keep the entries they had in an older one (not yet promoted) while the rest is new.
 *
 * Route entries are named `<kind>/<namespace>/<name>/rule/<i>/match/<j>` by the translator
 * (src/gatewayapi/ir.ts): the route key is `<kind>/<namespace>/<name>`.
 */
import { createHash } from 'node:crypto';
import type { Json, JsonObject } from '../xds/proto.js';
import type { ProtoRegistry } from '../xds/proto.js';
import { TypeUrl, makeResource } from '../xds/resource.js';
import type { Resource } from '../xds/resource.js';
import { Snapshot } from '../xds/cache/snapshot.js';
import { routeConfigurationFromJson } from '../xds/translate/index.js';

export interface EntryRef {
  /** RouteConfiguration name */
  rc: string;
  /** virtual host name */
  vh: string;
  entry: JsonObject;
}

/** The route key of an Envoy route entry name, or undefined for entries of no route. */
export function routeKeyOf(entryName: unknown): string | undefined {
  if (typeof entryName !== 'string' || entryName.includes('/probe/')) return undefined; // a probe route
  const m = /^((?:httproute|grpcroute)\/[^/]+\/[^/]+)\/rule\//.exec(entryName);
  return m?.[1];
}

/** `HTTPRoute`, namespace, name of a route key. */
export function parseRouteKey(k: string): {
  kind: 'HTTPRoute' | 'GRPCRoute';
  namespace: string;
  name: string;
} {
  const [kind, namespace, name] = k.split('/');
  return { kind: kind === 'grpcroute' ? 'GRPCRoute' : 'HTTPRoute', namespace, name };
}

export function routeKey(kind: string, namespace: string, name: string): string {
  return `${kind.toLowerCase()}/${namespace}/${name}`;
}

const vhosts = (rc: JsonObject): JsonObject[] =>
  Array.isArray(rc.virtual_hosts) ? (rc.virtual_hosts as JsonObject[]) : [];
const routesOf = (vh: JsonObject): JsonObject[] =>
  Array.isArray(vh.routes) ? (vh.routes as JsonObject[]) : [];

/** Every route entry of a snapshot, by route key (in RouteConfiguration and virtual host order). */
export function entriesByRoute(snap: Snapshot): Map<string, EntryRef[]> {
  const out = new Map<string, EntryRef[]>();
  for (const rc of snap.get(TypeUrl.Route).values()) {
    for (const vh of vhosts(rc.json)) {
      for (const e of routesOf(vh)) {
        const k = routeKeyOf(e.name);
        if (!k) continue;
        let l = out.get(k);
        if (!l) out.set(k, (l = []));
        l.push({ rc: rc.name, vh: String(vh.name), entry: e });
      }
    }
  }
  return out;
}

/** The clusters an entry forwards (or mirrors) to. */
export function clustersOf(entry: JsonObject): string[] {
  const r = entry.route as JsonObject | undefined;
  if (!r) return [];
  const out: string[] = [];
  if (typeof r.cluster === 'string') out.push(r.cluster);
  const wc = r.weighted_clusters as JsonObject | undefined;
  if (wc && Array.isArray(wc.clusters))
    for (const c of wc.clusters as JsonObject[]) if (typeof c.name === 'string') out.push(c.name);
  if (Array.isArray(r.request_mirror_policies))
    for (const m of r.request_mirror_policies as JsonObject[])
      if (typeof m.cluster === 'string') out.push(m.cluster);
  return [...new Set(out)];
}

/**
 * What a route serves in a snapshot: its entries (with where they sit) and the content of
 * every cluster and endpoint list they send to. Two snapshots serve a route the same iff
 * the fingerprints are equal.
 */
export function fingerprint(snap: Snapshot, refs: EntryRef[]): string {
  const h = createHash('sha256');
  const clusters = new Set<string>();
  for (const r of refs) {
    h.update(`${r.rc}\0${r.vh}\0${entryJson(r.entry)}\n`);
    for (const c of clustersOf(r.entry)) clusters.add(c);
  }
  for (const c of [...clusters].sort()) {
    const cr = snap.get(TypeUrl.Cluster).get(c);
    h.update(`C\0${c}\0${cr?.hash ?? '-'}\n`);
    for (const e of cr?.deps.endpoints ?? [])
      h.update(`E\0${e}\0${snap.get(TypeUrl.Endpoint).get(e)?.hash ?? '-'}\n`);
  }
  return h.digest('hex').slice(0, 16);
}

/**
 * JSON of a route entry, by the object: the translator hands the same entry object while a
 * route is unchanged, and entries are never mutated once in a snapshot.
 */
const entryJsons = new WeakMap<JsonObject, string>();
function entryJson(e: JsonObject): string {
  let j = entryJsons.get(e);
  if (j === undefined) entryJsons.set(e, (j = JSON.stringify(e)));
  return j;
}

/** Endpoints (lb_endpoints) a cluster has in a snapshot. */
export function endpointCount(snap: Snapshot, cluster: string): number {
  const cr = snap.get(TypeUrl.Cluster).get(cluster);
  if (!cr) return 0;
  let n = 0;
  for (const e of cr.deps.endpoints) {
    const cla = snap.get(TypeUrl.Endpoint).get(e)?.json;
    for (const loc of (cla?.endpoints as JsonObject[] | undefined) ?? [])
      n += ((loc.lb_endpoints as Json[] | undefined) ?? []).length;
  }
  return n;
}

/**
 * `desired`, except that the routes in `keep` are served as in `old`: 'old' puts their
 * entries of `old` where their new entries are (or, where they have none, at the end of the
 * same virtual host), 'none' leaves them out. Clusters and endpoints the kept entries need
 * come from `old`. `extraRoutes` replaces RouteConfigurations (probe routes added).
 */
export function compose(
  reg: ProtoRegistry,
  desired: Snapshot,
  old: Snapshot | undefined,
  keep: ReadonlyMap<string, 'old' | 'none'>,
): Snapshot {
  if (keep.size === 0) return desired;
  const oldEntries = old ? entriesByRoute(old) : new Map<string, EntryRef[]>();
  const needClusters = new Set<string>();
  const routes: Resource[] = [];
  const seenRc = new Set<string>();
  const rcs = new Map<string, Resource>(desired.get(TypeUrl.Route));
  // RouteConfigurations only the old snapshot has, needed by a kept route
  for (const [k, how] of keep)
    if (how === 'old')
      for (const r of oldEntries.get(k) ?? [])
        if (!rcs.has(r.rc) && old?.get(TypeUrl.Route).get(r.rc))
          rcs.set(r.rc, old.get(TypeUrl.Route).get(r.rc)!);
  for (const rc of rcs.values()) {
    seenRc.add(rc.name);
    let touched = false;
    const vhs: JsonObject[] = [];
    const desiredVhs = desired.get(TypeUrl.Route).get(rc.name) ? vhosts(rc.json) : [];
    const vhNames = new Set(desiredVhs.map((v) => String(v.name)));
    for (const vh of desiredVhs) {
      const placed = new Set<string>();
      const out: JsonObject[] = [];
      let vhTouched = false;
      for (const e of routesOf(vh)) {
        const k = routeKeyOf(e.name);
        const how = k ? keep.get(k) : undefined;
        if (!k || !how) {
          out.push(e);
          continue;
        }
        touched = vhTouched = true;
        if (how === 'none' || placed.has(k)) continue;
        placed.add(k);
        for (const r of oldEntries.get(k) ?? [])
          if (r.rc === rc.name && r.vh === vh.name) {
            out.push(r.entry);
            for (const c of clustersOf(r.entry)) needClusters.add(c);
          }
      }
      // kept routes whose old entries sit in this virtual host but whose new ones do not
      for (const [k, how] of keep) {
        if (how !== 'old' || placed.has(k)) continue;
        for (const r of oldEntries.get(k) ?? [])
          if (r.rc === rc.name && r.vh === vh.name) {
            touched = vhTouched = true;
            out.push(r.entry);
            for (const c of clustersOf(r.entry)) needClusters.add(c);
          }
      }
      // an untouched virtual host stays the same object (its encoding is reused)
      vhs.push(vhTouched ? { ...vh, routes: out } : vh);
    }
    // virtual hosts only the old snapshot has (a changed hostname), for kept routes
    const oldRc = old?.get(TypeUrl.Route).get(rc.name);
    if (oldRc) {
      for (const vh of vhosts(oldRc.json)) {
        if (vhNames.has(String(vh.name))) continue;
        const kept = routesOf(vh).filter((e) => {
          const k = routeKeyOf(e.name);
          return k !== undefined && keep.get(k) === 'old';
        });
        if (kept.length === 0) continue;
        touched = true;
        for (const e of kept) for (const c of clustersOf(e)) needClusters.add(c);
        // this host no longer has a virtual host of its own in desired: what Envoy would send
        // its requests to there (a wildcard, `*`) comes after the kept entries, so other
        // routes keep serving it
        const domains = Array.isArray(vh.domains) ? (vh.domains as string[]) : [];
        const fallback = domains.length > 0 ? selectVhost(desiredVhs, domains[0]) : undefined;
        const rest = fallback
          ? routesOf(fallback).filter((e) => {
              const k = routeKeyOf(e.name);
              return !k || !keep.has(k);
            })
          : [];
        vhs.push({ ...vh, routes: [...kept, ...rest] });
      }
    }
    routes.push(touched ? routeConfigurationFromJson(reg, { ...rc.json, virtual_hosts: vhs }) : rc);
  }
  const res: Resource[] = [...routes];
  for (const t of [TypeUrl.Listener, TypeUrl.Secret]) res.push(...desired.get(t).values());
  const clusters = new Map(desired.get(TypeUrl.Cluster));
  const endpoints = new Map(desired.get(TypeUrl.Endpoint));
  // what the routes served as desired send to: those clusters are served as desired
  const newNeeded = new Set<string>();
  for (const [k, refs] of entriesByRoute(desired))
    if (!keep.has(k)) for (const r of refs) for (const c of clustersOf(r.entry)) newNeeded.add(c);
  for (const c of needClusters) {
    const cr = old?.get(TypeUrl.Cluster).get(c);
    if (!cr) continue;
    // a kept route keeps its cluster and endpoints as they were (an EndpointSlice change is
    // proved before main traffic gets it), unless a route served as desired needs the new
    // ones: a cluster has one state, and the route that is promoted wins
    if (clusters.has(c) && newNeeded.has(c)) continue;
    clusters.set(c, cr);
    for (const e of cr.deps.endpoints) {
      const er = old?.get(TypeUrl.Endpoint).get(e);
      if (er) endpoints.set(e, er);
    }
  }
  res.push(...clusters.values(), ...endpoints.values());
  return new Snapshot(res);
}

/** A snapshot with some RouteConfigurations replaced (and the clusters they add, from `from`). */
export function withRoutes(base: Snapshot, replaced: Resource[], from: Snapshot): Snapshot {
  const rcs = new Map(base.get(TypeUrl.Route));
  for (const r of replaced) rcs.set(r.name, r);
  const clusters = new Map(base.get(TypeUrl.Cluster));
  const endpoints = new Map(base.get(TypeUrl.Endpoint));
  for (const r of replaced)
    for (const c of r.deps.clusters) {
      const cr = from.get(TypeUrl.Cluster).get(c);
      if (!cr || clusters.has(c)) continue;
      clusters.set(c, cr);
      for (const e of cr.deps.endpoints) {
        const er = from.get(TypeUrl.Endpoint).get(e);
        if (er && !endpoints.has(e)) endpoints.set(e, er);
      }
    }
  return new Snapshot([
    ...rcs.values(),
    ...base.get(TypeUrl.Listener).values(),
    ...base.get(TypeUrl.Secret).values(),
    ...clusters.values(),
    ...endpoints.values(),
  ]);
}

/**
 * A copy of cluster `c` of `from` (and its endpoints) under another name, for probe routes
 * that must reach the desired state of a cluster whose served state is still the old one.
 */
export function cloneCluster(reg: ProtoRegistry, from: Snapshot, c: string, name: string): Resource[] {
  const cr = from.get(TypeUrl.Cluster).get(c);
  if (!cr) return [];
  const j = JSON.parse(JSON.stringify(cr.json)) as JsonObject;
  j.name = name;
  const eds = j.eds_cluster_config as JsonObject | undefined;
  const out: Resource[] = [];
  const edsName = (eds?.service_name as string | undefined) ?? c;
  if (eds?.service_name !== undefined) eds.service_name = name;
  const la = j.load_assignment as JsonObject | undefined;
  if (la) la.cluster_name = name;
  out.push(makeResource(reg, TypeUrl.Cluster, j));
  if (j.type === 'EDS' || eds) {
    const cla = from.get(TypeUrl.Endpoint).get(edsName);
    if (cla)
      out.push(makeResource(reg, TypeUrl.Endpoint, { ...(cla.json as JsonObject), cluster_name: name }));
  }
  return out;
}

/** The virtual host Envoy picks for `host`: exact, then longest `*.suffix`, then longest `prefix*`, then `*`. */
export function selectVhost(vhs: JsonObject[], host: string): JsonObject | undefined {
  const h = host.toLowerCase();
  const doms = (v: JsonObject) =>
    (Array.isArray(v.domains) ? (v.domains as string[]) : []).map((d) => d.toLowerCase());
  const exact = vhs.find((v) => doms(v).includes(h));
  if (exact) return exact;
  let best: { v: JsonObject; n: number } | undefined;
  for (const v of vhs)
    for (const d of doms(v))
      if (d.startsWith('*') && d.length > 1 && h.endsWith(d.slice(1)) && h.length > d.length - 1)
        if (!best || d.length > best.n) best = { v, n: d.length };
  if (best) return best.v;
  for (const v of vhs)
    for (const d of doms(v))
      if (d.endsWith('*') && d.length > 1 && h.startsWith(d.slice(0, -1)))
        if (!best || d.length > best.n) best = { v, n: d.length };
  if (best) return best.v;
  return vhs.find((v) => doms(v).includes('*'));
}
