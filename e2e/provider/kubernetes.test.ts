/**
 * Kubernetes mode against the real test stack (e2e/k8s: etcd + kube-apiserver with the
 * Gateway API CRDs): kubectl apply of GatewayClass, Gateway, HTTPRoute, Service and
 * EndpointSlice → a request through a real Envoy reaches the backend; the status written
 * to the API server (kubectl get -o json) shows Accepted/ResolvedRefs at the right
 * observedGeneration and the Gateway Programmed with attachedRoutes.
 *
 * The API server refuses loopback EndpointSlice addresses, so the backend runs in a
 * network namespace made here (veth pair, 198.51.100.0/30 TEST-NET-2: the root side
 * 198.51.100.1, the backend 198.51.100.2); Envoy in the root namespace dials it.
 */
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createServer } from 'node:net';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { startApp } from '../../src/app.js';
import type { App } from '../../src/app.js';
import { silentLogger } from '../../src/log.js';
import { admit } from '../../src/provider/file/schema.js';
import { get } from '../harness/backend.js';
import { startNetnsBackends } from '../harness/netns-backend.js';
import type { NetnsBackend } from '../harness/netns-backend.js';
import { Envoy, freePort, sleep, waitFor } from '../harness/envoy.js';
import { startLoad } from '../harness/load.js';
import { gateway, gatewayClass } from '../harness/gateway-objects.js';
import { startKubeStack } from '../harness/kube-stack.js';

const G = 'gateway.networking.k8s.io/v1';
const execAsync = promisify(execFile);

/** A free TCP port on 127.0.0.1 in [20000, below). */
async function portBelow(below: number): Promise<number> {
  for (;;) {
    const p = 20000 + Math.floor(Math.random() * (below - 20000));
    const ok = await new Promise<boolean>((res) => {
      const s = createServer();
      s.once('error', () => res(false));
      s.listen(p, '127.0.0.1', () => s.close(() => res(true)));
    });
    if (ok) return p;
  }
}
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any;
const KUBECTL = resolve('.tools/bin/kubectl');
const BACKEND_IP = '198.51.100.2';

interface Cond {
  type: string;
  status: string;
  observedGeneration: number;
}

