/**
 * Graceful shutdown of `signalbox serve` (real processes):
 * - standalone with local Envoys, SIGINT: exits 0, its Envoy is gone, nothing listens on
 *   its ADS or debug port any more;
 * - Kubernetes mode (real kube-apiserver), the leader with status writes queued (12 routes
 *   created at once, status written at 5 per second), SIGTERM: from the signal on, no new
 *   ADS connection is accepted while it is still finishing; every route's status is written
 *   before it exits; its Lease is released (holderIdentity empty) — with none of it the
 *   next leader would wait out the Lease and the routes would have no status meanwhile.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { freePort, waitFor } from './harness/envoy.js';
import { gateway, gatewayClass, httpRoute, service } from './harness/gateway-objects.js';
import { startReplica } from './harness/signalbox.js';
import { SignalboxProcess } from './harness/signalbox.js';
import { yamlOf } from './harness/standalone.js';
import { startKubeStack } from './harness/kube-stack.js';

const KUBECTL = resolve('.tools/bin/kubectl');
const ENVOY = resolve('.tools/bin/envoy');

/** Whether something accepts TCP connections on 127.0.0.1:port. */
function accepts(port: number): Promise<boolean> {
  return new Promise((r) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      r(true);
    });
    s.once('error', () => r(false));
  });
}

const exitOf = (sb: SignalboxProcess) =>
  new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => {
    if (sb.proc.exitCode !== null || sb.proc.signalCode !== null)
      return r({ code: sb.proc.exitCode, signal: sb.proc.signalCode });
    sb.proc.once('exit', (code, signal) => r({ code, signal }));
  });

describe('graceful shutdown: standalone, local Envoys, SIGINT', () => {
  let dir: string;
  let sb: SignalboxProcess | undefined;

  afterAll(async () => {
    await sb?.kill();
    rmSync(dir, { recursive: true, force: true });
  });

  test('exits 0; its Envoy stopped; ADS and debug ports closed', async () => {
    dir = mkdtempSync(join(tmpdir(), 'signalbox-shutdown-'));
    const port = await freePort();
    writeFileSync(
      join(dir, 'all.yaml'),
      yamlOf(
        gatewayClass(),
        gateway([{ name: 'http', protocol: 'HTTP', port }]),
        ...service('svc', [{ host: '127.0.0.9', port: 9 }]),
        httpRoute('web', '/', 'svc'),
      ),
    );
    const xdsPort = await freePort();
    const debugPort = await freePort();
    sb = await SignalboxProcess.start(
      [
        '--config-dir',
        dir,
        '--xds-address',
        `127.0.0.1:${xdsPort}`,
        '--envoy',
        'local',
        '--envoy-path',
        ENVOY,
        '--envoy-local-addresses',
        '127.0.78.0/24',
        '--log-level',
        'warn',
      ],
      debugPort,
    );
    const envoys = await waitFor('its Envoy running', async () => {
      const e = await sb!.json<{ envoys: { state: string; pid: number | null }[] }>('/debug/envoys');
      return e.envoys[0]?.state === 'running' && e.envoys[0].pid ? e.envoys : undefined;
    });
    const pid = envoys[0].pid!;
    const exited = exitOf(sb);
    sb.proc.kill('SIGINT');
    await waitFor('exit after SIGINT', () => sb!.exited, 30_000);
    const r = await exited;
    expect(r).toEqual({ code: 0, signal: null });
    expect(() => process.kill(pid, 0)).toThrow();
    expect(await accepts(xdsPort)).toBe(false);
    expect(await accepts(debugPort)).toBe(false);
  }, 90_000);
});

describe('graceful shutdown: Kubernetes mode, the leader, SIGTERM', () => {
  let dir: string;
  let kubeconfig: string;
  let leader: Awaited<ReturnType<typeof startReplica>> | undefined;

  const kubectl = (args: string[], input?: string) =>
    execFileSync(KUBECTL, ['--kubeconfig', kubeconfig, ...args], { input, encoding: 'utf8' });

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'signalbox-k8s-shutdown-'));
    startKubeStack(dir);
    kubeconfig = join(dir, 'kubeconfig');
  }, 120_000);

  afterAll(async () => {
    await leader?.sb.kill();
    if (dir) {
      execFileSync('e2e/k8s/stop.sh', [dir], { stdio: 'ignore' });
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('no new ADS connection from the signal on; the queued status writes go out; the Lease is released', async () => {
    leader = await startReplica(kubeconfig, 'replica-x', [
      '--status-qps',
      '5',
      '--status-burst',
      '1',
      '--readiness',
      'off',
    ]);
    await waitFor('leading', async () => {
      const k = await leader!.sb.json<{ leader: { leading: boolean } }>('/debug/kubernetes');
      return k.leader.leading;
    });
    const routes = Array.from({ length: 12 }, (_, i) => `r${i}`);
    kubectl(
      ['apply', '-f', '-'],
      [
        gatewayClass(),
        gateway([{ name: 'http', protocol: 'HTTP', port: 8080 }]),
        ...service('svc', [{ host: '198.51.100.77', port: 8080 }]),
        ...routes.map((r) => ({
          ...httpRoute(r, `/${r}`, 'svc'),
          metadata: { name: r, namespace: 'default' },
        })),
      ]
        .map((d) => stringify(d))
        .join('---\n'),
    );
    const withStatus = () =>
      (
        JSON.parse(kubectl(['get', 'httproutes', '-o', 'json'])) as {
          items: { status?: { parents?: unknown[] } }[];
        }
      ).items.filter((x) => (x.status?.parents?.length ?? 0) > 0).length;
    // the leader has started writing: at 5 per second, most are still queued
    await waitFor('a first route status', () => withStatus() >= 1, 30_000, 50);
    const before = withStatus();
    const exited = exitOf(leader.sb);
    leader.sb.proc.kill('SIGTERM');
    // at once: ADS no longer accepts, while the process is still finishing its writes
    await waitFor('ADS refuses new connections', async () => !(await accepts(leader!.xdsPort)), 5_000, 20);
    const stillRunning = !leader.sb.exited;
    await waitFor('exit after SIGTERM', () => leader!.sb.exited, 30_000);
    const r = await exited;
    expect(r).toEqual({ code: 0, signal: null });
    // the writes under way went out before it exited
    expect(withStatus()).toBe(routes.length);
    console.log(
      `SIGTERM with ${routes.length - before} of ${routes.length} route statuses queued: all written before exit (ADS refused at once: ${stillRunning})`,
    );
    expect(before).toBeLessThan(routes.length); // there was something left to finish
    expect(stillRunning).toBe(true);
    // the Lease is released: the next replica does not wait for it to expire
    const lease = JSON.parse(
      kubectl(['get', 'lease', 'signalbox-leader', '-n', 'default', '-o', 'json']),
    ) as {
      spec: { holderIdentity?: string };
    };
    expect(lease.spec.holderIdentity ?? '').toBe('');
  }, 120_000);
});
