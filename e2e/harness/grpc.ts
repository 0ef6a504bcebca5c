/**
 * gRPC pieces for tests with proxyless gRPC clients (@grpc/grpc-js-xds): a tiny echo
 * service on 127.0.0.x, and the xDS resources a gRPC client asks for — an API listener
 * (Listener.api_listener holding an HttpConnectionManager), its RouteConfiguration, an EDS
 * cluster and a ClusterLoadAssignment with a locality (gRPC requires one).
 */
import * as grpc from '@grpc/grpc-js';
import type { JsonObject } from '../../src/xds/proto.js';
import { TypeUrl } from '../../src/xds/resource.js';
import type { Resource } from '../../src/xds/resource.js';
import { cluster, res } from './resources.js';

export const ECHO_PATH = '/signalbox.test.Echo/Say';

const raw = {
  serialize: (b: Buffer) => b,
  deserialize: (b: Buffer) => b,
};

/** A generic (no .proto) unary service: replies "<name>: <request bytes as text>". */
export const echoService: grpc.ServiceDefinition = {
  Say: {
    path: ECHO_PATH,
    requestStream: false,
    responseStream: false,
    requestSerialize: raw.serialize,
    requestDeserialize: raw.deserialize,
    responseSerialize: raw.serialize,
    responseDeserialize: raw.deserialize,
  },
};

export interface EchoServer {
  name: string;
  host: string;
  port: number;
  calls: number;
  close(): Promise<void>;
}

export function startEchoServer(name: string, host = '127.0.0.3'): Promise<EchoServer> {
  const server = new grpc.Server();
  const e: EchoServer = {
    name,
    host,
    port: 0,
    calls: 0,
    close: () => new Promise<void>((r) => server.tryShutdown(() => r())),
  };
  server.addService(echoService, {
    Say: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
      e.calls++;
      cb(null, Buffer.from(`${name}: ${call.request.toString()}`));
    },
  });
  return new Promise((resolve, reject) => {
    server.bindAsync(`${host}:0`, grpc.ServerCredentials.createInsecure(), (err, port) => {
      if (err) return reject(err);
      e.port = port;
      resolve(e);
    });
  });
}

/** One unary call of the echo service on a channel (e.g. target "xds:///echo"). */
export function say(client: grpc.Client, text: string, deadlineMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(
      ECHO_PATH,
      raw.serialize,
      raw.deserialize,
      Buffer.from(text),
      { deadline: Date.now() + deadlineMs },
      (err, value) => (err ? reject(err) : resolve((value as Buffer).toString())),
    );
  });
}

const ROUTER: JsonObject = {
  name: 'envoy.filters.http.router',
  typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' },
};

/** An API listener (what gRPC's xds resolver asks for by its target's name), RDS over ADS. */
export function apiListener(name: string, routeName: string): JsonObject {
  return {
    name,
    api_listener: {
      api_listener: {
        '@type':
          'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
        stat_prefix: name,
        rds: { route_config_name: routeName, config_source: { ads: {}, resource_api_version: 'V3' } },
        http_filters: [ROUTER],
      },
    },
  };
}

export function grpcRoute(name: string, domain: string, clusterName: string): JsonObject {
  return {
    name,
    virtual_hosts: [
      {
        name: domain,
        domains: [domain],
        routes: [{ match: { prefix: '' }, route: { cluster: clusterName } }],
      },
    ],
  };
}

/** A ClusterLoadAssignment with a locality, as gRPC requires. */
export function localityCla(name: string, endpoints: { host: string; port: number }[]): JsonObject {
  return {
    cluster_name: name,
    endpoints: [
      {
        locality: { region: 'local', zone: 'local-a' },
        load_balancing_weight: 1,
        lb_endpoints: endpoints.map((e) => ({
          endpoint: { address: { socket_address: { address: e.host, port_value: e.port } } },
        })),
      },
    ],
  };
}

/** The four resources a gRPC client needs to call `target` (xds:///target) at the backends. */
export function grpcResources(target: string, backends: { host: string; port: number }[]): Resource[] {
  return [
    res(TypeUrl.Listener, apiListener(target, `${target}-route`)),
    res(TypeUrl.Route, grpcRoute(`${target}-route`, target, `${target}-cluster`)),
    res(TypeUrl.Cluster, cluster(`${target}-cluster`, { lb_policy: 'ROUND_ROBIN' })),
    res(TypeUrl.Endpoint, localityCla(`${target}-cluster`, backends)),
  ];
}
