/**
 * IR → Envoy resources → one Snapshot per Gateway (node group `<namespace>/<name>`).
 * Names are deterministic: Listener `listener-<port>`, RouteConfiguration `route-<port>`
 * (HTTPS: `route-<port>-<listener>`), Cluster and ClusterLoadAssignment
 * `<ns>/<service>/<port>`, Secret `<ns>/<secret>`, route entries
 * `<kind>/<ns>/<name>/rule/<i>/match/<j>`.
 */
import protobuf from 'protobufjs';
import type { IR, IRCluster, IRGateway, IRRoute, IRRouteTable } from '../../gatewayapi/ir.js';
import type { JsonObject, ProtoRegistry } from '../proto.js';
import { TypeUrl, findDeps, hashBytes, makeResource } from '../resource.js';
import type { Deps, Resource } from '../resource.js';
import { Snapshot } from '../cache/snapshot.js';
import type { SnapshotCache } from '../cache/cache.js';
import { envoyCluster, envoyLoadAssignment, envoySecret } from './cluster.js';
import { envoyListener } from './listener.js';
import { envoyRoute, envoyRouteConfiguration } from './route.js';

export interface EnvoyOptions {
  /**
   * address Envoy listeners bind: 0.0.0.0 in production, 127.0.0.1 in tests; a Gateway with
   * an address of its own (IRGateway.address, local Envoys) binds that instead
   */
  bindAddress?: string;
  /** reuse encodings of unchanged routes, clusters and endpoints across calls */
  cache?: EnvoyCache;
}

interface VhostEncoding {
  /** field 2 of RouteConfiguration: tag, length and the VirtualHost bytes */
  part: Uint8Array;
  json: JsonObject;
  clusters: string[];
}

/**
 * Encodings kept across translations: each Envoy route entry per IR route object (the
 * gatewayapi RouteCache hands back the same objects for unchanged routes), and whole
 * resources by content. Entries not used by the latest call are dropped.
 */
export class EnvoyCache {
  hits = 0;
  misses = 0;
  private routes = new WeakMap<IRRoute, { json: JsonObject; bytes: Uint8Array }>();
  private cur = new Map<string, Resource>();
  private prev = new Map<string, Resource>();

  route(reg: ProtoRegistry, r: IRRoute): { json: JsonObject; bytes: Uint8Array } {
    let e = this.routes.get(r);
    if (e) this.hits++;
    else {
      this.misses++;
      const json = envoyRoute(r);
      e = { json, bytes: reg.encode('envoy.config.route.v3.Route', json, `route ${r.name}`) };
      this.routes.set(r, e);
    }
    return e;
  }

  private vhosts = new WeakMap<object, Map<string, VhostEncoding>>();
  /** ClusterLoadAssignments by the endpoint list object (the translator reuses it while slices are unchanged) */
  private clas = new WeakMap<object, Map<string, Resource>>();

  loadAssignment(reg: ProtoRegistry, c: IRCluster): Resource {
    let byName = this.clas.get(c.endpoints);
    const hit = byName?.get(c.name);
    if (hit) {
      this.hits++;
      return hit;
    }
    const r = this.resource(
      reg,
      TypeUrl.Endpoint,
      () => envoyLoadAssignment(c),
      `${c.name}\0${c.endpoints.map((e) => `${e.address}:${e.port}`).join(',')}`,
    );
    if (!byName) this.clas.set(c.endpoints, (byName = new Map()));
    byName.set(c.name, r);
    return r;
  }

  /** The encoding of a virtual host, by its (cached, immutable) sorted route list and name. */
  vhost(routes: IRRoute[], name: string): VhostEncoding | undefined {
    const v = this.vhosts.get(routes)?.get(name);
    if (v) this.hits++;
    return v;
  }

  setVhost(routes: IRRoute[], name: string, v: VhostEncoding): void {
    let m = this.vhosts.get(routes);
    if (!m) this.vhosts.set(routes, (m = new Map()));
    m.set(name, v);
  }

