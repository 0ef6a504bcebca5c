/**
 * Readiness benchmark: what proved readiness costs in time against the naive baseline, and
 * what it buys (no Ready before traffic moved, no failed request during an edit).
 *
 * One signalbox in this process (startApp, standalone: a folder of Gateway API YAML), N real
 * Envoys of the same Gateway (distinct node ids and admin ports; they all bind the Gateway's
 * listener port, Envoy sets SO_REUSEPORT by default, so the kernel spreads connections over
 * them), two backends (a on 127.0.0.2, b on 127.0.0.3) and K HTTPRoutes `/r<i>` → svc-a, all
 * in one file. For mode naive, then proved (a fresh signalbox and fresh Envoys each, same
 * folder content):
 *
 *   one:  the routes file is rewritten with route r0 moved to the other backend (the others
 *         unchanged: their generation stays);
 *   all:  the routes file is rewritten with all K routes moved at once.
 *
 * Per edit: time from the write (an atomic rename; includes the file provider's debounce)
 * until r0 is Ready=True at its new generation (in-process: `app.readiness.on('changed')`
 * and `state()`), until every edited route is, and until the first request of a continuous
 * load on `/r0` (e2e/harness/load.ts, a new connection per request) is answered by the new
 * backend; failed requests of that load during the edit. At the moment r0's Ready is
 * observed, 4×N requests go to `/r0` at once: any answered by the old backend (or failing) is
 * a "Ready before traffic moved" violation. Edits alternate a→b, b→a; T of each kind.
 * Prints p50/max per mode and the ratio proved/naive. Everything is on 127.0.0.1/2/3 and
 * stops by itself.
 *
 *   node dist/bench/readiness.js [--routes 20] [--trials 5] [--envoys 3] [--modes naive,proved]
 */
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { startApp } from '../src/app.js';
import type { App } from '../src/app.js';
import { silentLogger } from '../src/log.js';
import type { ReadinessMode } from '../src/readiness/index.js';
import { get, startBackend } from '../e2e/harness/backend.js';
import type { Backend } from '../e2e/harness/backend.js';
import { Envoy, freePort, sleep, waitFor } from '../e2e/harness/envoy.js';
import { gateway, gatewayClass, httpRoute, service } from '../e2e/harness/gateway-objects.js';
import { startLoad } from '../e2e/harness/load.js';
import { pct } from './proc.js';

const { values: args } = parseArgs({
  options: {
    routes: { type: 'string', default: '20' },
    trials: { type: 'string', default: '5' },
    envoys: { type: 'string', default: '3' },
    modes: { type: 'string', default: 'naive,proved' },
  },
});
const K = Number(args.routes);
const T = Number(args.trials);
const N = Number(args.envoys);
const MODES = args.modes.split(',') as ReadinessMode[];
const WAIT_MS = 30_000;
const GROUP = 'default/gw';
const now = () => performance.now();
const yamlOf = (...docs: unknown[]) => docs.map((d) => stringify(d)).join('---\n');

const route = (i: number, backend: string) => httpRoute(`r${i}`, `/r${i}`, backend);

interface Trial {
  kind: 'one' | 'all';
  /** ms from the write: readiness was handed the desired snapshot */
  desire: number;
  /** ms from the write */
  r0Ready: number;
  allReady: number;
  firstNew: number;
  failed: number;
  failures: string[];
  /** of the 4×N requests sent when r0's Ready was observed */
  atReadyOld: number;
  atReadyFailed: number;
  atReadySent: number;
}

