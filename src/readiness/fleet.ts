/**
 * Readiness over the whole fleet (Kubernetes mode, several replicas). Each replica proves
 * route changes through the Envoys connected to it (its own Readiness), but only the leader
 * writes status: so every replica publishes its Readiness's `report()` as one ConfigMap
 * (`signalbox-readiness-<identity>`, label `signalbox.dev/readiness-report: "true"`, in the
 * Lease's namespace; data `report.json`, `identity`, `renewedAt`) when it changes (at most
 * every ~200 ms) and as a heartbeat every `heartbeatMs`, and deletes it on stop.
 *
 * Every replica watches those ConfigMaps (a ListWatch on the label in that namespace: a
 * change on another replica — a route proved there — reaches the leader's status within one
 * watch event, not one polling period later; and a replica that takes the Lease over already
 * holds every report). The leader's `combine` (FleetView) is the minimum over the fleet:
 * every replica with Envoys of the Gateway (its own included, from its live state) must
 * report the route Ready with the same hash; a replica whose report is stale (not renewed
 * within 3 × heartbeatMs) but had Envoys of the Gateway is unknown, never Ready. A report
 * not renewed for longer than `expireMs` by both clocks below (a replica that crashed and
 * never came back: its pod is gone, its ConfigMap would block Ready for ever) is deleted by
 * the leader. A report larger than a ConfigMap holds leaves the routes' messages out.
 *
 * Freshness is judged on the writer's clock (`renewedAt`) and on ours (when we last saw the
 * report renewed): a report is fresh only if both are recent, so a replica whose clock runs
 * ahead cannot look fresh while it no longer writes.
 */
import { createHash } from 'node:crypto';
import { CoreV1Api, ListWatch, Watch } from '@kubernetes/client-node';
import type { KubeConfig, V1ConfigMap } from '@kubernetes/client-node';
import type { Logger } from '../log.js';
import type { FleetView, Readiness, ReadinessReport, ReadyReason, RouteReadiness } from './index.js';

export const REPORT_LABEL = 'signalbox.dev/readiness-report';
const PREFIX = 'signalbox-readiness-';

/** The ConfigMap name of a replica's report: DNS-1123 (a hash suffix when the identity had to change). */
export function reportName(identity: string): string {
  let s = identity
    .toLowerCase()
    .replace(/[^a-z0-9.-]+/g, '-')
    .replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, '');
  const max = 253 - PREFIX.length;
  if (s !== identity || s.length > max) {
    const h = createHash('sha256').update(identity).digest('hex').slice(0, 8);
    s = `${s.slice(0, max - 9).replace(/[^a-z0-9]+$/, '')}-${h}`.replace(/^-/, '');
  }
  return PREFIX + s;
}

const rfc3339ms = (d = new Date()) => d.toISOString();
const rfc3339 = (d = new Date()) => d.toISOString().replace(/\.\d+Z$/, 'Z');

/** Another replica's last report, as the leader knows it. */
export interface PeerReport {
  identity: string;
  report: ReadinessReport;
  /** the writer's clock (ms since epoch) */
  renewedAt: number;
  /** our clock: when we last saw it renewed */
  seenAt: number;
  /** its routes by `<group> <route>` (made on first use) */
  byRoute?: Map<string, ReadinessReport['routes'][number]>;
}

function routeOf(p: PeerReport, route: string, group: string): ReadinessReport['routes'][number] | undefined {
  if (!p.byRoute) p.byRoute = new Map(p.report.routes.map((r) => [`${r.group} ${r.route}`, r]));
  return p.byRoute.get(`${group} ${route}`);
}

/** ConfigMaps hold at most 1 MiB: beyond this the routes' messages are left out of a report */
export const MAX_REPORT_BYTES = 900_000;

/** A report's JSON for its ConfigMap (messages dropped when it would not fit). */
export function reportJson(identity: string, report: ReadinessReport): string {
  const full = JSON.stringify({ identity, report });
  if (Buffer.byteLength(full) <= MAX_REPORT_BYTES) return full;
  return JSON.stringify({
    identity,
    report: { ...report, routes: report.routes.map((r) => ({ ...r, message: '' })) },
    truncated: true,
  });
}

