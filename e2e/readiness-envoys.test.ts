/**
 * Proved readiness with TWO real stock Envoys of ONE Gateway (standalone mode), each in a
 * network namespace of its own (netns.ts: 198.51.100.12/30 and 198.51.100.16/30), so each
 * has its own address and binds the Gateway's listener port there (on one host without
 * namespaces the two would share that port) and signalbox probes each separately, at the
 * peer address of its ADS stream:
 *
 * - signalbox's ADS listens on 0.0.0.0; each Envoy dials the host side of its veth;
 *   signalbox sees the namespace's address as the peer and probes the Envoy there;
 * - the backends listen on the host side of A's veth: reachable from both namespaces (each
 *   has its default route through its host side; Linux delivers a packet to any host
 *   address), and they record the address each request came from: the probes of each
 *   Envoy reach them from that Envoy's namespace.
 *
 * 1. a new route turns Ready once proved through both; `/debug/readiness` lists both nodes
 *    with their probes, `/debug/nodes` their peers (each its namespace's address); every
 *    request sent through each Envoy right after the condition flips reaches the backend;
 *    the same after an edit to a newly created Service, at generation 2;
 * 2. Envoy A stopped (SIGTERM) and the route edited: Ready=False naming A (A is expected
 *    back for --node-grace), while a route Ready before and not edited stays Ready; A
 *    started again (same node id, same namespace): the edit is proved on both, Ready=True at
 *    its generation, both serve the new backend.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { App } from '../src/app.js';
import { peerHost } from '../src/readiness/index.js';
import type { RouteReadiness } from '../src/readiness/index.js';
import { get } from './harness/backend.js';
import { Envoy, alive, freePort, waitFor } from './harness/envoy.js';
import { gateway, gatewayClass, httpRoute, service } from './harness/gateway-objects.js';
import { createNetns } from './harness/netns.js';
import type { Netns } from './harness/netns.js';
import { replaceFile, startStandalone, yamlOf } from './harness/standalone.js';
import { routeReady } from './harness/status.js';
import type { Cond } from './harness/status.js';

interface NodeJson {
  id: string;
  stream: number;
  group: string;
  connected: boolean;
  peer: string;
  probeAddress?: string;
}

const GW = 'default/gw';
const WEB = 'httproute/default/web';
const OTHER = 'httproute/default/other';
const PROBE_PATH = '/.well-known/signalbox-probe/';
/** requests sent through each Envoy right after a Ready condition flips */
const BURST = 25;

/** An HTTP backend that names itself (`x-backend`) and records where each request came from. */
interface Recorder {
  name: string;
  host: string;
  port: number;
  requests: { path: string; from: string }[];
  close(): Promise<void>;
}

function startRecorder(name: string, host: string): Promise<Recorder> {
  return new Promise((resolve, reject) => {
    const requests: Recorder['requests'] = [];
    const srv: Server = createServer((req, res) => {
      requests.push({ path: req.url ?? '', from: String(req.socket.remoteAddress).replace(/^::ffff:/, '') });
      res.writeHead(200, { 'content-type': 'text/plain', 'x-backend': name, connection: 'close' });
      res.end(name);
    });
    srv.keepAliveTimeout = 1000;
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const a = srv.address();
      resolve({
        name,
        host,
        port: typeof a === 'object' && a ? a.port : 0,
        requests,
        close: () =>
          new Promise((r) => {
            srv.closeAllConnections();
            srv.close(() => r());
          }),
      });
    });
  });
}

