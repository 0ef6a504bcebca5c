/**
 * Local Envoys (`serve --envoy local`) with real stock Envoy, standalone mode: two Gateways
 * on the SAME port get two Envoys, each listening on its own address from the pool, each
 * address serving its Gateway's route; status.addresses and Programmed name the address;
 * routes are proved Ready through the launched Envoys (probes reach the Gateway's address);
 * an Envoy killed with SIGKILL is started again and serves again; a Gateway file removed
 * stops its Envoy; closing the App leaves no Envoy process.
 */
import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { App } from '../src/app.js';
import { get, startBackend } from './harness/backend.js';
import type { Backend } from './harness/backend.js';
import { ENVOY_BIN, alive, freePort, requireEnvoy, waitFor } from './harness/envoy.js';
import { gateway, gatewayClass, httpRoute, service } from './harness/gateway-objects.js';
import { startStandalone, yamlOf } from './harness/standalone.js';
import { debugStatus, readyOf } from './harness/status.js';

interface EnvoyJson {
  gateway: string;
  address: string;
  nodeId: string;
  state: string;
  pid: number | null;
  adminPort: number | null;
  starts: number;
  restarts: number;
}

/** a pool of its own, so a signalbox run on this machine with the default pool does not collide */
const POOL = '127.0.77.0/24';
const ADDR_A = '127.0.77.1'; // default/gw-a sorts first
const ADDR_B = '127.0.77.2';

