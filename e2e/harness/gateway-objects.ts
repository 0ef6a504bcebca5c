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
