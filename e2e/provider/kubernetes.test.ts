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
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { startApp } from '../../src/app.js';
import type { App } from '../../src/app.js';
import { silentLogger } from '../../src/log.js';
import { get } from '../harness/backend.js';
import { Envoy, freePort, waitFor } from '../harness/envoy.js';

const G = 'gateway.networking.k8s.io/v1';
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any;
const KUBECTL = resolve('.tools/bin/kubectl');
const NS = `sbk${process.pid}`;
const HOST_IF = `sbk${process.pid}a`.slice(0, 15);
const NS_IF = `sbk${process.pid}b`.slice(0, 15);
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
  let backend: ChildProcess;
  let port: number;

  const kubectl = (args: string[], input?: string) =>
    execFileSync(KUBECTL, ['--kubeconfig', kubeconfig, ...args], { input, encoding: 'utf8' });
  const apply = (...docs: unknown[]) =>
    kubectl(['apply', '-f', '-'], docs.map((d) => stringify(d)).join('---\n'));
  const getJson = (what: string) => JSON.parse(kubectl(['get', what, '-o', 'json'])) as Any;
  const route = (path: string) => ({
    apiVersion: G,
    kind: 'HTTPRoute',
    metadata: { name: 'web', namespace: 'default' },
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
    execFileSync('e2e/k8s/start.sh', [dir], { stdio: 'ignore' });
    kubeconfig = join(dir, 'kubeconfig');
    const ip = (...a: string[]) => execFileSync('ip', a, { stdio: 'ignore' });
    ip('netns', 'add', NS);
    ip('link', 'add', HOST_IF, 'type', 'veth', 'peer', 'name', NS_IF);
    ip('link', 'set', NS_IF, 'netns', NS);
    ip('addr', 'add', '198.51.100.1/30', 'dev', HOST_IF);
    ip('link', 'set', HOST_IF, 'up');
    ip('netns', 'exec', NS, 'ip', 'addr', 'add', `${BACKEND_IP}/30`, 'dev', NS_IF);
    ip('netns', 'exec', NS, 'ip', 'link', 'set', NS_IF, 'up');
    const script = `require('http').createServer((q,s)=>{s.writeHead(200,{'x-backend':'k8s','connection':'close'});s.end(q.url)}).listen(8080,'${BACKEND_IP}')`;
    backend = spawn('ip', ['netns', 'exec', NS, process.execPath, '-e', script], { stdio: 'ignore' });
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
    backend?.kill();
    try {
      execFileSync('ip', ['netns', 'del', NS], { stdio: 'ignore' });
      execFileSync('ip', ['link', 'del', HOST_IF], { stdio: 'ignore' });
    } catch {
      /* already gone with the namespace */
    }
    if (dir) {
      execFileSync('e2e/k8s/stop.sh', [dir], { stdio: 'ignore' });
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('kubectl apply → traffic through Envoy; status written with observedGeneration; Gateway Programmed', async () => {
    apply(
      {
        apiVersion: G,
        kind: 'GatewayClass',
        metadata: { name: 'sb' },
        spec: { controllerName: 'signalbox.dev/gateway-controller' },
      },
      {
        apiVersion: G,
        kind: 'GatewayClass',
        metadata: { name: 'other' },
        spec: { controllerName: 'example.com/other' },
      },
      {
        apiVersion: G,
        kind: 'Gateway',
        metadata: { name: 'gw', namespace: 'default' },
        spec: { gatewayClassName: 'sb', listeners: [{ name: 'http', protocol: 'HTTP', port }] },
      },
      {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'web', namespace: 'default' },
        spec: { ports: [{ name: 'http', port: 80, targetPort: 8080 }] },
      },
      {
        apiVersion: 'discovery.k8s.io/v1',
        kind: 'EndpointSlice',
        metadata: { name: 'web-1', namespace: 'default', labels: { 'kubernetes.io/service-name': 'web' } },
        addressType: 'IPv4',
        ports: [{ name: 'http', port: 8080 }],
        endpoints: [{ addresses: [BACKEND_IP], conditions: { ready: true } }],
      },
      route('/'),
    );
    const r = await waitFor('traffic through Envoy', async () => {
      const x = await get(`http://127.0.0.1:${port}/hello`);
      return x.status === 200 ? x : undefined;
    });
    expect(r.backend).toBe('k8s');
    expect(r.body).toBe('/hello');

    const conds = (x: Any): string[] =>
      (x?.status?.parents?.[0]?.conditions ?? [])
        .map((c: Cond) => `${c.type}=${c.status}@${c.observedGeneration}`)
        .sort();
    await waitFor('route status', () => conds(getJson('httproute/web')).length === 2);
    expect(conds(getJson('httproute/web'))).toEqual(['Accepted=True@1', 'ResolvedRefs=True@1']);
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
    // another controller's class: no status written by us
    // another controller's class keeps the API server's default status: nothing written by us
    expect(
      getJson('gatewayclass/other').status.conditions.map((c: Cond & { reason: string }) => c.reason),
    ).toEqual(['Pending']);

    // an edit of the route: Envoy and observedGeneration follow
    apply(route('/v2'));
    await waitFor(
      'new path served',
      async () => (await get(`http://127.0.0.1:${port}/hello`)).status === 404,
    );
    expect((await get(`http://127.0.0.1:${port}/v2/x`)).backend).toBe('k8s');
    await waitFor(
      'generation 2 observed',
      () => conds(getJson('httproute/web')).join() === 'Accepted=True@2,ResolvedRefs=True@2',
    );
    expect(getJson('httproute/web').metadata.generation).toBe(2);
    expect(readFileSync(kubeconfig, 'utf8')).toContain('server:');
  });
});
