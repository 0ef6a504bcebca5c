/**
 * Local Envoys (`serve --envoy local`) in Kubernetes mode on the real test stack (e2e/k8s:
 * etcd + kube-apiserver with the Gateway API CRDs), signalbox in-process with real stock
 * Envoy: each Gateway applied with kubectl gets its own Envoy on its own loopback address
 * (two on the same port), written to the Gateway's status.addresses on the API server; a
 * requested spec.addresses IPAddress in 127.0.0.0/8 is honoured, one outside it is
 * Programmed=False AddressNotUsable; each address answers with its Gateway's route (a
 * redirect naming the Gateway: no backend needed, the API server refuses loopback
 * endpoints); a Gateway deleted with kubectl stops its Envoy; closing the App leaves none.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startApp } from '../../src/app.js';
import type { App } from '../../src/app.js';
import { makeLogger, silentLogger } from '../../src/log.js';
import { ENVOY_BIN, alive, freePort, requireEnvoy, waitFor } from '../harness/envoy.js';
import { GATEWAY_API, gateway, gatewayClass } from '../harness/gateway-objects.js';
import { kubeShell } from '../harness/kubectl.js';
import type { Cond } from '../harness/status.js';
import { startKubeStack } from '../harness/kube-stack.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any;

const POOL = '127.0.78.0/24';
const ADDR_A = '127.0.78.1';
const ADDR_B = '127.0.78.200'; // requested by gw-b, outside the pool's first addresses

/** One GET on a new connection: status and Location. */
function hit(url: string): Promise<{ status: number; location: string }> {
  return new Promise((res, rej) => {
    const req = request(url, { agent: false, headers: { connection: 'close' } }, (r) => {
      r.resume();
      r.on('end', () => res({ status: r.statusCode ?? 0, location: String(r.headers.location ?? '') }));
    });
    req.setTimeout(5000, () => req.destroy(new Error('timeout')));
    req.on('error', rej);
    req.end();
  });
}

