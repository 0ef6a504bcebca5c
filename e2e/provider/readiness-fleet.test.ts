/**
 * Readiness over the fleet on the real kube-apiserver of e2e/k8s: two signalbox replicas
 * (real processes, `serve --kubeconfig --readiness proved --readiness-heartbeat 1`), A the
 * leader (it alone writes status), B a follower, a real Envoy connected to each. The route's
 * Ready — written by A — becomes True once A proved it through its Envoy and B through its
 * own (published in B's report ConfigMap). The Envoy on B stopped, the route edited: A
 * proves the edit, B cannot: Ready=False, EnvoyDisconnected, naming B's Envoy; that Envoy
 * started again → B proves it there → Ready. Then B is SIGKILLed: its report is no longer
 * renewed, and after 3 heartbeats A turns the route's Ready False, ReplicaUnknown, naming B
 * as not having reported (unknown, not Ready).
 *
 * As in kubernetes-readiness.test.ts, the API server refuses loopback EndpointSlice
 * addresses: the backend runs in a network namespace (veth pair, 198.51.100.8/30
 * TEST-NET-2: the root side .9, the backend .10).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { get } from '../harness/backend.js';
import { startNetnsBackends } from '../harness/netns-backend.js';
import type { NetnsBackend } from '../harness/netns-backend.js';
import { Envoy, freePort, waitFor } from '../harness/envoy.js';
import { gateway, gatewayClass, httpRoute, service } from '../harness/gateway-objects.js';
import { startReplica as startReplicaProcess } from '../harness/signalbox.js';
import type { Replica } from '../harness/signalbox.js';
import { readyOf } from '../harness/status.js';
import type { Cond } from '../harness/status.js';
import { startKubeStack } from '../harness/kube-stack.js';

const KUBECTL = resolve('.tools/bin/kubectl');
const BACKEND_IP = '198.51.100.10';
const BACKEND_PORT = 8080;
const HEARTBEAT_S = 1;

interface KubeInfo {
  statusWrites: number;
  leader: { identity: string; leading: boolean };
}

describe('readiness over the fleet: two replicas, the Envoy on the follower', () => {
  let dir: string;
  let kubeconfig: string;
  let backend: NetnsBackend | undefined;
  let envoyA: Envoy | undefined;
  let envoyB: Envoy | undefined;
  let gwPort: number;
  let a: Replica;
  let b: Replica;
  const replicas: Replica[] = [];

  const kubectl = (args: string[], input?: string) =>
    execFileSync(KUBECTL, ['--kubeconfig', kubeconfig, ...args], { input, encoding: 'utf8' });
  const apply = (...docs: unknown[]) =>
    kubectl(['apply', '-f', '-'], docs.map((d) => stringify(d)).join('---\n'));
  const ready = (): Cond | undefined =>
    readyOf((JSON.parse(kubectl(['get', 'httproute', 'web', '-o', 'json'])) as { status?: unknown }).status);
  /** what each replica thinks, for failure messages */
  const debug = async () =>
    JSON.stringify(
      await Promise.all(
        replicas
          .filter((r) => !r.sb.exited)
          .map(async (r) => ({
            id: r.id,
            readiness: await r.sb.json('/debug/readiness'),
            fleet: await r.sb.json('/debug/readiness-fleet'),
          })),
      ),
    ).slice(0, 4000);

  async function startReplica(id: string): Promise<Replica> {
    const r = await startReplicaProcess(kubeconfig, id, [
      '--readiness',
      'proved',
      '--readiness-heartbeat',
      String(HEARTBEAT_S),
      '--probe-timeout',
      '10',
    ]);
    replicas.push(r);
    return r;
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'signalbox-k8s-fleet-'));
    startKubeStack(dir);
    kubeconfig = join(dir, 'kubeconfig');
    backend = startNetnsBackends('sbf', 8, [
      [BACKEND_PORT, 'one'],
      [BACKEND_PORT + 1, 'two'],
    ]);
    gwPort = await freePort();

    // A first, and leading, before B starts: leadership is determined
    a = await startReplica('replica-a');
    await waitFor(
      'replica-a leads',
      async () => (await a.sb.json<KubeInfo>('/debug/kubernetes')).leader.leading,
    );
    b = await startReplica('replica-b');
    // (both on this host: they share the listener port, SO_REUSEPORT; per-instance probing
    // at an Envoy's own address is e2e/readiness-envoys.test.ts)
    envoyA = await Envoy.start({ nodeId: 'envoy-on-a', group: 'default/gw', xdsPort: a.xdsPort });
    envoyB = await Envoy.start({ nodeId: 'envoy-on-b', group: 'default/gw', xdsPort: b.xdsPort });
  }, 120_000);

  afterAll(async () => {
    await envoyA?.stop();
    await envoyB?.stop();
    for (const r of replicas) await r.sb.kill();
    backend?.stop();
    if (dir) {
      execFileSync('e2e/k8s/stop.sh', [dir], { stdio: 'ignore' });
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('an Envoy on each replica: Ready=True (written by the leader) once both are proved', async () => {
    apply(
      gatewayClass(),
      gateway([{ name: 'http', protocol: 'HTTP', port: gwPort }]),
      ...service('web', [{ host: BACKEND_IP, port: BACKEND_PORT }]),
      { ...httpRoute('web', '/', 'web'), metadata: { name: 'web', namespace: 'default' } },
    );
    try {
      await waitFor('Ready=True', () => ready()?.status === 'True', 60_000, 200);
    } catch (err) {
      throw new Error(`${String(err)}; Ready: ${JSON.stringify(ready())}; replicas: ${await debug()}`);
    }
    const cond = ready()!;
    expect(cond).toMatchObject({ status: 'True', reason: 'Ready', observedGeneration: 1 });
    // both replicas proved it, each through its own Envoy
    expect(cond.message).toMatch(/proved on every replica with Envoys of the Gateway \(2\)/);
    expect(cond.message).toMatch(/replica replica-a: proved through 1 Envoy/);
    expect(cond.message).toMatch(/replica replica-b: proved through 1 Envoy/);
    expect(await get(`http://127.0.0.1:${gwPort}/hello`)).toMatchObject({ status: 200, body: '/hello' });

    // A wrote it (B never writes status)
    expect((await a.sb.json<KubeInfo>('/debug/kubernetes')).statusWrites).toBeGreaterThan(0);
    expect((await b.sb.json<KubeInfo>('/debug/kubernetes')).statusWrites).toBe(0);

    // one report ConfigMap per replica, in the Lease's namespace
    const cms = kubectl([
      'get',
      'configmaps',
      '-n',
      'default',
      '-l',
      'signalbox.dev/readiness-report=true',
      '-o',
      'jsonpath={.items[*].metadata.name}',
    ]);
    expect(cms.split(' ').sort()).toEqual(['signalbox-readiness-replica-a', 'signalbox-readiness-replica-b']);
    const fleet = await a.sb.json<{
      peers: { identity: string; fresh: boolean; envoys: Record<string, number> }[];
    }>('/debug/readiness-fleet');
    expect(fleet.peers).toEqual([
      expect.objectContaining({ identity: 'replica-b', fresh: true, envoys: { 'default/gw': 1 } }),
    ]);
  }, 120_000);

  test('the Envoy on the follower stopped, the route edited: Ready=False naming it; started again: Ready', async () => {
    await envoyB!.stop();
    await waitFor('replica-b counts envoy-on-b as away', async () => {
      const own = await b.sb.json<{ away: Record<string, { node: string }[]> }>('/debug/readiness');
      return own.away['default/gw']?.some((x) => x.node === 'envoy-on-b');
    });
    apply(...service('web2', [{ host: BACKEND_IP, port: BACKEND_PORT + 1 }]), {
      ...httpRoute('web', '/', 'web2'),
      metadata: { name: 'web', namespace: 'default' },
    });
    let cond: Cond | undefined;
    try {
      cond = await waitFor(
        'Ready=False at generation 2, EnvoyDisconnected naming envoy-on-b',
        () => {
          const c = ready();
          return c?.observedGeneration === 2 && c.reason === 'EnvoyDisconnected' && c;
        },
        60_000,
        200,
      );
    } catch (err) {
      throw new Error(`${String(err)}; Ready: ${JSON.stringify(ready())}; replicas: ${await debug()}`);
    }
    expect(cond).toMatchObject({ status: 'False' });
    expect(cond!.message).toMatch(
      /replica replica-b: EnvoyDisconnected .*envoy-on-b \(disconnected \d+ s ago\)/,
    );
    // A proved the edit through its Envoy: the new backend answers there
    await waitFor(
      'the new backend answers',
      async () => (await get(`http://127.0.0.1:${gwPort}/x`)).backend === 'two',
    );

    envoyB = await Envoy.start({ nodeId: 'envoy-on-b', group: 'default/gw', xdsPort: b.xdsPort });
    try {
      cond = await waitFor(
        'Ready=True at generation 2',
        () => {
          const c = ready();
          return c?.observedGeneration === 2 && c.status === 'True' && c;
        },
        60_000,
        200,
      );
    } catch (err) {
      throw new Error(`${String(err)}; Ready: ${JSON.stringify(ready())}; replicas: ${await debug()}`);
    }
    expect(cond!.message).toMatch(/replica replica-b: proved through 1 Envoy/);
    // every Envoy serves the new backend (both share the port: a few requests reach each)
    for (let i = 0; i < 10; i++) expect((await get(`http://127.0.0.1:${gwPort}/x`)).backend).toBe('two');
  }, 150_000);

  test('SIGKILL the follower: after 3 heartbeats Ready=False, B unknown (not Ready)', async () => {
    // B's last renewal the leader saw (B may renew once more before it dies: later, not earlier)
    const seen = await a.sb.json<{ peers: { identity: string; renewedAt: string }[] }>(
      '/debug/readiness-fleet',
    );
    const renewedAt = Date.parse(seen.peers.find((p) => p.identity === 'replica-b')!.renewedAt);
    const t0 = Date.now();
    await b.sb.kill();
    let cond: Cond | undefined;
    try {
      cond = await waitFor(
        'Ready=False naming replica-b',
        () => {
          const c = ready();
          return c?.status === 'False' && /replica replica-b has not reported since/.test(c.message) && c;
        },
        30_000,
        100,
      );
    } catch (err) {
      throw new Error(`${String(err)}; Ready: ${JSON.stringify(ready())}; replicas: ${await debug()}`);
    }
    const at = Date.now();
    const ms = at - t0;
    console.log(
      `SIGKILL replica-b → Ready=False after ${ms} ms (heartbeat ${HEARTBEAT_S} s): ${cond!.message}`,
    );
    // stale only once its last renewal is 3 heartbeats old (one clock: this machine's)
    expect(at).toBeGreaterThanOrEqual(renewedAt + 3 * HEARTBEAT_S * 1000);
    expect(cond).toMatchObject({ status: 'False', reason: 'ReplicaUnknown', observedGeneration: 2 });
    // B's ConfigMap is still there (it could not delete it): the leader counts it as unknown
    expect(
      kubectl(['get', 'configmap', 'signalbox-readiness-replica-b', '-n', 'default', '-o', 'name']).trim(),
    ).toBe('configmap/signalbox-readiness-replica-b');
  }, 60_000);

  test('a replica that stops cleanly deletes its report', async () => {
    const done = new Promise<void>((r) => a.sb.proc.once('exit', () => r()));
    a.sb.proc.kill('SIGTERM');
    await done;
    await waitFor(
      'report of replica-a gone',
      () =>
        !kubectl(['get', 'configmaps', '-n', 'default', '-o', 'jsonpath={.items[*].metadata.name}']).includes(
          'signalbox-readiness-replica-a',
        ),
      20_000,
      200,
    );
  }, 60_000);
});
