/**
 * Kubernetes provider benchmark: signalbox in Kubernetes mode (a child process) against the
 * real kube-apiserver of e2e/k8s, and an Envoy-like ADS client (bench/ads-client.ts, in
 * this process) connected as the Envoy of Gateway default/gw.
 *
 *  1. event → pushed: one HTTPRoute's path is changed (a JSON patch through the API
 *     server); the time from just before the request is sent until the ADS client
 *     receives the RouteConfiguration that carries the new path. N sequential edits with
 *     the baseline routes present (10), then the same edits with 1,000 more routes
 *     present; the ratio of the two. Also printed: until the API server answered the
 *     patch, and until signalbox logged `snapshot set`.
 *  2. a burst of 1,000 HTTPRoute creations (bounded concurrency) on the same Gateway:
 *     the status writes signalbox made (delta of `statusWrites` at /debug/kubernetes, and
 *     by object kind from its log), its translations, and how long until every new route
 *     has Accepted=True at observedGeneration 1, the Gateway listener's attachedRoutes is
 *     the route count, and then no status write or translation happened for a quiet period.
 *
 * Order: cluster → signalbox → GatewayClass, Gateway, Service, EndpointSlice, 10 routes →
 * edits (10 routes) → burst (figure 2) → edits (1,010 routes). signalbox's CPU comes from
 * /proc/<pid>/stat, its peak RSS from VmHWM. Everything runs on 127.0.0.1; the cluster is
 * stopped and signalbox killed on exit, errors and signals.
 *
 *   node dist/bench/k8s.js [--routes 1000] [--baseline 10] [--edits 50] [--gap 500]
 *                          [--concurrency 16] [--quiet 3000] [--mode sotw|delta]
 */
import { execFile, execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import {
  CoreV1Api,
  CustomObjectsApi,
  DiscoveryV1Api,
  KubeConfig,
  PatchStrategy,
  makeInformer,
  setHeaderOptions,
} from '@kubernetes/client-node';
import type { KubernetesListObject, KubernetesObject } from '@kubernetes/client-node';
import type * as grpc from '@grpc/grpc-js';
import { DEFAULT_CONTROLLER } from '../src/gatewayapi/index.js';
import type { DeltaDiscoveryResponseOut, DiscoveryResponseOut } from '../src/xds/server/codec.js';
import { protoRegistry } from '../src/xds/proto.js';
import { TypeUrl, protoName } from '../src/xds/resource.js';
import { freePort, sleep } from '../e2e/harness/envoy.js';
import { httpRoute } from '../e2e/harness/gateway-objects.js';
import { GROUP_API, createGatewayClassAndGateway } from './kube-objects.js';
import { AdsStream, makeClients } from './ads-client.js';
import type { Mode } from './ads-client.js';
import { pct, procUsage, waitPort } from './proc.js';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '..', '..');
const CLI = join(repo, 'dist', 'src', 'cli.js');
const NS = 'default';
const GW = 'gw';
const GROUP = `${NS}/${GW}`;
const BACKEND_IP = '198.51.100.2'; // TEST-NET-2: stored, never dialled (no request is sent)
const now = () => performance.timeOrigin + performance.now();
const execAsync = promisify(execFile);

const { values: args } = parseArgs({
  options: {
    routes: { type: 'string', default: '1000' },
    baseline: { type: 'string', default: '10' },
    edits: { type: 'string', default: '50' },
    gap: { type: 'string', default: '500' },
    concurrency: { type: 'string', default: '16' },
    quiet: { type: 'string', default: '3000' },
    mode: { type: 'string', default: 'sotw' },
  },
});
const ROUTES = Number(args.routes);
const BASELINE = Number(args.baseline);
const EDITS = Number(args.edits);
const GAP_MS = Number(args.gap);
const CONCURRENCY = Number(args.concurrency);
const QUIET_MS = Number(args.quiet);
const MODE = args.mode as Mode;
if (MODE !== 'sotw' && MODE !== 'delta') throw new Error('--mode is sotw or delta');

// ---------------------------------------------------------------- cleanup (on any exit)