  resource(
    reg: ProtoRegistry,
    t: TypeUrl,
    json: JsonObject | (() => JsonObject),
    contentKey?: string,
  ): Resource {
    const k = `${t}\0${contentKey ?? JSON.stringify(json)}`;
    let r = this.cur.get(k) ?? this.prev.get(k);
    if (r) this.hits++;
    else {
      this.misses++;
      r = makeResource(reg, t, typeof json === 'function' ? json() : json);
    }
    this.cur.set(k, r);
    return r;
  }

  /** Start a new generation: what the previous call did not use is forgotten. */
  sweep(): void {
    this.prev = this.cur;
    this.cur = new Map();
  }
}

function concatBytes(parts: Uint8Array[]): Uint8Array {
  const bytes = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    bytes.set(p, off);
    off += p.length;
  }
  return bytes;
}

function uniquePush(set: Set<string>, v: unknown): void {
  if (typeof v === 'string' && v) set.add(v);
}

/**
 * Encodings of virtual host JSON objects (each as it sits in a RouteConfiguration: field 2,
 * length-delimited) and the clusters it names, by the object: the translator's own virtual
 * hosts are registered as it builds them, so a RouteConfiguration the readiness layer
 * assembles from them (some routes kept old, probe routes added) encodes only the virtual
 * hosts it changed. Virtual host JSON is never mutated once encoded (readiness copies a
 * virtual host it changes).
 */
const vhostParts = new WeakMap<JsonObject, Pick<VhostEncoding, 'part' | 'clusters'>>();

function vhostPart(
  reg: ProtoRegistry,
  vh: JsonObject,
  rcName: string,
): Pick<VhostEncoding, 'part' | 'clusters'> {
  let v = vhostParts.get(vh);
  if (v) return v;
  const body = reg.encode(
    'envoy.config.route.v3.VirtualHost',
    vh,
    `RDS ${rcName} virtual host ${String(vh.name)}`,
  );
  const w = protobuf.Writer.create();
  w.uint32((2 << 3) | 2).bytes(body);
  v = { part: w.finish(), clusters: findDeps(TypeUrl.Route, { virtual_hosts: [vh] }).clusters };
  vhostParts.set(vh, v);
  return v;
}

/**
 * A RouteConfiguration resource from its proto3 JSON, like makeResource (the same bytes,
 * hash and deps), encoding only the virtual hosts not encoded before (see vhostParts).
 */
export function routeConfigurationFromJson(reg: ProtoRegistry, json: JsonObject): Resource {
  const RC = 'envoy.config.route.v3.RouteConfiguration';
  const { virtual_hosts: vhs, name, ...rest } = json;
  if (
    typeof name !== 'string' ||
    !Array.isArray(vhs) ||
    Object.keys(rest).some((k) => !RC_TAIL_FIELDS.has(k))
  )
    return makeResource(reg, TypeUrl.Route, json);
  const parts: Uint8Array[] = [reg.encode(RC, { name })];
  const clusters = new Set<string>();
  for (const vh of vhs as JsonObject[]) {
    const v = vhostPart(reg, vh, name);
    parts.push(v.part);
    for (const c of v.clusters) clusters.add(c);
  }
  parts.push(reg.encode(RC, rest, `RDS ${name}`));
  const bytes = concatBytes(parts);
  return {
    typeUrl: TypeUrl.Route,
    name,
    bytes,
    hash: hashBytes(TypeUrl.Route, '\0', bytes),
    deps: { clusters: [...clusters], endpoints: [], routes: [], secrets: [] },
    json,
  };
}

/** RouteConfiguration fields numbered after virtual_hosts (2) that the translator sets. */
const RC_TAIL_FIELDS = new Set(['validate_clusters', 'ignore_port_in_host_matching']);

