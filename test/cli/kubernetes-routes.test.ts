/**
 * GET /debug/routes in Kubernetes mode (what `signalbox routes` and `signalbox wait` read),
 * against a fake API server: the route's generation from the informer's object, its
 * parents' conditions as signalbox writes them, Ready included (no Envoy: NoDataPlane).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { Server, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startApp } from '../../src/app.js';
import type { App } from '../../src/app.js';
import type { RoutesDocument } from '../../src/debug/routes.js';
import { silentLogger } from '../../src/log.js';
import { DEFAULT_CONTROLLER_NAME } from '../../src/provider/pipeline.js';
import { waitVerdict } from '../../src/cli/routes.js';

const G = 'gateway.networking.k8s.io/v1';
const meta = (name: string, generation: number, ns: string | undefined = 'default') => ({
  ...(ns ? { namespace: ns } : {}),
  name,
  uid: `uid-${name}`,
  resourceVersion: '5',
  generation,
  creationTimestamp: '2026-01-01T00:00:00Z',
});

const ITEMS: Record<string, unknown[]> = {
  '/apis/gateway.networking.k8s.io/v1/gatewayclasses': [
    {
      apiVersion: G,
      kind: 'GatewayClass',
      metadata: meta('sb', 1, undefined),
      spec: { controllerName: DEFAULT_CONTROLLER_NAME },
    },
  ],
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

const LIST_KIND: Record<string, string> = {
  '/api/v1/services': 'ServiceList',
  '/api/v1/secrets': 'SecretList',
  '/api/v1/namespaces': 'NamespaceList',
  '/apis/discovery.k8s.io/v1/endpointslices': 'EndpointSliceList',
};

let server: Server;
let dir: string;
let app: App | undefined;
const watches = new Set<ServerResponse>();

beforeAll(async () => {
  server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    req.resume();
    const send = (code: number, body: unknown) => {
      res.writeHead(code, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.method === 'PATCH')
      return send(200, { apiVersion: G, kind: 'HTTPRoute', metadata: { resourceVersion: '9' } });
    if (url.searchParams.get('watch') === 'true') {
      res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
      res.flushHeaders();
      watches.add(res);
      res.on('close', () => watches.delete(res));
      return;
    }
    // the shape of a real list: typed core lists, the group's apiVersion
    send(200, {
      apiVersion: url.pathname.startsWith('/apis/') ? url.pathname.split('/').slice(2, 4).join('/') : 'v1',
      kind: LIST_KIND[url.pathname] ?? 'List',
      metadata: { resourceVersion: '10' },
      items: ITEMS[url.pathname] ?? [],
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  dir = mkdtempSync(join(tmpdir(), 'sb-cli-k8s-'));
  const kubeconfig = join(dir, 'kubeconfig');
  writeFileSync(
    kubeconfig,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [
        { name: 'c', cluster: { server: `http://127.0.0.1:${port}`, 'insecure-skip-tls-verify': true } },
      ],
      users: [{ name: 'u', user: {} }],
      contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }],
      'current-context': 'x',
    }),
  );
  app = await startApp({
    log: silentLogger(),
    xdsAddress: '127.0.0.1:0',
    debugAddress: '127.0.0.1:0',
    kubeconfig,
  });
});

afterAll(async () => {
  for (const w of watches) w.end();
  await app?.close();
  server?.closeAllConnections();
  await new Promise((r) => server?.close(r));
  rmSync(dir, { recursive: true, force: true });
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
