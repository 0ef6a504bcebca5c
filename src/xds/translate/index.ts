/**
 * IR → Envoy resources → one Snapshot per Gateway (node group `<namespace>/<name>`).
 * Names are deterministic: Listener `listener-<port>`, RouteConfiguration `route-<port>`
 * (HTTPS: `route-<port>-<listener>`), Cluster and ClusterLoadAssignment
 * `<ns>/<service>/<port>`, Secret `<ns>/<secret>`, route entries
 * `<kind>/<ns>/<name>/rule/<i>/match/<j>`.
 */
import type { IR, IRGateway } from '../../gatewayapi/ir.js';
import type { JsonObject, ProtoRegistry } from '../proto.js';
import { TypeUrl, makeResource } from '../resource.js';
import type { Resource } from '../resource.js';
import { Snapshot } from '../cache/snapshot.js';
import type { SnapshotCache } from '../cache/cache.js';
import { envoyCluster, envoyLoadAssignment, envoySecret } from './cluster.js';
import { envoyListener } from './listener.js';
import { envoyRouteConfiguration } from './route.js';

export interface EnvoyOptions {
  /** address Envoy listeners bind: 0.0.0.0 in production, 127.0.0.1 in tests */
  bindAddress?: string;
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

export function gatewayJson(gw: IRGateway, o: EnvoyOptions = {}): GatewayJson {
  const bind = o.bindAddress ?? '0.0.0.0';
  return {
    group: gw.group,
    listeners: gw.ports.map((p) => envoyListener(p, bind)),
    routes: gw.ports.flatMap((p) => p.tables.map((t) => envoyRouteConfiguration(t))),
    clusters: gw.clusters.map(envoyCluster),
    endpoints: gw.clusters.map(envoyLoadAssignment),
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

/** One Snapshot per Gateway of the IR, keyed by node group. */
export function snapshots(reg: ProtoRegistry, ir: IR, o: EnvoyOptions = {}): Map<string, Snapshot> {
  const out = new Map<string, Snapshot>();
  for (const gw of ir.gateways) out.set(gw.group, new Snapshot(gatewayResources(reg, gatewayJson(gw, o))));
  return out;
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