describe('local Envoys (serve --envoy local, real Envoy)', () => {
  let dir: string;
  let app: App | undefined;
  let a: Backend;
  let b: Backend;
  let port: number;
  const pids = new Set<number>();

  const debug = async <T>(path: string): Promise<T> =>
    (await (await fetch(`http://127.0.0.1:${app!.debugPort}${path}`)).json()) as T;
  const envoys = async () => {
    const j = await debug<{ envoys: EnvoyJson[] }>('/debug/envoys');
    for (const e of j.envoys) if (e.pid) pids.add(e.pid);
    return j.envoys;
  };
  const envoyOf = async (gw: string) => (await envoys()).find((e) => e.gateway === gw);
  const statusOf = async (kind: string, name: string) =>
    (await debugStatus(app!.debugPort)).find((x) => x.kind === kind && x.name === name);
  const ready = async (route: string) => readyOf((await statusOf('HTTPRoute', route))?.status);
  const readyTrue = (route: string) =>
    waitFor(
      `${route} Ready=True`,
      async () => {
        const c = await ready(route);
        return c?.status === 'True' ? c : undefined;
      },
      90_000,
    ).catch(async (err: Error) => {
      throw new Error(
        `${err.message}; Ready: ${JSON.stringify(await ready(route))}; envoys: ${JSON.stringify(await envoys())}; readiness: ${JSON.stringify(app?.readiness?.toJSON())}`,
      );
    });
  const served = (addr: string, backend: string) =>
    waitFor(
      `${addr}:${port} answered by ${backend}`,
      async () => {
        const r = await get(`http://${addr}:${port}/x`);
        return r.status === 200 && r.backend === backend ? r : undefined;
      },
      60_000,
    );

  beforeAll(async () => {
    requireEnvoy();
    a = await startBackend('a', '127.0.0.2');
    b = await startBackend('b', '127.0.0.3');
    port = await freePort(ADDR_A);
    dir = mkdtempSync(join(tmpdir(), 'signalbox-e2e-local-envoy-'));
    writeFileSync(
      join(dir, 'common.yaml'),
      yamlOf(
        gatewayClass(),
        ...service('svc-a', [a]),
        ...service('svc-b', [b]),
        httpRoute('ra', '/', 'svc-a', 'gw-a'),
        httpRoute('rb', '/', 'svc-b', 'gw-b'),
      ),
    );
    // the same port on both Gateways
    writeFileSync(
      join(dir, 'gw-a.yaml'),
      yamlOf(gateway([{ name: 'http', protocol: 'HTTP', port }], { name: 'gw-a' })),
    );
    writeFileSync(
      join(dir, 'gw-b.yaml'),
      yamlOf(gateway([{ name: 'http', protocol: 'HTTP', port }], { name: 'gw-b' })),
    );
    app = await startStandalone(dir, {
      localEnvoys: { envoyPath: ENVOY_BIN, addresses: POOL, concurrency: 1, envoyLogLevel: 'warning' },
    });
  });

  afterAll(async () => {
    await app?.close();
    for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL');
    await a?.close();
    await b?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('two Gateways on the same port: two Envoys, each on its own address, each serving its route', async () => {
    const both = await waitFor('two local Envoys running', async () => {
      const l = await envoys();
      return l.length === 2 && l.every((e) => e.state === 'running') ? l : undefined;
    });
    expect(both.map((e) => [e.gateway, e.address, e.nodeId])).toEqual([
      ['default/gw-a', ADDR_A, 'default-gw-a-local'],
      ['default/gw-b', ADDR_B, 'default-gw-b-local'],
    ]);
    expect(both[0].pid).not.toBe(both[1].pid);
    expect(both[0].adminPort).not.toBe(both[1].adminPort);
    await served(ADDR_A, 'a');
    await served(ADDR_B, 'b');
    // one connected ADS stream per Envoy, each with its address as the probe address
    const nodes = await debug<{ nodes?: unknown[] } | unknown[]>('/debug/nodes');
    const text = JSON.stringify(nodes);
    for (const [id, addr] of [
      ['default-gw-a-local', ADDR_A],
      ['default-gw-b-local', ADDR_B],
    ])
      expect(text).toMatch(new RegExp(`"${id}"[^}]*"probeAddress":\\s*"${addr.replace(/\./g, '\\.')}"`));
    const metrics = await (await fetch(`http://127.0.0.1:${app!.debugPort}/metrics`)).text();
    expect(metrics).toMatch(/signalbox_local_envoys\{state="running"\} 2/);
  });

  test('status.addresses and Programmed in GET /debug/status', async () => {
    for (const [name, addr] of [
      ['gw-a', ADDR_A],
      ['gw-b', ADDR_B],
    ]) {
      const st = (await statusOf('Gateway', name))!.status!;
      expect(st.addresses).toEqual([{ type: 'IPAddress', value: addr }]);
      expect(st.conditions!.find((c) => c.type === 'Programmed')).toMatchObject({
        status: 'True',
        reason: 'Programmed',
        message: `Gateway is programmed: its listeners bind ${addr}`,
      });
    }
  });

  test('routes are proved Ready through the launched Envoys', async () => {
    for (const r of ['ra', 'rb']) {
      const c = await readyTrue(r);
      expect(c.reason).toBe('Ready');
    }
    const dbg = await debug<{
      routes: { route: string; nodes: { node: string; probe?: { ok: boolean } }[] }[];
    }>('/debug/readiness');
    const ra = dbg.routes.find((r) => r.route === 'httproute/default/ra')!;
    expect(ra.nodes.map((n) => [n.node, n.probe?.ok])).toEqual([['default-gw-a-local', true]]);
  });

  test('an Envoy killed with SIGKILL is started again and serves again', async () => {
    const before = (await envoyOf('default/gw-a'))!;
    process.kill(before.pid!, 'SIGKILL');
    const after = await waitFor('gw-a Envoy restarted', async () => {
      const e = await envoyOf('default/gw-a');
      return e && e.state === 'running' && e.pid !== before.pid && e.restarts === 1 ? e : undefined;
    });
    expect(after.starts).toBe(2);
    expect(alive(before.pid!)).toBe(false);
    await served(ADDR_A, 'a');
    // the restarted Envoy connected again (a new ADS stream, same node id) and the route is Ready
    await readyTrue('ra');
    // the other Gateway's Envoy was not touched
    expect((await envoyOf('default/gw-b'))!.restarts).toBe(0);
    await served(ADDR_B, 'b');
    const metrics = await (await fetch(`http://127.0.0.1:${app!.debugPort}/metrics`)).text();
    expect(metrics).toMatch(/signalbox_local_envoy_restarts_total\{gateway="default\/gw-a"\} 1/);
  });

  test('a Gateway file removed: its Envoy is stopped, the other one serves on', async () => {
    const gwB = (await envoyOf('default/gw-b'))!;
    unlinkSync(join(dir, 'gw-b.yaml'));
    await waitFor('gw-b Envoy gone', async () => (await envoyOf('default/gw-b')) === undefined);
    await waitFor('gw-b Envoy process exited', () => !alive(gwB.pid!));
    await expect(get(`http://${ADDR_B}:${port}/x`)).rejects.toThrow(/ECONNREFUSED/);
    await served(ADDR_A, 'a');
    expect((await envoys()).map((e) => e.gateway)).toEqual(['default/gw-a']);
    expect(await statusOf('Gateway', 'gw-b')).toBeUndefined();
  });

  test('App closed: no Envoy process left', async () => {
    await envoys();
    const all = app!.launcher!.pids();
    expect(all.length).toBe(3); // gw-a twice, gw-b once
    for (const pid of pids) expect(all).toContain(pid);
    await app!.close();
    app = undefined;
    for (const pid of all) expect(alive(pid)).toBe(false);
  });
});
