/**
 * manifests/ on the real kube-apiserver: the API server accepts every object of
 * install.yaml and gatewayclass.yaml (server-side dry run of the Deployment too: no
 * kubelet runs here), and signalbox running as the manifests' ServiceAccount (a token from
 * the TokenRequest API, RBAC on) lists and watches everything, writes status and holds the
 * Lease, with no request forbidden; the ServiceAccount can do nothing more than that.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { parse, stringify } from 'yaml';
import { startApp } from '../../src/app.js';
import type { App } from '../../src/app.js';
import { GATEWAY_API, gateway } from '../harness/gateway-objects.js';
import { freePort, waitFor } from '../harness/envoy.js';
import { writeTokenKubeconfig } from '../harness/kubectl.js';
import { startKubeStack } from '../harness/kube-stack.js';

const KUBECTL = resolve('.tools/bin/kubectl');
const SA = 'system:serviceaccount:signalbox-system:signalbox';
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any;

describe('manifests/ on a real API server with RBAC', () => {
  let dir: string;
  let admin: string;
  let app: App | undefined;
  const logs: Any[] = [];

  const kubectl = (args: string[], input?: string, kubeconfig = admin) =>
    execFileSync(KUBECTL, ['--kubeconfig', kubeconfig, ...args], { input, encoding: 'utf8' });
  const canI = (verb: string, what: string, ns = 'default') => {
    const [res, sub] = what.split('/');
    try {
      return kubectl([
        'auth',
        'can-i',
        verb,
        res,
        ...(sub ? [`--subresource=${sub}`] : []),
        '-n',
        ns,
        `--as=${SA}`,
      ]).trim();
    } catch (e) {
      return String((e as { stdout?: string }).stdout ?? '').trim();
    }
  };

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'signalbox-k8s-manifests-'));
    startKubeStack(dir);
    admin = join(dir, 'kubeconfig');
  });

  afterAll(async () => {
    await app?.close();
    if (dir) {
      execFileSync('e2e/k8s/stop.sh', [dir], { stdio: 'ignore' });
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('the API server accepts every object (server-side dry run, then applied)', () => {
    // a dry run of namespaced objects needs their namespace to exist
    kubectl(['create', 'namespace', 'signalbox-system', '--save-config']);
    const out = kubectl([
      'apply',
      '--dry-run=server',
      '-f',
      'manifests/install.yaml',
      '-f',
      'manifests/gatewayclass.yaml',
    ]);
    for (const what of [
      'namespace/signalbox-system',
      'serviceaccount/signalbox',
      'clusterrole.rbac.authorization.k8s.io/signalbox',
      'deployment.apps/signalbox',
      'service/signalbox',
      'gatewayclass.gateway.networking.k8s.io/signalbox',
    ])
      expect(out).toContain(what);
    kubectl(['apply', '-f', 'manifests/install.yaml', '-f', 'manifests/gatewayclass.yaml']);
    // the Deployment's arguments are ones `signalbox serve` knows
    const dep = parse(
      readFileSync('manifests/install.yaml', 'utf8')
        .split(/^---$/m)
        .find((d) => /kind: Deployment/.test(d))!,
    ) as Any;
    const help = execFileSync(process.execPath, ['dist/src/cli.js', 'serve', '--help'], { encoding: 'utf8' });
    for (const a of dep.spec.template.spec.containers[0].args.slice(1) as string[])
      expect([a, help.includes(a.split('=')[0])]).toEqual([a, true]);
  });

  test('signalbox as the ServiceAccount: informers, status writes and the Lease, nothing forbidden', async () => {
    const token = kubectl(['create', 'token', 'signalbox', '-n', 'signalbox-system', '--duration=1h']).trim();
    const saConfig = join(dir, 'signalbox.kubeconfig');
    writeTokenKubeconfig(admin, token, saConfig);
    expect(
      kubectl(['auth', 'whoami', '-o', 'jsonpath={.status.userInfo.username}'], undefined, saConfig),
    ).toBe(SA);

    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        for (const line of chunk.toString().split('\n')) if (line) logs.push(JSON.parse(line));
        cb();
      },
    });
    app = await startApp({
      log: pino({ level: 'debug' }, sink),
      xdsAddress: '127.0.0.1:0',
      debugAddress: '127.0.0.1:0',
      kubeconfig: saConfig,
      listenerAddress: '127.0.0.1',
      leaderElection: {
        namespace: 'signalbox-system',
        name: 'signalbox-leader',
        identity: 'manifests-test',
        leaseDurationSec: 3,
        retryPeriodMs: 400,
        renewDeadlineMs: 2000,
      },
    });
    const port = await freePort();
    kubectl(
      ['apply', '-f', '-'],
      [
        gateway([{ name: 'http', protocol: 'HTTP', port }], { className: 'signalbox' }),
        {
          apiVersion: 'v1',
          kind: 'Service',
          metadata: { name: 'web', namespace: 'default' },
          spec: { ports: [{ port: 80 }] },
        },
        {
          apiVersion: GATEWAY_API,
          kind: 'HTTPRoute',
          metadata: { name: 'web', namespace: 'default' },
          spec: { parentRefs: [{ name: 'gw' }], rules: [{ backendRefs: [{ name: 'web', port: 80 }] }] },
        },
      ]
        .map((d) => stringify(d))
        .join('---\n'),
    );
    const get = (what: string, ns = 'default') =>
      JSON.parse(kubectl(['get', what, '-n', ns, '-o', 'json'])) as Any;
    await waitFor('route Accepted', () =>
      (get('httproute/web').status?.parents?.[0]?.conditions ?? []).some(
        (c: Any) => c.type === 'Accepted' && c.status === 'True',
      ),
    );
    await waitFor('Gateway Programmed', () =>
      (get('gateway/gw').status?.conditions ?? []).some(
        (c: Any) => c.type === 'Programmed' && c.status === 'True',
      ),
    );
    expect(
      get('gatewayclass/signalbox').status.conditions.find((c: Any) => c.type === 'Accepted').status,
    ).toBe('True');
    await waitFor(
      'Lease held',
      () => get('lease/signalbox-leader', 'signalbox-system').spec?.holderIdentity === 'manifests-test',
    );
    expect(app.cache.getGroup('default/gw')).toBeDefined();
    const forbidden = logs.filter((l) => /forbidden|\b403\b/i.test(JSON.stringify(l)));
    expect(forbidden).toEqual([]);
    // warnings there may be (a fresh API server answers 429 while its watch caches warm
    // up; the informers retry), but no lease or status write failed
    expect(logs.filter((l) => l.level >= 40 && /lease|status/i.test(String(l.msg)))).toEqual([]);
    expect(logs.filter((l) => l.level >= 50)).toEqual([]);
  });

  test('the ServiceAccount may not do more than that', () => {
    expect(canI('list', 'secrets', 'kube-system')).toBe('yes');
    expect(canI('patch', 'httproutes.gateway.networking.k8s.io', 'default')).toBe('no');
    expect(canI('patch', 'httproutes.gateway.networking.k8s.io/status', 'default')).toBe('yes');
    expect(canI('create', 'httproutes.gateway.networking.k8s.io')).toBe('no');
    expect(canI('delete', 'gateways.gateway.networking.k8s.io')).toBe('no');
    expect(canI('update', 'secrets')).toBe('no');
    expect(canI('update', 'leases.coordination.k8s.io', 'signalbox-system')).toBe('yes');
    expect(canI('update', 'leases.coordination.k8s.io', 'default')).toBe('no');
    // readiness reports of the replicas (src/readiness/fleet.ts): in its own namespace only
    expect(canI('update', 'configmaps', 'signalbox-system')).toBe('yes');
    expect(canI('update', 'configmaps', 'default')).toBe('no');
    expect(canI('list', 'configmaps', 'kube-system')).toBe('no');
  });
});