describe('proved readiness through two Envoys of one Gateway, each in its own network namespace', () => {
  let dir: string;
  let app: App;
  let port: number;
  const nss: Netns[] = [];
  const ids = ['envoy-ns-a', 'envoy-ns-b'] as const;
  const envoys = new Map<string, Envoy>();
  const backends: Recorder[] = [];
  let other: Recorder;

  const nsOf = (id: string) => nss[ids.indexOf(id as (typeof ids)[number])];
  const startEnvoy = async (id: string) => {
    const ns = nsOf(id);
    envoys.set(
      id,
      await Envoy.start({ nodeId: id, group: GW, xdsHost: ns.hostIp, xdsPort: app.xdsPort, netns: ns }),
    );
  };
  const newBackend = async (name: string) => {
    // on the host side of A's veth: reachable from both namespaces
    const b = await startRecorder(name, nss[0].hostIp);
    backends.push(b);
    return b;
  };
  const cond = (name: string): Cond | undefined => routeReady(app.files!.status(), name);
  const explain = (name: string) => async (err: Error) => {
    const nodes = await fetch(`http://127.0.0.1:${app.debugPort}/debug/nodes`)
      .then((r) => r.text())
      .catch(() => '?');
    throw new Error(
      `${err.message}; Ready: ${JSON.stringify(cond(name))}; readiness: ${JSON.stringify(app.readiness?.toJSON())}; nodes: ${nodes.slice(0, 3000)}`,
    );
  };
  /** polled every 20 ms: what is sent once it returns is sent right after the flip */
  const readyAt = (name: string, generation: number, status: 'True' | 'False' = 'True') =>
    waitFor(
      `${name} Ready=${status} at generation ${generation}`,
      () => {
        const c = cond(name);
        return c?.status === status && c.observedGeneration === generation ? c : undefined;
      },
      90_000,
      20,
    ).catch(explain(name));
  /** BURST requests through each Envoy (its namespace's address, the listener port) at once */
  const burst = async (path: string) => {
    const out = await Promise.all(
      nss.map(async (ns) => {
        const got: string[] = [];
        for (let i = 0; i < BURST; i++) {
          const r = await get(`http://${ns.ip}:${port}${path}${i}`).catch((e: Error) => ({
            status: 0,
            backend: e.message,
          }));
          got.push(`${r.status} ${r.backend}`);
        }
        return [ns.ip, got] as const;
      }),
    );
    return Object.fromEntries(out);
  };
  const everyReaches = (backend: string) =>
    Object.fromEntries(nss.map((ns) => [ns.ip, Array<string>(BURST).fill(`200 ${backend}`)]));
  const debugReadiness = async () =>
    (await (await fetch(`http://127.0.0.1:${app.debugPort}/debug/readiness`)).json()) as {
      mode: string;
      routes: RouteReadiness[];
    };
  const debugNodes = async () =>
    (await (await fetch(`http://127.0.0.1:${app.debugPort}/debug/nodes`)).json()) as NodeJson[];
  /**
   * web proved through both Envoys, each at its own address: /debug/readiness has a passed
   * probe per node; /debug/nodes gives each node's stream peer, its namespace's address (what
   * the prober dials: no probe address in the node metadata); the backend got probes for
   * web's state from each namespace
   */
  const provedThroughBoth = async (b: Recorder) => {
    const web = (await debugReadiness()).routes.find((r) => r.route === WEB)!;
    expect(web).toMatchObject({ group: GW, ready: true, reason: 'Ready', phase: 'done' });
    expect(web.nodes.map((n) => [n.node, n.acked, n.probe?.ok]).sort()).toEqual([
      [ids[0], true, true],
      [ids[1], true, true],
    ]);
    const nodes = await debugNodes();
    for (const n of web.nodes) {
      const st = nodes.find((x) => x.stream === n.stream);
      expect(st).toMatchObject({ id: n.node, group: GW, connected: true });
      expect(st!.probeAddress).toBeUndefined();
      expect(peerHost(st!.peer)).toBe(nsOf(n.node).ip);
    }
    const probesFrom = new Set(b.requests.filter((r) => r.path.startsWith(PROBE_PATH)).map((r) => r.from));
    expect([...probesFrom].sort()).toEqual(nss.map((ns) => ns.ip).sort());
    return web;
  };

  beforeAll(async () => {
    nss.push(createNetns('sbea', 12));
    nss.push(createNetns('sbeb', 16));
    port = await freePort();
    other = await newBackend('other');
    const b1 = await newBackend('b1');
    dir = mkdtempSync(join(tmpdir(), 'signalbox-e2e-readiness-envoys-'));
    writeFileSync(
      join(dir, 'gateway.yaml'),
      yamlOf(gatewayClass(), gateway([{ name: 'http', protocol: 'HTTP', port }])),
    );
    writeFileSync(join(dir, 'svc-other.yaml'), yamlOf(...service('svc-other', [other])));
    writeFileSync(join(dir, 'svc-1.yaml'), yamlOf(...service('svc-1', [b1])));
    app = await startStandalone(dir, {
      // reachable from the namespaces (each Envoy dials the host side of its veth)
      xdsAddress: '0.0.0.0:0',
      // each Envoy binds the listener port on its namespace's address
      listenerAddress: '0.0.0.0',
      // the default is 60 s; on a loaded machine, the stop → edit → start of case 2 must
      // not outlast it
      readinessNodeGraceMs: 300_000,
    });
    for (const id of ids) await startEnvoy(id);
    // both connected before any route exists: a route is proved through both from the start
    // (one proved through A alone is Ready before B joins, and B serves it only once it has
    // its listener up)
    await waitFor(
      'both Envoys connected',
      async () => {
        const nodes = await debugNodes();
        return ids.every((id) => nodes.some((n) => n.id === id && n.connected && n.group === GW));
      },
      60_000,
    );
  }, 200_000);

  afterAll(async () => {
    // every step, whatever failed before it
    const quietly = async (f: () => unknown) => {
      try {
        await f();
      } catch {
        /* cleaning up */
      }
    };
    for (const e of envoys.values()) await quietly(() => e.stop());
    await quietly(() => app?.close());
    for (const b of backends) await quietly(() => b.close());
    for (const ns of nss) ns.remove();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  test('a new route turns Ready proved through both Envoys, each probed at its own address; right after, every request through each reaches the backend', async () => {
    replaceFile(dir, 'other.yaml', yamlOf(httpRoute('other', '/other', 'svc-other')));
    replaceFile(dir, 'web.yaml', yamlOf(httpRoute('web', '/', 'svc-1')));
    const c = await readyAt('web', 1);
    const got = await burst('/new/');
    expect(got).toEqual(everyReaches('b1'));
    expect(c.message).toMatch(/proved through 2 Envoy/);
    await provedThroughBoth(backends.find((b) => b.name === 'b1')!);
    // the other route too, through both
    await readyAt('other', 1);
    expect(await burst('/other/')).toEqual(everyReaches('other'));
  }, 200_000);

  test('an edit to a newly created Service: Ready at generation 2, then every request through each Envoy reaches the new backend', async () => {
    const b2 = await newBackend('b2');
    replaceFile(dir, 'svc-2.yaml', yamlOf(...service('svc-2', [b2])));
    replaceFile(dir, 'web.yaml', yamlOf(httpRoute('web', '/', 'svc-2')));
    const c = await readyAt('web', 2);
    const got = await burst('/edit/');
    expect(got).toEqual(everyReaches('b2'));
    expect(c.message).toMatch(/proved through 2 Envoy/);
    await provedThroughBoth(b2);
  }, 200_000);

  test('Envoy A stopped, the route edited: Ready=False naming A, an untouched Ready route stays Ready; A started again: Ready at the edit, both serve the new backend', async () => {
    const [a] = ids;
    expect(cond('other')).toMatchObject({ status: 'True', observedGeneration: 1 });
    const before = (await debugNodes()).find((n) => n.id === a && n.connected)!;

    // A stops (SIGTERM): the process is gone, signalbox sees its stream end
    const envoyA = envoys.get(a)!;
    const pid = envoyA.proc.pid!;
    await envoyA.stop();
    expect(envoyA.exited).toBe(true);
    expect(envoyA.proc.signalCode ?? envoyA.proc.exitCode).not.toBeNull();
    expect(alive(pid)).toBe(false);
    envoys.delete(a);
    await waitFor(
      'signalbox to see A gone',
      async () => !(await debugNodes()).some((n) => n.id === a && n.connected),
      30_000,
    ).catch(explain('web'));

    // what web's readiness goes through from the edit on
    const seen: RouteReadiness[] = [];
    const track = () => {
      const s = app.readiness!.state(WEB, GW);
      if (s) seen.push({ ...s });
    };
    app.readiness!.on('changed', track);
    try {
      const b3 = await newBackend('b3');
      replaceFile(dir, 'svc-3.yaml', yamlOf(...service('svc-3', [b3])));
      replaceFile(dir, 'web.yaml', yamlOf(httpRoute('web', '/', 'svc-3')));
      const down = await waitFor(
        'web Ready=False at generation 3 naming A',
        () => {
          const c = cond('web');
          return c?.observedGeneration === 3 && c.status === 'False' && c.message.includes(a) ? c : undefined;
        },
        90_000,
        20,
      ).catch(explain('web'));
      expect(['EnvoyDisconnected', 'Proving']).toContain(down.reason);
      // the sequence ran to its end through the Envoy connected, and web is still not Ready
      await waitFor(
        'web sequence done',
        () => {
          const s = app.readiness!.state(WEB, GW);
          return s?.generation === 3 && s.phase === 'done';
        },
        90_000,
      ).catch(explain('web'));
      const after = cond('web')!;
      expect(after).toMatchObject({ status: 'False', observedGeneration: 3 });
      expect(after.message).toContain(a);
      // never Ready at generation 3 while A was away
      expect(seen.filter((s) => s.generation === 3 && s.ready)).toEqual([]);
      expect(seen.some((s) => s.generation === 3)).toBe(true);

      // a route Ready before the stop and not edited stays Ready, and B serves it
      expect(cond('other')).toMatchObject({ status: 'True', reason: 'Ready', observedGeneration: 1 });
      expect(app.readiness!.state(OTHER, GW)).toMatchObject({ ready: true, reason: 'Ready', generation: 1 });
      const viaB = await get(`http://${nss[1].ip}:${port}/other/b`);
      expect(viaB).toMatchObject({ status: 200, backend: 'other' });

      // A back, same node id, same namespace: the edit is proved on it too
      await startEnvoy(a);
      const c = await readyAt('web', 3);
      const got = await burst('/back/');
      expect(got).toEqual(everyReaches('b3'));
      expect(c.message).toMatch(/proved through 2 Envoy/);
      const web = await provedThroughBoth(b3);
      // A's new stream
      expect(web.nodes.find((n) => n.node === a)!.stream).not.toBe(before.stream);
      expect(cond('other')).toMatchObject({ status: 'True', observedGeneration: 1 });
      expect(await burst('/other/')).toEqual(everyReaches('other'));
    } finally {
      app.readiness!.off('changed', track);
    }
  }, 400_000);
});
