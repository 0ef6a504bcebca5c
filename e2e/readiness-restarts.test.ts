/**
 * Proved readiness interrupted mid-sequence, with a real Envoy in standalone mode; each case
 * ends in the right final state, Ready, with no sequence left stuck:
 *
 * 1. Envoy killed while the edited route is Proving (in phase add, promote or drop; seen on
 *    the readiness states, not guessed with a sleep) and started again with the same node
 *    id, at once or only once signalbox has noticed it is gone: Ready at the new generation,
 *    the new backend served;
 * 2. signalbox (a separate process) killed while a route is Proving and started again on the
 *    same folder and xDS port; Envoy reconnects: Ready at the route's latest generation,
 *    served by the latest backend (and the next edit is proved too);
 *    and, in process, a restart with nothing changed costs no request: the routes the
 *    reconnecting Envoy serves stay served while the new signalbox proves them;
 * 3. five edits back to back, each arriving while the previous one is being proved: Ready at
 *    the last generation, served by the last backend, no failed request meanwhile.
 *
 * (A route deleted while proving and an edit superseding a proof: e2e/readiness.test.ts.)
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { App } from '../src/app.js';
import type { StatusEntry } from '../src/provider/file/index.js';
import type { Phase, RouteReadiness } from '../src/readiness/index.js';
import { get, startBackend } from './harness/backend.js';
import type { Backend } from './harness/backend.js';
import { Envoy, freePort, waitFor } from './harness/envoy.js';
import { gateway, gatewayClass, httpRoute, service } from './harness/gateway-objects.js';
import { startLoad } from './harness/load.js';
import { SignalboxProcess } from './harness/signalbox.js';
import { replaceFile, startStandalone, yamlOf } from './harness/standalone.js';
import { readyOf } from './harness/status.js';
import type { Cond } from './harness/status.js';

const WEB = 'httproute/default/web';
const GW = 'default/gw';

/** web's entry in a /debug/status listing and its Ready condition */
function webOf(entries: StatusEntry[]): { generation: number; ready?: Cond } | undefined {
  const e = entries.find((x) => x.kind === 'HTTPRoute' && x.name === 'web');
  if (!e) return undefined;
  return { generation: e.generation, ready: readyOf(e.status) };
}

const gatewayYaml = (port: number) =>
  yamlOf(gatewayClass(), gateway([{ name: 'http', protocol: 'HTTP', port }]));

