/**
 * Readiness at scale: proved readiness (`--readiness proved`) against the naive baseline
 * (`--readiness naive`: Ready at the first ACK of every Envoy), measured in the same run, in
 * standalone mode (a folder) and in Kubernetes mode (the real kube-apiserver of e2e/k8s).
 * signalbox runs as a child process (dist/src/cli.js serve, its defaults, log level info) so
 * that its CPU can be read from /proc; one real stock Envoy (.tools/bin/envoy) of Gateway
 * default/gw; the backends are many small HTTP servers in one child process
 * (bench/readiness-scale-backends.ts; Kubernetes mode: in a network namespace of their own,
 * the API server refuses loopback EndpointSlice addresses). Per provider and mode, a fresh
 * signalbox, Envoy, backends (and cluster):
 *
 *  1. creations: R routes `r-0000…` created one after another at a steady pace
 *     (`--interval` ms apart, not waiting for each other), each with its own Service +
 *     EndpointSlice and its own backend, hostname `<name>.scale.test`, path `/<name>`.
 *     Standalone: one file per route (Service, EndpointSlice, HTTPRoute) written at once
 *     (write aside, rename); Kubernetes: Service, EndpointSlice, HTTPRoute created through
 *     the API one after the other. From just before the write: until the route's status
 *     says Ready=True at observedGeneration 1 (standalone: signalbox's `status changed` log
 *     line, which is when /debug/status has it; Kubernetes: a watch on HTTPRoutes in this
 *     process, as `kubectl wait` sees it), and until the first 200 from the route's backend
 *     through Envoy (a poller per route, started just before the write: requests with the
 *     route's Host and path on one keep-alive connection, `--poll-ms` apart). "Ready before
 *     served": Ready observed before the poller's first 200; at that moment one request is
 *     sent at once on a new connection, and if it is not answered 200 by the route's
 *     backend the case is "confirmed" (a user acting on Ready would have failed).
 *     Breakdown from signalbox's readiness log lines: write → Proving (provider, translation),
 *     Proving → readiness Ready (readiness's own part), → status seen.
 *  2. updates: route r-0000 is switched U times to a newly created Service with a new backend
 *     (standalone: its file rewritten with the new Service added and the route pointing to
 *     it; Kubernetes: Service and EndpointSlice created, the route patched); once Ready at
 *     the new generation, the previous Service (and EndpointSlice) is deleted and its
 *     backend stops accepting connections. Continuous load on r-0000 meanwhile
 *     (`--workers` × `--rate` req/s, a new connection per request): SLI = % of 2xx;
 *     update → Ready and update → first 200 from the new backend, p50/p99.
 *  3. CPU of signalbox (and Envoy) from /proc per update (everything they did from the
 *     update's write until the next one: switch, proof, status, the deletion) with
 *     `--small` routes present and with R, and per creation (first and last `--small`).
 *
 * Order per provider and mode: `--small` creations, `--small-updates` updates (CPU at
 * `--small` routes), the other creations, `--updates` updates (figure 2, CPU at R).
 *
 *   node dist/bench/readiness-scale.js [--routes 1000] [--updates 100] [--small 10]
 *     [--small-updates 20] [--interval 200] [--update-gap 300] [--workers 10] [--rate 5]
 *     [--poll-ms 5] [--timeout 60] [--modes naive,proved] [--providers standalone,kubernetes]
 *     [--sb-node-args="--cpu-prof --cpu-prof-dir=/tmp/prof"] [--cli path/to/cli.js] [--sb-log /tmp/sb]
 *
 * signalbox runs from a copy of dist/src made at the start (other work may rebuild dist/
 * during the many minutes of a run); `--cli` runs another build instead.
 */
import { execFile, execFileSync, fork, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import type { WriteStream } from 'node:fs';
import {
  cpSync,
  createWriteStream,
  mkdtempSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { Agent, request } from 'node:http';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import {
  CoreV1Api,
  CustomObjectsApi,
  DiscoveryV1Api,
  PatchStrategy,
  makeInformer,
  setHeaderOptions,
} from '@kubernetes/client-node';
import type {
  KubernetesListObject,
  KubernetesObject,
  V1EndpointSlice,
  V1Service,
} from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { DEFAULT_CONTROLLER } from '../src/gatewayapi/index.js';
import { PooledKubeConfig } from '../src/provider/kubernetes/kubeconfig.js';
import { Envoy, freePort, sleep } from '../e2e/harness/envoy.js';
import { gateway, gatewayClass, httpRoute } from '../e2e/harness/gateway-objects.js';
import { GROUP_API, createGatewayClassAndGateway } from './kube-objects.js';
import { pct, procUsage, waitPort } from './proc.js';

// ---------------------------------------------------------------- IPC with the backends process

export type ToBackends =
  | { id: number; cmd: 'start'; host: string; names: string[] }
  | { id: number; cmd: 'drain'; names: string[] }
  | { id: number; cmd: 'stop' };
export type FromBackends =
  | { id: number; ev: 'up' }
  | { id: number; ev: 'started'; ports: number[] }
  | { id: number; ev: 'drained' }
  | { id: number; ev: 'error'; message: string };

// ---------------------------------------------------------------- options

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '..', '..');
/** the signalbox measured: a copy of dist/src made at the start (see snapshotCli) */
let CLI = join(repo, 'dist', 'src', 'cli.js');
const BACKENDS_JS = join(here, 'readiness-scale-backends.js');
const NS = 'default';
const GW = 'gw';
const GROUP = `${NS}/${GW}`;
const execAsync = promisify(execFile);
const now = () => performance.now();

const { values: args } = parseArgs({
  options: {
    routes: { type: 'string', default: '1000' },
    updates: { type: 'string', default: '100' },
    small: { type: 'string', default: '10' },
    'small-updates': { type: 'string', default: '20' },
    interval: { type: 'string', default: '200' },
    'update-gap': { type: 'string', default: '300' },
    workers: { type: 'string', default: '10' },
    rate: { type: 'string', default: '5' },
    'poll-ms': { type: 'string', default: '5' },
    timeout: { type: 'string', default: '60' },
    modes: { type: 'string', default: 'naive,proved' },
    providers: { type: 'string', default: 'standalone,kubernetes' },
    'sb-node-args': { type: 'string', default: '' },
    /** more arguments of `signalbox serve` (e.g. --shutdown-timeout 1 for a --cpu-prof that is written) */
    'sb-args': { type: 'string', default: '' },
    cli: { type: 'string', default: '' },
    'sb-log': { type: 'string', default: '' },
    /** the Envoy speaks incremental xDS (DELTA_GRPC) instead of state of the world */
    delta: { type: 'boolean', default: false },
  },
});
const R = Number(args.routes);
const U = Number(args.updates);
const SMALL = Math.min(Number(args.small), R);
const U_SMALL = Number(args['small-updates']);
const INTERVAL_MS = Number(args.interval);
const UPDATE_GAP_MS = Number(args['update-gap']);
const WORKERS = Number(args.workers);
const RATE = Number(args.rate);
const POLL_MS = Number(args['poll-ms']);
const TIMEOUT_MS = Number(args.timeout) * 1000;
type Mode = 'naive' | 'proved';
type Provider = 'standalone' | 'kubernetes';
const MODES = args.modes.split(',').filter(Boolean) as Mode[];
const PROVIDERS = args.providers.split(',').filter(Boolean) as Provider[];
for (const m of MODES) if (m !== 'naive' && m !== 'proved') throw new Error(`--modes: unknown mode ${m}`);
for (const p of PROVIDERS)
  if (p !== 'standalone' && p !== 'kubernetes') throw new Error(`--providers: unknown provider ${p}`);
const SB_NODE_ARGS = args['sb-node-args'].split(' ').filter(Boolean);
const SB_ARGS = args['sb-args'].split(' ').filter(Boolean);

let logFiles = 0;
const rname = (i: number) => `r-${String(i).padStart(4, '0')}`;
const hostOf = (route: string) => `${route}.scale.test`;
const la = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');

// ---------------------------------------------------------------- cleanup on any exit

const cleanups: (() => void)[] = [];
process.on('exit', () => {
  for (const c of cleanups.splice(0).reverse()) {
    try {
      c();
    } catch {
      /* best effort */
    }
  }
});
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const)
  process.on(sig, () => {
    console.error(`readiness-scale: ${sig}, cleaning up`);
    process.exit(130);
  });

