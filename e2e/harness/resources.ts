/** Small Envoy resource builders for tests (the translator has its own). */
import type { JsonObject } from '../../src/xds/proto.js';
import { protoRegistry } from '../../src/xds/proto.js';
import { TypeUrl, makeResource } from '../../src/xds/resource.js';
import type { Resource } from '../../src/xds/resource.js';
import { Snapshot } from '../../src/xds/cache/snapshot.js';

export function listener(name: string, port: number, routeName: string): JsonObject {
  return {
    name,
    address: { socket_address: { address: '127.0.0.1', port_value: port } },
    filter_chains: [
      {
        filters: [
          {
            name: 'envoy.filters.network.http_connection_manager',
            typed_config: {
              '@type':
                'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
              stat_prefix: name,
              rds: { route_config_name: routeName, config_source: { ads: {}, resource_api_version: 'V3' } },
              http_filters: [
                {
                  name: 'envoy.filters.http.router',
                  typed_config: {
                    '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router',
                  },
                },
              ],
            },
          },
        ],
      },
    ],
  };
}

export function route(name: string, cluster: string, extra: JsonObject = {}): JsonObject {
  return {
    name,
    virtual_hosts: [
      { name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster, ...extra } }] },
    ],
  };
}

export function cluster(name: string, extra: JsonObject = {}): JsonObject {
  return {
    name,
    type: 'EDS',
    connect_timeout: '1s',
    eds_cluster_config: { eds_config: { ads: {}, resource_api_version: 'V3' } },
    ...extra,
  };
}

export function cla(name: string, endpoints: { host: string; port: number }[]): JsonObject {
  return {
    cluster_name: name,
    endpoints: [
      {
        lb_endpoints: endpoints.map((e) => ({
          endpoint: { address: { socket_address: { address: e.host, port_value: e.port } } },
        })),
      },
    ],
  };
}

export function res(t: TypeUrl, json: JsonObject): Resource {
  return makeResource(protoRegistry(), t, json);
}

/** A snapshot with one listener → one route → one cluster per backend, route pointing at `active`. */
export function simpleSnapshot(opts: {
  listenerPort: number;
  backends: { name: string; host: string; port: number }[];
  active: string;
  routeExtra?: JsonObject;
}): Snapshot {
  const r: Resource[] = [
    res(TypeUrl.Listener, listener('http', opts.listenerPort, 'main')),
    res(TypeUrl.Route, route('main', opts.active, opts.routeExtra)),
  ];
  for (const b of opts.backends) {
    r.push(res(TypeUrl.Cluster, cluster(b.name)));
    r.push(res(TypeUrl.Endpoint, cla(b.name, [{ host: b.host, port: b.port }])));
  }
  return new Snapshot(r);
}

/** A regex_rewrite Envoy's RE2 refuses: a route configuration carrying it is NACKed. */
export const REJECTED_REGEX_REWRITE = { pattern: { regex: '((' }, substitution: '/x' };

/**
 * `snap` with each route configuration replaced: `edit` gets a copy of its JSON and changes
 * it in place or returns the JSON to use; the other resources stay as they are.
 */
export function withRoutes(snap: Snapshot, edit: (json: JsonObject) => JsonObject | void): Snapshot {
  return new Snapshot([
    ...[...snap.get(TypeUrl.Route).values()].map((rc) => {
      const j = structuredClone(rc.json);
      return res(TypeUrl.Route, edit(j) ?? j);
    }),
    ...[...snap.resources.entries()].filter(([t]) => t !== TypeUrl.Route).flatMap(([, m]) => [...m.values()]),
  ]);
}
