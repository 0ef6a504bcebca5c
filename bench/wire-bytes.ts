/**
 * Bytes on the wire for a one-route change with 10,000 routes, delta vs state of the world.
 *
 * signalbox runs in this process (startApp on 127.0.0.1), one Envoy-like client
 * (bench/ads-client.ts) per run. The change is one route moving to a new backend, as a
 * Gateway API backendRef edit does: the route's cluster is replaced by a new cluster (with
 * its ClusterLoadAssignment) and the old one is removed, so CDS, EDS and RDS change.
 *
 * Two shapes of 10,000 routes:
 *   A. one listener, one RouteConfiguration with 10,000 virtual hosts (one route each);
 *   B. 100 listeners × 100 filter chains, each with its own RouteConfiguration (10,000).
 * Each with 10,000 clusters + 10,000 ClusterLoadAssignments.
 *
 * Counts the encoded bytes of the responses the client received for the change (per type),
 * and signalbox's own count (signalbox_xds_pushed_bytes_total), which must agree.
 *
 * Then the same change at scale: K streams (from a second process, bench/fanout-clients.ts)
 * holding shape B, and the CPU signalbox (this process) spends per stream on the change.
 *
 *   node dist/bench/wire-bytes.js [--routes 10000] [--shapes A,B] [--modes sotw,delta]
 *                                 [--scale-streams 20]   (0: skip)
 */
import { fork } from 'node:child_process';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startApp } from '../src/app.js';
import type { App } from '../src/app.js';
import { silentLogger } from '../src/log.js';
import { Snapshot } from '../src/xds/cache/snapshot.js';
import type { JsonObject } from '../src/xds/proto.js';
import { SHORT, TypeUrl } from '../src/xds/resource.js';
import type { Resource } from '../src/xds/resource.js';
import { cla, cluster, listener, res } from '../e2e/harness/resources.js';
import { AdsStream, makeClients, matches, targetOf } from './ads-client.js';
import type { Mode } from './ads-client.js';
import { waitMsg } from './ipc.js';
import type { ToClients } from './ipc.js';

const here = dirname(fileURLToPath(import.meta.url));

const { values: args } = parseArgs({
  options: {
    routes: { type: 'string', default: '10000' },
    shapes: { type: 'string', default: 'A,B' },
    modes: { type: 'string', default: 'sotw,delta' },
    'scale-streams': { type: 'string', default: '20' },
  },
});
const N = Number(args.routes);
const GROUP = 'default/gw';
const CHANGED = 17; // the route that moves
const T = [TypeUrl.Cluster, TypeUrl.Endpoint, TypeUrl.Listener, TypeUrl.Route] as const;

const hcm = (stat: string, rds: string): JsonObject => ({
  '@type':
    'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
  stat_prefix: stat,
  rds: { route_config_name: rds, config_source: { ads: {}, resource_api_version: 'V3' } },
  http_filters: [
    {
      name: 'envoy.filters.http.router',
      typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' },
    },
  ],
});
const vhost = (i: number, clusterName: string): JsonObject => ({
  name: `host-${i}`,
  domains: [`host-${i}.example.com`],
  routes: [{ match: { prefix: '/' }, route: { cluster: clusterName, timeout: '5s' } }],
});
const backend = (i: number, suffix = '') => `ns-${i % 100}/svc-${i}${suffix}`;

function backends(moved: boolean): Resource[] {
  const out: Resource[] = [];
  for (let i = 0; i < N; i++) {
    const name = moved && i === CHANGED ? backend(i, '-v2') : backend(i);
    out.push(res(TypeUrl.Cluster, cluster(name)));
    out.push(
      res(
        TypeUrl.Endpoint,
        cla(name, [
          { host: `10.${(i >> 8) & 255}.${i & 255}.1`, port: 8080 },
          { host: `10.${(i >> 8) & 255}.${i & 255}.2`, port: 8080 },
        ]),
      ),
    );
  }
  return out;
}

/** Shape A: one RouteConfiguration with N virtual hosts. */
function shapeA(moved: boolean): Resource[] {
  const vhosts: JsonObject[] = [];
  for (let i = 0; i < N; i++) vhosts.push(vhost(i, moved && i === CHANGED ? backend(i, '-v2') : backend(i)));
  return [
    res(TypeUrl.Listener, listener('http', 10080, 'http')),
    res(TypeUrl.Route, { name: 'http', virtual_hosts: vhosts }),
    ...backends(moved),
  ];
}

