/**
 * The client side of the fan-out benchmark, forked by bench/fanout.ts: opens N Envoy-like
 * ADS streams to signalbox and reports, per stream, when it holds a given target config.
 *
 * IPC (parent → child): {cmd:'start', ...} → {ev:'ready'}; {cmd:'expect', target} →
 * {ev:'armed'} then {ev:'done', times}; {cmd:'stop'}.
 */
import { performance } from 'node:perf_hooks';
import { AdsStream, makeClients, matches } from './ads-client.js';
import type { Target } from './ads-client.js';
import type { FromClients, ToClients } from './ipc.js';

const now = () => performance.timeOrigin + performance.now();
const send = (m: FromClients) => process.send?.(m);

let streams: AdsStream[] = [];
let target: Target = {};
let reached: (number | null)[] = [];
let left = 0;
let onAllReached: (() => void) | undefined;
const errors: string[] = [];

function check(s: AdsStream): void {
  const i = streams.indexOf(s);
  if (i < 0 || reached[i] !== null) return;
  if (matches(s.held, target)) {
    reached[i] = now();
    if (--left === 0) onAllReached?.();
  }
}

function arm(t: Target, timeoutMs: number): Promise<boolean> {
  target = t;
  reached = streams.map(() => null);
  left = streams.length;
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    onAllReached = () => {
      clearTimeout(timer);
      resolve(true);
    };
    for (const s of streams) check(s);
  });
}

function totals(): { responses: number; bytes: number } {
  let responses = 0;
  let bytes = 0;
  for (const s of streams) {
    for (const v of s.responses.values()) responses += v;
    for (const v of s.bytes.values()) bytes += v;
  }
  return { responses, bytes };
}

process.on('message', (m: ToClients) => {
  void (async () => {
    if (m.cmd === 'start') {
      const t0 = now();
      const channels = makeClients(m.port, Math.ceil(m.streams / m.perChannel));
      reached = [];
      const ready = arm(m.target, m.timeoutMs);
      // arm() ran over no streams yet: open them now, each counted as it matches
      streams = [];
      reached = [];
      left = m.streams;
      for (let i = 0; i < m.streams; i++) {
        reached.push(null);
        streams.push(
          new AdsStream({
            client: channels[Math.floor(i / m.perChannel)],
            mode: m.mode,
            nodeId: `bench-${m.mode}-${i}`,
            group: m.group,
            onAck: (s) => check(s),
            onError: (_s, err) => errors.push(err.message),
          }),
        );
      }
      const ok = await ready;
      if (!ok) {
        send({
          ev: 'error',
          message: `${left} of ${m.streams} streams did not get the initial config in ${m.timeoutMs} ms; errors: ${errors.slice(0, 5).join('; ')}`,
        });
        return;
      }
      send({ ev: 'ready', ms: now() - t0, streams: streams.length, channels: channels.length });
    } else if (m.cmd === 'expect') {
      const before = totals();
      const cpu0 = process.cpuUsage();
      const done = arm(m.target, m.timeoutMs);
      send({ ev: 'armed' });
      await done;
      const after = totals();
      const cpu = process.cpuUsage(cpu0);
      send({
        ev: 'done',
        times: reached,
        responses: after.responses - before.responses,
        bytes: after.bytes - before.bytes,
        errors: errors.slice(0, 10),
        cpuS: (cpu.user + cpu.system) / 1e6,
      });
    } else if (m.cmd === 'stop') {
      for (const s of streams) s.close();
      setTimeout(() => process.exit(0), 200).unref();
      process.disconnect?.();
    }
  })();
});

// never outlive the benchmark
process.on('disconnect', () => setTimeout(() => process.exit(0), 500).unref());
setTimeout(() => process.exit(3), 10 * 60_000).unref();