const PRECEDENCE: ReadyReason[] = [
  'Nacked',
  'ProbeFailed',
  'NoEndpoints',
  'EnvoyDisconnected',
  'ReplicaUnknown',
  'Proving',
  'NoDataPlane',
];
const worse = (a: ReadyReason, b: ReadyReason) => PRECEDENCE.indexOf(a) < PRECEDENCE.indexOf(b);

export interface CombineInput {
  route: string;
  group: string;
  /** this replica's identity and live state */
  self: string;
  own: RouteReadiness | undefined;
  /** Envoys of `group` connected to this replica */
  ownEnvoys: number;
  /** the other replicas' reports (this replica's own, if present, is ignored) */
  peers: Iterable<PeerReport>;
  now: number;
  heartbeatMs: number;
}

export function isFresh(p: PeerReport, now: number, heartbeatMs: number): boolean {
  const limit = 3 * heartbeatMs;
  return now - p.renewedAt <= limit && now - p.seenAt <= limit;
}

/**
 * The fleet's readiness of a route (without `phase`/`since`/`nodes` bookkeeping of its own:
 * those come from `own` or are filled in by the caller).
 */
export function combineRoute(
  i: CombineInput,
): (Omit<RouteReadiness, 'since'> & { since?: string }) | undefined {
  const { route, group, own, now, heartbeatMs } = i;
  interface Considered {
    identity: string;
    fresh: boolean;
    renewedAt?: number;
    state: Pick<RouteReadiness, 'ready' | 'reason' | 'message' | 'hash' | 'generation'> | undefined;
    envoys: number;
  }
  const considered: Considered[] = [];
  if (i.ownEnvoys > 0) considered.push({ identity: i.self, fresh: true, state: own, envoys: i.ownEnvoys });
  const others: Considered[] = [];
  for (const p of i.peers) {
    if (p.identity === i.self) continue;
    const envoys = p.report.envoys[group] ?? 0;
    if (envoys <= 0) continue;
    const c: Considered = {
      identity: p.identity,
      fresh: isFresh(p, now, heartbeatMs),
      renewedAt: p.renewedAt,
      state: routeOf(p, route, group),
      envoys,
    };
    considered.push(c);
    others.push(c);
  }
  const base = {
    route,
    group,
    phase: own?.phase ?? ('done' as const),
    nodes: own?.nodes ?? [],
    ...(own ? { since: own.since } : {}),
  };
  if (considered.length === 0) {
    if (!own) return undefined;
    return {
      ...base,
      generation: own.generation,
      hash: own.hash,
      ready: false,
      reason: 'NoDataPlane',
      message: `no Envoy of Gateway ${group} is connected to any replica`,
    };
  }
  // the reference: the leader's own state, or (when it has no Envoys of the Gateway) the
  // newest state the others report, computed from the same desired state
  let ref: { hash: string; generation: number } | undefined =
    own && own.reason !== 'NoDataPlane' ? { hash: own.hash, generation: own.generation } : undefined;
  if (!ref) {
    for (const c of others)
      if (c.fresh && c.state && (!ref || c.state.generation > ref.generation))
        ref = { hash: c.state.hash, generation: c.state.generation };
    if (own && ref && own.generation > ref.generation) ref = { hash: own.hash, generation: own.generation };
  }
  if (!ref && own) ref = { hash: own.hash, generation: own.generation };
  if (!ref) return undefined; // no replica knows the route yet: "waiting for the data plane"
  if (considered.length === 1 && considered[0].identity === i.self && own) return { ...own }; // only this replica serves the Gateway: its own state as it is

  const problems: { reason: ReadyReason; message: string }[] = [];
  const proved: string[] = [];
  for (const c of considered) {
    const who = `replica ${c.identity}`;
    if (!c.fresh) {
      problems.push({
        reason: 'ReplicaUnknown',
        message: `${who} has not reported since ${rfc3339(new Date(c.renewedAt ?? 0))} (${c.envoys} Envoy(s) of the Gateway then): unknown`,
      });
      continue;
    }
    const s = c.state;
    if (!s)
      problems.push({ reason: 'Proving', message: `${who}: Proving (has not translated the route yet)` });
    else if (s.hash !== ref.hash)
      problems.push({
        reason: 'Proving',
        message: `${who}: Proving (at another state of the route, generation ${s.generation}: ${s.reason})`,
      });
    else if (!s.ready) problems.push({ reason: s.reason, message: `${who}: ${s.reason} ${s.message}` });
    else proved.push(`${who}: ${s.message}`);
  }
  if (problems.length === 0)
    return {
      ...base,
      generation: ref.generation,
      hash: ref.hash,
      ready: true,
      reason: 'Ready',
      message: `proved on every replica with Envoys of the Gateway (${considered.length}): ${proved.join('; ')}`,
    };
  let reason = problems[0].reason;
  for (const p of problems) if (worse(p.reason, reason)) reason = p.reason;
  problems.sort((a, b) => PRECEDENCE.indexOf(a.reason) - PRECEDENCE.indexOf(b.reason));
  return {
    ...base,
    generation: ref.generation,
    hash: ref.hash,
    ready: false,
    reason,
    message: problems.map((p) => p.message).join('; '),
  };
}