/** Shape B: N RouteConfigurations, one per host, behind 100 listeners × N/100 filter chains. */
function shapeB(moved: boolean): Resource[] {
  const out: Resource[] = [];
  const per = Math.ceil(N / 100);
  for (let l = 0; l * per < N; l++) {
    const chains: JsonObject[] = [];
    for (let i = l * per; i < Math.min(N, (l + 1) * per); i++) {
      chains.push({
        filter_chain_match: { server_names: [`host-${i}.example.com`] },
        filters: [
          { name: 'envoy.filters.network.http_connection_manager', typed_config: hcm(`h${i}`, `route-${i}`) },
        ],
      });
    }
    out.push(
      res(TypeUrl.Listener, {
        name: `https-${l}`,
        address: { socket_address: { address: '127.0.0.1', port_value: 20000 + l } },
        filter_chains: chains,
      }),
    );
  }
  for (let i = 0; i < N; i++) {
    out.push(
      res(TypeUrl.Route, {
        name: `route-${i}`,
        virtual_hosts: [vhost(i, moved && i === CHANGED ? backend(i, '-v2') : backend(i))],
      }),
    );
  }
  return [...out, ...backends(moved)];
}

type PerType = Record<string, number>;

function pushed(app: App, mode: Mode): Promise<PerType> {
  return app.metrics.pushedBytes.get().then((m) => {
    const out: PerType = {};
    for (const v of m.values) if (v.labels.mode === mode) out[String(v.labels.type)] = v.value;
    return out;
  });
}

function diff(a: PerType, b: PerType): PerType {
  const out: PerType = {};
  for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) out[k] = (a[k] ?? 0) - (b[k] ?? 0);
  return out;
}

const sum = (p: PerType) => Object.values(p).reduce((x, y) => x + y, 0);

/** ok() is re-evaluated only after the stream ACKed something new (matching 30,000 names costs). */
function heldMatches(s: AdsStream, t: ReturnType<typeof targetOf>): () => boolean {
  let seen = -1;
  return () => {
    if (s.error !== undefined) return true;
    if (s.acks === seen) return false;
    seen = s.acks;
    return matches(s.held, t);
  };
}

function waitUntil(what: string, ok: () => boolean, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const end = Date.now() + timeoutMs;
    const tick = () => {
      if (ok()) return resolve();
      if (Date.now() > end) return reject(new Error(`timed out waiting for ${what}`));
      setTimeout(tick, 5);
    };
    tick();
  });
}

interface Measure {
  client: PerType;
  server: PerType;
  responses: PerType;
  ms: number;
  /** CPU of this process (signalbox + the one client) from the change until the client held it */
  cpuMs: number;
  initialBytes: number;
}

async function measure(mode: Mode, before: Resource[], after: Resource[]): Promise<Measure> {
  const app = await startApp({ log: silentLogger(), xdsAddress: '127.0.0.1:0', stepTimeoutMs: 30_000 });
  const [client] = makeClients(app.xdsPort, 1);
  try {
    app.cache.setSnapshot(GROUP, new Snapshot(before));
    const s = new AdsStream({ client, mode, nodeId: `wire-${mode}`, group: GROUP });
    const t0 = targetOf(before);
    await waitUntil('the initial config', heldMatches(s, t0), 60_000);
    if (s.error) throw s.error;
    const bytes0 = new Map(s.bytes);
    const resp0 = new Map(s.responses);
    const server0 = await pushed(app, mode);
    const t1 = targetOf(after);
    const next = new Snapshot(after);
    const cpu0 = process.cpuUsage();
    const start = performance.now();
    app.cache.setSnapshot(GROUP, next);
    await waitUntil('the changed config', heldMatches(s, t1), 60_000);
    const ms = performance.now() - start;
    const cpu = process.cpuUsage(cpu0);
    // anything still coming (a last removal step) is counted too
    let last = -1;
    await waitUntil(
      'quiet',
      () => {
        const n = [...s.responses.values()].reduce((x, y) => x + y, 0);
        const quiet = n === last;
        last = n;
        return quiet;
      },
      10_000,
    ).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 300));
    if (s.error) throw s.error;
    const c: PerType = {};
    const r: PerType = {};
    for (const t of T) {
      c[SHORT[t]] = (s.bytes.get(t) ?? 0) - (bytes0.get(t) ?? 0);
      r[SHORT[t]] = (s.responses.get(t) ?? 0) - (resp0.get(t) ?? 0);
    }
    const server = diff(await pushed(app, mode), server0);
    s.close();
    return {
      client: c,
      server,
      responses: r,
      ms,
      cpuMs: (cpu.user + cpu.system) / 1000,
      initialBytes: sum(Object.fromEntries(bytes0)),
    };
  } finally {
    client.close();
    await app.close();
  }
}

