/**
 * Fan-out benchmark (issue 2): one signalbox (a child process serving a folder of Envoy
 * resources), N Envoy-like ADS streams in one node group from a second process
 * (bench/fanout-clients.ts), ONE change to the folder, and per stream the time from the
 * change until that stream has ACKed the new version of every changed type.
 *
 * The change is a backend swap, what a Gateway API backendRef edit becomes: route "main"
 * moves from cluster echo-a to a new cluster echo-b and echo-a goes away. That changes CDS,
 * EDS and RDS, and signalbox walks each stream through CDS+ → EDS+ → RDS → CDS− → EDS−,
 * waiting for the stream's ACK at each step (make before break).
 *
 * Prints p50/p99/max from the file write and from the moment signalbox set the snapshot
 * (its log), signalbox's CPU seconds and RSS, for a baseline N and the full N, SotW and
 * delta. Everything runs on 127.0.0.1 and stops by itself.
 *
 *   node dist/bench/fanout.js [--streams 1000] [--baseline 10] [--per-channel 10]
 *                             [--modes sotw,delta] [--trials 3]
 *                             [--change swap|route]
 */
import { fork, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { loadGroup } from '../src/provider/envoyfolder.js';
import { protoRegistry } from '../src/xds/proto.js';
import { targetOf } from './ads-client.js';
import type { Mode, Target } from './ads-client.js';
import { waitMsg } from './ipc.js';
import { pct, procUsage as usage, waitPort } from './proc.js';
import type { ToClients } from './ipc.js';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '..', '..');
const CLI = join(repo, 'dist', 'src', 'cli.js');
const CLIENTS = join(here, 'fanout-clients.js');
const GROUP = 'default/gw';
const now = () => performance.timeOrigin + performance.now();

const { values: args } = parseArgs({
  options: {
    streams: { type: 'string', default: '1000' },
    baseline: { type: 'string', default: '10' },
    'per-channel': { type: 'string', default: '10' },
    modes: { type: 'string', default: 'sotw,delta' },
    trials: { type: 'string', default: '3' },
    change: { type: 'string', default: 'swap' },
  },
});

function clusterYaml(name: string): string {
  return `---
"@type": type.googleapis.com/envoy.config.cluster.v3.Cluster
name: ${name}
type: EDS
connect_timeout: 1s
eds_cluster_config: { eds_config: { ads: {}, resource_api_version: V3 } }
---
"@type": type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment
cluster_name: ${name}
endpoints:
  - lb_endpoints:
      - endpoint: { address: { socket_address: { address: 127.0.0.2, port_value: 18080 } } }
`;
}

/** clusters: the clusters served (with their endpoints); the route points at `active`. */
function config(active: string, clusters: string[] = [active]): string {
  return `# fan-out benchmark: listener → route main → cluster ${active}
"@type": type.googleapis.com/envoy.config.listener.v3.Listener
name: http
address: { socket_address: { address: 127.0.0.1, port_value: 10080 } }
filter_chains:
  - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: http
          rds: { route_config_name: main, config_source: { ads: {}, resource_api_version: V3 } }
          http_filters:
            - name: envoy.filters.http.router
              typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router }
---
"@type": type.googleapis.com/envoy.config.route.v3.RouteConfiguration
name: main
virtual_hosts:
  - name: all
    domains: ["*"]
    routes:
      - match: { prefix: / }
        route: { cluster: ${active}, timeout: 5s }
${clusters.map((c) => clusterYaml(c)).join('')}`;
}

/** swap: only the active cluster exists (a new one comes, the old goes); route: both stay, only RDS changes. */
const clustersFor = (active: string): string[] => (args.change === 'route' ? ['echo-a', 'echo-b'] : [active]);

function targetFor(dir: string): Target {
  const { resources, errors } = loadGroup(protoRegistry(), dir, GROUP);
  if (errors.length > 0) throw new Error(JSON.stringify(errors));
  return targetOf(resources);
}

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const p = typeof a === 'object' && a ? a.port : 0;
      s.close(() => res(p));
    });
  });
}

export interface TrialResult {
  fromWrite: number[];
  fromSet: number[];
  missing: number;
  cpuS: number;
  clientCpuS: number;
  rssMiB: number;
  responses: number;
  bytes: number;
}

export interface RunResult {
  mode: Mode;
  streams: number;
  connectMs: number;
  connectCpuS: number;
  trials: TrialResult[];
  idleRssMiB: number;
  hwmMiB: number;
  /** signalbox_xds_stream_errors_total by reason, and step timeouts, at the end of the run */
  streamErrors: string;
}