/**
 * Other work rebuilds dist/ while this runs for many minutes: every provider and mode runs
 * the same build, a copy of dist/src made now (with links to what it reads beside it).
 */
function snapshotCli(): string {
  const d = mkdtempSync(join(tmpdir(), 'signalbox-bench-scale-code-'));
  cleanups.push(() => rmSync(d, { recursive: true, force: true }));
  cpSync(join(repo, 'dist', 'src'), join(d, 'src'), { recursive: true });
  cpSync(join(repo, 'package.json'), join(d, 'package.json'));
  for (const l of ['node_modules', 'protos', 'native']) symlinkSync(join(repo, l), join(d, l));
  let rev = '?';
  try {
    const git = (...a: string[]) =>
      execFileSync('git', ['-C', repo, ...a], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    rev = git('rev-parse', '--short', 'HEAD').trim();
    const dirty = git('status', '--porcelain', '--', 'src').split('\n').filter(Boolean).length;
    if (dirty > 0) rev += ` + ${dirty} uncommitted file(s) in src/`;
  } catch {
    /* not a git checkout */
  }
  console.log(`signalbox measured: dist/src as built at the start (commit ${rev}), copied to ${d}`);
  return join(d, 'src', 'cli.js');
}

// ---------------------------------------------------------------- objects

function serviceObjs(name: string, ip: string, port: number): Record<string, unknown>[] {
  return [
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name, namespace: NS },
      // headless: the test cluster's Service CIDR (/24) holds fewer than 1,000 cluster IPs
      spec: { clusterIP: 'None', ports: [{ name: 'http', port: 80, targetPort: port }] },
    },
    {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { name: `${name}-1`, namespace: NS, labels: { 'kubernetes.io/service-name': name } },
      addressType: 'IPv4',
      ports: [{ name: 'http', port }],
      endpoints: [{ addresses: [ip], conditions: { ready: true } }],
    },
  ];
}

function routeObj(name: string, svc: string): Record<string, unknown> {
  // the harness's one-rule route (PathPrefix /<name> → svc:80 on Gateway GW), with its own host
  const r = httpRoute(name, `/${name}`, svc, GW) as { spec: Record<string, unknown> };
  return { ...r, metadata: { name, namespace: NS }, spec: { ...r.spec, hostnames: [hostOf(name)] } };
}

// ---------------------------------------------------------------- backends (child process)

class Backends {
  private seq = 0;
  private readonly waiting = new Map<number, (m: FromBackends) => void>();
  readonly ports = new Map<string, number>();
  private exited = false;

  private constructor(
    readonly proc: ChildProcess,
    readonly host: string,
  ) {
    proc.on('message', (m: FromBackends) => {
      const w = this.waiting.get(m.id);
      if (w) {
        this.waiting.delete(m.id);
        w(m);
      }
    });
    proc.on('exit', () => (this.exited = true));
    cleanups.push(() => {
      if (!this.exited) proc.kill('SIGKILL');
    });
  }

  /** `netns`: run inside that network namespace (`ip netns exec`). */
  static async start(host: string, netns?: string): Promise<Backends> {
    const proc = netns
      ? spawn('ip', ['netns', 'exec', netns, process.execPath, BACKENDS_JS], {
          stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        })
      : fork(BACKENDS_JS, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const b = new Backends(proc, host);
    await b.call(0);
    return b;
  }

  private call(id: number, msg?: ToBackends): Promise<FromBackends> {
    return new Promise((res, rej) => {
      const timer = setTimeout(() => rej(new Error(`backends: no answer to ${msg?.cmd ?? 'up'}`)), 60_000);
      this.waiting.set(id, (m) => {
        clearTimeout(timer);
        if (m.ev === 'error') rej(new Error(`backends: ${m.message}`));
        else res(m);
      });
      if (msg) this.proc.send(msg);
    });
  }

  async add(names: string[]): Promise<void> {
    const id = ++this.seq;
    const m = await this.call(id, { id, cmd: 'start', host: this.host, names });
    if (m.ev !== 'started') throw new Error('backends: unexpected answer');
    names.forEach((n, i) => this.ports.set(n, m.ports[i]));
  }

  async drain(names: string[]): Promise<void> {
    const id = ++this.seq;
    await this.call(id, { id, cmd: 'drain', names });
  }

  async stop(): Promise<void> {
    if (this.exited) return;
    const done = new Promise<void>((r) => this.proc.once('exit', () => r()));
    this.proc.send({ id: ++this.seq, cmd: 'stop' } satisfies ToBackends);
    const t = setTimeout(() => this.proc.kill('SIGKILL'), 3000);
    await done;
    clearTimeout(t);
  }
}

/** A network namespace with a veth pair (TEST-NET-2 198.51.100.<block>/30): the backends' address. */
function makeNetns(tag: string, block: number): { ns: string; ip: string; del: () => void } {
  const ns = `${tag}${process.pid}`;
  const hostIf = `${tag}${process.pid}a`.slice(0, 15);
  const nsIf = `${tag}${process.pid}b`.slice(0, 15);
  const hostIp = `198.51.100.${block + 1}`;
  const ip = `198.51.100.${block + 2}`;
  const run = (...a: string[]) => execFileSync('ip', a, { stdio: 'ignore' });
  run('netns', 'add', ns);
  const del = () => {
    try {
      run('netns', 'del', ns);
      run('link', 'del', hostIf);
    } catch {
      /* already gone with the namespace */
    }
  };
  cleanups.push(del);
  run('link', 'add', hostIf, 'type', 'veth', 'peer', 'name', nsIf);
  run('link', 'set', nsIf, 'netns', ns);
  run('addr', 'add', `${hostIp}/30`, 'dev', hostIf);
  run('link', 'set', hostIf, 'up');
  run('netns', 'exec', ns, 'ip', 'addr', 'add', `${ip}/30`, 'dev', nsIf);
  run('netns', 'exec', ns, 'ip', 'link', 'set', nsIf, 'up');
  run('netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up');
  return { ns, ip, del };
}

// ---------------------------------------------------------------- requests through Envoy

interface Answer {
  status: number;
  backend: string;
}

function httpGet(port: number, host: string, path: string, agent?: Agent, timeoutMs = 5000): Promise<Answer> {
  return new Promise((res, rej) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        agent: agent ?? false,
        headers: agent ? { host } : { host, connection: 'close' },
      },
      (r) => {
        r.resume();
        r.on('end', () => res({ status: r.statusCode ?? 0, backend: String(r.headers['x-backend'] ?? '') }));
        r.on('error', rej);
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy(new Error('timeout')));
    req.on('error', rej);
    req.end();
  });
}

