/**
 * The supervisor of local Envoys (src/launcher/backoff.ts, envoy.ts) with stand-in processes
 * (node scripts): restarts with exponential backoff that resets after a healthy run, stop
 * with SIGTERM then SIGKILL after the bound, output logged line by line with context.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { Backoff } from '../../src/launcher/backoff.js';
import type { BackoffOptions } from '../../src/launcher/backoff.js';
import { LocalEnvoy } from '../../src/launcher/envoy.js';

async function waitFor<T>(what: string, fn: () => T | undefined | false, timeoutMs = 20_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('Backoff', () => {
  test('doubles from the initial delay up to the maximum', () => {
    const b = new Backoff({ initialMs: 100, maxMs: 1000, resetAfterMs: 10_000 });
    expect([0, 0, 0, 0, 0, 0].map(() => b.next(5))).toEqual([100, 200, 400, 800, 1000, 1000]);
    expect(b.failures).toBe(6);
  });
  test('a run of at least resetAfterMs starts over at the initial delay', () => {
    const b = new Backoff({ initialMs: 100, maxMs: 1000, resetAfterMs: 10_000 });
    b.next(1);
    b.next(1);
    expect(b.next(9_999)).toBe(400);
    expect(b.next(10_000)).toBe(100);
    expect(b.next(1)).toBe(200);
  });
  test('defaults: 500 ms doubling to 30 s, reset after 30 s; a bad configuration is refused', () => {
    const b = new Backoff();
    expect([1, 2, 3, 4, 5, 6, 7, 8].map(() => b.next(0))).toEqual([
      500, 1000, 2000, 4000, 8000, 16000, 30000, 30000,
    ]);
    expect(() => new Backoff({ initialMs: 0 })).toThrow();
    expect(() => new Backoff({ initialMs: 10, maxMs: 5 })).toThrow();
  });
});

describe('LocalEnvoy supervisor', () => {
  let dir: string;
  const made: LocalEnvoy[] = [];
  const logs: Record<string, unknown>[] = [];
  const log = pino(
    { level: 'trace', base: undefined },
    { write: (s: string) => void logs.push(JSON.parse(s) as Record<string, unknown>) },
  ).child({ gateway: 'default/gw' });

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'signalbox-supervisor-'));
  });
  afterEach(async () => {
    await Promise.all(made.splice(0).map((e) => e.stop()));
    logs.length = 0;
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** A LocalEnvoy running `node -e script` (or `command`), with start times recorded. */
  function envoy(
    script: string,
    backoff: BackoffOptions,
    o: { command?: string; stopTimeoutMs?: number } = {},
  ) {
    const starts: number[] = [];
    const e: LocalEnvoy = new LocalEnvoy({
      gateway: 'default/gw',
      address: '127.0.10.1',
      nodeId: 'default-gw-local',
      command: o.command ?? process.execPath,
      args: () => ['-e', script],
      bootstrap: (adminPort) => `admin port ${adminPort}\n`,
      bootstrapFile: join(dir, `b-${made.length}.yaml`),
      backoff: new Backoff(backoff),
      log,
      stopTimeoutMs: o.stopTimeoutMs,
      onState: () => {
        if (e.state === 'running') starts.push(Date.now());
      },
    });
    made.push(e);
    e.start();
    return { e, starts };
  }

  test('a process that keeps exiting is started again after 50, 100, 200, 400, 400 ms', async () => {
    const { e, starts } = envoy('process.exit(3)', { initialMs: 50, maxMs: 400, resetAfterMs: 60_000 });
    await waitFor('6 starts', () => starts.length >= 6);
    const gaps = starts.slice(1, 6).map((t, i) => t - starts[i]);
    // lower bounds only: a loaded machine may be slower, never faster
    [50, 100, 200, 400, 400].forEach((d, i) => expect(gaps[i]).toBeGreaterThanOrEqual(d - 5));
    expect(e.restarts).toBeGreaterThanOrEqual(5);
    expect(e.lastExit).toMatchObject({ code: 3, signal: null });
    expect(
      logs.some((l) => l.msg === 'local Envoy exited: starting it again after backoff' && l.code === 3),
    ).toBe(true);
    // stopped while waiting out a backoff: nothing more starts
    await waitFor('backoff', () => e.state === 'backoff');
    const n = e.starts;
    await e.stop();
    expect(e.state).toBe('stopped');
    await new Promise((r) => setTimeout(r, 600));
    expect(e.starts).toBe(n);
  });

  test('a run longer than resetAfterMs resets the backoff', async () => {
    const { e } = envoy('setTimeout(() => process.exit(1), 400)', {
      initialMs: 50,
      maxMs: 5000,
      resetAfterMs: 300,
    });
    await waitFor('3 exits', () => e.restarts >= 3);
    // every run lasted ≥ 400 ms ≥ resetAfterMs: each exit is the first failure again
    expect(e.toJSON().backoffFailures).toBe(1);
    expect(e.lastExit!.ranMs).toBeGreaterThanOrEqual(300);
  });

  test('a command that cannot be started is retried with backoff, the error kept', async () => {
    const { e } = envoy('', { initialMs: 20, maxMs: 100 }, { command: join(dir, 'no-such-envoy') });
    await waitFor('2 failed starts', () => e.restarts >= 2);
    expect(e.lastExit?.error).toMatch(/ENOENT/);
    expect(e.pid).toBeUndefined();
  });

  test('stop: SIGTERM; a process that ignores it is SIGKILLed after the bound', async () => {
    const polite = envoy('setInterval(() => {}, 1000)', { initialMs: 50 });
    const stubborn = envoy(
      "process.on('SIGTERM', () => console.log('ignoring SIGTERM')); console.log('ready'); setInterval(() => {}, 1000)",
      { initialMs: 50 },
      { stopTimeoutMs: 300 },
    );
    await waitFor('both running', () => polite.e.state === 'running' && stubborn.e.state === 'running');
    await waitFor('stubborn handler installed', () =>
      (stubborn.e.toJSON().recentLog as string[]).includes('ready'),
    );
    const pids = [polite.e.pid!, stubborn.e.pid!];
    const t0 = Date.now();
    await Promise.all([polite.e.stop(), stubborn.e.stop()]);
    expect(polite.e.lastExit).toMatchObject({ signal: 'SIGTERM' });
    expect(stubborn.e.lastExit).toMatchObject({ signal: 'SIGKILL' });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(295);
    expect(polite.e.restarts + stubborn.e.restarts).toBe(0);
    for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow(/ESRCH/);
    expect(logs.some((l) => l.msg === 'local Envoy did not stop on SIGTERM: SIGKILL')).toBe(true);
  });

  test("output lines are logged at Envoy's level with the Gateway and the Envoy's pid", async () => {
    const { e } = envoy(
      "console.error('[warning][config] gRPC config stream closed'); console.error('[critical][main] boom'); console.error('  more of boom'); console.log('plain stdout'); setInterval(() => {}, 1000)",
      { initialMs: 50 },
    );
    await waitFor('4 lines', () => (e.toJSON().recentLog as string[]).length >= 4);
    await waitFor('4 log entries', () => logs.filter((l) => l.envoyPid === e.pid).length >= 4);
    const mine = logs.filter((l) => l.envoyPid === e.pid);
    expect(mine.map((l) => [l.level, l.stream, l.envoyLogger, l.msg, l.gateway])).toEqual(
      expect.arrayContaining([
        [40, 'stderr', 'config', 'gRPC config stream closed', 'default/gw'],
        [50, 'stderr', 'main', 'boom', 'default/gw'],
        [50, 'stderr', undefined, '  more of boom', 'default/gw'], // a continuation keeps the level
        [30, 'stdout', undefined, 'plain stdout', 'default/gw'],
      ]),
    );
    expect(e.toJSON()).toMatchObject({
      gateway: 'default/gw',
      address: '127.0.10.1',
      nodeId: 'default-gw-local',
      state: 'running',
      pid: e.pid,
      starts: 1,
      restarts: 0,
    });
  });
});