/**
 * A RouteConfiguration assembled from per-route encodings. Fields are written in field
 * number order, as protobufjs writes them, so the bytes (and so the version) equal those
 * of encoding the whole message at once (test/gatewayapi/envoycache.test.ts checks this).
 */
export function routeConfigurationResource(reg: ProtoRegistry, t: IRRouteTable, cache: EnvoyCache): Resource {
  const RC = 'envoy.config.route.v3.RouteConfiguration';
  const head = reg.encode(RC, { name: t.name });
  const parts: Uint8Array[] = [head];
  const vhJson: JsonObject[] = [];
  const clusters = new Set<string>();
  for (const vh of t.virtualHosts) {
    // an unchanged virtual host (the same sorted route list) is not assembled again
    const memo = cache.vhost(vh.routes, vh.name);
    if (memo) {
      parts.push(memo.part);
      vhJson.push(memo.json);
      for (const c of memo.clusters) clusters.add(c);
      continue;
    }
    const vhClusters = new Set<string>();
    const vw = protobuf.Writer.create();
    const routes: JsonObject[] = [];
    for (const r of vh.routes) {
      const e = cache.route(reg, r);
      vw.uint32((3 << 3) | 2).bytes(e.bytes);
      routes.push(e.json);
      const ra = e.json.route as JsonObject | undefined;
      if (ra) {
        uniquePush(vhClusters, ra.cluster);
        const wc = ra.weighted_clusters as { clusters?: { name?: string }[] } | undefined;
        for (const c of wc?.clusters ?? []) uniquePush(vhClusters, c.name);
        for (const m of (ra.request_mirror_policies as { cluster?: string }[] | undefined) ?? [])
          uniquePush(vhClusters, m.cluster);
      }
    }
    const vhHead = reg.encode('envoy.config.route.v3.VirtualHost', { name: vh.name, domains: vh.domains });
    const body = vw.finish();
    const vhBytes = new Uint8Array(vhHead.length + body.length);
    vhBytes.set(vhHead, 0);
    vhBytes.set(body, vhHead.length);
    const ow = protobuf.Writer.create();
    ow.uint32((2 << 3) | 2).bytes(vhBytes);
    const part = ow.finish();
    const vj: JsonObject = { name: vh.name, domains: vh.domains, routes };
    parts.push(part);
    vhJson.push(vj);
    for (const c of vhClusters) clusters.add(c);
    const enc: VhostEncoding = { part, json: vj, clusters: [...vhClusters] };
    vhostParts.set(vj, enc);
    cache.setVhost(vh.routes, vh.name, enc);
  }
  const json = envoyRouteConfiguration({ ...t, virtualHosts: [] });
  json.virtual_hosts = vhJson;
  const tail = reg.encode(RC, {
    validate_clusters: json.validate_clusters,
    ignore_port_in_host_matching: json.ignore_port_in_host_matching,
  });
  parts.push(tail);
  const bytes = concatBytes(parts);
  const deps: Deps = { clusters: [...clusters], endpoints: [], routes: [], secrets: [] };
  return {
    typeUrl: TypeUrl.Route,
    name: t.name,
    bytes,
    hash: hashBytes(TypeUrl.Route, '\0', bytes),
    deps,
    json,
  };
}

/** Like gatewayResources, but reusing the cache's encodings. */
export function gatewayResourcesCached(
  reg: ProtoRegistry,
  gw: IRGateway,
  j: GatewayJson,
  cache: EnvoyCache,
): Resource[] {
  const tables = gw.ports.flatMap((p) => p.tables);
  return [
    ...j.listeners.map((x) => cache.resource(reg, TypeUrl.Listener, x)),
    ...tables.map((t) => routeConfigurationResource(reg, t, cache)),
    // clusters and endpoints keyed by their IR content, JSON built only when it changed
    ...gw.clusters.map((c) =>
      cache.resource(reg, TypeUrl.Cluster, () => envoyCluster(c), `${c.name}\0${c.protocol}`),
    ),
    ...gw.clusters.map((c) => cache.loadAssignment(reg, c)),
    ...j.secrets.map((x) => cache.resource(reg, TypeUrl.Secret, x)),
  ];
}

