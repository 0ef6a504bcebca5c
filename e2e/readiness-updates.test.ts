/**
 * Many updates of one route under continuous load, proved against naive readiness, with a
 * real Envoy in standalone mode. 100 times: a new Service with a new backend is written, the
 * HTTPRoute is pointed at it; once the route's Ready condition is True at that generation
 * (what an operator waits for), one request is sent at once, then the previous Service's
 * file is deleted and its backend stopped (as an operator trusting Ready would). Meanwhile 10
 * workers send 5 requests/s each, a new connection per request.
 *
 * Proved mode: no request fails, every update reaches Ready at its generation, and the
 * request sent right after each flip is answered by the new backend. Naive mode runs the
 * same sequence and is measured, not judged: its failed requests and how often its Ready
 * came before Envoy served the new backend are printed beside proved's (READINESS_UPDATES=n
 * runs n updates instead of 100).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { App } from '../src/app.js';
import type { ReadinessMode } from '../src/readiness/index.js';
import { get, startBackend } from './harness/backend.js';
import type { Backend } from './harness/backend.js';
import { Envoy, freePort, waitFor } from './harness/envoy.js';
import { gateway, gatewayClass, httpRoute, service } from './harness/gateway-objects.js';
import { startLoad } from './harness/load.js';
import type { LoadResult } from './harness/load.js';
import { replaceFile, startStandalone, yamlOf } from './harness/standalone.js';
import { routeReady } from './harness/status.js';
import type { Cond } from './harness/status.js';

const UPDATES = Number(process.env.READINESS_UPDATES ?? 100);
const WORKERS = 10;
const RATE = 5; // requests per second per worker

interface Flip {
  /** ms from the route edit to Ready=True at its generation */
  ms: number;
  /** the request sent right after the flip */
  status?: number;
  backend?: string;
  error?: string;
}

interface Summary {
  mode: ReadinessMode;
  updates: number;
  requests: number;
  failed: number;
  non2xx: number;
  errors: number;
  /** updates whose first request after Ready was not answered by the new backend */
  readyBeforeServed: number;
  /** of those, the ms from Ready until a request reached the new backend */
  lagMs: number[];
  readyMs: number[];
  failures: string[];
  wallS: number;
}

const summaries: Summary[] = [];

const pct = (xs: number[], p: number) => {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};

