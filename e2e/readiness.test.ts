/**
 * Proved readiness in standalone mode with a real Envoy (`serve --config-dir --readiness
 * proved`): a route is Ready only after the add → probe → promote → drop sequence proved its
 * backend through Envoy; an edit under continuous load moves traffic with no failed request
 * and passes through Proving to Ready at the new generation; a backend that does not answer
 * leaves its route ProbeFailed while it keeps serving its previous backend and the other
 * routes go on; a backend with no endpoints is NoEndpoints.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { App } from '../src/app.js';
import type { RouteReadiness } from '../src/readiness/index.js';
import type { JsonObject } from '../src/xds/proto.js';
import { TypeUrl } from '../src/xds/resource.js';
import { REJECTED_REGEX_REWRITE, withRoutes } from './harness/resources.js';
import { get, startBackend } from './harness/backend.js';
import type { Backend } from './harness/backend.js';
import { replaceFile, startStandalone, yamlOf } from './harness/standalone.js';
import { Envoy, freePort, waitFor } from './harness/envoy.js';
import { gateway, gatewayClass, httpRoute, service } from './harness/gateway-objects.js';
import { startLoad } from './harness/load.js';
import { debugStatus, readyOf, routeReady } from './harness/status.js';
import type { Cond } from './harness/status.js';

describe('proved readiness (standalone, real Envoy)', () => {
  let dir: string;
  let app: App;
  let envoy: Envoy;
  let a: Backend;
  let b: Backend;
  let port: number;
  let deadPort: number;
  const seen: RouteReadiness[] = [];

  const replace = (file: string, text: string) => replaceFile(dir, file, text);
  const ready = async (name: string): Promise<Cond | undefined> =>
    routeReady(await debugStatus(app.debugPort), name);
  const readyIs = (name: string, reason: string, generation: number) =>
    waitFor(
      `${name} Ready reason ${reason} at generation ${generation}`,
      async () => {
        const c = await ready(name);
        return c?.reason === reason && c.observedGeneration === generation ? c : undefined;
      },
      60_000,
    ).catch(async (err: Error) => {
      // what readiness was doing, for the failure message
      throw new Error(
        `${err.message}; Ready: ${JSON.stringify(await ready(name))}; readiness: ${JSON.stringify(app.readiness?.toJSON())}`,
      );
    });

  beforeAll(async () => {
    a = await startBackend('a', '127.0.0.2');
    b = await startBackend('b', '127.0.0.3');
    port = await freePort();
    deadPort = await freePort(); // nobody listens there
    dir = mkdtempSync(join(tmpdir(), 'signalbox-e2e-readiness-'));
    writeFileSync(
      join(dir, 'gateway.yaml'),
      yamlOf(gatewayClass(), gateway([{ name: 'http', protocol: 'HTTP', port }])),
    );
    writeFileSync(
      join(dir, 'services.yaml'),
      yamlOf(
        ...service('svc-a', [a]),
        ...service('svc-b', [b]),
        ...service('svc-dead', [{ host: '127.0.0.4', port: deadPort }]),
        ...service('svc-empty', []),
      ),
    );
    writeFileSync(join(dir, 'web.yaml'), yamlOf(httpRoute('web', '/', 'svc-a')));
    writeFileSync(join(dir, 'other.yaml'), yamlOf(httpRoute('other', '/other', 'svc-a')));
    app = await startStandalone(dir);
    app.readiness!.on('changed', () => seen.push(...app.readiness!.states().map((s) => ({ ...s }))));
    envoy = await Envoy.start({ nodeId: 'envoy-1', group: 'default/gw', xdsPort: app.xdsPort });
  });

  afterAll(async () => {
    await envoy?.stop();
    await app?.close();
    await a?.close();
    await b?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a new route is Ready once proved through the Envoy; the debug endpoint shows the probe', async () => {
    const c = await readyIs('web', 'Ready', 1);
    expect(c.status).toBe('True');
    expect((await get(`http://127.0.0.1:${port}/x`)).backend).toBe('a');
    const dbg = (await (await fetch(`http://127.0.0.1:${app.debugPort}/debug/readiness`)).json()) as {
      mode: string;
      routes: RouteReadiness[];
    };
    expect(dbg.mode).toBe('proved');
    const web = dbg.routes.find((r) => r.route === 'httproute/default/web')!;
    expect(web).toMatchObject({ group: 'default/gw', ready: true, phase: 'done' });
    expect(web.nodes.map((n) => [n.node, n.probe?.ok])).toEqual([['envoy-1', true]]);
    // the probe routes are gone once the route is Ready: normal traffic never sees them
    const rc = JSON.stringify(await envoy.configDump('?resource=dynamic_route_configs'));
    expect(rc).not.toContain('/probe/');
  });

  test('an edit under load: Proving, then Ready at generation 2, traffic moved, no failed request', async () => {
    const load = startLoad(`http://127.0.0.1:${port}/load`);
    await waitFor('load running', () => load.live.ok >= 50, 30_000, 20);
    seen.length = 0;
    replace('web.yaml', yamlOf(httpRoute('web', '/', 'svc-b')));
    await readyIs('web', 'Ready', 2);
    const atReady = load.live.byBackend.b ?? 0;
    await waitFor('load through b', () => (load.live.byBackend.b ?? 0) >= atReady + 50, 30_000, 20);
    const res = await load.stop();
    expect(res.failures).toEqual([]);
    expect(res.failed).toBe(0);
    expect(res.byBackend.a).toBeGreaterThanOrEqual(50);

    expect((await get(`http://127.0.0.1:${port}/y`)).backend).toBe('b');
    const phases = seen
      .filter((s) => s.route === 'httproute/default/web')
      .map((s) => `${s.reason}/${s.phase}`);
    expect(phases).toContain('Proving/add');
    expect(phases[phases.length - 1]).toBe('Ready/done');
  });

  test('a backend that does not answer: ProbeFailed, the route keeps its previous backend, the others go on', async () => {
    // both edited at once: the dead backend's probes do not hold the other route back
    replace('other.yaml', yamlOf(httpRoute('other', '/other', 'svc-dead')));
    replace('web.yaml', yamlOf(httpRoute('web', '/', 'svc-a')));
    await readyIs('web', 'Ready', 3);
    const otherMeanwhile = app.readiness!.state('httproute/default/other', 'default/gw');
    expect(otherMeanwhile?.reason).toBe('Proving'); // its probes have 4 s; web needed about 1
    const c = await readyIs('other', 'ProbeFailed', 2);
    expect(c.status).toBe('False');
    expect(c.message).toMatch(/envoy-1/);
    // still served by its previous backend, never by the dead one
    expect((await get(`http://127.0.0.1:${port}/other/z`)).backend).toBe('a');
    expect((await ready('web'))?.reason).toBe('Ready');
  });

  test('a backend that does not resolve (no such Service): never Ready, with the ResolvedRefs reason', async () => {
    replace('other.yaml', yamlOf(httpRoute('other', '/other', 'svc-missing')));
    const c = await readyIs('other', 'BackendNotFound', 3);
    expect(c.status).toBe('False');
    expect(c.message).toMatch(/svc-missing/);
  });

  test('a backend with no endpoints: NoEndpoints (Accepted); once it has a ready endpoint, Ready and served', async () => {
    replace('other.yaml', yamlOf(httpRoute('other', '/other', 'svc-empty')));
    const c = await readyIs('other', 'NoEndpoints', 4);
    expect(c.status).toBe('False');
    const all = await debugStatus(app.debugPort);
    const other = all.find((x) => x.kind === 'HTTPRoute' && x.name === 'other');
    expect(other?.status?.parents?.[0]?.conditions.find((x) => x.type === 'Accepted')?.status).toBe('True');
    // an endpoint comes up (svc-empty → backend b): proved, Ready, served
    replace(
      'services.yaml',
      yamlOf(
        ...service('svc-a', [a]),
        ...service('svc-b', [b]),
        ...service('svc-dead', [{ host: '127.0.0.4', port: deadPort }]),
        ...service('svc-empty', [b]),
      ),
    );
    const r = await readyIs('other', 'Ready', 4);
    expect(r.status).toBe('True');
    expect((await get(`http://127.0.0.1:${port}/other`)).backend).toBe('b');
  });

  test('an EndpointSlice change is proved before traffic gets it: a dead new endpoint leaves the route on its old one', async () => {
    const load = startLoad(`http://127.0.0.1:${port}/eps`);
    await waitFor('load running', () => load.live.ok >= 20, 30_000, 20);
    // svc-a (web's backend) now points at an address nobody listens on
    replace(
      'services.yaml',
      yamlOf(
        ...service('svc-a', [{ host: '127.0.0.4', port: deadPort }]),
        ...service('svc-b', [b]),
        ...service('svc-dead', [{ host: '127.0.0.4', port: deadPort }]),
        ...service('svc-empty', []),
      ),
    );
    const c = await readyIs('web', 'ProbeFailed', 3);
    expect(c.status).toBe('False');
    const res = await load.stop();
    // main traffic never went to the new, dead endpoint
    expect(res.failures).toEqual([]);
    expect((await get(`http://127.0.0.1:${port}/eps`)).backend).toBe('a');
  });

  test('/metrics: route Ready latency by outcome, phase durations, probes by result, quarantined routes', async () => {
    const text = await (await fetch(`http://127.0.0.1:${app.debugPort}/metrics`)).text();
    const value = (re: RegExp) => Number(re.exec(text)?.[1] ?? NaN);
    // routes proved and routes whose proof failed, each counted under its outcome
    expect(value(/^signalbox_route_ready_seconds_count\{outcome="Ready"\} (\d+)$/m)).toBeGreaterThanOrEqual(
      2,
    );
    expect(
      value(/^signalbox_route_ready_seconds_count\{outcome="ProbeFailed"\} (\d+)$/m),
    ).toBeGreaterThanOrEqual(2);
    expect(
      value(/^signalbox_route_ready_seconds_count\{outcome="NoEndpoints"\} (\d+)$/m),
    ).toBeGreaterThanOrEqual(1);
    for (const phase of ['add', 'promote', 'drop'])
      expect(
        value(new RegExp(`^signalbox_readiness_phase_seconds_count\\{phase="${phase}"\\} (\\d+)$`, 'm')),
      ).toBeGreaterThan(0);
    expect(value(/^signalbox_readiness_probes_total\{result="ok"\} (\d+)$/m)).toBeGreaterThan(0);
    // the dead backend's probes: Envoy's own 503 (no upstream answered)
    expect(value(/^signalbox_readiness_probes_total\{result="local-reply"\} (\d+)$/m)).toBeGreaterThan(0);
    // quarantined = the routes the debug endpoint shows ProbeFailed or Nacked (web, right now)
    const routes = (
      (await (await fetch(`http://127.0.0.1:${app.debugPort}/debug/readiness`)).json()) as {
        routes: RouteReadiness[];
      }
    ).routes;
    const quarantined = routes.filter((r) => r.reason === 'ProbeFailed' || r.reason === 'Nacked').length;
    expect(quarantined).toBeGreaterThanOrEqual(1);
    expect(value(/^signalbox_readiness_quarantined_routes (\d+)$/m)).toBe(quarantined);
    expect(value(/^signalbox_readiness_routes\{reason="ProbeFailed"\} (\d+)$/m)).toBe(
      routes.filter((r) => r.reason === 'ProbeFailed').length,
    );
  });

  test('edits during a proof supersede it; a route deleted while proving is dropped cleanly', async () => {
    const services = (aTo: { host: string; port: number }) =>
      yamlOf(
        ...service('svc-a', [aTo]),
        ...service('svc-b', [b]),
        ...service('svc-dead', [{ host: '127.0.0.4', port: deadPort }]),
        ...service('svc-empty', []),
      );
    replace('services.yaml', services(a)); // svc-a answers again: web is proved on it
    await readyIs('web', 'Ready', 3);
    // other → the dead backend (its probes would take 4 s), then deleted while proving
    replace('other.yaml', yamlOf(httpRoute('other', '/other', 'svc-dead')));
    await waitFor(
      'other proving',
      () => app.readiness!.state('httproute/default/other', 'default/gw')?.reason === 'Proving',
    ).catch((err: Error) => {
      throw new Error(
        `${err.message}: ${JSON.stringify(app.readiness!.state('httproute/default/other', 'default/gw'))}`,
      );
    });
    rmSync(join(dir, 'other.yaml'));
    await waitFor(
      'other gone from readiness',
      () => !app.readiness!.state('httproute/default/other', 'default/gw'),
    );
    // web edited twice in a row: the second edit supersedes the first, which is never reported
    seen.length = 0;
    replace('web.yaml', yamlOf(httpRoute('web', '/', 'svc-dead')));
    await waitFor('web proving', () =>
      seen.some((x) => x.route === 'httproute/default/web' && x.reason === 'Proving'),
    );
    replace('web.yaml', yamlOf(httpRoute('web', '/', 'svc-b')));
    await readyIs('web', 'Ready', 5);
    expect(seen.filter((x) => x.route === 'httproute/default/web').map((x) => x.reason)).not.toContain(
      'ProbeFailed',
    );
    expect((await get(`http://127.0.0.1:${port}/z`)).backend).toBe('b');
  });
});

describe('NACK attribution (a change the translator cannot catch, injected below it)', () => {
  // shares nothing with the suite above: its own folder, signalbox and Envoy
  let dir: string;
  let app: App;
  let envoy: Envoy;
  let a: Backend;
  let b: Backend;
  let port: number;

  beforeAll(async () => {
    a = await startBackend('a', '127.0.0.2');
    b = await startBackend('b', '127.0.0.3');
    port = await freePort();
    dir = mkdtempSync(join(tmpdir(), 'signalbox-e2e-readiness-nack-'));
    writeFileSync(
      join(dir, 'all.yaml'),
      yamlOf(
        gatewayClass(),
        gateway([{ name: 'http', protocol: 'HTTP', port }]),
        ...service('svc-a', [a]),
        ...service('svc-b', [b]),
        httpRoute('web', '/web', 'svc-a'),
        httpRoute('other', '/other', 'svc-a'),
        httpRoute('bee', '/bee', 'svc-b'), // svc-b's cluster exists
      ),
    );
    app = await startStandalone(dir);
    envoy = await Envoy.start({ nodeId: 'envoy-nack', group: 'default/gw', xdsPort: app.xdsPort });
  });

  afterAll(async () => {
    await envoy?.stop();
    await app?.close();
    await a?.close();
    await b?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('two routes change at once, Envoy rejects one: that one is Nacked with Envoy’s words and keeps its old backend, the other is proved', async () => {
    const state = (route: string) => app.readiness!.state(`httproute/default/${route}`, 'default/gw');
    await waitFor(
      'all Ready',
      () => state('web')?.ready && state('other')?.ready && state('bee')?.ready,
      60_000,
    );
    const d = app.readiness!.desiredOf('default/gw')!;
    const clusterB = [...d.get(TypeUrl.Cluster).keys()].find((n) => n.includes('svc-b'))!;
    // both routes move to b; web also gets a rewrite regex Envoy's RE2 refuses
    const next = withRoutes(d, (rc) => {
      const j = rc as unknown as { virtual_hosts: { routes: Record<string, unknown>[] }[] };
      for (const vh of j.virtual_hosts)
        for (const r of vh.routes) {
          const name = String(r.name);
          const action = r.route as Record<string, unknown> | undefined;
          if (!action) continue;
          if (name.startsWith('httproute/default/web/') || name.startsWith('httproute/default/other/')) {
            delete action.weighted_clusters;
            action.cluster = clusterB;
          }
          if (name.startsWith('httproute/default/web/')) action.regex_rewrite = REJECTED_REGEX_REWRITE;
        }
    });
    const otherBefore = state('other')!.hash;
    app.readiness!.desire('default/gw', next, new Map());
    const web = await waitFor(
      'web Nacked',
      () => (state('web')?.reason === 'Nacked' ? state('web') : undefined),
      60_000,
    ).catch((err: Error) => {
      throw new Error(
        `${err.message}: ${JSON.stringify(app.readiness!.toJSON())} ${JSON.stringify(app.cache.ledger.toJSON()).slice(0, 4000)}`,
      );
    });
    expect(web.message).toMatch(/missing \)|regex|RE2|rejected/i);
    await waitFor(
      'other proved on b',
      () => state('other')?.reason === 'Ready' && state('other')?.hash !== otherBefore,
      60_000,
    );
    await waitFor(
      'other served by b',
      async () => (await get(`http://127.0.0.1:${port}/other/1`)).backend === 'b',
    );
    // the rejected route keeps serving its previous backend
    expect((await get(`http://127.0.0.1:${port}/web/1`)).backend).toBe('a');
    const ready = await debugStatus(app.debugPort);
    const webCond = readyOf(ready.find((e) => e.name === 'web')!.status!)!;
    expect(webCond).toMatchObject({ status: 'False', reason: 'Nacked' });

    // quarantined until edited: the user's fix (the valid rewrite) is proved and served
    const fixed = withRoutes(
      next,
      (rc) => JSON.parse(JSON.stringify(rc).replaceAll('"((', '"^/web(.*)$')) as JsonObject,
    );
    app.readiness!.desire('default/gw', fixed, new Map());
    await waitFor('web proved after the edit', () => state('web')?.reason === 'Ready', 60_000);
    const r = await waitFor('web served by b', async () => {
      const x = await get(`http://127.0.0.1:${port}/web/1`);
      return x.backend === 'b' ? x : undefined;
    });
    expect(r.status).toBe(200);
  });
});

describe('naive readiness, and no data plane', () => {
  let dir: string;
  let app: App;
  let envoy: Envoy | undefined;
  let a: Backend;
  let port: number;
  const state = (route: string) => app.readiness!.state(`httproute/default/${route}`, 'default/gw');

  beforeAll(async () => {
    a = await startBackend('a', '127.0.0.2');
    port = await freePort();
    const deadPort = await freePort(); // nobody listens there
    dir = mkdtempSync(join(tmpdir(), 'signalbox-e2e-readiness-naive-'));
    writeFileSync(
      join(dir, 'all.yaml'),
      yamlOf(
        gatewayClass(),
        gateway([{ name: 'http', protocol: 'HTTP', port }]),
        ...service('svc-a', [a]),
        ...service('svc-dead', [{ host: '127.0.0.4', port: deadPort }]),
        httpRoute('live', '/live', 'svc-a'),
        httpRoute('dead', '/dead', 'svc-dead'),
      ),
    );
    app = await startStandalone(dir, { readiness: 'naive' });
  });

  afterAll(async () => {
    await envoy?.stop();
    await app?.close();
    await a?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('no Envoy connected: NoDataPlane; once one connects and ACKs, naive calls every route Ready, even one whose backend is dead', async () => {
    await waitFor(
      'NoDataPlane',
      () => state('live')?.reason === 'NoDataPlane' && state('dead')?.reason === 'NoDataPlane',
    );
    envoy = await Envoy.start({ nodeId: 'envoy-naive', group: 'default/gw', xdsPort: app.xdsPort });
    await waitFor('Ready', () => state('live')?.ready && state('dead')?.ready, 30_000);
    // the baseline claims what it has not proved: the dead backend's route is "Ready" at the ACK
    expect(state('dead')?.message).toMatch(/naive: not probed/);
    expect((await get(`http://127.0.0.1:${port}/dead`)).status).toBe(503);
    expect((await get(`http://127.0.0.1:${port}/live`)).backend).toBe('a');
  });
});