async function run(mode: Mode, streams: number, perChannel: number, trials: number): Promise<RunResult> {
  const dir = mkdtempSync(join(tmpdir(), 'signalbox-fanout-'));
  const gdir = join(dir, 'default', 'gw');
  mkdirSync(gdir, { recursive: true });
  const file = join(gdir, 'resources.yaml');
  // written in place: the folder provider's recursive fs.watch (node 20, Linux) loses a file
  // that is replaced by rename, so an atomic rename-over would go unnoticed
  const write = (active: string) => writeFileSync(file, config(active, clustersFor(active)));
  write('echo-a');
  const xdsPort = await freePort();
  const debugPort = await freePort();
  // signalbox logs at info: 'snapshot set from folder' carries the time the change was set
  const sb = spawn(
    process.execPath,
    [
      ...(process.env.FANOUT_SIGNALBOX_NODE_ARGS ?? '').split(' ').filter(Boolean),
      CLI,
      'serve',
      '--envoy-dir',
      dir,
      '--xds-address',
      `127.0.0.1:${xdsPort}`,
      '--debug-address',
      `127.0.0.1:${debugPort}`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, SIGNALBOX_LOG_LEVEL: 'info' } },
  );
  const setTimes: number[] = [];
  let out = '';
  sb.stdout?.on('data', (b: Buffer) => {
    out += b.toString();
    let i;
    while ((i = out.indexOf('\n')) >= 0) {
      const line = out.slice(0, i);
      out = out.slice(i + 1);
      if (line.includes('snapshot set from folder')) {
        const m = /"time":"([^"]+)"/.exec(line);
        if (m) setTimes.push(Date.parse(m[1]));
      }
    }
  });
  const clients = fork(CLIENTS, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const send = (m: ToClients) => clients.send(m);
  try {
    await waitPort(xdsPort, 20_000);
    const pid = sb.pid as number;
    const u0 = usage(pid);
    send({
      cmd: 'start',
      port: xdsPort,
      mode,
      streams,
      perChannel,
      group: GROUP,
      target: targetFor(gdir),
      timeoutMs: 60_000,
    });
    const ready = await waitMsg(clients, 'ready', 70_000);
    const u1 = usage(pid);
    await new Promise((r) => setTimeout(r, 500)); // let the connect burst settle
    const res: RunResult = {
      mode,
      streams,
      connectMs: ready.ms,
      connectCpuS: u1.cpuS - u0.cpuS,
      trials: [],
      idleRssMiB: usage(pid).rssMiB,
      hwmMiB: 0,
      streamErrors: '',
    };
    for (let i = 0; i < trials; i++) {
      const next = i % 2 === 0 ? 'echo-b' : 'echo-a';
      // the target: what the folder will hold after the change
      const probe = mkdtempSync(join(tmpdir(), 'signalbox-fanout-target-'));
      writeFileSync(join(probe, 'r.yaml'), config(next, clustersFor(next)));
      const target = targetFor(probe);
      rmSync(probe, { recursive: true, force: true });
      send({ cmd: 'expect', target, timeoutMs: 30_000 });
      await waitMsg(clients, 'armed', 10_000);
      const before = usage(pid);
      let peakRss = before.rssMiB;
      const sampler = setInterval(() => {
        peakRss = Math.max(peakRss, usage(pid).rssMiB);
      }, 20);
      const nSet = setTimes.length;
      const t0 = now();
      write(next);
      const done = await waitMsg(clients, 'done', 40_000);
      clearInterval(sampler);
      const after = usage(pid);
      // signalbox's log line may come after the clients' report: wait for it a little
      for (let w = 0; w < 100 && setTimes.length <= nSet; w++) await new Promise((r) => setTimeout(r, 20));
      const tSet = setTimes.length > nSet ? setTimes[nSet] : NaN;
      const ok = done.times.filter((t): t is number => t !== null);
      res.trials.push({
        fromWrite: ok.map((t) => t - t0).sort((a, b) => a - b),
        fromSet: ok.map((t) => t - tSet).sort((a, b) => a - b),
        missing: done.times.length - ok.length,
        cpuS: after.cpuS - before.cpuS,
        clientCpuS: done.cpuS,
        rssMiB: Math.max(peakRss, after.rssMiB),
        responses: done.responses,
        bytes: done.bytes,
      });
      if (done.errors.length > 0) console.log(`  client errors: ${done.errors.join('; ')}`);
      await new Promise((r) => setTimeout(r, 300));
    }
    res.hwmMiB = usage(pid).hwmMiB;
    const metrics = await (await fetch(`http://127.0.0.1:${debugPort}/metrics`)).text();
    res.streamErrors =
      metrics
        .split('\n')
        .filter((l) => l.startsWith('signalbox_xds_stream_errors_total{'))
        .map((l) => l.replace(/^signalbox_xds_stream_errors_total\{reason="([^"]+)"\}\s+/, '$1='))
        .join(', ') || 'none';
    return res;
  } finally {
    try {
      send({ cmd: 'stop' });
    } catch {
      /* gone */
    }
    setTimeout(() => clients.kill('SIGKILL'), 2000).unref();
    sb.kill('SIGTERM');
    setTimeout(() => sb.kill('SIGKILL'), 3000).unref();
    await new Promise((r) => sb.once('exit', r));
    rmSync(dir, { recursive: true, force: true });
  }
}

const f = (n: number) => (Number.isFinite(n) ? n.toFixed(0).padStart(5) : '    -');

function print(r: RunResult): void {
  console.log(
    `${r.mode.padEnd(5)} streams=${String(r.streams).padStart(4)}  initial config to all: ${r.connectMs.toFixed(0)} ms, ` +
      `signalbox CPU ${r.connectCpuS.toFixed(2)} s; idle RSS ${r.idleRssMiB.toFixed(0)} MiB, peak (VmHWM) ${r.hwmMiB.toFixed(0)} MiB; ` +
      `stream errors: ${r.streamErrors}`,
  );
  r.trials.forEach((t, i) => {
    const w = t.fromWrite;
    const s = t.fromSet;
    console.log(
      `  change ${i + 1}: ms from file write p50 ${f(pct(w, 50))} p99 ${f(pct(w, 99))} max ${f(pct(w, 100))} | ` +
        `from snapshot set p50 ${f(pct(s, 50))} p99 ${f(pct(s, 99))} max ${f(pct(s, 100))} | ` +
        `not done ${t.missing} | CPU signalbox ${t.cpuS.toFixed(2)} s, clients ${t.clientCpuS.toFixed(2)} s | ` +
        `signalbox RSS ${t.rssMiB.toFixed(0)} MiB | ` +
        `${t.responses} responses, ${(t.bytes / 1024).toFixed(0)} KiB`,
    );
  });
}

async function main(): Promise<void> {
  const streams = Number(args.streams);
  const baseline = Number(args.baseline);
  const perChannel = Number(args['per-channel']);
  const trials = Number(args.trials);
  const modes = String(args.modes).split(',') as Mode[];
  console.log(
    `load average ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')} on ${cpus().length} cores (shared)`,
  );
  console.log(
    `fan-out: one group, change = ${args.change === 'route' ? 'route only (RDS)' : 'backend swap (CDS+ EDS+ RDS CDS- EDS-)'}, ${perChannel} streams per HTTP/2 connection, ` +
      `clients in a second process; times are until a stream held and ACKed the new version of every changed type`,
  );
  const deadline = setTimeout(() => {
    console.error('fan-out benchmark: overall time limit (5 min) reached');
    process.exit(2);
  }, 5 * 60_000);
  deadline.unref();
  for (const mode of modes) {
    const base = await run(mode, baseline, perChannel, trials);
    print(base);
    const full = await run(mode, streams, perChannel, trials);
    print(full);
    const p = (r: RunResult, q: number) => pct(r.trials[r.trials.length - 1].fromSet, q);
    const b50 = pct(
      base.trials.flatMap((t) => t.fromSet).sort((a, b) => a - b),
      50,
    );
    const all = full.trials.flatMap((t) => t.fromSet).sort((a, b) => a - b);
    console.log(
      `  ${mode}: ${streams} vs ${baseline} streams (from snapshot set, all changes): p50 ${pct(all, 50).toFixed(0)} / ${b50.toFixed(0)} ms = ${(pct(all, 50) / b50).toFixed(1)}x; ` +
        `p99 ${pct(all, 99).toFixed(0)} ms, max ${pct(all, 100).toFixed(0)} ms (goal ≤ 1000 ms: ${pct(all, 100) <= 1000 ? 'met' : 'NOT met'}); last change p99 ${p(full, 99).toFixed(0)} ms`,
    );
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