describe('local Envoys in Kubernetes mode (real kube-apiserver, real Envoy)', () => {
  let dir: string;
  let kubeconfig: string;
  let app: App | undefined;
  let port: number;

  const { ok, apply, getJson } = kubeShell(() => kubeconfig);
  const programmed = (gw: Any): Cond | undefined =>
    gw.status?.conditions?.find((c: Cond) => c.type === 'Programmed');
  const envoys = async (): Promise<
    { gateway: string; address: string; state: string; pid: number | null }[]
  > =>
    ((await (await fetch(`http://127.0.0.1:${app!.debugPort}/debug/envoys`)).json()) as { envoys: [] })
      .envoys;

  const redirect = (name: string, gw: string) => ({
    apiVersion: GATEWAY_API,
    kind: 'HTTPRoute',
    metadata: { name, namespace: 'default' },
    spec: {
      parentRefs: [{ name: gw }],
      rules: [{ filters: [{ type: 'RequestRedirect', requestRedirect: { hostname: `${gw}.example` } }] }],
    },
  });

  beforeAll(async () => {
    requireEnvoy();
    dir = mkdtempSync(join(tmpdir(), 'signalbox-k8s-local-envoy-'));
    startKubeStack(dir);
    kubeconfig = join(dir, 'kubeconfig');
    port = await freePort(ADDR_A);
    app = await startApp({
      log: process.env.STACK_LOG ? makeLogger({ level: process.env.STACK_LOG }) : silentLogger(),
      xdsAddress: '127.0.0.1:0',
      debugAddress: '127.0.0.1:0',
      kubeconfig,
      localEnvoys: { envoyPath: ENVOY_BIN, addresses: POOL, concurrency: 1 },
    });
  }, 180_000);

  afterAll(async () => {
    const left = app?.launcher?.pids() ?? [];
    await app?.close();
    for (const pid of left) if (alive(pid)) process.kill(pid, 'SIGKILL');
    if (dir) {
      execFileSync('e2e/k8s/stop.sh', [dir], { stdio: 'ignore' });
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('kubectl apply: an Envoy per Gateway on its own address, in status.addresses; requested addresses honoured or refused', async () => {
    const listeners = [{ name: 'http', protocol: 'HTTP', port }];
    const withAddress = (g: Any, value: string) => ({
      ...g,
      spec: { ...g.spec, addresses: [{ type: 'IPAddress', value }] },
    });
    await apply(
      gatewayClass(),
      gateway(listeners, { name: 'gw-a' }),
      withAddress(gateway(listeners, { name: 'gw-b' }), ADDR_B),
      withAddress(gateway(listeners, { name: 'gw-c' }), '10.1.2.3'),
      redirect('ra', 'gw-a'),
      redirect('rb', 'gw-b'),
    );
    const statuses = await waitFor(
      'Gateway statuses written',
      async () => {
        const [a, b, c] = await Promise.all(['gw-a', 'gw-b', 'gw-c'].map((n) => getJson(`gateway/${n}`)));
        // the CRD's default status says Pending until the controller writes
        const written = (g: Any) => programmed(g) !== undefined && programmed(g)!.reason !== 'Pending';
        return written(a) && written(b) && written(c) ? { a, b, c } : undefined;
      },
      60_000,
      250,
    );
    expect(statuses.a.status.addresses).toEqual([{ type: 'IPAddress', value: ADDR_A }]);
    expect(statuses.b.status.addresses).toEqual([{ type: 'IPAddress', value: ADDR_B }]);
    expect(programmed(statuses.a)).toMatchObject({
      status: 'True',
      message: `Gateway is programmed: its listeners bind ${ADDR_A}`,
    });
    expect(programmed(statuses.b)).toMatchObject({ status: 'True' });
    expect(programmed(statuses.c)).toMatchObject({ status: 'False', reason: 'AddressNotUsable' });
    expect(programmed(statuses.c)!.message).toMatch(/10\.1\.2\.3 is not an IPv4 address in 127\.0\.0\.0\/8/);
    expect(statuses.c.status.addresses).toBeUndefined();

    const running = await waitFor('two local Envoys running', async () => {
      const l = await envoys();
      return l.length === 2 && l.every((e) => e.state === 'running') ? l : undefined;
    });
    expect(running.map((e) => [e.gateway, e.address])).toEqual([
      ['default/gw-a', ADDR_A],
      ['default/gw-b', ADDR_B],
    ]);
    // the same port on both addresses, each answered by its Gateway's route
    let last: unknown;
    for (const [addr, gw] of [
      [ADDR_A, 'gw-a'],
      [ADDR_B, 'gw-b'],
    ])
      await waitFor(
        `${addr}:${port} redirects to ${gw}.example:${port}`,
        async () => {
          const r = await hit(`http://${addr}:${port}/p`);
          last = r;
          return r.status === 302 && r.location === `http://${gw}.example:${port}/p` ? r : undefined;
        },
        60_000,
      ).catch((err: Error) => {
        throw new Error(
          `${err.message}; last answer ${JSON.stringify(last)}; readiness ${JSON.stringify(app?.readiness?.toJSON())}`,
        );
      });
  }, 180_000);

  test('kubectl delete gateway: its Envoy is stopped; closing the App stops the rest', async () => {
    const a = (await envoys()).find((e) => e.gateway === 'default/gw-a')!;
    await ok('kubectl delete gateway gw-a');
    await waitFor('gw-a Envoy gone', async () => !(await envoys()).some((e) => e.gateway === 'default/gw-a'));
    await waitFor('gw-a Envoy process exited', () => !alive(a.pid!));
    await expect(hit(`http://${ADDR_A}:${port}/p`)).rejects.toThrow(/ECONNREFUSED/);
    expect((await hit(`http://${ADDR_B}:${port}/p`)).status).toBe(302);
    const all = app!.launcher!.pids();
    expect(all.length).toBe(2);
    await app!.close();
    app = undefined;
    for (const pid of all) expect(alive(pid)).toBe(false);
  }, 120_000);
});