/** The Envoy resources of one Gateway as proto3 JSON, by type, in name order. */
export interface GatewayJson {
  group: string;
  listeners: JsonObject[];
  routes: JsonObject[];
  clusters: JsonObject[];
  endpoints: JsonObject[];
  secrets: JsonObject[];
}

export function gatewayJson(
  gw: IRGateway,
  o: EnvoyOptions = {},
  withRoutes = true,
  withClusters = true,
): GatewayJson {
  const bind = gw.address ?? o.bindAddress ?? '0.0.0.0';
  return {
    group: gw.group,
    listeners: gw.ports.map((p) => envoyListener(p, bind)),
    routes: withRoutes ? gw.ports.flatMap((p) => p.tables.map((t) => envoyRouteConfiguration(t))) : [],
    clusters: withClusters ? gw.clusters.map(envoyCluster) : [],
    endpoints: withClusters ? gw.clusters.map(envoyLoadAssignment) : [],
    secrets: gw.secrets.map(envoySecret),
  };
}

export function gatewayResources(reg: ProtoRegistry, j: GatewayJson): Resource[] {
  return [
    ...j.listeners.map((x) => makeResource(reg, TypeUrl.Listener, x)),
    ...j.routes.map((x) => makeResource(reg, TypeUrl.Route, x)),
    ...j.clusters.map((x) => makeResource(reg, TypeUrl.Cluster, x)),
    ...j.endpoints.map((x) => makeResource(reg, TypeUrl.Endpoint, x)),
    ...j.secrets.map((x) => makeResource(reg, TypeUrl.Secret, x)),
  ];
}

export interface SnapshotsResult {
  /** one Snapshot per Gateway that encoded, keyed by node group */
  snapshots: Map<string, Snapshot>;
  /** groups whose resources could not be encoded (no Snapshot for them), with why */
  failures: Map<string, Error>;
}

/**
 * One Snapshot per Gateway of the IR, each built on its own: a Gateway whose resources
 * the encoder rejects (or whose Snapshot cannot be assembled) is returned in `failures`
 * and does not stop the others.
 */
export function buildSnapshots(reg: ProtoRegistry, ir: IR, o: EnvoyOptions = {}): SnapshotsResult {
  const out = new Map<string, Snapshot>();
  const failures = new Map<string, Error>();
  const cache = o.cache;
  for (const gw of ir.gateways) {
    try {
      // without a cache: a fresh one, so route configurations are still assembled per route
      const res = gatewayResourcesCached(
        reg,
        gw,
        gatewayJson(gw, o, false, false),
        cache ?? new EnvoyCache(),
      );
      out.set(gw.group, new Snapshot(res));
    } catch (err) {
      failures.set(gw.group, err instanceof Error ? err : new Error(String(err)));
    }
  }
  cache?.sweep();
  return { snapshots: out, failures };
}

/** One Snapshot per Gateway of the IR, keyed by node group; throws the first group's failure. */
export function snapshots(reg: ProtoRegistry, ir: IR, o: EnvoyOptions = {}): Map<string, Snapshot> {
  const r = buildSnapshots(reg, ir, o);
  for (const [g, err] of r.failures) throw new Error(`Gateway ${g}: ${err.message}`, { cause: err });
  return r.snapshots;
}

/** Publish the snapshots; groups no longer present are cleared. */
export function publish(
  cache: SnapshotCache,
  snaps: Map<string, Snapshot>,
  previousGroups: Iterable<string> = [],
): void {
  for (const [g, s] of snaps) cache.setSnapshot(g, s);
  for (const g of previousGroups) if (!snaps.has(g)) cache.clearSnapshot(g);
}
