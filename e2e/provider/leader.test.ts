/**
 * Two signalbox replicas (real processes, `signalbox serve --kubeconfig`) on the real
 * kube-apiserver of e2e/k8s: both serve xDS from their own informers (an Envoy on the
 * follower gets the Gateway's listener), exactly one — the holder of the Lease — writes
 * status; SIGKILL the leader and the other takes the Lease over and writes the status of
 * the next edit. The takeover time is printed (lease duration 3 s here) and must be within
 * the lease duration (plus one API round trip).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { Envoy, freePort, waitFor } from '../harness/envoy.js';
import { gateway, gatewayClass } from '../harness/gateway-objects.js';
import { startReplica as startReplicaProcess } from '../harness/signalbox.js';
import type { Replica } from '../harness/signalbox.js';
import { startKubeStack } from '../harness/kube-stack.js';

const G = 'gateway.networking.k8s.io/v1';
const KUBECTL = resolve('.tools/bin/kubectl');

interface Info {
  statusWrites: number;
  leader: { identity: string; leading: boolean; acquisitions: number };
}

describe('two replicas, one leader', () => {
  let dir: string;
  let kubeconfig: string;
  const replicas: Replica[] = [];
  let envoy: Envoy | undefined;
  let gwPort: number;

  const kubectl = (args: string[], input?: string) =>
    execFileSync(KUBECTL, ['--kubeconfig', kubeconfig, ...args], { input, encoding: 'utf8' });
  const apply = (...docs: unknown[]) =>
    kubectl(['apply', '-f', '-'], docs.map((d) => stringify(d)).join('---\n'));
  const routeConds = (): string => {
    const r = JSON.parse(kubectl(['get', 'httproute', 'web', '-o', 'json'])) as {
      status?: { parents?: { conditions: { type: string; status: string; observedGeneration: number }[] }[] };
    };
    // Ready (readiness) has tests of its own (e2e/provider/readiness-fleet.test.ts): here, who writes
    return (r.status?.parents?.[0]?.conditions ?? [])
      .filter((c) => c.type !== 'Ready')
      .map((c) => `${c.type}=${c.status}@${c.observedGeneration}`)
      .sort()
      .join();
  };
  const info = async (r: Replica): Promise<Info> =>
    (await (await fetch(`http://127.0.0.1:${r.debugPort}/debug/kubernetes`)).json()) as Info;
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

  const startReplica = (id: string) => startReplicaProcess(kubeconfig, id);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'signalbox-k8s-leader-'));
    startKubeStack(dir);
    kubeconfig = join(dir, 'kubeconfig');
    gwPort = await freePort();
    apply(
      gatewayClass(),
      gateway([{ name: 'http', protocol: 'HTTP', port: gwPort }]),
      {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'web', namespace: 'default' },
        spec: { ports: [{ port: 80 }] },
      },
      route('/'),
    );
    replicas.push(await startReplica('replica-a'), await startReplica('replica-b'));
  });

  afterAll(async () => {
    await envoy?.stop();
    for (const r of replicas) await r.sb.kill();
    if (dir) {
      execFileSync('e2e/k8s/stop.sh', [dir], { stdio: 'ignore' });
      rmSync(dir, { recursive: true, force: true });
    }
  });

  let leader: Replica;
  let follower: Replica;

  test('exactly one replica leads and writes status; both serve xDS', async () => {
    await waitFor('a leader', async () => {
      const all = await Promise.all(replicas.map(info));
      return all.filter((x) => x.leader.leading).length === 1;
    });
    const all = await Promise.all(replicas.map(info));
    leader = replicas[all.findIndex((x) => x.leader.leading)];
    follower = replicas.find((r) => r !== leader)!;
    const lease = JSON.parse(kubectl(['get', 'lease', 'signalbox-leader', '-o', 'json'])) as {
      spec: { holderIdentity: string };
    };
    expect(lease.spec.holderIdentity).toBe(leader.id);

    await waitFor('status written', () => routeConds() === 'Accepted=True@1,ResolvedRefs=True@1');
    apply(route('/v2'));
    await waitFor('generation 2', () => routeConds() === 'Accepted=True@2,ResolvedRefs=True@2');
    expect((await info(leader)).statusWrites).toBeGreaterThan(0);
    expect((await info(follower)).statusWrites).toBe(0);

    // the follower serves xDS too: an Envoy connected to it gets the Gateway's listener
    envoy = await Envoy.start({ nodeId: 'envoy-f', group: 'default/gw', xdsPort: follower.xdsPort });
    await waitFor('listener from the follower', async () => {
      const s = await envoy!.stats('listener_manager.total_listeners_active');
      return (s.get('listener_manager.total_listeners_active') ?? 0) >= 1;
    });
  });

  test('SIGKILL the leader: the other takes the Lease over and writes status', async () => {
    const t0 = Date.now();
    void leader.sb.kill();
    await waitFor('takeover', async () => (await info(follower)).leader.leading, 30_000, 50);
    const takeover = Date.now() - t0;
    console.log(`leader takeover after SIGKILL: ${takeover} ms (lease duration 3000 ms)`);
    // the follower watches the Lease and tries the moment the lease of the last renewal
    // runs out: within the lease duration of the kill, plus one API round trip and the
    // 50 ms this test polls at
    expect(takeover).toBeLessThanOrEqual(3000 + 250);
    apply(route('/v3'));
    await waitFor(
      'generation 3 written by the new leader',
      () => routeConds() === 'Accepted=True@3,ResolvedRefs=True@3',
    );
    expect((await info(follower)).statusWrites).toBeGreaterThan(0);
    const lease = JSON.parse(kubectl(['get', 'lease', 'signalbox-leader', '-o', 'json'])) as {
      spec: { holderIdentity: string; leaseTransitions: number };
    };
    expect(lease.spec.holderIdentity).toBe(follower.id);
    expect(lease.spec.leaseTransitions).toBe(1);
  });
});