let stackDir: string | undefined;
let stackUp = false;
let sb: ChildProcess | undefined;
let sbExited = false;
process.on('exit', () => {
  if (sb && !sbExited) sb.kill('SIGKILL');
  if (stackDir) {
    if (stackUp) {
      try {
        execFileSync(join(repo, 'e2e/k8s/stop.sh'), [stackDir], { stdio: 'ignore' });
      } catch {
        /* best effort */
      }
    }
    rmSync(stackDir, { recursive: true, force: true });
  }
});
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    console.error(`k8s benchmark: ${sig}, cleaning up`);
    process.exit(130);
  });
}

// ---------------------------------------------------------------- helpers

const cpuS = (pid: number) => procUsage(pid).cpuS;
const memMiB = (pid: number, key: 'VmRSS' | 'VmHWM') =>
  key === 'VmRSS' ? procUsage(pid).rssMiB : procUsage(pid).hwmMiB;
const ms = (n: number) => (Number.isFinite(n) ? n.toFixed(0) : '-');
const s1 = (n: number) => (n / 1000).toFixed(1);

async function until(what: string, fn: () => boolean, timeoutMs: number, everyMs = 50): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out (${timeoutMs} ms) waiting for ${what}`);
    await sleep(everyMs);
  }
}

function route(name: string, path: string): Record<string, unknown> {
  return { ...httpRoute(name, path, 'web', GW), metadata: { name, namespace: NS } };
}

/** Run fn over items with at most n in flight. */
async function pool<T>(items: T[], n: number, fn: (x: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]);
    }),
  );
}

// ---------------------------------------------------------------- signalbox's log

interface SbLog {
  /** times of `snapshot set` for our group */
  snapshotSets: number[];
  /** `status written`: time and object (Kind/namespace/name) */
  statusWritten: { t: number; object: string }[];
  conflicts: { t: number; object: string }[];
  warnings: string[];
}

function followLog(child: ChildProcess): SbLog {
  const log: SbLog = { snapshotSets: [], statusWritten: [], conflicts: [], warnings: [] };
  let buf = '';
  child.stdout?.on('data', (b: Buffer) => {
    buf += b.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      let j: { msg?: string; time?: string; group?: string; object?: string; level?: number };
      try {
        j = JSON.parse(line) as typeof j;
      } catch {
        continue;
      }
      const t = Date.parse(j.time ?? '');
      if (j.msg === 'snapshot set' && j.group === GROUP) log.snapshotSets.push(t);
      else if (j.msg === 'status written') log.statusWritten.push({ t, object: String(j.object) });
      else if (j.msg?.startsWith('status conflict')) log.conflicts.push({ t, object: String(j.object) });
      // expected once: the client connects before the Gateway exists
      if (
        (j.level ?? 0) >= 40 &&
        !j.msg?.startsWith('no snapshot for this node group') &&
        log.warnings.length < 20
      )
        log.warnings.push(line.slice(0, 400));
    }
  });
  return log;
}

interface KubeDebug {
  translations: number;
  informerRestarts: number;
  statusWrites: number;
  statusSkipped: number;
  statusFailures: number;
  statusConflicts: number;
  /** informer events that scheduled a translation (newer builds) */
  events?: { relevant: number; ignored: number };
  leader: { leading: boolean } | null;
}

// ---------------------------------------------------------------- the ADS client's view

interface RdsTap {
  /** resolve when an RDS response containing this byte string arrives */
  waiters: Set<{ marker: Buffer; resolve: (t: number) => void }>;
  /** count route entries of each RDS response (decoded), when set */
  counting: boolean;
  responses: number;
  lastAt: number;
  lastEntries: number;
}

function countEntries(m: DiscoveryResponseOut | DeltaDiscoveryResponseOut): number {
  const reg = protoRegistry();
  const values =
    MODE === 'sotw'
      ? ((m as DiscoveryResponseOut).resources ?? []).map((a) => a.value)
      : ((m as DeltaDiscoveryResponseOut).resources ?? []).map((x) => x.resource?.value);
  let n = 0;
  for (const v of values) {
    if (!v) continue;
    const rc = reg.decode(protoName(TypeUrl.Route), v) as { virtual_hosts?: { routes?: unknown[] }[] };
    for (const vh of rc.virtual_hosts ?? []) n += vh.routes?.length ?? 0;
  }
  return n;
}

/**
 * The ADS client's channel, with its response deserializer wrapped: the time a response
 * arrives is taken before it is decoded, and an RDS response is searched for the markers
 * (new path values) the benchmark waits for.
 */
function tappedClient(port: number, tap: RdsTap): grpc.Client {
  const client = makeClients(port, 1)[0];
  type Deser = (b: Buffer) => DiscoveryResponseOut | DeltaDiscoveryResponseOut;
  const orig = client.makeBidiStreamRequest.bind(client) as (
    method: string,
    ser: (v: unknown) => Buffer,
    deser: Deser,
  ) => ReturnType<grpc.Client['makeBidiStreamRequest']>;
  const wrapped = (method: string, ser: (v: unknown) => Buffer, deser: Deser) =>
    orig(method, ser, (b: Buffer) => {
      const t = now();
      const m = deser(b);
      if (m.type_url === TypeUrl.Route) {
        tap.responses++;
        tap.lastAt = t;
        for (const w of tap.waiters) {
          if (b.includes(w.marker)) {
            tap.waiters.delete(w);
            w.resolve(t);
          }
        }
        if (tap.counting) tap.lastEntries = countEntries(m);
      }
      return m;
    });
  client.makeBidiStreamRequest = wrapped as typeof client.makeBidiStreamRequest;
  return client;
}

// ---------------------------------------------------------------- status as the API server has it

interface Cond {
  type?: string;
  status?: string;
  observedGeneration?: number;
}
interface RouteStatus {
  parents?: { controllerName?: string; parentRef?: { name?: string }; conditions?: Cond[] }[];
}

function acceptedAt(o: KubernetesObject, generation: number): boolean {
  const parents = (o as { status?: RouteStatus }).status?.parents ?? [];
  return parents.some(
    (p) =>
      p.controllerName === DEFAULT_CONTROLLER &&
      p.parentRef?.name === GW &&
      (p.conditions ?? []).some(
        (c) => c.type === 'Accepted' && c.status === 'True' && c.observedGeneration === generation,
      ),
  );
}

/** Watches HTTPRoutes and the Gateway (informers in this process) and records when targets are met. */
class StatusView {
  /** route names with Accepted=True at observedGeneration 1 */
  readonly accepted = new Set<string>();
  attachedRoutes = -1;
  private target?: { names: string[]; attached: number; acceptedAt?: number; attachedAt?: number };

  constructor(private readonly kc: KubeConfig) {}

  async start(): Promise<void> {
    const api = this.kc.makeApiClient(CustomObjectsApi);
    const list = (plural: string) => () =>
      api.listNamespacedCustomObject({ group: GROUP_API, version: 'v1', namespace: NS, plural }) as Promise<
        KubernetesListObject<KubernetesObject>
      >;
    const routes = makeInformer(
      this.kc,
      `/apis/${GROUP_API}/v1/namespaces/${NS}/httproutes`,
      list('httproutes'),
    );
    const gws = makeInformer(this.kc, `/apis/${GROUP_API}/v1/namespaces/${NS}/gateways`, list('gateways'));
    const onRoute = (o: KubernetesObject) => {
      const name = o.metadata?.name ?? '';
      if (acceptedAt(o, 1)) this.accepted.add(name);
      else this.accepted.delete(name);
      this.check();
    };
    routes.on('add', onRoute);
    routes.on('update', onRoute);
    const onGw = (o: KubernetesObject) => {
      if (o.metadata?.name !== GW) return;
      const l = (o as { status?: { listeners?: { attachedRoutes?: number }[] } }).status?.listeners;
      this.attachedRoutes = l?.[0]?.attachedRoutes ?? -1;
      this.check();
    };
    gws.on('add', onGw);
    gws.on('update', onGw);
    let stopping = false;
    for (const inf of [routes, gws]) {
      inf.on('error', (err: unknown) => {
        if (!stopping) console.error(`bench informer error (status view may lag): ${String(err)}`);
      });
    }
    await Promise.all([routes.start(), gws.start()]);
    this.stop = async () => {
      stopping = true;
      await Promise.all([routes.stop(), gws.stop()]);
    };
  }

  stop: () => Promise<void> = async () => undefined;

  private check(): void {
    const t = this.target;
    if (!t) return;
    if (t.acceptedAt === undefined && t.names.every((n) => this.accepted.has(n))) t.acceptedAt = now();
    if (t.attachedAt === undefined && this.attachedRoutes === t.attached) t.attachedAt = now();
  }

  /** Wait until every name is Accepted@1 and attachedRoutes equals `attached`; the times each became true. */
  async wait(
    names: string[],
    attached: number,
    timeoutMs: number,
  ): Promise<{ acceptedAt: number; attachedAt: number }> {
    this.target = { names, attached };
    this.check();
    const t = this.target;
    await until(
      `${names.length} routes Accepted@1 and attachedRoutes ${attached}`,
      () => t.acceptedAt !== undefined && t.attachedAt !== undefined,
      timeoutMs,
    );
    this.target = undefined;
    return { acceptedAt: t.acceptedAt as number, attachedAt: t.attachedAt as number };
  }
}

// ---------------------------------------------------------------- main

interface EditResult {
  routesPresent: number;
  pushed: number[];
  apiAnswered: number[];
  snapshotSet: number[];
  cpuS: number;
  missing: number;
}

async function main(): Promise<void> {
  const deadline = setTimeout(() => {
    console.error('k8s benchmark: overall time limit (8 min) reached');
    process.exit(2);
  }, 8 * 60_000);
  deadline.unref();
  console.log(
    `load average ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')} on ${cpus().length} cores (shared); ADS client mode ${MODE}`,
  );

  // cluster
  stackDir = mkdtempSync(join(tmpdir(), 'signalbox-bench-k8s-'));
  let t = now();
  stackUp = true; // from here on stop.sh runs on exit (it is harmless when nothing started)
  try {
    await execAsync(join(repo, 'e2e/k8s/start.sh'), [stackDir], { cwd: repo });
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    throw new Error(`e2e/k8s/start.sh failed:\n${e.stdout ?? ''}${e.stderr ?? ''}`);
  }
  const kubeconfig = join(stackDir, 'kubeconfig');
  console.log(`kube-apiserver + etcd up in ${s1(now() - t)} s (${stackDir})`);
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  const custom = kc.makeApiClient(CustomObjectsApi);
  const core = kc.makeApiClient(CoreV1Api);
  const discovery = kc.makeApiClient(DiscoveryV1Api);
  // right after start.sh the CRDs' storage may still answer 429 "storage is (re)initializing":
  // wait until every Gateway API kind lists, so signalbox's informers start on a warm server
  t = now();
  const kinds: [string, string][] = [
    ['gatewayclasses', 'v1'],
    ['gateways', 'v1'],
    ['httproutes', 'v1'],
    ['grpcroutes', 'v1'],
    ['referencegrants', 'v1beta1'],
  ];
  let warm = false;
  for (let i = 0; i < 150 && !warm; i++) {
    try {
      for (const [plural, version] of kinds)
        await custom.listClusterCustomObject({ group: GROUP_API, version, plural });
      warm = true;
    } catch {
      await sleep(200);
    }
  }
  if (!warm) throw new Error('the Gateway API kinds did not list within 30 s');
  console.log(`Gateway API kinds list after ${s1(now() - t)} s more`);

  // signalbox (info: its log carries the time of `snapshot set` and of each status write)
  const xdsPort = await freePort();
  const debugPort = await freePort();
  sb = spawn(
    process.execPath,
    [
      ...(process.env.K8S_SIGNALBOX_NODE_ARGS ?? '').split(' ').filter(Boolean),
      CLI,
      'serve',
      '--kubeconfig',
      kubeconfig,
      '--xds-address',
      `127.0.0.1:${xdsPort}`,
      '--debug-address',
      `127.0.0.1:${debugPort}`,
      '--listener-address',
      '127.0.0.1',
      '--log-level',
      'info',
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const child = sb;
  child.once('exit', () => (sbExited = true));
  const log = followLog(child);
  await waitPort(xdsPort, 30_000, () => sbExited);
  await waitPort(debugPort, 5_000, () => sbExited);
  const pid = child.pid as number;
  const debug = async (): Promise<KubeDebug> =>
    (await (await fetch(`http://127.0.0.1:${debugPort}/debug/kubernetes`)).json()) as KubeDebug;
  const cpuStart = cpuS(pid);

  // the Envoy of default/gw
  const tap: RdsTap = { waiters: new Set(), counting: true, responses: 0, lastAt: 0, lastEntries: 0 };
  const client = tappedClient(xdsPort, tap);
  let streamError: Error | undefined;
  const stream = new AdsStream({
    client,
    mode: MODE,
    nodeId: 'bench-envoy-1',
    group: GROUP,
    onError: (_s, err) => (streamError = err),
  });
  const pushedWith = (marker: string, timeoutMs: number): { done: Promise<number>; cancel: () => void } => {
    let w: { marker: Buffer; resolve: (t: number) => void } | undefined;
    let timer: NodeJS.Timeout | undefined;
    const done = new Promise<number>((res) => {
      w = { marker: Buffer.from(marker), resolve: res };
      tap.waiters.add(w);
      timer = setTimeout(() => res(NaN), timeoutMs);
    });
    return {
      done: done.finally(() => clearTimeout(timer)),
      cancel: () => {
        if (w) tap.waiters.delete(w);
      },
    };
  };

  const view = new StatusView(kc);
  await view.start();

  // objects: GatewayClass, Gateway, Service + EndpointSlice, baseline routes
  t = now();
  await createGatewayClassAndGateway(custom, { namespace: NS, name: GW, port: 18080 });
  await core.createNamespacedService({
    namespace: NS,
    body: {
      metadata: { name: 'web', namespace: NS },
      spec: { ports: [{ name: 'http', port: 80, targetPort: 8080 }] },
    },
  });
  await discovery.createNamespacedEndpointSlice({
    namespace: NS,
    body: {
      metadata: { name: 'web-1', namespace: NS, labels: { 'kubernetes.io/service-name': 'web' } },
      addressType: 'IPv4',
      ports: [{ name: 'http', port: 8080 }],
      endpoints: [{ addresses: [BACKEND_IP], conditions: { ready: true } }],
    },
  });
  const baseNames = Array.from({ length: BASELINE }, (_, i) => `r-${i}`);
  const createRoute = (name: string, path: string) =>
    custom.createNamespacedCustomObject({
      group: GROUP_API,
      version: 'v1',
      namespace: NS,
      plural: 'httproutes',
      body: route(name, path),
    });
  await pool(baseNames, CONCURRENCY, async (n) => {
    await createRoute(n, `/base/${n}`);
  });
  await view.wait(baseNames, BASELINE, 60_000);
  await until('the ADS client holding the baseline routes', () => tap.lastEntries >= BASELINE, 30_000);

  /** Wait until signalbox made no status write and no translation for QUIET_MS. */
  const quiet = async (timeoutMs: number): Promise<KubeDebug> => {
    const end = Date.now() + timeoutMs;
    let last = await debug();
    let since = now();
    for (;;) {
      await sleep(200);
      const d = await debug();
      if (d.statusWrites !== last.statusWrites || d.translations !== last.translations) {
        last = d;
        since = now();
      } else if (now() - since >= QUIET_MS) return d;
      if (Date.now() > end) throw new Error('signalbox did not become quiet');
    }
  };
  const d0 = await quiet(60_000);
  console.log(
    `setup: GatewayClass, Gateway, Service, EndpointSlice and ${BASELINE} routes accepted and served in ${s1(now() - t)} s ` +
      `(signalbox: ${d0.translations} translations, ${d0.statusWrites} status writes, leader ${d0.leader?.leading ?? 'n/a'})`,
  );
  tap.counting = false;

  // figure 1: single-route edits
  const runTag = Date.now().toString(36);
  const edits = async (label: string, routesPresent: number): Promise<EditResult> => {
    const r: EditResult = {
      routesPresent,
      pushed: [],
      apiAnswered: [],
      snapshotSet: [],
      cpuS: 0,
      missing: 0,
    };
    const c0 = cpuS(pid);
    for (let i = 0; i < EDITS; i++) {
      const name = baseNames[i % baseNames.length];
      // same length for every value: no marker is a substring of another
      const value = `/edit-${runTag}-${label}-${String(i).padStart(4, '0')}`;
      const w = pushedWith(value, 15_000);
      const nSets = log.snapshotSets.length;
      const t0 = now();
      await custom.patchNamespacedCustomObject(
        {
          group: GROUP_API,
          version: 'v1',
          namespace: NS,
          plural: 'httproutes',
          name,
          body: [{ op: 'replace', path: '/spec/rules/0/matches/0/path/value', value }],
        },
        setHeaderOptions('Content-Type', PatchStrategy.JsonPatch),
      );
      const tApi = now();
      const tPush = await w.done;
      w.cancel();
      if (!Number.isFinite(tPush)) {
        r.missing++;
        continue;
      }
      r.pushed.push(tPush - t0);
      r.apiAnswered.push(tApi - t0);
      // the log line may come a little after the push
      for (let k = 0; k < 50 && log.snapshotSets.length <= nSets; k++) await sleep(10);
      const tSet = log.snapshotSets.slice(nSets).find((x) => x >= Math.floor(t0));
      if (tSet !== undefined) r.snapshotSet.push(tSet - t0);
      await sleep(GAP_MS); // let the route's status write and its echo (a translation) pass
    }
    r.cpuS = cpuS(pid) - c0;
    for (const a of [r.pushed, r.apiAnswered, r.snapshotSet]) a.sort((x, y) => x - y);
    return r;
  };
  const printEdits = (r: EditResult) => {
    const line = (what: string, a: number[]) =>
      `    ${what.padEnd(34)} p50 ${ms(pct(a, 50)).padStart(5)}  p99 ${ms(pct(a, 99)).padStart(5)}  max ${ms(pct(a, 100)).padStart(5)} ms`;
    console.log(
      `  ${r.routesPresent} routes present, ${EDITS} sequential edits of one route's path (JSON patch), ${GAP_MS} ms apart:`,
    );
    console.log(line('event → RDS with new path pushed', r.pushed));
    console.log(line('event → API server answered', r.apiAnswered));
    console.log(line('event → snapshot set (its log, ms)', r.snapshotSet));
    console.log(
      `    not pushed within 15 s: ${r.missing}; signalbox CPU ${r.cpuS.toFixed(2)} s (${((r.cpuS / EDITS) * 1000).toFixed(0)} ms per edit, with the status write and its echo)`,
    );
  };

  console.log('figure 1, baseline:');
  const base = await edits('b', BASELINE);
  printEdits(base);
  await quiet(30_000);

  // figure 2: burst of route creations
  const burstNames = Array.from({ length: ROUTES }, (_, i) => `burst-${String(i).padStart(4, '0')}`);
  const total = BASELINE + ROUTES;
  const dB = await debug();
  const nWritten = log.statusWritten.length;
  const nConf = log.conflicts.length;
  const rds0 = tap.responses;
  tap.counting = true;
  const c0 = cpuS(pid);
  const tB = now();
  let createErrors = 0;
  await pool(burstNames, CONCURRENCY, async (n) => {
    try {
      await createRoute(n, `/burst/${n}`);
    } catch (err) {
      createErrors++;
      if (createErrors <= 3) console.error(`create ${n}: ${String(err).slice(0, 300)}`);
    }
  });
  const tCreated = now();
  const { acceptedAt, attachedAt } = await view.wait(burstNames, total, 240_000);
  const dQ = await quiet(120_000);
  const tQuiet = now();
  const burstCpu = cpuS(pid) - c0;
  tap.counting = false;
  const writes = log.statusWritten.slice(nWritten);
  const byKind = new Map<string, number>();
  for (const w of writes) byKind.set(w.object.split('/')[0], (byKind.get(w.object.split('/')[0]) ?? 0) + 1);
  const lastWrite = writes.length > 0 ? writes[writes.length - 1].t : NaN;
  const distinctRoutes = new Set(writes.filter((w) => w.object.startsWith('HTTPRoute/')).map((w) => w.object))
    .size;
  console.log(`figure 2, burst of ${ROUTES} HTTPRoute creations (${CONCURRENCY} in flight) on ${GROUP}:`);
  console.log(
    `    created in ${s1(tCreated - tB)} s (${(ROUTES / ((tCreated - tB) / 1000)).toFixed(0)}/s, ${createErrors} errors); ` +
      `all Accepted@1 at ${s1(acceptedAt - tB)} s; attachedRoutes ${total} at ${s1(attachedAt - tB)} s; ` +
      `last status write at ${s1(lastWrite - tB)} s; quiet (${QUIET_MS} ms without write or translation) at ${s1(tQuiet - tB)} s`,
  );
  console.log(
    `    status writes ${dQ.statusWrites - dB.statusWrites} (log: ${[...byKind].map(([k, v]) => `${k} ${v}`).join(', ')}; ` +
      `${distinctRoutes} distinct routes); lower bound ${ROUTES + 1} (${ROUTES} routes + the Gateway once); ` +
      `conflicts ${dQ.statusConflicts - dB.statusConflicts} (log ${log.conflicts.length - nConf}), ` +
      `failures ${dQ.statusFailures - dB.statusFailures}, skipped (already equal) ${dQ.statusSkipped - dB.statusSkipped}`,
  );
  console.log(
    `    translations ${dQ.translations - dB.translations}` +
      (dQ.events && dB.events
        ? ` (informer events: ${dQ.events.relevant - dB.events.relevant} relevant, ${dQ.events.ignored - dB.events.ignored} ignored)`
        : '') +
      `; RDS responses to the client ${tap.responses - rds0}, ` +
      `last at ${s1(tap.lastAt - tB)} s holding ${tap.lastEntries} route entries; signalbox CPU ${burstCpu.toFixed(2)} s`,
  );
  const routeWrites = writes.filter((w) => w.object.startsWith('HTTPRoute/'));
  const rw0 = routeWrites[0]?.t ?? NaN;
  const rw1 = routeWrites[routeWrites.length - 1]?.t ?? NaN;
  console.log(
    `    Gateway status writes at ${
      writes
        .filter((w) => w.object.startsWith('Gateway/'))
        .map((w) => s1(w.t - tB))
        .join(', ') || '-'
    } s; route status writes from ${s1(rw0 - tB)} to ${s1(rw1 - tB)} s ` +
      `(${((routeWrites.length - 1) / ((rw1 - rw0) / 1000)).toFixed(1)}/s); conflicts on ${
        log.conflicts
          .slice(nConf)
          .map((c) => c.object)
          .join(', ') || '-'
      }`,
  );

  // figure 1 with the burst's routes present
  console.log(`figure 1, ${total} routes:`);
  const full = await edits('f', total);
  printEdits(full);

  const r50 = pct(full.pushed, 50) / pct(base.pushed, 50);
  const r99 = pct(full.pushed, 99) / pct(base.pushed, 99);
  console.log(
    `  ratio ${total} / ${BASELINE} routes, event → pushed: p50 ${ms(pct(full.pushed, 50))} / ${ms(pct(base.pushed, 50))} ms = ${r50.toFixed(2)}x; ` +
      `p99 ${ms(pct(full.pushed, 99))} / ${ms(pct(base.pushed, 99))} ms = ${r99.toFixed(2)}x`,
  );

  const dEnd = await debug();
  console.log(
    `signalbox: CPU ${(cpuS(pid) - cpuStart).toFixed(1)} s in all (after start), RSS now ${memMiB(pid, 'VmRSS').toFixed(0)} MiB, ` +
      `peak (VmHWM) ${memMiB(pid, 'VmHWM').toFixed(0)} MiB; informer restarts ${dEnd.informerRestarts}; ` +
      `ADS client ${stream.acks} ACKs, ${stream.nacks} NACKs${streamError ? `, stream error ${streamError.message}` : ''}`,
  );
  if (log.warnings.length > 0) console.log(`signalbox warnings:\n  ${log.warnings.join('\n  ')}`);

  // orderly stop: client, informers, signalbox (the cluster stops in the exit handler)
  stream.close();
  client.close();
  await view.stop();
  child.kill('SIGTERM');
  const killer = setTimeout(() => child.kill('SIGKILL'), 3000);
  if (!sbExited) await new Promise((r) => child.once('exit', r));
  clearTimeout(killer);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