/** Requests the route's host/path until the first 200 from `expect` (one keep-alive connection). */
class Poller {
  firstAt?: number;
  requests = 0;
  private stopped = false;
  readonly done: Promise<void>;

  constructor(port: number, route: string, expect: string, deadline: number) {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    this.done = (async () => {
      while (!this.stopped && now() < deadline) {
        this.requests++;
        try {
          const a = await httpGet(port, hostOf(route), `/${route}/poll`, agent);
          if (a.status === 200 && a.backend === expect) {
            this.firstAt = now();
            break;
          }
        } catch {
          /* not yet (or the connection was closed by a listener drain): again */
        }
        await sleep(POLL_MS);
      }
      agent.destroy();
    })();
  }

  stop(): void {
    this.stopped = true;
  }
}

interface LoadResult {
  total: number;
  ok: number;
  non2xx: number;
  errors: number;
  failures: string[];
  byBackend: Record<string, number>;
}

/** `workers` × `rate` req/s on the route, a new connection per request (paced start to start). */
function startLoad(port: number, route: string): { stop: () => Promise<LoadResult>; live: LoadResult } {
  const r: LoadResult = { total: 0, ok: 0, non2xx: 0, errors: 0, failures: [], byBackend: {} };
  let running = true;
  const interval = 1000 / RATE;
  const worker = async (n: number) => {
    await sleep((interval * n) / WORKERS);
    while (running) {
      const start = now();
      r.total++;
      try {
        const a = await httpGet(port, hostOf(route), `/${route}/load`);
        if (a.status >= 200 && a.status < 300) {
          r.ok++;
          r.byBackend[a.backend] = (r.byBackend[a.backend] ?? 0) + 1;
        } else {
          r.non2xx++;
          if (r.failures.length < 10) r.failures.push(`HTTP ${a.status}`);
        }
      } catch (err) {
        r.errors++;
        if (r.failures.length < 10) r.failures.push(String(err));
      }
      const left = interval - (now() - start);
      if (running && left > 0) await sleep(left);
    }
  };
  const ws = Array.from({ length: WORKERS }, (_, n) => worker(n));
  return {
    live: r,
    stop: async () => {
      running = false;
      await Promise.all(ws);
      return r;
    },
  };
}

// ---------------------------------------------------------------- what signalbox says

interface PhaseEvent {
  t: number;
  phase: string;
  reason: string;
}

/** Ready=True times per route and generation, and readiness's own transitions (its log). */
class Tracker {
  /** route → observedGeneration → when Ready=True was first seen with it */
  private readonly ready = new Map<string, Map<number, number>>();
  private readonly waiters = new Map<string, { gen: number; resolve: (t: number) => void }[]>();
  readonly phases = new Map<string, PhaseEvent[]>();

  markReady(route: string, gen: number, t: number): void {
    let m = this.ready.get(route);
    if (!m) this.ready.set(route, (m = new Map()));
    if (m.has(gen)) return;
    m.set(gen, t);
    const ws = this.waiters.get(route);
    if (!ws) return;
    for (const w of [...ws])
      if (gen >= w.gen) {
        ws.splice(ws.indexOf(w), 1);
        w.resolve(t);
      }
  }

  readyAt(route: string, gen: number): number | undefined {
    let best: number | undefined;
    for (const [g, t] of this.ready.get(route) ?? [])
      if (g >= gen && (best === undefined || t < best)) best = t;
    return best;
  }

  /** when the route is (first) seen Ready=True at generation ≥ gen; NaN after timeoutMs */
  waitReady(route: string, gen: number, timeoutMs: number): Promise<number> {
    const t = this.readyAt(route, gen);
    if (t !== undefined) return Promise.resolve(t);
    return new Promise((res) => {
      const w = {
        gen,
        resolve: (x: number) => {
          clearTimeout(timer);
          res(x);
        },
      };
      const timer = setTimeout(() => {
        const ws = this.waiters.get(route) ?? [];
        if (ws.includes(w)) ws.splice(ws.indexOf(w), 1);
        res(NaN);
      }, timeoutMs);
      let ws = this.waiters.get(route);
      if (!ws) this.waiters.set(route, (ws = []));
      ws.push(w);
    });
  }

  phase(route: string, e: PhaseEvent): void {
    let l = this.phases.get(route);
    if (!l) this.phases.set(route, (l = []));
    l.push(e);
  }

  /** readiness's Proving and Ready after t0 (its log) */
  internal(route: string, t0: number): { proving: number; ready: number } {
    const l = (this.phases.get(route) ?? []).filter((e) => e.t >= t0);
    const p = l.find((e) => e.reason === 'Proving');
    const r = l.find((e) => e.reason === 'Ready' && (!p || e.t >= p.t));
    return { proving: p?.t ?? NaN, ready: r?.t ?? NaN };
  }
}

interface RouteStatusLike {
  parents?: {
    controllerName?: string;
    parentRef?: { name?: string };
    conditions?: { type?: string; status?: string; observedGeneration?: number }[];
  }[];
}

function readyGeneration(status: RouteStatusLike | null | undefined): number | undefined {
  for (const p of status?.parents ?? []) {
    if (p.controllerName !== DEFAULT_CONTROLLER || p.parentRef?.name !== GW) continue;
    const c = (p.conditions ?? []).find((x) => x.type === 'Ready');
    if (c?.status === 'True') return c.observedGeneration ?? 0;
  }
  return undefined;
}