export interface ReplicaReportsOptions {
  kc: KubeConfig;
  readiness: Readiness;
  log: Logger;
  namespace: string;
  identity: string;
  /** report renewal period (ms); a report older than 3 × this is stale (default 5000) */
  heartbeatMs?: number;
  /** a report stale for this long is deleted by the leader (default 5 minutes; 0: never) */
  expireMs?: number;
  /** Envoys of a Gateway connected to this replica (default: from readiness.report()) */
  localEnvoys?: (group: string) => number;
  /** whether this replica leads (only the leader deletes expired reports) */
  isLeader?: () => boolean;
}

interface ReportData {
  identity?: string;
  report?: ReadinessReport;
}

/** Publishes this replica's report; reads the others'; the FleetView of the leader. */
export class ReplicaReports implements FleetView {
  readonly name: string;
  private readonly api: CoreV1Api;
  private readonly heartbeatMs: number;
  private readonly expireMs: number;
  private readonly peers = new Map<
    string,
    PeerReport & { name: string; resourceVersion?: string; raw: string }
  >();
  private stopped = false;
  private started = false;
  private publishTimer?: NodeJS.Timeout;
  private heartbeatTimer?: NodeJS.Timeout;
  private checkTimer?: NodeJS.Timeout;
  private watchRetry?: NodeJS.Timeout;
  private informer?: ListWatch<V1ConfigMap>;
  private inFlight?: Promise<void>;
  private again = false;
  private lastWrite = 0;
  private lastPublished = '';
  private lastSignature = '';
  /** route → the last verdict combine() returned (and its JSON) */
  private readonly memo = new Map<string, { out: RouteReadiness; json: string }>();
  /** counters for /debug/readiness-fleet */
  publishes = 0;
  publishFailures = 0;
  expired = 0;
  private lastError?: string;
  private readonly onChanged = () => this.schedulePublish();

  constructor(private readonly o: ReplicaReportsOptions) {
    this.name = reportName(o.identity);
    this.api = o.kc.makeApiClient(CoreV1Api);
    this.heartbeatMs = o.heartbeatMs ?? 5000;
    this.expireMs = o.expireMs ?? 300_000;
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    this.o.readiness.on('changed', this.onChanged);
    this.schedulePublish(true);
    this.watch();
    // freshness moves with time alone: a replica that stops writing turns stale with no event
    this.checkTimer = setInterval(() => this.check(), Math.max(50, Math.min(1000, this.heartbeatMs / 4)));
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.o.readiness.off('changed', this.onChanged);
    clearTimeout(this.publishTimer);
    clearTimeout(this.heartbeatTimer);
    clearInterval(this.checkTimer);
    clearTimeout(this.watchRetry);
    await this.informer?.stop().catch(() => undefined);
    await this.inFlight?.catch(() => undefined);
    if (!this.started) return;
    try {
      await this.api.deleteNamespacedConfigMap({ name: this.name, namespace: this.o.namespace });
    } catch (err) {
      if (code(err) !== 404)
        this.o.log.warn({ err: String(err).slice(0, 200) }, 'could not delete the readiness report');
    }
  }

  // ---- publishing

  private schedulePublish(force = false): void {
    if (this.stopped) return;
    if (force) this.again = true;
    if (this.publishTimer) return;
    const wait = Math.max(0, this.lastWrite + 200 - Date.now());
    this.publishTimer = setTimeout(() => {
      this.publishTimer = undefined;
      void this.publish();
    }, wait);
  }

