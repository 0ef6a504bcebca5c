/** The GatewayClass + Gateway pair most tests and benchmarks start from. */
import { DEFAULT_CONTROLLER } from '../../src/gatewayapi/index.js';

export const GATEWAY_API = 'gateway.networking.k8s.io/v1';

export function gatewayClass(name = 'sb', controllerName = DEFAULT_CONTROLLER): Record<string, unknown> {
  return { apiVersion: GATEWAY_API, kind: 'GatewayClass', metadata: { name }, spec: { controllerName } };
}

/** Gateway `default/gw` (by default) of class `sb` with these listeners. */
export function gateway(
  listeners: unknown[],
  o: { namespace?: string; name?: string; className?: string; generation?: number } = {},
): Record<string, unknown> {
  return {
    apiVersion: GATEWAY_API,
    kind: 'Gateway',
    metadata: {
      namespace: o.namespace ?? 'default',
      name: o.name ?? 'gw',
      ...(o.generation !== undefined ? { generation: o.generation } : {}),
    },
    spec: { gatewayClassName: o.className ?? 'sb', listeners },
  };
}

/** A Service with one port 80 (`http`) and its EndpointSlice (ready endpoints, target port of the first). */
export function service(
  name: string,
  endpoints: { host: string; port: number }[],
  namespace = 'default',
): Record<string, unknown>[] {
  return [
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { namespace, name },
      spec: { ports: [{ name: 'http', port: 80 }] },
    },
    {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { namespace, name: `${name}-1`, labels: { 'kubernetes.io/service-name': name } },
      addressType: 'IPv4',
      ports: [{ name: 'http', port: endpoints[0]?.port ?? 80 }],
      endpoints: endpoints.map((e) => ({ addresses: [e.host], conditions: { ready: true } })),
    },
  ];
}

/** HTTPRoute `name` on Gateway `gw`: one rule, PathPrefix `path` → Service `backend` port 80. */
export function httpRoute(name: string, path: string, backend: string, gw = 'gw'): Record<string, unknown> {
  return {
    apiVersion: GATEWAY_API,
    kind: 'HTTPRoute',
    metadata: { name },
    spec: {
      parentRefs: [{ name: gw }],
      rules: [
        {
          matches: [{ path: { type: 'PathPrefix', value: path } }],
          backendRefs: [{ name: backend, port: 80 }],
        },
      ],
    },
  };
}