describe('Kubernetes provider on a real kube-apiserver', () => {
  let dir: string;
  let kubeconfig: string;
  let app: App;
  let envoy: Envoy;
  let backend: NetnsBackend | undefined;
  let port: number;

  const kubectl = (args: string[], input?: string) =>
    execFileSync(KUBECTL, ['--kubeconfig', kubeconfig, ...args], { input, encoding: 'utf8' });
  const apply = (...docs: unknown[]) =>
    kubectl(['apply', '-f', '-'], docs.map((d) => stringify(d)).join('---\n'));
  /** kubectl without blocking this process's event loop (signalbox runs in it) */
  const kubectlAsync = async (args: string[]) =>
    (await execAsync(KUBECTL, ['--kubeconfig', kubeconfig, ...args], { maxBuffer: 64 << 20 })).stdout;
  const getJson = (what: string) => JSON.parse(kubectl(['get', what, '-o', 'json'])) as Any;
  const slice = (backendPort: number) => ({
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: 'web-1', namespace: 'default', labels: { 'kubernetes.io/service-name': 'web' } },
    addressType: 'IPv4',
    ports: [{ name: 'http', port: backendPort }],
    endpoints: [{ addresses: [BACKEND_IP], conditions: { ready: true } }],
  });
  const url = (p: string) => `http://127.0.0.1:${port}${p}`;
  const conds = (x: Any): string[] =>
    (x?.status?.parents?.[0]?.conditions ?? [])
      .map((c: Cond) => `${c.type}=${c.status}@${c.observedGeneration}`)
      .sort();
  const route = (path: string, name = 'web') => ({
    apiVersion: G,
    kind: 'HTTPRoute',
    metadata: { name, namespace: 'default' },
    spec: {
      parentRefs: [{ name: 'gw' }],
      rules: [
        {
          matches: [{ path: { type: 'PathPrefix', value: path } }],
          backendRefs: [{ name: 'web', port: 80 }],
        },
      ],
    },
  });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'signalbox-k8s-'));
    // the API server's port outside the ephemeral range (32768-60999 here): the load's
    // client sockets could otherwise take it while the API server is down for a restart
    const apiserverPort = await portBelow(32768);
    startKubeStack(dir, { ...process.env, APISERVER_PORT: String(apiserverPort) });
    kubeconfig = join(dir, 'kubeconfig');
    backend = startNetnsBackends('sbk', 0, [
      [8080, 'k8s'],
      [8081, 'k8s-2'],
    ]);
    port = await freePort();
    app = await startApp({
      log: silentLogger(),
      xdsAddress: '127.0.0.1:0',
      debugAddress: '127.0.0.1:0',
      kubeconfig,
      listenerAddress: '127.0.0.1',
    });
    envoy = await Envoy.start({ nodeId: 'envoy-k8s', group: 'default/gw', xdsPort: app.xdsPort });
  });

  afterAll(async () => {
    await envoy?.stop();
    await app?.close();
    backend?.stop();
    if (dir) {
      execFileSync('e2e/k8s/stop.sh', [dir], { stdio: 'ignore' });
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('kubectl apply → traffic through Envoy; status written with observedGeneration; Gateway Programmed', async () => {
    apply(
      gatewayClass(),
      {
        apiVersion: G,
        kind: 'GatewayClass',
        metadata: { name: 'other' },
        spec: { controllerName: 'example.com/other' },
      },
      gateway([{ name: 'http', protocol: 'HTTP', port }]),
      {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'web', namespace: 'default' },
        spec: { ports: [{ name: 'http', port: 80, targetPort: 8080 }] },
      },
      slice(8080),
      route('/'),
      // another controller's Gateway and a route to it: ignored
      {
        apiVersion: G,
        kind: 'Gateway',
        metadata: { name: 'foreign', namespace: 'default' },
        spec: { gatewayClassName: 'other', listeners: [{ name: 'http', protocol: 'HTTP', port: 1 }] },
      },
      {
        apiVersion: G,
        kind: 'HTTPRoute',
        metadata: { name: 'foreign-route', namespace: 'default' },
        spec: { parentRefs: [{ name: 'foreign' }], rules: [{ backendRefs: [{ name: 'web', port: 80 }] }] },
      },
    );
    const r = await waitFor('traffic through Envoy', async () => {
      const x = await get(`http://127.0.0.1:${port}/hello`);
      return x.status === 200 ? x : undefined;
    });
    expect(r.backend).toBe('k8s');
    expect(r.body).toBe('/hello');

    // Ready once proved through the Envoy (readiness: proved by default)
    await waitFor('route status', () => conds(getJson('httproute/web')).includes('Ready=True@1'));
    expect(conds(getJson('httproute/web'))).toEqual([
      'Accepted=True@1',
      'Ready=True@1',
      'ResolvedRefs=True@1',
    ]);
    const gw = await waitFor('gateway status', () => {
      const g = getJson('gateway/gw');
      return g.status?.listeners?.[0]?.attachedRoutes === 1 ? g : undefined;
    });
    expect(gw.status.conditions.find((c: Cond) => c.type === 'Programmed')).toMatchObject({
      status: 'True',
      observedGeneration: 1,
    });
    expect(getJson('gatewayclass/sb').status.conditions.find((c: Cond) => c.type === 'Accepted').status).toBe(
      'True',
    );
    // another controller's class keeps the API server's default status: nothing written by us
    expect(
      getJson('gatewayclass/other').status.conditions.map((c: Cond & { reason: string }) => c.reason),
    ).toEqual(['Pending']);
    expect(
      getJson('gateway/foreign').status.conditions.map((c: Cond & { reason: string }) => c.reason),
    ).toEqual(['Pending', 'Pending']);
    expect(getJson('httproute/foreign-route').status).toBeUndefined();
    expect(app.cache.getGroup('default/foreign')).toBeUndefined();

    // an edit of the route: Envoy and observedGeneration follow
    apply(route('/v2'));
    await waitFor(
      'new path served',
      async () => (await get(`http://127.0.0.1:${port}/hello`)).status === 404,
    );
    expect((await get(`http://127.0.0.1:${port}/v2/x`)).backend).toBe('k8s');
    await waitFor(
      'generation 2 observed',
      () => conds(getJson('httproute/web')).join() === 'Accepted=True@2,Ready=True@2,ResolvedRefs=True@2',
    );
    expect(getJson('httproute/web').metadata.generation).toBe(2);
  });

  test('standalone mode defaults like the API server: the same YAML gives the same stored spec', () => {
    const docs: Any[] = [
      {
        apiVersion: G,
        kind: 'HTTPRoute',
        metadata: { name: 'parity-http', namespace: 'default' },
        spec: {
          parentRefs: [{ name: 'foreign' }],
          rules: [
            { backendRefs: [{ name: 'web', port: 80 }] },
            {
              matches: [
                {
                  path: { value: '/x' },
                  headers: [{ name: 'h', value: 'v' }],
                  queryParams: [{ name: 'q', value: '1' }],
                },
              ],
              filters: [{ type: 'RequestMirror', requestMirror: { backendRef: { name: 'web', port: 80 } } }],
              backendRefs: [{ name: 'web', port: 80, weight: 3 }],
            },
          ],
        },
      },
      {
        apiVersion: G,
        kind: 'GRPCRoute',
        metadata: { name: 'parity-grpc', namespace: 'default' },
        spec: {
          parentRefs: [{ name: 'foreign' }],
          rules: [{ matches: [{ method: { service: 'a.B' } }], backendRefs: [{ name: 'web', port: 80 }] }],
        },
      },
      {
        apiVersion: G,
        kind: 'Gateway',
        metadata: { name: 'parity-gw', namespace: 'default' },
        spec: {
          gatewayClassName: 'other',
          listeners: [
            { name: 'a', protocol: 'HTTPS', port: 443, tls: { certificateRefs: [{ name: 'cert' }] } },
            { name: 'b', protocol: 'HTTP', port: 80, allowedRoutes: { namespaces: {} } },
          ],
        },
      },
    ];
    apply(...docs);
    for (const d of docs) {
      const mine = structuredClone(d);
      expect(admit(mine)).toEqual([]);
      const stored = getJson(`${d.kind.toLowerCase()}/${d.metadata.name}`);
      expect(mine.spec).toEqual(stored.spec);
    }
    // and both refuse the same invalid object
    const bad = structuredClone(docs[0]);
    bad.metadata.name = 'parity-bad';
    bad.spec.rules[0].backendRefs[0].port = 70000;
    expect(() => apply(bad)).toThrow(/70000/);
    expect(admit(bad).join()).toMatch(/spec.rules\[0\].backendRefs\[0\].port: Invalid value: 70000/);
  });

  test('no status write when nothing changed: an event on a referenced Service translates again and writes nothing', async () => {
    const kube = app.kube!;
    await sleep(1000); // let the writes of the previous test and their echoes settle
    const writes = kube.status.writes;
    const runs = kube.translations;
    kubectl(['label', 'service', 'web', `touched=${Date.now()}`, '--overwrite']);
    await waitFor('translation of the event', () => kube.translations > runs);
    await sleep(500);
    expect(kube.status.writes).toBe(writes);
  });

  test("another controller's objects and unreferenced ones never translate: a busy cluster costs nothing", async () => {
    const kube = app.kube!;
    await sleep(500);
    const runs = kube.translations;
    const ignored = kube.events.ignored;
    const foreignRoute = (i: number) => ({
      apiVersion: G,
      kind: 'HTTPRoute',
      metadata: { name: `foreign-${i}`, namespace: 'default' },
      spec: {
        parentRefs: [{ name: 'foreign' }],
        rules: [{ backendRefs: [{ name: `foreign-svc-${i}`, port: 80 }] }],
      },
    });
    const N = 20;
    apply(
      ...Array.from({ length: N }, (_, i) => foreignRoute(i)),
      ...Array.from({ length: N }, (_, i) => ({
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: `foreign-svc-${i}`, namespace: 'default' },
        spec: { ports: [{ port: 80 }] },
      })),
      {
        apiVersion: 'discovery.k8s.io/v1',
        kind: 'EndpointSlice',
        metadata: {
          name: 'foreign-svc-0-1',
          namespace: 'default',
          labels: { 'kubernetes.io/service-name': 'foreign-svc-0' },
        },
        addressType: 'IPv4',
        endpoints: [{ addresses: [BACKEND_IP] }],
      },
      {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'someone-elses', namespace: 'default' },
        stringData: { token: 'x' },
      },
    );
    await waitFor('the events arrived', () => kube.events.ignored >= ignored + 2 * N + 2);
    await sleep(500);
    expect(kube.translations).toBe(runs);
    // nothing of theirs is translated or written
    expect(getJson('httproute/foreign-0').status).toBeUndefined();
    const debug = (await (await fetch(`http://127.0.0.1:${app.debugPort}/debug/kubernetes`)).json()) as Any;
    expect(debug.reach).toMatchObject({ classes: 1, gateways: 1, services: 1 });
    expect(debug.events.ignored).toBeGreaterThanOrEqual(2 * N + 2);
    // one of their routes naming our Gateway is ours from then on
    apply({ ...foreignRoute(0), spec: { ...foreignRoute(0).spec, parentRefs: [{ name: 'gw' }] } });
    await waitFor('translated once it names our Gateway', () => kube.translations > runs);
    await waitFor('its status written', () =>
      conds(getJson('httproute/foreign-0')).includes('Accepted=True@2'),
    );
    kubectl(['delete', 'httproute', ...Array.from({ length: N }, (_, i) => `foreign-${i}`)]);
  });

  test('editing the backend (EndpointSlice) moves traffic', async () => {
    apply(slice(8081));
    await waitFor('traffic to the new backend', async () => (await get(url('/v2/x'))).backend === 'k8s-2');
    for (let i = 0; i < 5; i++) expect((await get(url('/v2/x'))).backend).toBe('k8s-2');
  });

  test('kube-apiserver SIGKILLed and restarted under load: 0 failed requests, 410 Gone relists, status catches up', async () => {
    const kube = app.kube!;
    const gone0 = Object.values(kube.gone).reduce((a, b) => a + b, 0);
    const relists0 = Object.values(kube.relists).reduce((a, b) => a + b, 0);
    // writes to another kind move the API server's resourceVersion past what our watches
    // last saw: after the restart the watch caches start later, so resuming a watch from
    // its old resourceVersion is answered 410 Gone and that informer relists
    for (let i = 0; i < 3; i++) kubectl(['create', 'configmap', `rv-bump-${Date.now()}-${i}`]);
    const load = startLoad(url('/v2/x'));
    let res: Awaited<ReturnType<typeof load.stop>> | undefined;
    try {
      await sleep(300);
      // asynchronously: the load runs in this process and must keep running meanwhile
      await execAsync('e2e/k8s/restart-apiserver.sh', ['--kill', '--down=2', dir]);
      await waitFor(
        'relists after 410 Gone',
        () => Object.values(kube.relists).reduce((a, b) => a + b, 0) > relists0,
        30_000,
      );
      await sleep(500);
    } finally {
      res = await load.stop();
    }
    const gone = Object.values(kube.gone).reduce((a, b) => a + b, 0) - gone0;
    console.log(
      `API server SIGKILL + restart: 410 Gone ${gone} times (${JSON.stringify(kube.gone)}), relists ${JSON.stringify(kube.relists)}`,
    );
    expect(gone).toBeGreaterThan(0);
    const r = res;
    console.log(`API server restart under load: ${r.total} requests, ${r.failed} failed`);
    expect(r.failures).toEqual([]);
    expect(r.ok).toBeGreaterThan(0);
    // a change made after the restart reaches Envoy and the status: the watches are back
    apply(route('/v3'));
    await waitFor(
      'change after restart served',
      async () => (await get(url('/v3/x'))).status === 200,
      30_000,
    );
    await waitFor(
      'generation 3 observed',
      () => conds(getJson('httproute/web')).join() === 'Accepted=True@3,Ready=True@3,ResolvedRefs=True@3',
      30_000,
    );
  });

  test('deleting the route, then the Gateway: Envoy and status follow', async () => {
    // a second route keeps a cluster in Envoy when `web` goes (see e2e/provider/file.test.ts)
    apply(route('/keep', 'keep'));
    await waitFor('keep served', async () => (await get(url('/keep'))).status === 200);
    await waitFor('attachedRoutes 2', () => getJson('gateway/gw').status.listeners[0].attachedRoutes === 2);
    kubectl(['delete', 'httproute', 'web']);
    await waitFor('deleted route withdrawn', async () => (await get(url('/v3/x'))).status === 404);
    await waitFor('attachedRoutes 1', () => getJson('gateway/gw').status.listeners[0].attachedRoutes === 1);
    kubectl(['delete', 'gateway', 'gw']);
    await waitFor('listener gone', async () => {
      try {
        await get(url('/keep'));
        return false;
      } catch {
        return true;
      }
    });
    // the route's parent is gone: its status no longer says Accepted=True
    await waitFor(
      'route status follows',
      () => !conds(getJson('httproute/keep')).includes('Accepted=True@1'),
    );
  });

  test('a burst of 200 route creations: coalesced translations, one status write per route (no storm)', async () => {
    const kube = app.kube!;
    const burstPort = await freePort();
    apply({
      apiVersion: G,
      kind: 'Gateway',
      metadata: { name: 'burst', namespace: 'default' },
      spec: { gatewayClassName: 'sb', listeners: [{ name: 'http', protocol: 'HTTP', port: burstPort }] },
    });
    await waitFor('burst Gateway programmed', () =>
      (getJson('gateway/burst').status?.conditions ?? []).some(
        (c: Cond) => c.type === 'Programmed' && c.status === 'True',
      ),
    );
    await sleep(500);
    const writes0 = kube.status.writes;
    const echoes0 = kube.events.ownWrites;
    const relevant0 = kube.events.relevant;
    const ignored0 = kube.events.ignored;
    const runs0 = kube.translations;
    const delays0 = kube.delays.length;
    const N = 200;
    // kubectl runs asynchronously here: a synchronous one would freeze signalbox (it runs
    // in this process) and hand it the whole burst as one batch of events afterwards
    const file = join(dir, 'burst.yaml');
    writeFileSync(
      file,
      Array.from({ length: N }, (_, i) =>
        stringify({
          apiVersion: G,
          kind: 'HTTPRoute',
          metadata: { name: `burst-${i}`, namespace: 'default' },
          spec: {
            parentRefs: [{ name: 'burst' }],
            rules: [{ matches: [{ path: { value: `/b/${i}` } }], backendRefs: [{ name: 'web', port: 80 }] }],
          },
        }),
      ).join('---\n'),
    );
    const t0 = Date.now();
    await kubectlAsync(['apply', '-f', file]);
    console.log(`kubectl apply of ${N} routes took ${Date.now() - t0} ms`);
    await waitFor(
      'every burst route accepted',
      async () => {
        const list = JSON.parse(await kubectlAsync(['get', 'httproute', '-o', 'json'])).items as Any[];
        return (
          list.filter((r) => r.metadata.name.startsWith('burst-') && conds(r).includes('Accepted=True@1'))
            .length === N
        );
      },
      60_000,
      500,
    );
    await waitFor(
      'attachedRoutes',
      async () =>
        (JSON.parse(await kubectlAsync(['get', 'gateway/burst', '-o', 'json'])) as Any).status.listeners[0]
          .attachedRoutes === N,
      30_000,
    );
    await sleep(1000);
    const writes = kube.status.writes - writes0;
    const runs = kube.translations - runs0;
    const d = kube.delays.slice(delays0).sort((a, b) => a - b);
    const pct = (p: number) => d[Math.min(d.length - 1, Math.floor((p / 100) * d.length))];
    console.log(
      `burst of ${N} routes: ${runs} translations, ${writes} status writes, settled in ${Date.now() - t0} ms; ` +
        `events: ${kube.events.relevant - relevant0} relevant, ${kube.events.ignored - ignored0} ignored, ` +
        `${kube.events.ownWrites - echoes0} own writes; ` +
        `event→translation delay p50 ${pct(50)} ms, p99 ${pct(99)} ms, max ${d[d.length - 1]} ms`,
    );
    // per route one write with Accepted (Ready: Proving) and one when readiness settles (no
    // Envoy serves this Gateway: NoDataPlane), plus the Gateway's updates (at most one per
    // translation, and its RoutesReady summary)
    expect(writes).toBeLessThanOrEqual(2 * N + runs + 2);
    expect(runs).toBeLessThan(N);
    // the watch events of our own writes are recognised and translate nothing
    expect(kube.events.ownWrites - echoes0).toBeGreaterThanOrEqual(writes - 2);
  });
});