  private publish(): Promise<void> {
    if (this.inFlight) {
      // one write at a time: the latest state goes after the one in flight
      void this.inFlight.then(() => this.schedulePublish());
      return this.inFlight;
    }
    const report = reportJson(this.o.identity, this.o.readiness.report());
    const heartbeat = this.again || Date.now() - this.lastWrite >= this.heartbeatMs;
    if (report === this.lastPublished && !heartbeat) return Promise.resolve();
    this.again = false;
    const p = this.write(report).finally(() => {
      this.inFlight = undefined;
    });
    this.inFlight = p;
    return p;
  }

  private async write(report: string): Promise<void> {
    const body: V1ConfigMap = {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: {
        name: this.name,
        namespace: this.o.namespace,
        labels: { [REPORT_LABEL]: 'true' },
      },
      data: { 'report.json': report, identity: this.o.identity, renewedAt: rfc3339ms() },
    };
    const ref = { name: this.name, namespace: this.o.namespace };
    let next = this.heartbeatMs;
    try {
      try {
        await this.api.replaceNamespacedConfigMap({ ...ref, body });
      } catch (err) {
        if (code(err) !== 404) throw err;
        try {
          await this.api.createNamespacedConfigMap({ namespace: this.o.namespace, body });
        } catch (e) {
          if (code(e) !== 409) throw e;
          await this.api.replaceNamespacedConfigMap({ ...ref, body }); // created meanwhile
        }
      }
      this.lastPublished = report;
      this.lastWrite = Date.now();
      this.publishes++;
      this.lastError = undefined;
    } catch (err) {
      this.publishFailures++;
      this.lastError = String(err).slice(0, 300);
      if (this.publishFailures === 1 || this.publishFailures % 20 === 0)
        this.o.log.warn(
          { err: this.lastError, failures: this.publishFailures },
          'could not publish the readiness report: retrying',
        );
      next = Math.min(1000, this.heartbeatMs);
      this.again = true;
    }
    if (this.stopped) return;
    clearTimeout(this.heartbeatTimer);
    this.heartbeatTimer = setTimeout(() => this.schedulePublish(true), next);
  }

  // ---- reading the others

  private watch(): void {
    const ns = this.o.namespace;
    const labelSelector = `${REPORT_LABEL}=true`;
    const inf = new ListWatch<V1ConfigMap>(
      `/api/v1/namespaces/${ns}/configmaps`,
      new Watch(this.o.kc),
      () => this.api.listNamespacedConfigMap({ namespace: ns, labelSelector }),
      false,
      labelSelector,
    );
    inf.on('add', (cm) => this.observe(cm));
    inf.on('update', (cm) => this.observe(cm));
    inf.on('delete', (cm) => this.forget(cm));
    inf.on('error', (err: unknown) => {
      if (this.stopped) return;
      this.o.log.debug({ err: String(err).slice(0, 200) }, 'readiness report watch failed: retrying');
      this.watchRetry = setTimeout(
        () => {
          if (!this.stopped) inf.start().catch(() => undefined);
        },
        Math.min(2000, this.heartbeatMs),
      );
    });
    this.informer = inf;
    inf.start().catch(() => undefined);
  }

  /** A report ConfigMap as read from the API server (public for tests). */
  observe(cm: V1ConfigMap): void {
    const name = cm.metadata?.name ?? '';
    let data: ReportData = {};
    try {
      data = JSON.parse(cm.data?.['report.json'] ?? '{}') as ReportData;
    } catch {
      /* a broken report counts as none */
    }
    const identity = data.identity ?? cm.data?.identity;
    if (!identity || identity === this.o.identity || !data.report) return;
    const raw = cm.data?.['report.json'] ?? '';
    const renewedAt = Date.parse(cm.data?.renewedAt ?? '') || 0;
    const prev = this.peers.get(identity);
    const seenAt = prev && prev.renewedAt === renewedAt ? prev.seenAt : Date.now();
    this.peers.set(identity, {
      raw,
      identity,
      name,
      report: {
        routes: Array.isArray(data.report.routes) ? data.report.routes : [],
        envoys: data.report.envoys ?? {},
      },
      renewedAt,
      seenAt,
      resourceVersion: cm.metadata?.resourceVersion,
    });
    this.check();
  }