async function runMode(mode: ReadinessMode, a: Backend, b: Backend): Promise<Trial[]> {
  const dir = mkdtempSync(join(tmpdir(), 'signalbox-bench-readiness-'));
  const port = await freePort();
  const backends = new Array<string>(K).fill('svc-a');
  const gen = new Array<number>(K).fill(1);
  const writeRoutes = () => {
    const f = join(dir, 'routes.yaml');
    writeFileSync(`${f}.tmp`, yamlOf(...backends.map((be, i) => route(i, be))));
    renameSync(`${f}.tmp`, f);
  };
  writeFileSync(
    join(dir, 'gateway.yaml'),
    yamlOf(gatewayClass(), gateway([{ name: 'http', protocol: 'HTTP', port }])),
  );
  writeFileSync(join(dir, 'services.yaml'), yamlOf(...service('svc-a', [a]), ...service('svc-b', [b])));
  writeRoutes();

  let app: App | undefined;
  const envoys: Envoy[] = [];
  try {
    app = await startApp({
      log: silentLogger(),
      xdsAddress: '127.0.0.1:0',
      debugAddress: '127.0.0.1:0',
      configDir: dir,
      listenerAddress: '127.0.0.1',
      readiness: mode,
      readinessAckTimeoutMs: 20_000,
      readinessProbeTimeoutMs: 10_000,
    });
    const rd = app.readiness!;
    // when the pipeline hands readiness a new desired snapshot (after the provider's debounce
    // and the translation): from there on the time is readiness's own
    let lastDesire = 0;
    const desire = rd.desire.bind(rd);
    rd.desire = (...x: Parameters<typeof desire>) => {
      if (Number.isNaN(lastDesire)) lastDesire = now(); // the first one after the write
      desire(...x);
    };
    for (let i = 0; i < N; i++) {
      envoys.push(await Envoy.start({ nodeId: `envoy-${i + 1}`, group: GROUP, xdsPort: app.xdsPort }));
    }
    const readyAt = (i: number) => {
      const s = rd.state(`httproute/default/r${i}`, GROUP);
      return s !== undefined && s.ready && s.generation === gen[i];
    };
    /** resolves with now() once pred() holds, checked on every readiness change (and every 5 ms) */
    const until = (what: string, pred: () => boolean) =>
      new Promise<number>((res, rej) => {
        const done = (t: number | Error) => {
          rd.off('changed', check);
          clearInterval(iv);
          clearTimeout(to);
          if (t instanceof Error) rej(t);
          else res(t);
        };
        const check = () => {
          if (pred()) done(now());
        };
        rd.on('changed', check);
        const iv = setInterval(check, 5);
        const to = setTimeout(
          () => done(new Error(`${mode}: timed out waiting for ${what}: ${JSON.stringify(rd.toJSON())}`)),
          WAIT_MS,
        );
        check();
      });
    await until('initial Ready of every route', () => backends.every((_, i) => readyAt(i)));
    await waitFor(
      'every route served by a through Envoy',
      async () => {
        for (let i = 0; i < K; i++)
          if ((await get(`http://127.0.0.1:${port}/r${i}/x`)).backend !== 'a') return false;
        return true;
      },
      WAIT_MS,
      50,
    );

    const trials: Trial[] = [];
    for (const kind of ['one', 'all'] as const) {
      if (kind === 'all' && backends.some((be) => be !== backends[0])) {
        // an odd number of one-route edits left r0 on svc-b: move it back (not measured) so
        // that every route changes in the all-routes edits
        backends[0] = backends[1];
        gen[0]++;
        writeRoutes();
        await until('r0 Ready after the reset', () => readyAt(0));
        await waitFor(
          'r0 served by a after the reset',
          async () => (await get(`http://127.0.0.1:${port}/r0/x`)).backend === 'a',
          WAIT_MS,
          20,
        );
        await sleep(300);
      }
      for (let t = 0; t < T; t++) {
        const edited = kind === 'one' ? [0] : backends.map((_, i) => i);
        const to = backends[0] === 'svc-a' ? 'svc-b' : 'svc-a';
        const newName = to === 'svc-a' ? 'a' : 'b';
        const oldName = to === 'svc-a' ? 'b' : 'a';
        const load = startLoad(`http://127.0.0.1:${port}/r0/load`);
        await waitFor('load running', () => load.live.ok >= 20, WAIT_MS, 5);
        const baseNew = load.live.byBackend[newName] ?? 0;
        for (const i of edited) {
          backends[i] = to;
          gen[i]++;
        }
        const t0 = now();
        lastDesire = NaN;
        let firstNew = NaN;
        const watchNew = setInterval(() => {
          if (Number.isNaN(firstNew) && (load.live.byBackend[newName] ?? 0) > baseNew) firstNew = now();
        }, 1);
        // when each edited route was first seen Ready at its new generation
        const readyT = new Map<number, number>();
        const track = () => {
          for (const i of edited) if (!readyT.has(i) && readyAt(i)) readyT.set(i, now());
        };
        rd.on('changed', track);
        const trackIv = setInterval(track, 5);
        writeRoutes();
        await until('r0 Ready at its new generation', () => (track(), readyT.has(0)));
        const r0Ready = readyT.get(0)!;
        // at the moment Ready is observed: who answers?
        const shots = await Promise.all(
          Array.from({ length: 4 * N }, () =>
            get(`http://127.0.0.1:${port}/r0/at-ready`).then(
              (r) => (r.status === 200 ? r.backend : `HTTP ${r.status}`),
              (err: Error) => `error ${err.message}`,
            ),
          ),
        );
        await until('every edited route Ready', () => (track(), readyT.size === edited.length));
        rd.off('changed', track);
        clearInterval(trackIv);
        const allReady = Math.max(...readyT.values());
        await waitFor('load through the new backend', () => !Number.isNaN(firstNew), WAIT_MS, 2);
        clearInterval(watchNew);
        await waitFor(
          'load settled on the new backend',
          () => (load.live.byBackend[newName] ?? 0) >= baseNew + 50,
          WAIT_MS,
          5,
        );
        await sleep(200);
        const res = await load.stop();
        if (kind === 'all') {
          for (let i = 0; i < K; i++) {
            const r = await get(`http://127.0.0.1:${port}/r${i}/check`);
            if (r.backend !== newName)
              throw new Error(`${mode}: /r${i} answered by ${r.backend} after the edit`);
          }
        }
        trials.push({
          kind,
          desire: lastDesire - t0,
          r0Ready: r0Ready - t0,
          allReady: allReady - t0,
          firstNew: firstNew - t0,
          failed: res.failed,
          failures: res.failures.slice(0, 3),
          atReadyOld: shots.filter((s) => s === oldName).length,
          atReadyFailed: shots.filter((s) => s !== oldName && s !== newName).length,
          atReadySent: shots.length,
        });
        const x = trials[trials.length - 1];
        console.log(
          `  ${mode.padEnd(6)} ${kind} #${t + 1} →${newName}: r0 Ready ${x.r0Ready.toFixed(0)} ms, all Ready ${x.allReady.toFixed(0)} ms, ` +
            `first ${newName} ${x.firstNew.toFixed(0)} ms, load ${res.total} req / ${res.failed} failed, ` +
            `at Ready: ${x.atReadyOld} old, ${x.atReadyFailed} failed of ${x.atReadySent}`,
        );
        await sleep(300); // let the drop phase's leftovers and Envoy's drains settle
      }
    }
    // every Envoy took part: requests each one served on the Gateway's listener
    const served: number[] = [];
    for (const e of envoys) {
      const st = await e.stats('downstream_rq_total');
      let n = 0;
      for (const [k, v] of st) if (k.startsWith('http.') && !k.startsWith('http.admin.')) n += v;
      served.push(n);
    }
    console.log(`  requests served per Envoy (SO_REUSEPORT spread): ${served.join(', ')}`);
    return trials;
  } finally {
    for (const e of envoys) await e.stop();
    await app?.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const fmt = (xs: number[]) => {
  const s = [...xs].sort((p, q) => p - q);
  return `${pct(s, 50).toFixed(0)} / ${s[s.length - 1].toFixed(0)}`;
};
const p50 = (xs: number[]) =>
  pct(
    [...xs].sort((p, q) => p - q),
    50,
  );

async function main(): Promise<void> {
  console.log(
    `readiness bench: ${K} routes, ${T} trials per edit kind, ${N} Envoy(s); load average ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  const a = await startBackend('a', '127.0.0.2');
  const b = await startBackend('b', '127.0.0.3');
  const results = new Map<ReadinessMode, Trial[]>();
  try {
    for (const m of MODES) {
      console.log(`mode ${m}:`);
      results.set(m, await runMode(m, a, b));
    }
  } finally {
    await a.close();
    await b.close();
  }

  console.log(
    `\nms from the write (p50 / max over ${T} edits); "desired": readiness got the new snapshot; ` +
      '"all": every edited route Ready; failed: requests of the load on /r0 that failed',
  );
  const cols = ['mode', 'edit', 'desired', 'r0 Ready', 'all Ready', 'first new', 'desired→Ready', 'failed'];
  const w = [7, 5, 10, 10, 10, 10, 14, 7];
  const row = (c: string[]) => c.map((x, k) => x.padEnd(w[k])).join(' ');
  console.log(row(cols) + ' Ready before traffic moved');
  for (const [m, trials] of results) {
    for (const kind of ['one', 'all'] as const) {
      const ts = trials.filter((x) => x.kind === kind);
      const viol = ts.filter((x) => x.atReadyOld + x.atReadyFailed > 0).length;
      const old = ts.reduce((s, x) => s + x.atReadyOld, 0);
      const bad = ts.reduce((s, x) => s + x.atReadyFailed, 0);
      const sent = ts.reduce((s, x) => s + x.atReadySent, 0);
      const failed = ts.reduce((s, x) => s + x.failed, 0);
      console.log(
        row([
          m,
          kind,
          fmt(ts.map((x) => x.desire)),
          fmt(ts.map((x) => x.r0Ready)),
          fmt(ts.map((x) => x.allReady)),
          fmt(ts.map((x) => x.firstNew)),
          fmt(ts.map((x) => x.r0Ready - x.desire)),
          String(failed),
        ]) + ` ${viol} of ${ts.length} edits (${old} of ${sent} requests old, ${bad} failed)`,
      );
      const f = ts.flatMap((x) => x.failures);
      if (f.length > 0) console.log(`        failures: ${f.slice(0, 3).join(' | ')}`);
    }
  }
  const naive = results.get('naive');
  const proved = results.get('proved');
  if (naive && proved) {
    console.log('\nratio proved / naive (p50)');
    for (const kind of ['one', 'all'] as const) {
      const r = (f: (x: Trial) => number) =>
        (
          p50(proved.filter((x) => x.kind === kind).map(f)) / p50(naive.filter((x) => x.kind === kind).map(f))
        ).toFixed(2);
      console.log(
        `  ${kind}: r0 Ready ${r((x) => x.r0Ready)}×, all Ready ${r((x) => x.allReady)}×, ` +
          `first new ${r((x) => x.firstNew)}×, desired→Ready ${r((x) => x.r0Ready - x.desire)}×`,
      );
    }
  }
  console.log(
    `load average at the end: ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
