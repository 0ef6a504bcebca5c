/**
 * Proved readiness in Kubernetes mode on the real test stack (e2e/k8s: etcd +
 * kube-apiserver with the Gateway API CRDs), signalbox in-process with `readiness:
 * 'proved'` and a real Envoy: the Ready condition the status writer puts in the route's
 * RouteParentStatus is what a user waits on with the kubectl command they would type
 * (run here verbatim through a shell), and once it returns the very next request through
 * Envoy reaches the new backend.
 *
 *   kubectl wait httproute/web --for=jsonpath='{.status.parents[0].conditions[?(@.type=="Ready")].status}'=True --timeout=60s
 *
 * `kubectl wait --for=condition=Ready` reads `.status.conditions`, which routes do not have
 * (their conditions are per parent): it times out even on a Ready route. After an edit, one
 * waits for the new observedGeneration first, then for True (the old True would satisfy
 * the second wait at once). Gateways carry `signalbox.dev/RoutesReady` in
 * `.status.conditions`, so `--for=condition=` works there.
 *
 * As in kubernetes.test.ts, the API server refuses loopback EndpointSlice addresses: the
 * backends run in a network namespace (veth pair, 198.51.100.4/30 TEST-NET-2: the root side
 * .5, the backends .6). Every kubectl here runs asynchronously: signalbox (its status
 * writer, its probes) runs in this process and must not be frozen meanwhile.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startApp } from '../../src/app.js';
import type { App } from '../../src/app.js';
import { makeLogger, silentLogger } from '../../src/log.js';
import { get } from '../harness/backend.js';
import { startNetnsBackends } from '../harness/netns-backend.js';
import type { NetnsBackend } from '../harness/netns-backend.js';
import { Envoy, freePort } from '../harness/envoy.js';
import { GATEWAY_API, gateway, gatewayClass } from '../harness/gateway-objects.js';
import { kubeShell } from '../harness/kubectl.js';
import { readyOf } from '../harness/status.js';
import type { Cond } from '../harness/status.js';
import { startKubeStack } from '../harness/kube-stack.js';

const BACKEND_IP = '198.51.100.6';

/** The kubectl lines of the README, exactly as typed in a shell. */
const WAIT_READY = `kubectl wait httproute/web --for=jsonpath='{.status.parents[0].conditions[?(@.type=="Ready")].status}'=True --timeout=60s`;
const WAIT_GENERATION_2 = `kubectl wait httproute/web --for=jsonpath='{.status.parents[0].conditions[?(@.type=="Ready")].observedGeneration}'=2 --timeout=60s`;
const WAIT_CONDITION_READY = `kubectl wait httproute/web --for=condition=Ready --timeout=2s`;
const WAIT_GATEWAY = `kubectl wait gateway/gw --for=condition=signalbox.dev/RoutesReady --timeout=60s`;

