/**
 * GET /debug/routes in Kubernetes mode (what `signalbox routes` and `signalbox wait` read),
 * against a fake API server: the route's generation from the informer's object, its
 * parents' conditions as signalbox writes them, Ready included (no Envoy: NoDataPlane).
 */
import { startApp } from '../../src/app.js';
import type { App } from '../../src/app.js';
import type { RoutesDocument } from '../../src/debug/routes.js';
import { silentLogger } from '../../src/log.js';
import { waitVerdict } from '../../src/cli/routes.js';
import { G, gatewayClassItem, objectMeta, startFakeKube } from '../harness/fake-kube.js';
import type { FakeKube } from '../harness/fake-kube.js';

const meta = (name: string, generation: number, ns: string | undefined = 'default') =>
  objectMeta(name, { generation, resourceVersion: '5', namespace: ns });

const ITEMS: Record<string, unknown[]> = {
  '/apis/gateway.networking.k8s.io/v1/gatewayclasses': [gatewayClassItem(meta('sb', 1, undefined))],
  '/apis/gateway.networking.k8s.io/v1/gateways': [
    {
      apiVersion: G,
      kind: 'Gateway',
      metadata: meta('gw', 1),
      spec: { gatewayClassName: 'sb', listeners: [{ name: 'http', protocol: 'HTTP', port: 8080 }] },
    },
  ],
  '/apis/gateway.networking.k8s.io/v1/httproutes': [
    {
      apiVersion: G,
      kind: 'HTTPRoute',
      metadata: meta('web', 4),
      spec: {
        parentRefs: [{ name: 'gw' }],
        rules: [{ matches: [{ path: { type: 'PathPrefix', value: '/' } }], backendRefs: [] }],
      },
    },
  ],
};

let kube: FakeKube;
let app: App | undefined;

beforeAll(async () => {
  kube = await startFakeKube({
    items: ITEMS,
    patched: { apiVersion: G, kind: 'HTTPRoute', metadata: { resourceVersion: '9' } },
    tmpPrefix: 'sb-cli-k8s-',
  });
  const kubeconfig = kube.kubeconfig;
  app = await startApp({
    log: silentLogger(),
    xdsAddress: '127.0.0.1:0',
    debugAddress: '127.0.0.1:0',
    kubeconfig,
  });
});

afterAll(async () => {
  await app?.close();
  await kube?.close();
});

test('the route, its generation, its parent’s conditions and readiness; wait’s verdict names why it is not Ready', async () => {
  const get = async () =>
    (await (await fetch(`http://127.0.0.1:${app!.debugPort}/debug/routes`)).json()) as RoutesDocument;
  const end = Date.now() + 20_000;
  let doc = await get();
  // Proving at first, then NoDataPlane: no Envoy of the Gateway is connected
  const settled = (d: RoutesDocument) =>
    d.routes[0]?.parents[0]?.conditions.some((c) => c.type === 'Ready' && c.reason !== 'Proving');
  while (!settled(doc) && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 20));
    doc = await get();
  }
  expect(doc.readiness).toBe('proved');
  expect(doc.routes).toHaveLength(1);
  const r = doc.routes[0];
  expect(r).toMatchObject({ kind: 'HTTPRoute', namespace: 'default', name: 'web', generation: 4 });
  expect(r.parents[0].gateway).toBe('default/gw');
  const ready = r.parents[0].conditions.find((c) => c.type === 'Ready')!;
  expect(ready).toMatchObject({ status: 'False', reason: 'NoDataPlane', observedGeneration: 4 });
  expect(r.parents[0].conditions.find((c) => c.type === 'Accepted')?.status).toBe('True');
  expect(waitVerdict(doc, { namespace: 'default', name: 'web' })).toMatchObject({
    ready: false,
    reason: 'NoDataPlane',
  });
});
