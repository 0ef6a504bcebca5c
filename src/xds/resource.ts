/**
 * xDS resources as signalbox holds them: encoded once when they change, with a content
 * hash that is their version, and the names of the resources they reference (so the
 * server can order pushes make-before-break).
 */
import { createHash } from 'node:crypto';
import type { Json, JsonObject, ProtoRegistry } from './proto.js';

export const TypeUrl = {
  Cluster: 'type.googleapis.com/envoy.config.cluster.v3.Cluster',
  Endpoint: 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment',
  Listener: 'type.googleapis.com/envoy.config.listener.v3.Listener',
  Route: 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration',
  Secret: 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret',
} as const;
export type TypeUrl = (typeof TypeUrl)[keyof typeof TypeUrl];

export const ALL_TYPES: readonly TypeUrl[] = [
  TypeUrl.Secret,
  TypeUrl.Cluster,
  TypeUrl.Endpoint,
  TypeUrl.Listener,
  TypeUrl.Route,
];

/** Short names used in logs, metrics and the debug endpoint. */
export const SHORT: Record<TypeUrl, string> = {
  [TypeUrl.Cluster]: 'CDS',
  [TypeUrl.Endpoint]: 'EDS',
  [TypeUrl.Listener]: 'LDS',
  [TypeUrl.Route]: 'RDS',
  [TypeUrl.Secret]: 'SDS',
};

export function isKnownType(url: string): url is TypeUrl {
  return Object.prototype.hasOwnProperty.call(SHORT, url);
}

export function shortType(url: string): string {
  return isKnownType(url) ? SHORT[url] : url;
}

/** Types Envoy subscribes to by wildcard (xds-rules 7). */
export const WILDCARD_TYPES: ReadonlySet<string> = new Set([TypeUrl.Listener, TypeUrl.Cluster]);

export interface Deps {
  clusters: string[];
  endpoints: string[];
  routes: string[];
  secrets: string[];
}

export interface Resource {
  readonly typeUrl: TypeUrl;
  readonly name: string;
  /** Encoded resource message (not wrapped in Any). */
  readonly bytes: Uint8Array;
  /** Content hash: the resource's version. */
  readonly hash: string;
  readonly deps: Deps;
  /** The proto3 JSON it was built from (for debug output and golden files). */
  readonly json: JsonObject;
}

const PROTO_NAME: Record<TypeUrl, string> = {
  [TypeUrl.Cluster]: 'envoy.config.cluster.v3.Cluster',
  [TypeUrl.Endpoint]: 'envoy.config.endpoint.v3.ClusterLoadAssignment',
  [TypeUrl.Listener]: 'envoy.config.listener.v3.Listener',
  [TypeUrl.Route]: 'envoy.config.route.v3.RouteConfiguration',
  [TypeUrl.Secret]: 'envoy.extensions.transport_sockets.tls.v3.Secret',
};

export function protoName(t: TypeUrl): string {
  return PROTO_NAME[t];
}

export function hashBytes(...parts: (Uint8Array | string)[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex').slice(0, 16);
}

/** The name a resource of this type carries (ClusterLoadAssignment calls it cluster_name). */
export function resourceName(t: TypeUrl, json: JsonObject): string {
  const n = t === TypeUrl.Endpoint ? (json.cluster_name ?? json.clusterName) : json.name;
  if (typeof n !== 'string' || n === '') throw new Error(`${SHORT[t]} resource without a name`);
  return n;
}

function walk(j: Json, visit: (key: string, value: Json) => void): void {
  if (Array.isArray(j)) {
    for (const e of j) walk(e, visit);
  } else if (j && typeof j === 'object') {
    for (const [k, v] of Object.entries(j)) {
      visit(k, v);
      walk(v, visit);
    }
  }
}

/** Names this resource references, found by walking its JSON. */
export function findDeps(t: TypeUrl, json: JsonObject): Deps {
  // Sets, not list.includes: a route table can name tens of thousands of clusters
  const clusters = new Set<string>();
  const endpoints = new Set<string>();
  const routes = new Set<string>();
  const secrets = new Set<string>();
  const add = (set: Set<string>, v: Json | undefined) => {
    if (typeof v === 'string' && v) set.add(v);
  };
  if (t === TypeUrl.Cluster) {
    const eds = (json.eds_cluster_config ?? json.edsClusterConfig) as JsonObject | undefined;
    if (eds) add(endpoints, (eds.service_name ?? eds.serviceName ?? json.name) as Json);
  }
  walk(json, (k, v) => {
    switch (k) {
      case 'route_config_name':
      case 'routeConfigName':
        add(routes, v);
        break;
      case 'cluster':
        if (t === TypeUrl.Route) add(clusters, v);
        break;
      case 'clusters':
        if (t === TypeUrl.Route && Array.isArray(v))
          for (const c of v) add(clusters, (c as JsonObject)?.name);
        break;
      case 'tls_certificate_sds_secret_configs':
      case 'tlsCertificateSdsSecretConfigs':
        if (Array.isArray(v)) for (const c of v) add(secrets, (c as JsonObject)?.name);
        break;
      case 'validation_context_sds_secret_config':
      case 'validationContextSdsSecretConfig':
        add(secrets, (v as JsonObject)?.name);
        break;
    }
  });
  return { clusters: [...clusters], endpoints: [...endpoints], routes: [...routes], secrets: [...secrets] };
}

/** Build a resource from its proto3 JSON: validate and encode it once. */
export function makeResource(reg: ProtoRegistry, t: TypeUrl, json: JsonObject): Resource {
  const name = resourceName(t, json);
  const bytes = reg.encode(PROTO_NAME[t], json, `${SHORT[t]} ${name}`);
  return { typeUrl: t, name, bytes, hash: hashBytes(t, '\0', bytes), deps: findDeps(t, json), json };
}

/** Deterministic version of a set of resources: hash of sorted (name, hash). */
export function versionOf(resources: Iterable<Resource>): string {
  return versionOfEntries([...resources].map((r) => [r.name, r.hash]));
}

/** The same version, from (name, hash) pairs: what a delta client holds has a version too. */
export function versionOfEntries(entries: Iterable<[string, string]>): string {
  const parts = [...entries].map(([name, hash]) => `${name}\0${hash}`);
  // most callers hand them in name order already (a Snapshot keeps its maps sorted; name
  // order is the order of the joined strings, '\0' sorting first): no sort then
  let sorted = true;
  for (let i = 1; i < parts.length && sorted; i++) sorted = parts[i - 1] <= parts[i];
  if (!sorted) parts.sort();
  return hashBytes(parts.join('\n'));
}