describe('proved readiness in Kubernetes mode (real kube-apiserver, real Envoy)', () => {
  let dir: string;
  let kubeconfig: string;
  let app: App;
  let envoy: Envoy;
  let backend: NetnsBackend | undefined;
  let port: number;

  const { sh, apply, getJson } = kubeShell(() => kubeconfig);
  /** what signalbox's readiness thinks, for failure messages */
  const state = () => JSON.stringify(app.readiness?.toJSON());
  const url = (p: string) => `http://127.0.0.1:${port}${p}`;

  const service = (name: string, backendPort: number) => [
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name, namespace: 'default' },
      spec: { ports: [{ name: 'http', port: 80, targetPort: backendPort }] },
    },
    {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { name: `${name}-1`, namespace: 'default', labels: { 'kubernetes.io/service-name': name } },
      addressType: 'IPv4',
      ports: [{ name: 'http', port: backendPort }],
      endpoints: [{ addresses: [BACKEND_IP], conditions: { ready: true } }],
    },
  ];
  const route = (path: string, backend: string) => ({
    apiVersion: GATEWAY_API,
    kind: 'HTTPRoute',
    metadata: { name: 'web', namespace: 'default' },
    spec: {
      parentRefs: [{ name: 'gw' }],
      rules: [
        {
          matches: [{ path: { type: 'PathPrefix', value: path } }],
          backendRefs: [{ name: backend, port: 80 }],
        },
      ],
    },
  });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'signalbox-k8s-readiness-'));
    startKubeStack(dir);
    kubeconfig = join(dir, 'kubeconfig');
    backend = startNetnsBackends('sbr', 4, [
      [8080, 'one'],
      [8081, 'two'],
    ]);
    port = await freePort();
    app = await startApp({
      log: process.env.STACK_LOG ? makeLogger({ level: process.env.STACK_LOG }) : silentLogger(),
      xdsAddress: '127.0.0.1:0',
      debugAddress: '127.0.0.1:0',
      kubeconfig,
      listenerAddress: '127.0.0.1',
      readiness: 'proved',
      readinessProbeTimeoutMs: 5000, // the ACK timeout is the default one (30 s)
    });
    envoy = await Envoy.start({ nodeId: 'envoy-k8s-readiness', group: 'default/gw', xdsPort: app.xdsPort });
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

  test('kubectl apply, then the kubectl wait a user types: Ready=True at the generation, traffic reaches the backend', async () => {
    await apply(
      gatewayClass(),
      gateway([{ name: 'http', protocol: 'HTTP', port }]),
      ...service('web', 8080),
      ...service('web-2', 8081),
      route('/', 'web'),
    );
    const w = await sh(WAIT_READY);
    console.log(`${WAIT_READY}\n→ exit ${w.code} after ${w.ms} ms: ${w.stdout.trim()} ${w.stderr.trim()}`);
    if (w.code !== 0) throw new Error(`kubectl wait failed: ${w.stderr}; readiness: ${state()}`);
    expect(w.stdout).toMatch(/httproute.gateway.networking.k8s.io\/web condition met/);
    // proved before it was reported: the very next request reaches the backend
    const r = await get(url('/hello'));
    expect(r).toMatchObject({ status: 200, backend: 'one', body: '/hello' });

    const web = await getJson('httproute/web');
    expect(web.metadata.generation).toBe(1);
    expect(readyOf(web.status)).toMatchObject({ status: 'True', reason: 'Ready', observedGeneration: 1 });
    // proved through the data plane, not promoted unproved
    expect(readyOf(web.status)?.message).toMatch(/^proved through 1 Envoy/);
    // every condition of the parent describes the same generation
    expect(
      web.status.parents[0].conditions.map((c: Cond) => `${c.type}=${c.status}@${c.observedGeneration}`),
    ).toEqual(['Accepted=True@1', 'ResolvedRefs=True@1', 'Ready=True@1']);

    // routes have no .status.conditions: `--for=condition=Ready` never sees their Ready
    const c = await sh(WAIT_CONDITION_READY);
    console.log(`${WAIT_CONDITION_READY}\n→ exit ${c.code} after ${c.ms} ms: ${c.stderr.trim()}`);
    expect(c.code).not.toBe(0);
    expect(c.stderr).toMatch(/timed out waiting for the condition/);
  }, 180_000);

  test('an edit (path and backend): wait for observedGeneration 2, then Ready=True; the new backend serves', async () => {
    await apply(route('/v2', 'web-2'));
    const g = await sh(WAIT_GENERATION_2);
    console.log(
      `${WAIT_GENERATION_2}\n→ exit ${g.code} after ${g.ms} ms: ${g.stdout.trim()} ${g.stderr.trim()}`,
    );
    if (g.code !== 0) throw new Error(`kubectl wait (generation) failed: ${g.stderr}; readiness: ${state()}`);
    const w = await sh(WAIT_READY);
    console.log(`${WAIT_READY}\n→ exit ${w.code} after ${w.ms} ms: ${w.stdout.trim()} ${w.stderr.trim()}`);
    if (w.code !== 0) throw new Error(`kubectl wait failed: ${w.stderr}; readiness: ${state()}`);
    const r = await get(url('/v2/x'));
    expect(r).toMatchObject({ status: 200, backend: 'two', body: '/v2/x' });
    expect((await get(url('/hello'))).status).toBe(404);

    const web = await getJson('httproute/web');
    expect(web.metadata.generation).toBe(2);
    expect(readyOf(web.status)).toMatchObject({ status: 'True', reason: 'Ready', observedGeneration: 2 });
    expect(readyOf(web.status)?.message).toMatch(/^proved through 1 Envoy/);
  }, 180_000);

  test('the Gateway: signalbox.dev/RoutesReady True, "1 of 1 routes Ready"', async () => {
    const w = await sh(WAIT_GATEWAY);
    console.log(`${WAIT_GATEWAY}\n→ exit ${w.code} after ${w.ms} ms: ${w.stdout.trim()} ${w.stderr.trim()}`);
    if (w.code !== 0) throw new Error(`kubectl wait failed: ${w.stderr}; readiness: ${state()}`);
    const gw = await getJson('gateway/gw');
    expect(gw.status.conditions.find((c: Cond) => c.type === 'signalbox.dev/RoutesReady')).toMatchObject({
      status: 'True',
      reason: 'Ready',
      message: '1 of 1 routes Ready',
      observedGeneration: gw.metadata.generation,
    });
  }, 120_000);
});