/** Follow signalbox's JSON log: readiness transitions, and (standalone) route status changes. */
function followLog(child: ChildProcess, tracker: Tracker, statusFromLog: boolean, tail: string[]): void {
  let buf = '';
  // --sb-log: signalbox's log kept, one file per provider and mode
  let keep: WriteStream | undefined;
  if (args['sb-log']) {
    keep = createWriteStream(`${args['sb-log']}.${++logFiles}.log`);
    cleanups.push(() => keep?.end());
  }
  child.stdout?.on('data', (b: Buffer) => {
    const t = now();
    keep?.write(b);
    buf += b.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      const status = statusFromLog && line.includes('"status changed"') && line.includes('HTTPRoute/');
      const phase = line.includes('"phase"') && line.includes('"reason"');
      const warn = /"level":(4|5|6)0/.test(line);
      if (warn) {
        tail.push(line.slice(0, 500));
        if (tail.length > 20) tail.shift();
      }
      if (!status && !phase) continue;
      let j: {
        msg?: string;
        object?: string;
        status?: RouteStatusLike | null;
        route?: string;
        gateway?: string;
        phase?: string;
        reason?: string;
      };
      try {
        j = JSON.parse(line) as typeof j;
      } catch {
        continue;
      }
      if (status && j.msg === 'status changed' && j.object?.startsWith(`HTTPRoute/${NS}/`)) {
        const g = readyGeneration(j.status);
        if (g !== undefined) tracker.markReady(j.object.slice(`HTTPRoute/${NS}/`.length), g, t);
      }
      if (phase && j.gateway === GROUP && j.route?.startsWith(`${NS}/`) && j.phase && j.reason)
        tracker.phase(j.route.slice(NS.length + 1), { t, phase: j.phase, reason: j.reason });
    }
  });
}

// ---------------------------------------------------------------- providers

interface Driver {
  sbPid: number;
  debugPort: number;
  sbLog: string[];
  /** the backends' address (as Envoy dials it) */
  backendIp: string;
  backends: Backends;
  /** create the route's Service, EndpointSlice and HTTPRoute (backend `svc`) */
  create(route: string, svc: string): Promise<void>;
  /** switch the route to a new Service `to` (created with it); `keep`: Services still defined */
  update(route: string, to: string, keep: string[]): Promise<void>;
  /** delete the Service `svc` (and its EndpointSlice); the route uses `current` */
  deleteService(route: string, svc: string, current: string): Promise<void>;
  close(): Promise<void>;
}