afterAll(() => {
  if (summaries.length === 0) return;
  const row = (s: Summary) => ({
    mode: s.mode,
    updates: s.updates,
    requests: s.requests,
    failed: s.failed,
    non2xx: s.non2xx,
    'no answer': s.errors,
    'Ready before served': s.readyBeforeServed,
    'max lag after Ready (ms)': s.lagMs.length ? Math.max(...s.lagMs) : 0,
    'edit→Ready p50 (ms)': pct(s.readyMs, 50),
    'edit→Ready p95 (ms)': pct(s.readyMs, 95),
    'wall (s)': s.wallS,
  });
  const rows = summaries.map(row);
  const cols = Object.keys(rows[0]);
  const w = cols.map((c) => Math.max(c.length, ...rows.map((r) => String(r[c as keyof typeof r]).length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padStart(w[i])).join(' | ');
  const out = [
    `readiness under ${UPDATES} updates (${WORKERS} workers × ${RATE} req/s, a new connection per request)`,
    line(cols),
    line(w.map((n) => '-'.repeat(n))),
    ...rows.map((r) => line(cols.map((c) => String(r[c as keyof typeof r])))),
    ...summaries
      .filter((s) => s.failures.length > 0)
      .map((s) => `${s.mode} failures: ${s.failures.join(' | ')}`),
  ];
  console.log(out.join('\n'));
});

describe.each<ReadinessMode>(['proved', 'naive'])(
  '%s readiness: route updates to new backends under load',
  (mode) => {
    let dir: string;
    let app: App;
    let envoy: Envoy;
    let port: number;
    const backends = new Map<number, Backend>();
    let load: ReturnType<typeof startLoad> | undefined;

    const url = (p = '/') => `http://127.0.0.1:${port}${p}`;
    const readyCond = (): Cond | undefined => routeReady(app.files!.status(), 'web');
    const describeState = () =>
      `Ready: ${JSON.stringify(readyCond())}; readiness: ${JSON.stringify(app.readiness?.toJSON())}`;

    /**
     * Resolves at the first status change where web's Ready is True at `generation`, after one
     * request sent at that very moment (the route's status is decorated before this listener
     * runs: the file provider listens first).
     */
    const flipAt = (generation: number, since: number, timeoutMs = 90_000): Promise<Flip> =>
      new Promise((resolve, reject) => {
        const r = app.readiness!;
        const done = () => {
          clearTimeout(timer);
          r.off('changed', check);
        };
        const check = () => {
          const c = readyCond();
          if (c?.status !== 'True' || c.observedGeneration !== generation) return;
          done();
          const ms = Date.now() - since;
          get(url('/after-ready')).then(
            (x) => resolve({ ms, status: x.status, backend: x.backend }),
            (err: Error) => resolve({ ms, error: err.message }),
          );
        };
        const timer = setTimeout(() => {
          done();
          reject(
            new Error(`web not Ready at generation ${generation} within ${timeoutMs} ms; ${describeState()}`),
          );
        }, timeoutMs);
        r.on('changed', check);
        check();
      });

    beforeAll(async () => {
      port = await freePort();
      dir = mkdtempSync(join(tmpdir(), `signalbox-e2e-updates-${mode}-`));
      backends.set(0, await startBackend('u0', '127.0.0.2'));
      writeFileSync(
        join(dir, 'gateway.yaml'),
        yamlOf(gatewayClass(), gateway([{ name: 'http', protocol: 'HTTP', port }])),
      );
      writeFileSync(join(dir, 'svc-0.yaml'), yamlOf(...service('svc-0', [backends.get(0)!])));
      writeFileSync(join(dir, 'web.yaml'), yamlOf(httpRoute('web', '/', 'svc-0')));
      app = await startStandalone(dir, { readiness: mode });
      envoy = await Envoy.start({
        nodeId: `envoy-updates-${mode}`,
        group: 'default/gw',
        xdsPort: app.xdsPort,
      });
    });

    afterAll(async () => {
      await load?.stop();
      await envoy?.stop();
      await app?.close();
      for (const b of backends.values()) await b.close();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    test(`${UPDATES} updates, each to a new Service and backend: ${mode === 'proved' ? 'no failed request, each Ready only once the new backend serves' : 'measured'}`, async () => {
      const first = await flipAt(1, Date.now());
      expect(first.backend).toBe('u0');
      const t0 = Date.now();
      load = startLoad(url('/load'), WORKERS, { ratePerWorker: RATE });
      await waitFor('load running', () => load!.live.ok >= WORKERS * 2, 30_000, 20);

      const flips: Flip[] = [];
      const lagMs: number[] = [];
      for (let i = 1; i <= UPDATES; i++) {
        const generation = i + 1;
        const nb = await startBackend(`u${i}`, '127.0.0.2');
        backends.set(i, nb);
        replaceFile(dir, `svc-${i}.yaml`, yamlOf(...service(`svc-${i}`, [nb])));
        const edited = Date.now();
        const flip = flipAt(generation, edited);
        replaceFile(dir, 'web.yaml', yamlOf(httpRoute('web', '/', `svc-${i}`)));
        const f = await flip;
        flips.push(f);
        if (f.backend !== nb.name) {
          // Ready came first: how long until Envoy serves the new backend (measured, not judged)
          const at = Date.now();
          await waitFor(`u${i} served`, async () => (await get(url('/lag'))).backend === nb.name, 60_000, 10);
          lagMs.push(Date.now() - at);
        }
        // Ready at this generation: the previous Service and its backend go
        rmSync(join(dir, `svc-${i - 1}.yaml`));
        await backends.get(i - 1)!.drain();
        backends.delete(i - 1);
      }
      // the last backend serves the load
      const last = `u${UPDATES}`;
      const atEnd = load.live.byBackend[last] ?? 0;
      await waitFor(
        'load through the last backend',
        () => (load!.live.byBackend[last] ?? 0) >= atEnd + 10,
        30_000,
        20,
      );
      const res: LoadResult = await load.stop();
      load = undefined;

      const wrong = flips.map((f, n) => ({ ...f, n: n + 1 })).filter((f) => f.backend !== `u${f.n}`);
      summaries.push({
        mode,
        updates: flips.length,
        requests: res.total,
        failed: res.failed,
        non2xx: res.non2xx,
        errors: res.errors,
        readyBeforeServed: wrong.length,
        lagMs,
        readyMs: flips.map((f) => f.ms),
        failures: res.failures.slice(0, 5),
        wallS: Math.round((Date.now() - t0) / 1000),
      });

      // true of both modes by construction: every update was waited on, under load
      expect(flips).toHaveLength(UPDATES);
      expect(res.total).toBeGreaterThan(UPDATES);
      expect(res.failed).toBe(res.non2xx + res.errors);
      if (mode === 'proved') {
        expect(res.failures).toEqual([]);
        expect(res.failed).toBe(0);
        expect(
          wrong.map((f) => ({ update: f.n, backend: f.backend, status: f.status, error: f.error })),
        ).toEqual([]);
      }
    }, 900_000);
  },
);
