/** Objects the Kubernetes-mode benchmarks create through the API (shared by k8s.ts and readiness-scale.ts). */
import type { CustomObjectsApi } from '@kubernetes/client-node';
import { gateway, gatewayClass } from '../e2e/harness/gateway-objects.js';

export const GROUP_API = 'gateway.networking.k8s.io';

/** The GatewayClass of e2e/harness/gateway-objects.ts and Gateway `<namespace>/<name>`, HTTP on `port`. */
export async function createGatewayClassAndGateway(
  custom: CustomObjectsApi,
  o: { namespace: string; name: string; port: number },
): Promise<void> {
  await custom.createClusterCustomObject({
    group: GROUP_API,
    version: 'v1',
    plural: 'gatewayclasses',
    body: gatewayClass(),
  });
  await custom.createNamespacedCustomObject({
    group: GROUP_API,
    version: 'v1',
    namespace: o.namespace,
    plural: 'gateways',
    body: gateway([{ name: 'http', protocol: 'HTTP', port: o.port }], { name: o.name }),
  });
}