/** K streams in a second process hold `before`; one change; signalbox (this process) CPU and times. */
async function atScale(mode: Mode, before: Resource[], after: Resource[], streams: number) {
  const app = await startApp({ log: silentLogger(), xdsAddress: '127.0.0.1:0', stepTimeoutMs: 60_000 });
  const clients = fork(join(here, 'fanout-clients.js'), [], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const send = (m: ToClients) => clients.send(m);
  try {
    app.cache.setSnapshot(GROUP, new Snapshot(before));
    const c0 = process.cpuUsage();
    send({
      cmd: 'start',
      port: app.xdsPort,
      mode,
      streams,
      perChannel: 1,
      group: GROUP,
      target: targetOf(before),
      timeoutMs: 120_000,
    });
    const ready = await waitMsg(clients, 'ready', 130_000);
    const c1 = process.cpuUsage(c0);
    send({ cmd: 'expect', target: targetOf(after), timeoutMs: 90_000 });
    await waitMsg(clients, 'armed', 10_000);
    const next = new Snapshot(after);
    const cpu0 = process.cpuUsage();
    const t0 = performance.timeOrigin + performance.now();
    app.cache.setSnapshot(GROUP, next);
    const done = await waitMsg(clients, 'done', 100_000);
    const cpu = process.cpuUsage(cpu0);
    const ms = done.times
      .filter((t): t is number => t !== null)
      .map((t) => t - t0)
      .sort((a, b) => a - b);
    return {
      connectMs: ready.ms,
      connectCpuMs: (c1.user + c1.system) / 1000,
      ms,
      missing: done.times.length - ms.length,
      cpuMs: (cpu.user + cpu.system) / 1000,
      bytes: done.bytes,
    };
  } finally {
    try {
      send({ cmd: 'stop' });
    } catch {
      /* gone */
    }
    setTimeout(() => clients.kill('SIGKILL'), 2000).unref();
    await app.close();
  }
}

const kib = (n: number) => `${(n / 1024).toFixed(1)} KiB`;
const types = (p: PerType, r?: PerType) =>
  ['CDS', 'EDS', 'LDS', 'RDS'].map((t) => `${t} ${p[t] ?? 0}${r ? ` (${r[t] ?? 0} resp)` : ''}`).join(', ');

async function main(): Promise<void> {
  const deadline = setTimeout(() => {
    console.error('wire-bytes benchmark: time limit (5 min) reached');
    process.exit(2);
  }, 5 * 60_000);
  deadline.unref();
  console.log(
    `wire bytes for one route moving to a new backend (new cluster + CLA, old ones removed), ${N} routes, ` +
      `${N} clusters, ${N} CLAs; bytes = encoded (Delta)DiscoveryResponse messages received for the change ` +
      `(gRPC adds 5 bytes of framing per message)`,
  );
  for (const [shape, build] of [
    [`A: 1 RouteConfiguration with ${N} virtual hosts`, shapeA],
    [`B: ${N} RouteConfigurations (100 listeners × ${Math.ceil(N / 100)} filter chains)`, shapeB],
  ] as const) {
    if (!String(args.shapes).split(',').includes(shape[0])) continue;
    const tb = performance.now();
    const before = build(false);
    const after = build(true);
    console.log(`shape ${shape} (built in ${((performance.now() - tb) / 1000).toFixed(1)} s)`);
    const out: Partial<Record<Mode, Measure>> = {};
    for (const mode of String(args.modes).split(',') as Mode[]) {
      const m = await measure(mode, before, after);
      out[mode] = m;
      const agree = sum(m.client) === sum(m.server) ? 'agrees' : `DIFFERS: ${sum(m.server)}`;
      console.log(
        `  ${mode.padEnd(5)} change: ${sum(m.client)} bytes (${kib(sum(m.client))}) in ${m.ms.toFixed(0)} ms (CPU ${m.cpuMs.toFixed(0)} ms) — ` +
          `${types(m.client, m.responses)}; signalbox_xds_pushed_bytes_total ${agree}; ` +
          `initial config ${kib(m.initialBytes)}`,
      );
    }
    const s = sum(out.sotw?.client ?? {});
    const d = sum(out.delta?.client ?? {});
    if (s && d) console.log(`  SotW / delta = ${(s / d).toFixed(1)}x (${s} / ${d} bytes)`);
  }
  const K = Number(args['scale-streams']);
  if (K > 0) {
    console.log(
      `at scale: ${K} streams (one HTTP/2 connection each, second process) hold shape B; the same one-route change; ` +
        `signalbox CPU is this process's (the clients run elsewhere)`,
    );
    const before = shapeB(false);
    const after = shapeB(true);
    for (const mode of String(args.modes).split(',') as Mode[]) {
      const r = await atScale(mode, before, after, K);
      const p = (q: number) => r.ms[Math.min(r.ms.length - 1, Math.ceil((q / 100) * r.ms.length) - 1)];
      console.log(
        `  ${mode.padEnd(5)} initial config to all ${K}: ${r.connectMs.toFixed(0)} ms (signalbox CPU ${r.connectCpuMs.toFixed(0)} ms); ` +
          `change: p50 ${p(50).toFixed(0)} ms, max ${p(100).toFixed(0)} ms, not done ${r.missing}; ` +
          `signalbox CPU ${r.cpuMs.toFixed(0)} ms = ${(r.cpuMs / K).toFixed(0)} ms per stream; ${kib(r.bytes)} received in all`,
      );
    }
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
