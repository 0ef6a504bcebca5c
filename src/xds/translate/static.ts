/**
 * Render translated Gateways as one static Envoy bootstrap (for `envoy --mode validate`):
 * RDS route configs inlined into their HCMs, EDS clusters made STATIC with their
 * ClusterLoadAssignment as load_assignment, SDS secrets made static secrets. Listener
 * names are prefixed with the node group so several Gateways fit in one bootstrap.
 */
import type { Json, JsonObject } from '../proto.js';
import type { GatewayJson } from './index.js';

function clone<T extends Json>(j: T): T {
  return JSON.parse(JSON.stringify(j)) as T;
}

function walk(j: Json, fn: (o: JsonObject) => void): void {
  if (Array.isArray(j)) for (const e of j) walk(e, fn);
  else if (j && typeof j === 'object') {
    fn(j);
    for (const v of Object.values(j)) walk(v, fn);
  }
}

export function staticBootstrap(gateways: GatewayJson[], adminPort?: number): JsonObject {
  const listeners: JsonObject[] = [];
  const clusters = new Map<string, JsonObject>();
  const secrets = new Map<string, JsonObject>();
  for (const g of gateways) {
    const routes = new Map(g.routes.map((r) => [r.name as string, r]));
    const cla = new Map(g.endpoints.map((e) => [e.cluster_name as string, e]));
    for (const l0 of g.listeners) {
      const l = clone(l0);
      l.name = `${g.group}/${String(l.name)}`;
      walk(l, (o) => {
        const rds = o.rds as JsonObject | undefined;
        if (rds && typeof rds.route_config_name === 'string') {
          delete o.rds;
          const rc = routes.get(rds.route_config_name);
          if (!rc)
            throw new Error(`listener ${String(l.name)} names missing route config ${rds.route_config_name}`);
          o.route_config = clone(rc);
        }
        const sds = o.tls_certificate_sds_secret_configs as JsonObject[] | undefined;
        if (Array.isArray(sds)) o.tls_certificate_sds_secret_configs = sds.map((s) => ({ name: s.name }));
      });
      listeners.push(l);
    }
    for (const c0 of g.clusters) {
      const c = clone(c0);
      delete c.eds_cluster_config;
      c.type = 'STATIC';
      c.load_assignment = clone(cla.get(c.name as string) ?? { cluster_name: c.name });
      clusters.set(c.name as string, c);
    }
    for (const s of g.secrets) secrets.set(s.name as string, clone(s));
  }
  const out: JsonObject = {
    node: { id: 'signalbox-validate', cluster: 'signalbox-validate' },
    static_resources: {
      listeners,
      clusters: [...clusters.values()],
      secrets: [...secrets.values()],
    },
  };
  if (adminPort !== undefined)
    out.admin = { address: { socket_address: { address: '127.0.0.1', port_value: adminPort } } };
  return out;
}