describe('Envoy restarted while a route is Proving', () => {
  // each case on its own folder, signalbox and Envoy: no retry timer of one reaches the next
  let dir: string;
  let app: App;
  let envoy: Envoy;
  let port: number;
  const nodeId = 'envoy-restarts';
  let backends: Backend[] = [];
  const paths: string[] = [];

  const state = () => app.readiness!.state(WEB, GW);
  const web = () => webOf(app.files!.status());
  const url = (p = '/') => `http://127.0.0.1:${port}${p}`;

  beforeEach(async () => {
    port = await freePort();
    dir = mkdtempSync(join(tmpdir(), 'signalbox-e2e-restarts-envoy-'));
    backends = [await startBackend('e0', '127.0.0.2'), await startBackend('e1', '127.0.0.2')];
    writeFileSync(join(dir, 'gateway.yaml'), gatewayYaml(port));
    writeFileSync(
      join(dir, 'services.yaml'),
      yamlOf(...service('svc-0', [backends[0]]), ...service('svc-1', [backends[1]])),
    );
    writeFileSync(join(dir, 'web.yaml'), yamlOf(httpRoute('web', '/', 'svc-0')));
    app = await startStandalone(dir);
    envoy = await Envoy.start({ nodeId, group: GW, xdsPort: app.xdsPort });
    await waitFor('web Ready at generation 1', () => web()?.ready?.status === 'True', 60_000);
    expect((await get(url())).backend).toBe('e0');
  });

  afterEach(async () => {
    await envoy?.stop();
    await app?.close();
    for (const b of backends) await b.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  afterAll(() => {
    if (paths.length > 0) console.log(`Envoy restarts, web's readiness on the way:\n${paths.join('\n')}`);
  });

  test.each<[Phase, 'at once' | 'once signalbox noticed']>([
    ['add', 'at once'],
    ['promote', 'at once'],
    ['drop', 'at once'],
    ['add', 'once signalbox noticed'],
    ['promote', 'once signalbox noticed'],
    ['drop', 'once signalbox noticed'],
  ])(
    'killed in phase %s, started again %s: Ready at the new generation, proved on the Envoy that came back, the new backend served',
    async (phase, when) => {
      const generation = 2;
      const seen: string[] = [];
      let atKill: RouteReadiness | undefined;
      const r = app.readiness!;
      const track = () => {
        const s = state();
        const tag = s && `${s.reason}/${s.phase}@${s.generation}`;
        if (tag && seen[seen.length - 1] !== tag) seen.push(tag);
        if (atKill || s?.generation !== generation || s.reason !== 'Proving' || s.phase !== phase) return;
        atKill = { ...s };
        envoy.proc.kill('SIGKILL'); // synchronously, while the route is in that phase
        seen.push('(Envoy killed)');
      };
      r.on('changed', track);
      replaceFile(dir, 'web.yaml', yamlOf(httpRoute('web', '/', 'svc-1')));
      await waitFor(`web Proving/${phase} at generation ${generation}`, () => atKill, 60_000, 10).catch(
        (err: Error) => {
          throw new Error(`${err.message}: ${seen.join(' ')}`);
        },
      );
      const old = envoy;
      await waitFor('Envoy gone', () => old.exited, 10_000, 10);
      expect(atKill).toMatchObject({ reason: 'Proving', phase, generation, ready: false });
      if (when === 'once signalbox noticed')
        await waitFor(
          'signalbox to notice the Envoy is gone',
          () => state()?.reason !== 'Proving' || undefined,
          60_000,
        ).catch((err: Error) => {
          throw new Error(`${err.message}: ${JSON.stringify(state())}`);
        });
      const noticed = state();
      // the Envoy may have ACKed the last phase just before it died: then it was proved there
      const provedBefore = noticed?.ready === true && noticed.generation === generation;
      seen.push('(Envoy started)');
      envoy = await Envoy.start({ nodeId, group: GW, xdsPort: app.xdsPort });
      // a reconnect is what moves it on, not a retry timer (--probe-retry is 30 s)
      const c = await waitFor(
        `web Ready at generation ${generation}`,
        () => {
          const w = web();
          return w?.ready?.status === 'True' && w.ready.observedGeneration === generation
            ? w.ready
            : undefined;
        },
        25_000,
        20,
      ).catch((err: Error) => {
        throw new Error(
          `${err.message}; on the way: ${seen.join(' ')}; when Envoy was started again: ${JSON.stringify(noticed)}; now: ${JSON.stringify(state())}; Ready: ${JSON.stringify(web()?.ready)}`,
        );
      });
      r.off('changed', track);
      paths.push(`  ${phase}, ${when}: ${seen.join(' → ')} (${c.message})`);
      expect(c.reason).toBe('Ready');
      if (provedBefore) {
        // Ready since before the restart: the new Envoy is served the same state once connected
        await waitFor(
          'the new Envoy serving e1',
          async () => (await get(url('/after'))).backend === 'e1',
          25_000,
        );
      } else expect((await get(url('/after'))).backend).toBe('e1');
      const s = state()!;
      expect(s).toMatchObject({ ready: true, reason: 'Ready', phase: 'done', generation });
      const streams = app.cache.streamsOf(GW).map((x) => x.streamId);
      expect(streams).toHaveLength(1);
      // Ready means proved: on the Envoy that came back (its stream), unless proved before it died
      if (!provedBefore)
        expect(s.nodes.map((x) => ({ node: x.node, stream: x.stream, probed: x.probe?.ok }))).toEqual([
          { node: nodeId, stream: streams[0], probed: true },
        ]);
    },
    180_000,
  );
});

describe('signalbox restarted while a route is Proving (separate process)', () => {
  let dir: string;
  let sb: SignalboxProcess | undefined;
  let envoy: Envoy;
  let port: number;
  let xdsPort: number;
  let debugPort: number;
  let args: string[];
  const backends: Backend[] = [];
  let load: ReturnType<typeof startLoad> | undefined;

  const status = async () => webOf(await sb!.json<StatusEntry[]>('/debug/status'));
  const readiness = async () =>
    (await sb!.json<{ routes: RouteReadiness[] }>('/debug/readiness')).routes.find((r) => r.route === WEB);
  const url = (p = '/') => `http://127.0.0.1:${port}${p}`;
  const readyAtLatest = (what: string) =>
    waitFor(
      what,
      async () => {
        const w = await status();
        return w?.ready?.status === 'True' && w.ready.observedGeneration === w.generation ? w : undefined;
      },
      60_000,
      50,
    ).catch(async (err: Error) => {
      throw new Error(
        `${err.message}: ${JSON.stringify(await status().catch(() => undefined))}; ${JSON.stringify(await readiness().catch(() => undefined))}; logs: ${sb?.logs.slice(-3000)}`,
      );
    });

  beforeAll(async () => {
    port = await freePort();
    xdsPort = await freePort();
    debugPort = await freePort();
    dir = mkdtempSync(join(tmpdir(), 'signalbox-e2e-restarts-sb-'));
    backends.push(await startBackend('s0', '127.0.0.2'));
    writeFileSync(join(dir, 'gateway.yaml'), gatewayYaml(port));
    writeFileSync(join(dir, 'svc-0.yaml'), yamlOf(...service('svc-0', [backends[0]])));
    writeFileSync(join(dir, 'web.yaml'), yamlOf(httpRoute('web', '/', 'svc-0')));
    args = [
      '--config-dir',
      dir,
      '--xds-address',
      `127.0.0.1:${xdsPort}`,
      '--listener-address',
      '127.0.0.1',
      '--probe-timeout',
      '30',
      '--log-level',
      'info',
    ];
    sb = await SignalboxProcess.start(args, debugPort);
    envoy = await Envoy.start({ nodeId: 'envoy-sb-restart', group: GW, xdsPort });
  });

  afterAll(async () => {
    await load?.stop();
    await envoy?.stop();
    await sb?.kill();
    for (const b of backends) await b.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('killed while Proving, started again on the same folder and port: Ready at the latest generation, served by the latest backend', async () => {
    await readyAtLatest('web Ready on s0');
    expect((await get(url())).backend).toBe('s0');
    load = startLoad(url('/load'), 10, { ratePerWorker: 5 });
    await waitFor('load running', () => load!.live.ok >= 20, 30_000, 20);

    // s1 is not listening yet (a backend still starting): the proof waits on its probes
    const s1Port = await freePort('127.0.0.2');
    replaceFile(dir, 'svc-1.yaml', yamlOf(...service('svc-1', [{ host: '127.0.0.2', port: s1Port }])));
    replaceFile(dir, 'web.yaml', yamlOf(httpRoute('web', '/', 'svc-1')));
    const proving = await waitFor(
      'web Proving generation 2 (GET /debug/readiness)',
      async () => {
        const r = await readiness();
        return r?.reason === 'Proving' && r.generation === 2 ? r : undefined;
      },
      30_000,
      10,
    );
    await sb!.kill();
    expect(proving).toMatchObject({ ready: false, reason: 'Proving' });
    backends.push(await startBackend('s1', '127.0.0.2', s1Port));
    sb = await SignalboxProcess.start(args, debugPort);
    const w = await readyAtLatest('web Ready at its latest generation after the restart');
    expect(w.ready?.reason).toBe('Ready');
    expect((await get(url('/after-restart'))).backend).toBe('s1');
    await waitFor(
      'Envoy reconnected',
      async () =>
        (await sb!.json<{ id: string; connected: boolean }[]>('/debug/nodes')).some(
          (x) => x.id === 'envoy-sb-restart' && x.connected,
        ),
      30_000,
    );

    // the restarted signalbox goes on: the next edit is proved too
    const s2 = await startBackend('s2', '127.0.0.2');
    backends.push(s2);
    const before = w.generation;
    replaceFile(dir, 'svc-2.yaml', yamlOf(...service('svc-2', [s2])));
    replaceFile(dir, 'web.yaml', yamlOf(httpRoute('web', '/', 'svc-2')));
    await waitFor('the edit seen', async () => ((await status())?.generation ?? 0) > before, 30_000, 20);
    const w2 = await readyAtLatest('web Ready after the next edit');
    expect(w2.generation).toBe(before + 1);
    expect((await get(url('/next'))).backend).toBe('s2');
    const res = await load.stop();
    load = undefined;
    // measured, not asserted: what the restart cost the load (Envoy keeps serving meanwhile)
    console.log(
      `signalbox restart under load: ${res.total} requests, ${res.failed} failed (${res.non2xx} non-2xx, ${res.errors} no answer)${res.failures.length ? `: ${res.failures.slice(0, 5).join(' | ')}` : ''}; by backend ${JSON.stringify(res.byBackend)}`,
    );
  }, 240_000);
});

describe('signalbox restarted with nothing changed (in process, same xDS port)', () => {
  let dir: string;
  let app: App | undefined;
  let envoy: Envoy;
  let backend: Backend;
  let load: ReturnType<typeof startLoad> | undefined;

  afterAll(async () => {
    await load?.stop();
    await envoy?.stop();
    await app?.close();
    await backend?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('the Envoy reconnecting keeps serving the route while the new signalbox proves it: no request fails', async () => {
    const port = await freePort();
    const xdsPort = await freePort();
    dir = mkdtempSync(join(tmpdir(), 'signalbox-e2e-restarts-same-'));
    // a backend answering in 200 ms: a proof takes that long at least
    backend = await startBackend('k0', '127.0.0.2', 0, { delayMs: 200 });
    writeFileSync(join(dir, 'gateway.yaml'), gatewayYaml(port));
    writeFileSync(join(dir, 'svc-0.yaml'), yamlOf(...service('svc-0', [backend])));
    writeFileSync(join(dir, 'web.yaml'), yamlOf(httpRoute('web', '/', 'svc-0')));
    const start = () => startStandalone(dir, { xdsAddress: `127.0.0.1:${xdsPort}` });
    app = await start();
    envoy = await Envoy.start({ nodeId: 'envoy-same', group: GW, xdsPort });
    const provedOnEnvoy = (a: App) => {
      const s = a.readiness!.state(WEB, GW);
      const streams = a.cache.streamsOf(GW).map((x) => x.streamId);
      return s?.ready && streams.length === 1 && s.nodes.some((x) => x.stream === streams[0] && x.probe?.ok)
        ? s
        : undefined;
    };
    const first = app;
    await waitFor('web proved', () => provedOnEnvoy(first), 60_000);
    load = startLoad(`http://127.0.0.1:${port}/load`, 10, { ratePerWorker: 5 });
    await waitFor('load running', () => load!.live.ok >= 20, 30_000, 20);
    await app.close();
    app = undefined;
    const second = await start();
    app = second;
    const s = await waitFor(
      'web proved again by the new signalbox',
      () => provedOnEnvoy(second),
      60_000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}: ${JSON.stringify(second.readiness!.toJSON())}`);
    });
    expect(s.reason).toBe('Ready');
    const okNow = load.live.ok;
    await waitFor('load after the restart', () => load!.live.ok >= okNow + 20, 30_000, 20);
    const res = await load.stop();
    load = undefined;
    expect(res.failures).toEqual([]);
    expect(res.failed).toBe(0);
  }, 180_000);
});

describe('rapid successive edits', () => {
  let dir: string;
  let app: App;
  let envoy: Envoy;
  let port: number;
  const backends: Backend[] = [];
  let load: ReturnType<typeof startLoad> | undefined;

  const state = () => app.readiness!.state(WEB, GW);
  const web = () => webOf(app.files!.status());
  const url = (p = '/') => `http://127.0.0.1:${port}${p}`;

  beforeAll(async () => {
    port = await freePort();
    dir = mkdtempSync(join(tmpdir(), 'signalbox-e2e-restarts-rapid-'));
    backends.push(await startBackend('r0', '127.0.0.2'));
    // each new backend answers after 150 ms: its proof (two probes) outlasts the next edit
    for (let i = 1; i <= 5; i++) backends.push(await startBackend(`r${i}`, '127.0.0.2', 0, { delayMs: 150 }));
    writeFileSync(join(dir, 'gateway.yaml'), gatewayYaml(port));
    writeFileSync(
      join(dir, 'services.yaml'),
      yamlOf(...backends.flatMap((b, i) => service(`svc-${i}`, [b]))),
    );
    writeFileSync(join(dir, 'web.yaml'), yamlOf(httpRoute('web', '/', 'svc-0')));
    app = await startStandalone(dir);
    envoy = await Envoy.start({ nodeId: 'envoy-rapid', group: GW, xdsPort: app.xdsPort });
  });

  afterAll(async () => {
    await load?.stop();
    await envoy?.stop();
    await app?.close();
    for (const b of backends) await b.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('5 edits back to back under load: Ready at the last generation, served by the last backend, no failed request', async () => {
    await waitFor('web Ready at generation 1', () => web()?.ready?.status === 'True', 60_000);
    load = startLoad(url('/load'), 10, { ratePerWorker: 5 });
    await waitFor('load running', () => load!.live.ok >= 20, 30_000, 20);

    const seen: string[] = [];
    const track = () => {
      const s = state();
      const tag = s && `${s.reason}/${s.phase}@${s.generation}`;
      if (tag && seen[seen.length - 1] !== tag) seen.push(tag);
    };
    app.readiness!.on('changed', track);
    const whileProving: boolean[] = [];
    for (let i = 1; i <= 5; i++) {
      // each edit is its own generation: the next is written once the folder's reload saw this
      // one (the folder debounce), not once it is proved
      if (i > 1) whileProving.push(state()?.reason === 'Proving');
      const was = web()!.generation;
      replaceFile(dir, 'web.yaml', yamlOf(httpRoute('web', '/', `svc-${i}`)));
      await waitFor(`edit ${i} seen`, () => web()!.generation === was + 1, 30_000, 5);
    }
    const last = 6;
    const c = await waitFor(
      `web Ready at generation ${last}`,
      () => {
        const w = web();
        return w?.ready?.status === 'True' && w.ready.observedGeneration === last ? w.ready : undefined;
      },
      60_000,
      10,
    ).catch((err: Error) => {
      throw new Error(`${err.message}: ${seen.join(' ')}; ${JSON.stringify(state())}`);
    });
    app.readiness!.off('changed', track);
    expect(c.reason).toBe('Ready');
    for (let i = 0; i < 3; i++) expect((await get(url('/after'))).backend).toBe('r5');
    const res = await load.stop();
    load = undefined;
    expect(res.failures).toEqual([]);
    expect(res.failed).toBe(0);
    // the edits did land on proofs in progress (the case this is about)
    expect(whileProving.filter(Boolean).length).toBeGreaterThanOrEqual(1);
    // no edit was judged as failed on the way
    expect(seen.filter((t) => !/^(Proving|Ready)\//.test(t))).toEqual([]);
    expect(state()).toMatchObject({ ready: true, reason: 'Ready', phase: 'done', generation: last });
    console.log(
      `rapid edits: route Proving when edits 2-5 were written: ${whileProving.join(', ')}; readiness on the way: ${seen.join(' → ')}`,
    );
  }, 180_000);
});