  private forget(cm: V1ConfigMap): void {
    for (const [id, p] of this.peers) if (p.name === cm.metadata?.name) this.peers.delete(id);
    this.check();
  }

  /** When the others' reports (or their freshness) changed: the statuses are written again. */
  private check(): void {
    if (this.stopped) return;
    const now = Date.now();
    const sig = JSON.stringify(
      [...this.peers.values()]
        .sort((a, b) => (a.identity < b.identity ? -1 : 1))
        .map((p) => [p.identity, isFresh(p, now, this.heartbeatMs), p.raw]),
    );
    if (sig !== this.lastSignature) {
      this.lastSignature = sig;
      this.o.readiness.changed();
    }
    if (this.expireMs > 0 && this.o.isLeader?.())
      for (const p of this.peers.values())
        if (now - Math.max(p.renewedAt, p.seenAt) > this.expireMs) void this.expire(p);
  }

  private async expire(p: PeerReport & { name: string; resourceVersion?: string }): Promise<void> {
    this.peers.delete(p.identity);
    this.expired++;
    this.o.log.info(
      { replica: p.identity, renewedAt: rfc3339ms(new Date(p.renewedAt)) },
      'deleting the readiness report of a replica that stopped reporting',
    );
    try {
      await this.api.deleteNamespacedConfigMap({
        name: p.name,
        namespace: this.o.namespace,
        // not one renewed meanwhile
        body: p.resourceVersion ? { preconditions: { resourceVersion: p.resourceVersion } } : undefined,
      });
    } catch (err) {
      if (code(err) !== 404 && code(err) !== 409)
        this.o.log.warn({ err: String(err).slice(0, 200) }, 'could not delete an expired readiness report');
    }
  }

  // ---- FleetView

  private envoysHere(group: string): number {
    return this.o.localEnvoys ? this.o.localEnvoys(group) : this.o.readiness.envoysOf(group);
  }

  combine(route: string, group: string, own: RouteReadiness | undefined): RouteReadiness | undefined {
    const r = combineRoute({
      route,
      group,
      self: this.o.identity,
      own,
      ownEnvoys: this.envoysHere(group),
      peers: this.peers.values(),
      now: Date.now(),
      heartbeatMs: this.heartbeatMs,
    });
    if (!r) return undefined;
    // lastTransitionTime: when ready/reason last changed over the fleet
    const k = `${group} ${route}`;
    const m = this.memo.get(k);
    const since =
      m && m.out.ready === r.ready && m.out.reason === r.reason
        ? m.out.since
        : own && own.ready === r.ready && own.reason === r.reason
          ? own.since
          : rfc3339();
    const out: RouteReadiness = { ...r, since };
    // the same verdict as last time is the same object (decorate() reuses its output by identity)
    const json = JSON.stringify(out);
    if (m?.json === json) return m.out;
    if (this.memo.size > 10_000) this.memo.clear();
    this.memo.set(k, { out, json });
    return out;
  }

  toJSON(): unknown {
    const now = Date.now();
    return {
      identity: this.o.identity,
      configMap: `${this.o.namespace}/${this.name}`,
      heartbeatMs: this.heartbeatMs,
      expireMs: this.expireMs,
      leader: this.o.isLeader?.() ?? null,
      publishes: this.publishes,
      publishFailures: this.publishFailures,
      lastError: this.lastError ?? null,
      lastPublishedAt: this.lastWrite ? rfc3339ms(new Date(this.lastWrite)) : null,
      expired: this.expired,
      own: { envoys: this.o.readiness.report().envoys },
      peers: [...this.peers.values()]
        .sort((a, b) => (a.identity < b.identity ? -1 : 1))
        .map((p) => ({
          identity: p.identity,
          configMap: `${this.o.namespace}/${p.name}`,
          renewedAt: rfc3339ms(new Date(p.renewedAt)),
          ageMs: now - p.renewedAt,
          fresh: isFresh(p, now, this.heartbeatMs),
          envoys: p.report.envoys,
          routes: p.report.routes.map((r) => ({
            route: r.route,
            group: r.group,
            generation: r.generation,
            ready: r.ready,
            reason: r.reason,
            hash: r.hash,
          })),
        })),
    };
  }
}

function code(err: unknown): number | undefined {
  return (err as { code?: number }).code;
}
