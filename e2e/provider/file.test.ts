/**
 * Standalone mode end to end: `signalbox serve --config-dir` semantics (startApp with
 * configDir) feeding a real Envoy. Editing the route file moves traffic, a broken edit
 * changes nothing, deleting the route and then the Gateway withdraw them from Envoy; the
 * status served at /debug/status follows with the right generations.
 */
import { mkdtempSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { startApp } from '../../src/app.js';
import type { App } from '../../src/app.js';
import { silentLogger } from '../../src/log.js';
import { get, startBackend } from '../harness/backend.js';
import type { Backend } from '../harness/backend.js';
import { Envoy, freePort, waitFor } from '../harness/envoy.js';

const G = 'gateway.networking.k8s.io/v1';
const yamlOf = (...docs: unknown[]) => docs.map((d) => stringify(d)).join('---\n');

interface Entry {
  kind: string;
  name: string;
  generation: number;
  status: {
    parents?: { conditions: { type: string; status: string; observedGeneration: number }[] }[];
    conditions?: { type: string; status: string; observedGeneration: number }[];
    listeners?: { attachedRoutes: number }[];
  } | null;
}

describe('standalone folder → Envoy', () => {
  let dir: string;
  let app: App;
  let envoy: Envoy;
  let a: Backend;
  let b: Backend;
  let port: number;

  const service = (name: string, be: Backend) => [
    { apiVersion: 'v1', kind: 'Service', metadata: { name }, spec: { ports: [{ name: 'http', port: 80 }] } },
    {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { name: `${name}-1`, labels: { 'kubernetes.io/service-name': name } },
      addressType: 'IPv4',
      ports: [{ name: 'http', port: be.port }],
      endpoints: [{ addresses: [be.host], conditions: { ready: true } }],
    },
  ];
  const route = (backend: string) => ({
    apiVersion: G,
    kind: 'HTTPRoute',
    metadata: { name: 'web' },
    spec: { parentRefs: [{ name: 'gw' }], rules: [{ backendRefs: [{ name: backend, port: 80 }] }] },
  });
  const replace = (file: string, text: string) => {
    writeFileSync(join(dir, `.${file}.tmp`), text);
    renameSync(join(dir, `.${file}.tmp`), join(dir, file));
  };
  const status = async (): Promise<Entry[]> =>
    (await (await fetch(`http://127.0.0.1:${app.debugPort}/debug/status`)).json()) as Entry[];
  const routeEntry = async () => (await status()).find((e) => e.kind === 'HTTPRoute' && e.name === 'web');
  const through = () => get(`http://127.0.0.1:${port}/hello`);

  beforeAll(async () => {
    a = await startBackend('a', '127.0.0.2');
    b = await startBackend('b', '127.0.0.3');
    port = await freePort();
    dir = mkdtempSync(join(tmpdir(), 'signalbox-e2e-config-'));
    writeFileSync(
      join(dir, 'gateway.yaml'),
      yamlOf(
        {
          apiVersion: G,
          kind: 'GatewayClass',
          metadata: { name: 'sb' },
          spec: { controllerName: 'signalbox.dev/gateway-controller' },
        },
        {
          apiVersion: G,
          kind: 'Gateway',
          metadata: { name: 'gw' },
          spec: { gatewayClassName: 'sb', listeners: [{ name: 'http', protocol: 'HTTP', port }] },
        },
      ),
    );
    writeFileSync(join(dir, 'services.yaml'), yamlOf(...service('svc-a', a), ...service('svc-b', b)));
    writeFileSync(join(dir, 'route.yaml'), yamlOf(route('svc-a')));
    // a second route keeps a cluster in Envoy when `web` is deleted (see the note in the last test)
    writeFileSync(
      join(dir, 'other.yaml'),
      yamlOf({
        apiVersion: G,
        kind: 'HTTPRoute',
        metadata: { name: 'other' },
        spec: {
          parentRefs: [{ name: 'gw' }],
          rules: [{ matches: [{ path: { value: '/other' } }], backendRefs: [{ name: 'svc-a', port: 80 }] }],
        },
      }),
    );
    app = await startApp({
      log: silentLogger(),
      xdsAddress: '127.0.0.1:0',
      debugAddress: '127.0.0.1:0',
      configDir: dir,
      listenerAddress: '127.0.0.1',
    });
    envoy = await Envoy.start({ nodeId: 'envoy-1', group: 'default/gw', xdsPort: app.xdsPort });
  });

  afterAll(async () => {
    await envoy?.stop();
    await app?.close();
    await a?.close();
    await b?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('the route of the folder serves traffic; status Accepted/ResolvedRefs at generation 1, Gateway Programmed', async () => {
    const r = await waitFor('traffic to a', async () => {
      const x = await through();
      return x.backend === 'a' ? x : undefined;
    });
    expect(r.status).toBe(200);
    // Ready once proved through the Envoy (readiness: proved by default)
    const e = await waitFor('route Ready', async () => {
      const x = (await routeEntry())!;
      return x.status?.parents?.[0]?.conditions.some((c) => c.type === 'Ready' && c.status === 'True')
        ? x
        : undefined;
    });
    expect(e.generation).toBe(1);
    expect(e.status!.parents![0].conditions.map((c) => [c.type, c.status, c.observedGeneration])).toEqual([
      ['Accepted', 'True', 1],
      ['ResolvedRefs', 'True', 1],
      ['Ready', 'True', 1],
    ]);
    const gw = (await status()).find((x) => x.kind === 'Gateway')!;
    expect(gw.status!.conditions!.find((c) => c.type === 'Programmed')!.status).toBe('True');
    expect(gw.status!.listeners![0].attachedRoutes).toBe(2);
  });

  test('editing the file moves traffic to the other backend and bumps the generation', async () => {
    replace('route.yaml', yamlOf(route('svc-b')));
    await waitFor('traffic to b', async () => (await through()).backend === 'b');
    for (let i = 0; i < 5; i++) expect((await through()).backend).toBe('b');
    const e = (await routeEntry())!;
    expect(e.generation).toBe(2);
    expect(e.status!.parents![0].conditions.every((c) => c.observedGeneration === 2)).toBe(true);
  });

  test('a broken edit is reported and traffic stays where it is', async () => {
    replace('route.yaml', 'kind: HTTPRoute\nspec: [unclosed\n');
    await waitFor('error reported', async () => {
      const errs = (await (await fetch(`http://127.0.0.1:${app.debugPort}/debug/config-errors`)).json()) as {
        file: string;
      }[];
      return errs.some((x) => x.file === 'route.yaml');
    });
    for (let i = 0; i < 5; i++) expect((await through()).backend).toBe('b');
    expect((await routeEntry())!.generation).toBe(2);
  });

  // Another route stays while `web` is deleted: when a change removes the last cluster, the
  // ADS session waits for an EDS ACK that Envoy (no clusters, so no EDS subscription) never
  // sends, and the next change waits for the step timeout (reported to src/xds/server).
  test('deleting the route: 404 from Envoy; deleting the Gateway: its listener is gone', async () => {
    unlinkSync(join(dir, 'route.yaml'));
    await waitFor('404', async () => (await through()).status === 404);
    expect((await get(`http://127.0.0.1:${port}/other/x`)).backend).toBe('a');
    expect(await routeEntry()).toBeUndefined();
    const gw = (await status()).find((x) => x.kind === 'Gateway')!;
    expect(gw.status!.listeners![0].attachedRoutes).toBe(1);
    replace(
      'gateway.yaml',
      yamlOf({
        apiVersion: G,
        kind: 'GatewayClass',
        metadata: { name: 'sb' },
        spec: { controllerName: 'signalbox.dev/gateway-controller' },
      }),
    );
    await waitFor('listener removed', async () => {
      try {
        await through();
        return false;
      } catch {
        return true; // connection refused: Envoy no longer listens
      }
    });
    expect(app.cache.getGroup('default/gw')).toBeUndefined();
  });
});