function spawnSignalbox(extra: string[], xdsPort: number, debugPort: number, mode: Mode): ChildProcess {
  const child = spawn(
    process.execPath,
    [
      ...SB_NODE_ARGS,
      CLI,
      'serve',
      '--xds-address',
      `127.0.0.1:${xdsPort}`,
      '--debug-address',
      `127.0.0.1:${debugPort}`,
      '--listener-address',
      '127.0.0.1',
      '--readiness',
      mode,
      '--log-level',
      'info',
      ...extra,
      ...SB_ARGS,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let exited = false;
  child.once('exit', () => (exited = true));
  cleanups.push(() => {
    if (!exited) child.kill('SIGKILL');
  });
  return child;
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const done = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 5000);
  await done;
  clearTimeout(t);
}

async function standaloneDriver(
  mode: Mode,
  gwPort: number,
  tracker: Tracker,
): Promise<Driver & { xdsPort: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'signalbox-bench-scale-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const yamlOf = (docs: unknown[]) => docs.map((d) => stringify(d)).join('---\n');
  const put = (file: string, docs: unknown[]) => {
    writeFileSync(join(dir, `.${file}.tmp`), yamlOf(docs));
    renameSync(join(dir, `.${file}.tmp`), join(dir, file));
  };
  writeFileSync(
    join(dir, 'gateway.yaml'),
    yamlOf([gatewayClass(), gateway([{ name: 'http', protocol: 'HTTP', port: gwPort }])]),
  );
  const backends = await Backends.start('127.0.0.2');
  const xdsPort = await freePort();
  const debugPort = await freePort();
  const child = spawnSignalbox(['--config-dir', dir], xdsPort, debugPort, mode);
  const sbLog: string[] = [];
  followLog(child, tracker, true, sbLog);
  await waitPort(xdsPort, 30_000, () => child.exitCode !== null);
  const svcDocs = (names: string[]) =>
    names.flatMap((n) => serviceObjs(n, backends.host, backends.ports.get(n) ?? 0));
  return {
    sbPid: child.pid!,
    debugPort,
    sbLog,
    xdsPort,
    backendIp: backends.host,
    backends,
    create: (route, svc) => {
      put(`${route}.yaml`, [...svcDocs([svc]), routeObj(route, svc)]);
      return Promise.resolve();
    },
    update: (route, to, keep) => {
      put(`${route}.yaml`, [...svcDocs([...keep, to]), routeObj(route, to)]);
      return Promise.resolve();
    },
    deleteService: (route, _svc, current) => {
      put(`${route}.yaml`, [...svcDocs([current]), routeObj(route, current)]);
      return Promise.resolve();
    },
    close: async () => {
      await stopChild(child);
      await backends.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

let netns: { ns: string; ip: string; del: () => void } | undefined;

async function kubernetesDriver(
  mode: Mode,
  gwPort: number,
  tracker: Tracker,
): Promise<Driver & { xdsPort: number }> {
  const stackDir = mkdtempSync(join(tmpdir(), 'signalbox-bench-scale-k8s-'));
  let stackUp = true;
  const stopStack = () => {
    if (!stackUp) return;
    stackUp = false;
    try {
      execFileSync(join(repo, 'e2e/k8s/stop.sh'), [stackDir], { stdio: 'ignore' });
    } catch {
      /* best effort */
    }
    rmSync(stackDir, { recursive: true, force: true });
  };
  cleanups.push(stopStack);
  let t = now();
  try {
    await execAsync(join(repo, 'e2e/k8s/start.sh'), [stackDir], { cwd: repo });
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    throw new Error(`e2e/k8s/start.sh failed:\n${e.stdout ?? ''}${e.stderr ?? ''}`);
  }
  const kubeconfig = join(stackDir, 'kubeconfig');
  const kc = new PooledKubeConfig();
  kc.loadFromFile(kubeconfig);
  const custom = kc.makeApiClient(CustomObjectsApi);
  const core = kc.makeApiClient(CoreV1Api);
  const discovery = kc.makeApiClient(DiscoveryV1Api);
  // right after start.sh the CRDs' storage may still answer 429: wait until every kind lists
  let warm = false;
  for (let i = 0; i < 150 && !warm; i++) {
    try {
      for (const [plural, version] of [
        ['gatewayclasses', 'v1'],
        ['gateways', 'v1'],
        ['httproutes', 'v1'],
        ['grpcroutes', 'v1'],
        ['referencegrants', 'v1beta1'],
      ])
        await custom.listClusterCustomObject({ group: GROUP_API, version, plural });
      warm = true;
    } catch {
      await sleep(200);
    }
  }
  if (!warm) throw new Error('the Gateway API kinds did not list within 30 s');
  console.log(`    kube-apiserver + etcd up and listing in ${((now() - t) / 1000).toFixed(1)} s`);

  netns ??= makeNetns('sbsc', 200);
  const backends = await Backends.start(netns.ip, netns.ns);

  // the route status as a watch sees it
  const list = () =>
    custom.listNamespacedCustomObject({
      group: GROUP_API,
      version: 'v1',
      namespace: NS,
      plural: 'httproutes',
    }) as Promise<KubernetesListObject<KubernetesObject>>;
  const inf = makeInformer(kc, `/apis/${GROUP_API}/v1/namespaces/${NS}/httproutes`, list);
  const onRoute = (o: KubernetesObject) => {
    const g = readyGeneration((o as { status?: RouteStatusLike }).status);
    if (g !== undefined && o.metadata?.name) tracker.markReady(o.metadata.name, g, now());
  };
  inf.on('add', onRoute);
  inf.on('update', onRoute);
  let stopping = false;
  inf.on('error', (err: unknown) => {
    if (stopping) return;
    console.error(`    bench informer error (restarting it): ${String(err).slice(0, 200)}`);
    setTimeout(() => {
      if (!stopping) void inf.start();
    }, 500);
  });
  await inf.start();

  const xdsPort = await freePort();
  const debugPort = await freePort();
  const child = spawnSignalbox(['--kubeconfig', kubeconfig], xdsPort, debugPort, mode);
  const sbLog: string[] = [];
  followLog(child, tracker, false, sbLog);
  await waitPort(xdsPort, 60_000, () => child.exitCode !== null);
  t = now();
  for (;;) {
    const d = (await (await fetch(`http://127.0.0.1:${debugPort}/debug/kubernetes`)).json()) as {
      leader?: { leading?: boolean } | null;
    };
    if (d.leader?.leading !== false) break;
    if (now() - t > 60_000) throw new Error('signalbox did not take the Lease within 60 s');
    await sleep(100);
  }
  await createGatewayClassAndGateway(custom, { namespace: NS, name: GW, port: gwPort });
  const createSvc = async (svc: string) => {
    const [s, e] = serviceObjs(svc, backends.host, backends.ports.get(svc) ?? 0);
    await core.createNamespacedService({ namespace: NS, body: s as V1Service });
    await discovery.createNamespacedEndpointSlice({ namespace: NS, body: e as unknown as V1EndpointSlice });
  };
  return {
    sbPid: child.pid!,
    debugPort,
    sbLog,
    xdsPort,
    backendIp: backends.host,
    backends,
    create: async (route, svc) => {
      await createSvc(svc);
      await custom.createNamespacedCustomObject({
        group: GROUP_API,
        version: 'v1',
        namespace: NS,
        plural: 'httproutes',
        body: routeObj(route, svc),
      });
    },
    update: async (route, to) => {
      await createSvc(to);
      await custom.patchNamespacedCustomObject(
        {
          group: GROUP_API,
          version: 'v1',
          namespace: NS,
          plural: 'httproutes',
          name: route,
          body: [{ op: 'replace', path: '/spec/rules/0/backendRefs/0/name', value: to }],
        },
        setHeaderOptions('Content-Type', PatchStrategy.JsonPatch),
      );
    },
    deleteService: async (_route, svc) => {
      await discovery.deleteNamespacedEndpointSlice({ namespace: NS, name: `${svc}-1` });
      await core.deleteNamespacedService({ namespace: NS, name: svc });
    },
    close: async () => {
      stopping = true;
      await stopChild(child);
      await inf.stop();
      kc.close();
      await backends.stop();
      stopStack();
    },
  };
}

/** signalbox's counters that explain a series: xDS rounds, readiness phases, probes */
async function scrape(debugPort: number): Promise<Map<string, number>> {
  const m = new Map<string, number>();
  try {
    const txt = await (await fetch(`http://127.0.0.1:${debugPort}/metrics`)).text();
    for (const line of txt.split('\n')) {
      if (
        !/^(signalbox_xds_rounds_total|signalbox_readiness_phase_seconds_(sum|count)|signalbox_readiness_probes_total|signalbox_route_ready_seconds_count)\{/.test(
          line,
        )
      )
        continue;
      const i = line.lastIndexOf(' ');
      m.set(line.slice(0, i), Number(line.slice(i + 1)));
    }
  } catch {
    /* no figures */
  }
  // Kubernetes mode: translations and status writes
  try {
    const k = (await (await fetch(`http://127.0.0.1:${debugPort}/debug/kubernetes`)).json()) as Record<
      string,
      unknown
    >;
    for (const f of ['translations', 'statusWrites', 'statusConflicts', 'statusPending'])
      if (typeof k[f] === 'number') m.set(`kube_${f}`, k[f]);
  } catch {
    /* standalone */
  }
  return m;
}

function metricsDelta(a: Map<string, number>, b: Map<string, number>): string {
  const d = (k: string) => (b.get(k) ?? 0) - (a.get(k) ?? 0);
  const label = (k: string, l: string) => new RegExp(`${l}="([^"]*)"`).exec(k)?.[1] ?? '?';
  const rounds = new Map<string, number>();
  const phases = new Map<string, { n: number; s: number }>();
  const probes = new Map<string, number>();
  for (const k of b.keys()) {
    const v = d(k);
    if (v === 0) continue;
    if (k.startsWith('signalbox_xds_rounds_total')) {
      const reason = k.includes('reason=') ? label(k, 'reason') : '';
      const o = `${label(k, 'outcome')}${reason ? `/${reason}` : ''}`;
      rounds.set(o, (rounds.get(o) ?? 0) + v);
    } else if (k.startsWith('signalbox_readiness_phase_seconds_')) {
      const ph = label(k, 'phase');
      const x = phases.get(ph) ?? { n: 0, s: 0 };
      if (k.startsWith('signalbox_readiness_phase_seconds_count')) x.n += v;
      else x.s += v;
      phases.set(ph, x);
    } else if (k.startsWith('signalbox_readiness_probes_total')) probes.set(label(k, 'result'), v);
  }
  const parts: string[] = [];
  if (rounds.size) parts.push(`xDS rounds ${[...rounds].map(([k, v]) => `${k} ${v}`).join(', ')}`);
  if (phases.size)
    parts.push(
      `phases completed ${[...phases].map(([k, x]) => `${k} ${x.n} (mean ${((x.s / Math.max(1, x.n)) * 1000).toFixed(0)} ms)`).join(', ')}`,
    );
  if (probes.size) parts.push(`probes ${[...probes].map(([k, v]) => `${k} ${v}`).join(', ')}`);
  if (b.has('kube_statusWrites'))
    parts.push(
      `Kubernetes: ${d('kube_translations')} translations, ${d('kube_statusWrites')} status writes ` +
        `(${d('kube_statusConflicts')} conflicts), ${b.get('kube_statusPending')} pending at the end`,
    );
  return parts.join('; ');
}

// ---------------------------------------------------------------- one provider × mode

interface Sample {
  route: string;
  /** ms from the write (NaN: not within --timeout) */
  ready: number;
  served: number;
  /** Ready observed before the poller's first 200 */
  readyFirst: boolean;
  /** ...and the request sent at that moment was not answered 200 by the new backend */
  confirmed: boolean;
  confirmDetail?: string;
  /** when Ready was seen (performance.now()) */
  readyAbs: number;
  writeError?: string;
  /** how long the write itself took (Kubernetes: the API calls until answered) */
  writeMs: number;
  /** from readiness's log: write → Proving, write → readiness Ready */
  proving: number;
  internalReady: number;
}

interface Series {
  samples: Sample[];
  routesPresent: number;
  cpuS: number;
  envoyCpuS: number;
  wallS: number;
  load?: LoadResult;
  /** signalbox's own counters over the series (/metrics) */
  metrics: string;
}

interface RunResult {
  provider: Provider;
  mode: Mode;
  createFirst: Series;
  createRest: Series;
  createLast: Series;
  updSmall: Series;
  upd: Series;
  wallS: number;
  loadStart: string;
  loadEnd: string;
  sbCpuS: number;
  sbHwmMiB: number;
  warnings: string[];
}

async function runOne(provider: Provider, mode: Mode): Promise<RunResult> {
  const t0 = now();
  const loadStart = la();
  console.log(`\n== ${provider} / ${mode} (load average ${loadStart})`);
  const tracker = new Tracker();
  const gwPort = await freePort();
  const drv =
    provider === 'standalone'
      ? await standaloneDriver(mode, gwPort, tracker)
      : await kubernetesDriver(mode, gwPort, tracker);
  let envoy: Envoy | undefined;
  let backendSeq = 0;
  try {
    const updNames = Array.from({ length: U_SMALL + U }, (_, j) => `${rname(0)}-u${j + 1}`);
    await drv.backends.add([...Array.from({ length: R }, (_, i) => rname(i)), ...updNames]);
    envoy = await Envoy.start({ nodeId: 'envoy-1', group: GROUP, xdsPort: drv.xdsPort, delta: args.delta });
    const e = envoy;
    cleanups.push(() => {
      if (!e.exited) e.proc.kill('SIGKILL');
    });
    const envoyPid = envoy.proc.pid!;
    // the Gateway's listener is up (404: no route yet) before anything is measured
    const tl = now();
    for (;;) {
      const a = await httpGet(gwPort, 'none.scale.test', '/').catch(() => undefined);
      if (a?.status === 404) break;
      if (now() - tl > 30_000) throw new Error('the Gateway listener did not come up in Envoy within 30 s');
      await sleep(50);
    }
    await sleep(500);

    const generation = new Map<string, number>();
    let writeErrors = 0;

    /** One change: poller armed, write, then Ready / first 200 / the check at Ready. */
    const measure = (route: string, expect: string, gen: number, write: () => Promise<void>) => {
      const tWrite = now();
      const poller = new Poller(gwPort, route, expect, tWrite + TIMEOUT_MS);
      const s: Sample = {
        route,
        ready: NaN,
        served: NaN,
        readyFirst: false,
        confirmed: false,
        writeMs: NaN,
        readyAbs: NaN,
        proving: NaN,
        internalReady: NaN,
      };
      const readyP = tracker.waitReady(route, gen, TIMEOUT_MS).then(async (t) => {
        if (Number.isNaN(t)) return;
        s.ready = t - tWrite;
        s.readyAbs = t;
        if (poller.firstAt === undefined || poller.firstAt > t) {
          s.readyFirst = true;
          // the user acting on Ready at once
          const a = await httpGet(gwPort, hostOf(route), `/${route}/at-ready`).catch((err: Error) => ({
            status: 0,
            backend: err.message,
          }));
          if (a.status !== 200 || a.backend !== expect) {
            s.confirmed = true;
            s.confirmDetail = `${a.status} ${a.backend}`;
          }
        }
      });
      const written = write().then(
        () => {
          s.writeMs = now() - tWrite;
        },
        (err: unknown) => {
          s.writeError = String(err).slice(0, 300);
          if (++writeErrors <= 3) console.error(`    write of ${route} failed: ${s.writeError}`);
        },
      );
      const done = (async () => {
        await written;
        if (s.writeError) return poller.stop();
        await Promise.all([readyP, poller.done]);
        if (poller.firstAt !== undefined) s.served = poller.firstAt - tWrite;
        if (Number.isNaN(s.ready)) poller.stop();
        const i = tracker.internal(route, tWrite);
        s.proving = i.proving - tWrite;
        s.internalReady = i.ready - tWrite;
      })();
      return { s, written, done };
    };

    const creations = async (from: number, to: number, cpuFromIdx: number): Promise<[Series, Series]> => {
      const m0 = await scrape(drv.debugPort);
      const c0 = procUsage(drv.sbPid).cpuS;
      const e0 = procUsage(envoyPid).cpuS;
      const w0 = now();
      let cLast = { sb: c0, envoy: e0, t: w0 };
      const all: { s: Sample; done: Promise<void> }[] = [];
      const start = now();
      for (let i = from; i < to; i++) {
        const due = start + (i - from) * INTERVAL_MS;
        const wait = due - now();
        if (wait > 0) await sleep(wait);
        if (i === cpuFromIdx)
          cLast = { sb: procUsage(drv.sbPid).cpuS, envoy: procUsage(envoyPid).cpuS, t: now() };
        const route = rname(i);
        generation.set(route, 1);
        const m = measure(route, route, 1, () => drv.create(route, route));
        await m.written;
        all.push(m);
        if ((i + 1) % 100 === 0)
          console.log(
            `    created ${i + 1} (${(((now() - start) / (i + 1 - from)) * 1).toFixed(0)} ms apart on average), load average ${la()}`,
          );
      }
      await Promise.all(all.map((x) => x.done));
      const sb = procUsage(drv.sbPid).cpuS;
      const ev = procUsage(envoyPid).cpuS;
      const metrics = metricsDelta(m0, await scrape(drv.debugPort));
      const samples = all.map((x) => x.s);
      const mk = (ss: Sample[], c: typeof cLast): Series => ({
        samples: ss,
        routesPresent: to,
        cpuS: sb - c.sb,
        envoyCpuS: ev - c.envoy,
        wallS: (now() - c.t) / 1000,
        metrics,
      });
      return [
        mk(samples, { sb: c0, envoy: e0, t: w0 }),
        mk(
          samples.slice(Math.max(0, cpuFromIdx - from)),
          cpuFromIdx >= from && cpuFromIdx < to ? cLast : { sb: c0, envoy: e0, t: w0 },
        ),
      ];
    };

    let current = rname(0);
    const updates = async (n: number, routesPresent: number): Promise<Series> => {
      const route = rname(0);
      const load = startLoad(gwPort, route);
      const tl0 = now();
      while (load.live.ok < WORKERS && now() - tl0 < 10_000) await sleep(20);
      await sleep(500);
      const m0 = await scrape(drv.debugPort);
      const c0 = procUsage(drv.sbPid).cpuS;
      const e0 = procUsage(envoyPid).cpuS;
      const w0 = now();
      const samples: Sample[] = [];
      for (let j = 0; j < n; j++) {
        const to = `${route}-u${++backendSeq}`;
        const gen = (generation.get(route) ?? 1) + 1;
        generation.set(route, gen);
        const prev = current;
        const m = measure(route, to, gen, () => drv.update(route, to, [prev]));
        await m.done;
        if (m.s.writeError) throw new Error(`update of ${route} failed: ${m.s.writeError}`);
        samples.push(m.s);
        if (Number.isNaN(m.s.ready))
          console.log(
            `    update ${j + 1}: not Ready within ${TIMEOUT_MS / 1000} s (route ${route} → ${to})`,
          );
        // Ready: the previous Service goes, its backend stops accepting connections
        await drv.deleteService(route, prev, to);
        await drv.backends.drain([prev]);
        current = to;
        await sleep(UPDATE_GAP_MS);
      }
      const series: Series = {
        samples,
        routesPresent,
        cpuS: procUsage(drv.sbPid).cpuS - c0,
        envoyCpuS: procUsage(envoyPid).cpuS - e0,
        wallS: (now() - w0) / 1000,
        metrics: '',
      };
      series.metrics = metricsDelta(m0, await scrape(drv.debugPort));
      series.load = await load.stop();
      return series;
    };

    console.log(`    ${SMALL} creations, ${INTERVAL_MS} ms apart`);
    const [createFirst] = await creations(0, SMALL, 0);
    console.log(`    ${U_SMALL} updates with ${SMALL} routes present, under load`);
    const updSmall = await updates(U_SMALL, SMALL);
    printSeriesLine('updates', updSmall);
    console.log(`    ${R - SMALL} more creations, ${INTERVAL_MS} ms apart`);
    const [createRest, createLast] = await creations(SMALL, R, R - SMALL);
    printSeriesLine('creations', createRest);
    console.log(`    ${U} updates with ${R} routes present, under load`);
    const upd = await updates(U, R);
    printSeriesLine('updates', upd);
    const u = procUsage(drv.sbPid);
    return {
      provider,
      mode,
      createFirst,
      createRest,
      createLast,
      updSmall,
      upd,
      wallS: (now() - t0) / 1000,
      loadStart,
      loadEnd: la(),
      sbCpuS: u.cpuS,
      sbHwmMiB: u.hwmMiB,
      warnings: drv.sbLog.slice(-5),
    };
  } finally {
    await envoy?.stop();
    await drv.close();
  }
}

// ---------------------------------------------------------------- report

/** a change that did not happen within --timeout counts as infinitely late */
const fin = (xs: number[]) => xs.map((x) => (Number.isNaN(x) ? Infinity : x)).sort((a, b) => a - b);
const ms = (n: number) =>
  Number.isFinite(n) ? n.toFixed(0) : n === Infinity ? `>${(TIMEOUT_MS / 1000).toFixed(0)}s` : '-';
const p = (xs: number[], q: number) => pct(fin(xs), q);
const three = (xs: number[]) => `${ms(p(xs, 50))} / ${ms(p(xs, 99))} / ${ms(p(xs, 100))}`;
const ratio = (a: number, b: number) =>
  Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${(a / b).toFixed(2)}×` : '-';

/** p50 of the values known (a breakdown leaves out what did not happen) */
const known = (xs: number[]) =>
  pct(
    xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b),
    50,
  );

/** How the Ready statuses came: in how many moments (10 ms apart or more), the largest at once. */
function batches(ss: Sample[]): string {
  const t = ss
    .map((s) => s.readyAbs)
    .filter((x) => Number.isFinite(x))
    .sort((a, b) => a - b);
  if (t.length === 0) return 'no route Ready';
  const sizes: number[] = [];
  let n = 1;
  let gap = 0;
  for (let i = 1; i < t.length; i++) {
    if (t[i] - t[i - 1] < 10) n++;
    else {
      sizes.push(n);
      n = 1;
      gap = Math.max(gap, t[i] - t[i - 1]);
    }
  }
  sizes.push(n);
  return `Ready seen in ${sizes.length} batches for ${t.length} routes; largest ${Math.max(...sizes)} at once; longest time without a Ready ${(gap / 1000).toFixed(1)} s`;
}

function printSeriesLine(what: string, s: Series): void {
  const rs = s.samples.map((x) => x.ready);
  const sv = s.samples.map((x) => x.served);
  const notReady = rs.filter((x) => !Number.isFinite(x)).length;
  const rf = s.samples.filter((x) => x.readyFirst).length;
  const cf = s.samples.filter((x) => x.confirmed).length;
  let line =
    `    ${what} (${s.samples.length}, ${s.routesPresent} routes): Ready p50/p99/max ${three(rs)} ms, ` +
    `first 200 ${three(sv)} ms, Ready before served ${rf} (confirmed ${cf}), not Ready ${notReady}` +
    `${s.samples.some((x) => x.writeError) ? ` (write errors ${s.samples.filter((x) => x.writeError).length})` : ''}; ` +
    `signalbox CPU ${((s.cpuS / s.samples.length) * 1000).toFixed(0)} ms per change`;
  if (s.load) {
    const l = s.load;
    line += `; load ${l.total} req, ${l.ok} 2xx (${((100 * l.ok) / Math.max(1, l.total)).toFixed(2)} %), ${l.non2xx} non-2xx, ${l.errors} errors${l.failures.length ? ` [${l.failures.slice(0, 3).join(' | ')}]` : ''}`;
  }
  console.log(line);
  if (s.metrics) console.log(`      signalbox: ${s.metrics}`);
  if (what === 'creations') console.log(`      ${batches(s.samples)}`);
}

function report(results: RunResult[]): void {
  const byKey = new Map(results.map((r) => [`${r.provider}/${r.mode}`, r]));
  console.log(
    `\n==== readiness-scale: ${R} routes (${INTERVAL_MS} ms apart), ${U} updates (+${U_SMALL} at ${SMALL} routes), ` +
      `load ${WORKERS} × ${RATE} req/s; ${cpus().length} cores (shared)`,
  );
  console.log('\n1. creations (ms from the write; p50 / p99 / max over all routes)');
  console.log(
    'provider   | mode   | n    | Ready              | first 200          | Ready before served (confirmed) | not Ready / not served | write took p50 | write→Proving p50 | Proving→readiness Ready p50 | →status seen p50',
  );
  for (const r of results) {
    const ss = [...r.createFirst.samples, ...r.createRest.samples];
    const x = (f: (s: Sample) => number) => ss.map(f);
    console.log(
      [
        r.provider.padEnd(10),
        r.mode.padEnd(6),
        String(ss.length).padEnd(4),
        three(x((s) => s.ready)).padEnd(18),
        three(x((s) => s.served)).padEnd(18),
        `${ss.filter((s) => s.readyFirst).length} (${ss.filter((s) => s.confirmed).length})`.padEnd(31),
        `${ss.filter((s) => !Number.isFinite(s.ready)).length} / ${ss.filter((s) => !Number.isFinite(s.served)).length}`.padEnd(
          22,
        ),
        ms(known(x((s) => s.writeMs))).padEnd(14),
        ms(known(x((s) => s.proving))).padEnd(17),
        ms(known(x((s) => s.internalReady - s.proving))).padEnd(27),
        ms(known(x((s) => s.ready - s.internalReady))),
      ].join(' | '),
    );
    console.log(`             ${batches(ss)}`);
    const bad = ss.filter((s) => s.confirmed).slice(0, 3);
    if (bad.length > 0)
      console.log(
        `             confirmed: ${bad.map((s) => `${s.route}: ${s.confirmDetail ?? ''}`).join('; ')}`,
      );
  }
  console.log('\n2. updates under load (ms from the write; p50 / p99 / max)');
  console.log(
    'provider   | mode   | routes | n   | SLI (2xx)                  | update→Ready       | update→first new 200 | Ready before served (confirmed)',
  );
  for (const r of results)
    for (const s of [r.updSmall, r.upd]) {
      const l = s.load!;
      console.log(
        [
          r.provider.padEnd(10),
          r.mode.padEnd(6),
          String(s.routesPresent).padEnd(6),
          String(s.samples.length).padEnd(3),
          `${((100 * l.ok) / Math.max(1, l.total)).toFixed(2)} % (${l.ok} of ${l.total})`.padEnd(26),
          three(s.samples.map((x) => x.ready)).padEnd(18),
          three(s.samples.map((x) => x.served)).padEnd(20),
          `${s.samples.filter((x) => x.readyFirst).length} (${s.samples.filter((x) => x.confirmed).length})`,
        ].join(' | '),
      );
    }
  console.log('\n3. CPU per change (ms; from /proc)');
  console.log(
    'provider   | mode   | signalbox per update @small | @R      | per creation first / last | Envoy per update @small / @R | signalbox CPU total / peak RSS',
  );
  const per = (s: Series, f: 'cpuS' | 'envoyCpuS') => (s[f] / Math.max(1, s.samples.length)) * 1000;
  for (const r of results)
    console.log(
      [
        r.provider.padEnd(10),
        r.mode.padEnd(6),
        `${ms(per(r.updSmall, 'cpuS'))} (${SMALL} routes)`.padEnd(27),
        `${ms(per(r.upd, 'cpuS'))} (${R})`.padEnd(7),
        `${ms(per(r.createFirst, 'cpuS'))} / ${ms(per(r.createLast, 'cpuS'))}`.padEnd(25),
        `${ms(per(r.updSmall, 'envoyCpuS'))} / ${ms(per(r.upd, 'envoyCpuS'))}`.padEnd(28),
        `${r.sbCpuS.toFixed(1)} s / ${r.sbHwmMiB.toFixed(0)} MiB`,
      ].join(' | '),
    );

  console.log('\nratio proved / naive');
  for (const prov of PROVIDERS) {
    const n = byKey.get(`${prov}/naive`);
    const pr = byKey.get(`${prov}/proved`);
    if (!n || !pr) continue;
    const cr = (r: RunResult) => [...r.createFirst.samples, ...r.createRest.samples];
    const q = (r: RunResult, f: (s: Sample) => number, k: number) => p(cr(r).map(f), k);
    const uq = (s: Series, k: number) =>
      p(
        s.samples.map((x) => x.ready),
        k,
      );
    console.log(
      `  ${prov}: creation Ready p50 ${ratio(
        q(pr, (s) => s.ready, 50),
        q(n, (s) => s.ready, 50),
      )}, p99 ${ratio(
        q(pr, (s) => s.ready, 99),
        q(n, (s) => s.ready, 99),
      )}; ` +
        `first 200 p50 ${ratio(
          q(pr, (s) => s.served, 50),
          q(n, (s) => s.served, 50),
        )}, p99 ${ratio(
          q(pr, (s) => s.served, 99),
          q(n, (s) => s.served, 99),
        )}; ` +
        `update→Ready @${R} p50 ${ratio(uq(pr.upd, 50), uq(n.upd, 50))}, p99 ${ratio(uq(pr.upd, 99), uq(n.upd, 99))}; ` +
        `CPU per update @${SMALL} ${ratio(per(pr.updSmall, 'cpuS'), per(n.updSmall, 'cpuS'))}, @${R} ${ratio(per(pr.upd, 'cpuS'), per(n.upd, 'cpuS'))}; ` +
        `per creation (last ${SMALL}) ${ratio(per(pr.createLast, 'cpuS'), per(n.createLast, 'cpuS'))}`,
    );
  }

  console.log(
    '\ngoals (proved): Ready p50 ≤ 150 ms and p99 ≤ 1 s from the write, never Ready before served, SLI 100.00 %',
  );
  for (const r of results) {
    if (r.mode !== 'proved') continue;
    const ss = [...r.createFirst.samples, ...r.createRest.samples];
    const rd = ss.map((s) => s.ready);
    const notReady = rd.filter((x) => !Number.isFinite(x)).length;
    const sli = [r.updSmall, r.upd].map((s) => (100 * s.load!.ok) / Math.max(1, s.load!.total));
    const ok = (b: boolean) => (b ? 'met' : 'MISSED');
    console.log(
      `  ${r.provider}: Ready p50 ${ms(p(rd, 50))} ms ${ok(p(rd, 50) <= 150 && notReady === 0)}; ` +
        `p99 ${ms(p(rd, 99))} ms ${ok(p(rd, 99) <= 1000 && notReady === 0)}` +
        (notReady ? ` (${notReady} not Ready within ${TIMEOUT_MS / 1000} s)` : '') +
        `; Ready before served: ${ss.filter((s) => s.confirmed).length} confirmed ${ok(ss.every((s) => !s.confirmed))}` +
        `; SLI ${sli.map((x) => x.toFixed(2)).join(' / ')} % ${ok(sli.every((x) => x === 100))}`,
    );
  }
  for (const r of results) {
    console.log(
      `${r.provider}/${r.mode}: ${r.wallS.toFixed(0)} s, load average ${r.loadStart} → ${r.loadEnd}` +
        (r.warnings.length ? `; last signalbox warnings:\n    ${r.warnings.join('\n    ')}` : ''),
    );
  }
}

async function main(): Promise<void> {
  const t0 = now();
  console.log(
    `readiness-scale: providers ${PROVIDERS.join(',')}, xDS ${args.delta ? 'delta' : 'state of the world'}, modes ${MODES.join(',')}, ${R} routes ${INTERVAL_MS} ms apart, ` +
      `${U} updates (+${U_SMALL} at ${SMALL} routes), load ${WORKERS}×${RATE} req/s; load average ${la()} on ${cpus().length} cores`,
  );
  if (args.cli) {
    CLI = resolve(args.cli);
    console.log(`signalbox measured: ${CLI}`);
  } else CLI = snapshotCli();
  const results: RunResult[] = [];
  for (const prov of PROVIDERS) for (const m of MODES) results.push(await runOne(prov, m));
  report(results);
  console.log(`\ntotal ${((now() - t0) / 1000).toFixed(0)} s; load average at the end ${la()}`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
