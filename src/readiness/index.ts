/**
 * Proved readiness. The readiness layer owns what each Gateway's Envoys are served: the
 * pipeline hands it the desired snapshot of a Gateway (`desire`), and it moves the Gateway
 * there route by route, proving each changed route through the data plane (xds-rules 16-18):
 *
 *   1 add:     the changed routes keep what they served (their old entries, or none when
 *              new); their new clusters and endpoints are added, with one probe route per
 *              new backend (matched only by the probe header carrying the hash of the
 *              route's desired state); every connected Envoy of the Gateway must ACK; each
 *              is probed until the answer proves it applied that state and the backend
 *              answered;
 *   2 promote: the routes whose probes passed serve their new entries (probe routes stay:
 *              dropping them in the same push causes a 503 spike); ACK; probed again;
 *   3 drop:    probe routes and whatever nothing references any more go; ACK.
 *
 * A route is Ready once phase 3 is ACKed. A route whose probes fail (ProbeFailed) or whose
 * change Envoy NACKs (Nacked) keeps serving what it served before (or nothing, if it never
 * was) while the Gateway's other routes go on; it is tried again when it is edited. A route
 * whose backends have no endpoints is promoted without a probe (NoEndpoints), a Gateway
 * with no Envoy connected leaves its routes NoDataPlane. Edits arriving during phase 1
 * supersede it (a new sequence starts from the newest desired state); once promoted, a
 * sequence runs to its end. `naive` mode is the baseline: one push, Ready at the first ACK
 * of every Envoy.
 */
import { EventEmitter, setMaxListeners } from 'node:events';
import type { Condition, ObjectStatus } from '../gatewayapi/index.js';
import type { Logger } from '../log.js';
import type { SnapshotCache } from '../xds/cache/cache.js';
import type { StreamLedger } from '../xds/cache/ledger.js';
import { Snapshot } from '../xds/cache/snapshot.js';
import type { JsonObject, ProtoRegistry } from '../xds/proto.js';
import { TypeUrl } from '../xds/resource.js';
import { routeConfigurationFromJson } from '../xds/translate/index.js';
import type { Resource } from '../xds/resource.js';
import {
  cloneCluster,
  clustersOf,
  compose,
  endpointCount,
  entriesByRoute,
  fingerprint,
  parseRouteKey,
  routeKey,
  routeKeyOf,
  withRoutes,
} from './compose.js';
import type { EntryRef } from './compose.js';
import { isProbeRoute, withProbeRoutes } from './probe.js';
import type { ProbeRequest } from './probe.js';
import { probeUntil } from './prober.js';
import { ReadinessMetrics } from './metrics.js';
import type { Registry } from 'prom-client';
import type { ProbeOutcome, ProbeTarget } from './prober.js';

export type ReadinessMode = 'proved' | 'naive';
export type ReadyReason =
  | 'Ready'
  | 'Proving'
  | 'Nacked'
  | 'ProbeFailed'
  | 'NoEndpoints'
  | 'NoDataPlane'
  /** proved through the Envoys connected, not yet on one that went away within --node-grace */
  | 'EnvoyDisconnected'
  /** (fleet) a replica with Envoys of the Gateway stopped reporting */
  | 'ReplicaUnknown';
export type Phase = 'add' | 'promote' | 'drop' | 'done';

export interface NodeReadiness {
  node: string;
  stream: number;
  acked: boolean;
  error?: string;
  probe?: { ok: boolean; reason?: string; status?: number; detail?: string; attempts?: number; at: string };
}

export interface RouteReadiness {
  /** `<kind>/<namespace>/<name>` (lower-case kind) */
  route: string;
  /** the Gateway, `<namespace>/<name>` */
  group: string;
  generation: number;
  ready: boolean;
  reason: ReadyReason;
  message: string;
  phase: Phase;
  /** hash of the desired state being (or last) proved */
  hash: string;
  /** when `ready`/`reason` last changed (RFC 3339) */
  since: string;
  nodes: NodeReadiness[];
}

export interface ReadinessOptions {
  cache: SnapshotCache;
  registry: ProtoRegistry;
  log: Logger;
  mode: ReadinessMode;
  controllerName: string;
  /** how long a phase waits for every Envoy's ACK (ms) */
  ackTimeoutMs?: number;
  /** how long the probes of a phase may take (ms) */
  probeTimeoutMs?: number;
  /** when a route that failed its probes is tried again (ms; default 30 s) */
  probeRetryMs?: number;
  /**
   * how long an Envoy of a Gateway that disconnected is still expected back (ms; default
   * 60 s): a route changed meanwhile is EnvoyDisconnected, not Ready, until that Envoy
   * reconnects and the route is proved on it, or the grace ends (scaled down: forgotten)
   */
  nodeGraceMs?: number;
  /** Prometheus registry for the readiness metrics (see metrics.ts) */
  metrics?: Registry;
}

const allResources = (s: Snapshot): Resource[] => [...s.resources.values()].flatMap((m) => [...m.values()]);

const rfc3339 = (d = new Date()) => d.toISOString().replace(/\.\d+Z$/, 'Z');

/** Host part of a gRPC peer string (`127.0.0.1:4567`, `[::1]:4567`, `ipv4:...`). */
export function peerHost(peer: string): string {
  let p = peer.replace(/^ipv[46]:/, '');
  if (p.startsWith('[')) p = p.slice(1, p.indexOf(']'));
  else if (p.split(':').length === 2) p = p.slice(0, p.lastIndexOf(':'));
  return p.replace(/^::ffff:/, '');
}

type Applied =
  | { outcome: 'acked'; nodes: NodeReadiness[] }
  | { outcome: 'nacked'; error: string; nodes: NodeReadiness[] }
  | { outcome: 'timeout'; nodes: NodeReadiness[] }
  | { outcome: 'nodata'; nodes: NodeReadiness[] }
  | { outcome: 'aborted'; nodes: NodeReadiness[] };

/** Whether a stream holds `snap` (ACKed every resource it needs, nothing removed still held). */
export function streamHolds(st: StreamLedger, snap: Snapshot): true | false | { nacked: string } {
  const r = (t: TypeUrl, name: string) => st.types.get(t)?.resources.get(name);
  let ok = true;
  const need = (t: TypeUrl, res: Resource | undefined): boolean | { nacked: string } => {
    if (!res) return true;
    const x = r(t, res.name);
    if (x?.acked === res.hash) return true;
    if (x?.nacked === res.hash) return { nacked: x.error ?? 'NACKed' };
    return false;
  };
  const check = (v: boolean | { nacked: string }): { nacked: string } | undefined => {
    if (v === false) ok = false;
    return typeof v === 'object' ? v : undefined;
  };
  for (const l of snap.get(TypeUrl.Listener).values()) {
    const n = check(need(TypeUrl.Listener, l));
    if (n) return n;
    for (const rc of l.deps.routes) {
      const m = check(need(TypeUrl.Route, snap.get(TypeUrl.Route).get(rc)));
      if (m) return m;
    }
    for (const s of l.deps.secrets) check(need(TypeUrl.Secret, snap.get(TypeUrl.Secret).get(s)));
  }
  for (const c of snap.get(TypeUrl.Cluster).values()) {
    const n = check(need(TypeUrl.Cluster, c));
    if (n) return n;
    for (const e of c.deps.endpoints) {
      const m = check(need(TypeUrl.Endpoint, snap.get(TypeUrl.Endpoint).get(e)));
      if (m) return m;
    }
  }
  // wildcard types carry the whole set: what the snapshot dropped must be gone too
  for (const t of [TypeUrl.Listener, TypeUrl.Cluster]) {
    for (const [name, x] of st.types.get(t)?.resources ?? [])
      if (x.acked !== undefined && !snap.get(t).has(name)) ok = false;
  }
  return ok;
}

class GroupRunner {
  desired?: Snapshot;
  generations = new Map<string, number>();
  /** the snapshot of the last finished sequence: every route's promoted entries */
  base?: Snapshot;
  /** route → fingerprint of the state it serves as its main route */
  readonly promoted = new Map<string, string>();
  /** route → fingerprint that failed (ProbeFailed/Nacked): not retried until edited (ProbeFailed: or retryMs later) */
  readonly failedFp = new Map<string, string>();
  /** route → the desired state being proved and since when (its probes' time budget) */
  private readonly provingSince = new Map<string, { fp: string; at: number }>();
  private retryTimer?: NodeJS.Timeout;
  readonly states = new Map<string, RouteReadiness>();
  private running = false;
  private pending = false;
  private abort?: AbortController;
  closed = false;
  /** node id → since when an Envoy of the Gateway is away (expected back for nodeGraceMs) */
  readonly absent = new Map<string, { since: number; timer: NodeJS.Timeout }>();
  /** route → the away Envoys it was not proved on */
  private readonly awaiting = new Map<string, Set<string>>();
  /** route → the change being followed to its outcome (signalbox_route_ready_seconds) */
  private readonly changeAt = new Map<string, { fp: string; at: number }>();
  /** routes served unproved because no Envoy was connected: proved when one connects */
  private readonly unproved = new Set<string>();
  private readonly onConnect = (st: StreamLedger) => {
    if (st.group !== this.group) return;
    let again = false;
    const back = this.absent.get(st.id);
    if (back) {
      clearTimeout(back.timer);
      this.absent.delete(st.id);
      this.o.log.info({ gateway: this.group, node: st.id }, 'readiness: an Envoy that was away is back');
      // what changed while it was away is proved again, on every Envoy connected now
      for (const [k, away] of this.awaiting)
        if (away.has(st.id)) {
          this.awaiting.delete(k);
          this.promoted.delete(k);
          again = true;
        }
    }
    for (const k of this.unproved) {
      this.promoted.delete(k);
      again = true;
    }
    this.unproved.clear();
    if (again) this.kick();
  };
  private readonly onDisconnect = (st: StreamLedger) => {
    if (st.group !== this.group || this.closed || this.o.nodeGraceMs <= 0) return;
    if (this.o.cache.streamsOf(this.group).some((x) => x.id === st.id)) return; // another stream of it is on
    clearTimeout(this.absent.get(st.id)?.timer);
    const timer = setTimeout(() => this.expire(st.id), this.o.nodeGraceMs);
    timer.unref();
    this.absent.set(st.id, { since: Date.now(), timer });
    this.r.changed(); // the fleet report counts it
  };

  /** An Envoy away for longer than the grace is no longer expected (scaled down). */
  private expire(id: string): void {
    this.absent.delete(id);
    this.o.log.info(
      { gateway: this.group, node: id },
      'readiness: an Envoy away for longer than --node-grace is no longer expected',
    );
    for (const [k, away] of this.awaiting) {
      away.delete(id);
      if (away.size > 0 && [...away].some((n) => this.absent.has(n))) continue;
      this.awaiting.delete(k);
      const st = this.states.get(k);
      if (st?.reason !== 'EnvoyDisconnected') continue;
      if (this.o.cache.streamsOf(this.group).length === 0)
        this.setState(k, {
          ready: false,
          reason: 'NoDataPlane',
          message: `no Envoy of Gateway ${this.group} is connected`,
        });
      else
        this.setState(
          k,
          {
            ready: true,
            reason: 'Ready',
            message: `proved through the Envoys connected; ${id} was away for longer than the node grace (${this.o.nodeGraceMs / 1000} s) and is no longer expected`,
          },
          { away: false },
        );
    }
    this.r.changed();
  }

  /** "<node> (disconnected 3 s ago)" of every Envoy away */
  private awayText(): string {
    return [...this.absent]
      .map(([id, a]) => `${id} (disconnected ${Math.round((Date.now() - a.since) / 1000)} s ago)`)
      .join(', ');
  }

  constructor(
    readonly group: string,
    private readonly r: Readiness,
    private readonly o: Required<Omit<ReadinessOptions, 'log' | 'metrics'>> & {
      log: Logger;
      m?: ReadinessMetrics;
    },
  ) {
    o.cache.ledger.on('connect', this.onConnect);
    o.cache.ledger.on('disconnect', this.onDisconnect);
  }

  /** aborted when the Gateway goes or signalbox stops: every wait ends */
  private readonly stopping = new AbortController();

  close(): void {
    this.closed = true;
    clearTimeout(this.retryTimer);
    this.abort?.abort();
    this.stopping.abort();
    this.o.cache.ledger.off('connect', this.onConnect);
    this.o.cache.ledger.off('disconnect', this.onDisconnect);
    for (const a of this.absent.values()) clearTimeout(a.timer);
  }

  kick(): void {
    if (this.closed) return;
    if (this.running) {
      this.pending = true;
      // a newer desired state supersedes the proof under way only when it changes a route
      // being proved (or removes it): other changes wait for the next sequence, or a steady
      // stream of them would abort every proof before it promotes anything
      if (this.abort && this.supersedes()) this.abort.abort();
      return;
    }
    this.running = true;
    void (async () => {
      try {
        do {
          this.pending = false;
          const d = this.desired;
          if (!d || this.closed) break;
          try {
            await this.sequence(d);
            this.scheduleRetry();
          } catch (err) {
            this.o.log.error(
              { err, gateway: this.group },
              'readiness sequence failed: serving the desired state',
            );
            this.set(d);
          }
        } while (this.pending && !this.closed);
      } finally {
        this.running = false;
      }
    })();
  }

  /** route → fingerprint of the routes the sequence under way proves (phase 1) */
  private proving = new Map<string, string>();

  private supersedes(): boolean {
    const d = this.desired;
    if (!d || this.proving.size === 0) return true;
    const byRoute = entriesByRoute(d);
    for (const [k, fp] of this.proving) {
      const refs = byRoute.get(k);
      if (!refs || fingerprint(d, refs) !== fp) return true;
    }
    return false;
  }

  /**
   * A route whose probes failed is proved again later (its backend may have come up without
   * its endpoints changing); one whose change Envoy rejected waits for an edit.
   */
  private scheduleRetry(): void {
    if (this.retryTimer || this.closed) return;
    const failing = [...this.states.values()].some((s) => s.reason === 'ProbeFailed');
    if (!failing) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      for (const st of this.states.values())
        if (st.reason === 'ProbeFailed') {
          this.failedFp.delete(st.route);
          this.provingSince.delete(st.route);
        }
      this.kick();
    }, this.o.probeRetryMs);
    this.retryTimer.unref();
  }

  private set(s: Snapshot): void {
    if (!this.closed) this.o.cache.setSnapshot(this.group, s);
  }

  /** `away: false`: Ready as it is (the Envoys away when it was proved are no longer expected) */
  private setState(k: string, patch: Partial<RouteReadiness>, opts: { away?: false } = {}): void {
    const prev = this.states.get(k);
    const { namespace, name } = parseRouteKey(k);
    const next: RouteReadiness = {
      route: k,
      group: this.group,
      ready: false,
      reason: 'Proving',
      message: '',
      phase: 'add',
      hash: '',
      since: rfc3339(),
      nodes: [],
      ...prev,
      generation: this.generations.get(k) ?? prev?.generation ?? 0,
      ...patch,
    };
    // proved (or ACKed) by the Envoys connected, but one of the Gateway is away: not Ready
    // until it is back and the route is proved on it (or the grace is over)
    if (patch.ready === true && this.absent.size > 0 && this.o.mode === 'proved' && opts.away !== false) {
      this.awaiting.set(k, new Set(this.absent.keys()));
      next.ready = false;
      next.reason = 'EnvoyDisconnected';
      next.message = `${next.message}; not yet on ${this.awayText()}: proved there once it reconnects (expected back for ${this.o.nodeGraceMs / 1000} s)`;
    } else if (patch.ready === true || (patch.reason && patch.reason !== 'EnvoyDisconnected'))
      this.awaiting.delete(k);
    const c = this.changeAt.get(k);
    if (c && next.phase === 'done' && next.reason !== 'Proving') {
      this.o.m?.routeReady.observe({ outcome: next.reason }, (Date.now() - c.at) / 1000);
      this.changeAt.delete(k);
    }
    if (prev && prev.ready === next.ready && prev.reason === next.reason) next.since = prev.since;
    else next.since = rfc3339();
    // an unchanged state stays the same object (decorate() reuses its output by identity)
    if (JSON.stringify(prev) !== JSON.stringify(next)) {
      this.states.set(k, next);
      if (!prev || prev.reason !== next.reason || prev.phase !== next.phase)
        this.o.log.info(
          {
            gateway: this.group,
            route: `${namespace}/${name}`,
            phase: next.phase,
            reason: next.reason,
            hash: next.hash,
          },
          next.message || `route ${next.reason}`,
        );
      this.r.changed();
    }
  }

  private async sequence(d: Snapshot): Promise<void> {
    const byRoute = entriesByRoute(d);
    const fps = new Map<string, string>();
    for (const [k, refs] of byRoute) fps.set(k, fingerprint(d, refs));
    for (const k of [...this.states.keys()])
      if (!fps.has(k)) {
        this.states.delete(k);
        this.promoted.delete(k);
        this.failedFp.delete(k);
        this.awaiting.delete(k);
        this.unproved.delete(k);
        this.changeAt.delete(k);
        this.r.changed();
      }
    for (const [k, fp] of fps) {
      const st = this.states.get(k);
      // an edit bumps the generation the condition describes, even when Envoy sees no change
      if (st && st.generation !== (this.generations.get(k) ?? st.generation) && this.promoted.get(k) === fp)
        this.setState(k, { generation: this.generations.get(k) });
      // a change that failed and was taken back: the route wants what it serves, proved before
      if (
        st &&
        !st.ready &&
        this.promoted.get(k) === fp &&
        (st.reason === 'ProbeFailed' || st.reason === 'Nacked')
      ) {
        this.failedFp.delete(k);
        this.setState(k, {
          ready: true,
          reason: 'Ready',
          phase: 'done',
          hash: fp,
          message: 'serving its state proved before (the change that failed was taken back)',
        });
      }
    }
    const changed = [...fps.keys()].filter(
      (k) => this.promoted.get(k) !== fps.get(k) && this.failedFp.get(k) !== fps.get(k),
    );
    if (changed.length === 0) {
      if (this.base !== d && this.served() !== d) {
        const keep = this.keepFailed(fps);
        const s = compose(this.o.registry, d, this.base, keep);
        this.set(s);
        await this.waitApplied(s);
        this.base = s;
      }
      return;
    }
    const t0 = Date.now();
    for (const k of changed) {
      if (this.changeAt.get(k)?.fp !== fps.get(k)) this.changeAt.set(k, { fp: fps.get(k)!, at: t0 });
      this.failedFp.delete(k);
      this.unproved.delete(k);
      this.setState(k, {
        reason: 'Proving',
        ready: false,
        phase: 'add',
        hash: fps.get(k),
        message: 'proving the new state through the data plane',
        nodes: [],
      });
    }
    if (this.o.mode === 'naive') return this.naive(d, fps, changed);

    const clustersOfRoute = (k: string) => [
      ...new Set((byRoute.get(k) ?? []).flatMap((r) => clustersOf(r.entry))),
    ];
    const noBackend = changed.filter((k) => clustersOfRoute(k).length === 0);
    const noEndpoints = changed.filter(
      (k) => !noBackend.includes(k) && clustersOfRoute(k).every((c) => endpointCount(d, c) === 0),
    );
    const toProve = changed.filter((k) => !noBackend.includes(k) && !noEndpoints.includes(k));
    const oldOrNone = (k: string): 'old' | 'none' =>
      this.base && entriesByRoute(this.base).has(k) ? 'old' : 'none';
    // The first sequence of a Gateway (signalbox just started, or the Gateway is new) does not
    // know what its Envoys serve: after a restart they hold what the previous signalbox gave
    // them, most likely this very state. Taking the routes away until each is proved would
    // answer 404 meanwhile: they serve the desired state at once, and are proved as usual
    // (Ready only once probed). Routes Envoy rejects are left out all the same.
    const first = this.base === undefined;
    const keepAsServed = (keep: Map<string, 'old' | 'none'>, ks: Iterable<string>) => {
      if (!first) for (const k of ks) keep.set(k, oldOrNone(k));
    };

    // ---- phase 1: add (changed routes as they were; new backends behind probe routes)
    const keepFailedOthers = this.keepFailed(fps, changed);
    // a route none of whose entries can be probed (no usable upstream, no Host Envoy would
    // route to it) is promoted unproved, like a redirect
    {
      const probed = new Set(
        this.withProbes(d, d, byRoute, toProve, fps, { probesOnly: true }).probes.map((p) => p.route),
      );
      for (const k of toProve.filter((x) => !probed.has(x))) {
        toProve.splice(toProve.indexOf(k), 1);
        noBackend.push(k);
      }
    }
    // Envoy NACKs a whole response: when several routes changed at once, the ones whose
    // change it rejects are found by trying them in halves (the others' changes held back)
    const nacked = new Map<string, { error: string; nodes: NodeReadiness[] }>();
    let accepted: string[] = [];
    const queue: string[][] = toProve.length > 0 ? [[...toProve]] : [];
    let probes: { route: string; rc: string; req: ProbeRequest }[] = [];
    let a1: Applied = { outcome: 'acked', nodes: [] };
    this.proving = new Map(toProve.map((k) => [k, fps.get(k)!]));
    this.abort = new AbortController();
    // superseded: the routes not proved get a whole probe budget in the next sequence
    const superseded = () => {
      for (const k of toProve) this.provingSince.delete(k);
      this.proving.clear();
    };
    while (queue.length > 0) {
      const part = queue.shift()!;
      const trying = [...accepted, ...part];
      const keep1 = new Map(keepFailedOthers);
      // what is not being tried serves as before
      keepAsServed(keep1, toProve);
      for (const k of [...nacked.keys()]) keep1.set(k, oldOrNone(k));
      const core1 = compose(this.o.registry, d, this.base, keep1);
      // the routes tried get their probe routes (new clusters behind them); main stays old
      const p1 = this.withProbes(core1, d, byRoute, trying, fps);
      this.set(p1.snap);
      a1 = await this.waitApplied(p1.snap, this.abort.signal);
      if (a1.outcome === 'aborted') return superseded(); // by a newer desired state
      if (a1.outcome === 'nodata') return this.noDataPlane(d, fps, changed, keepFailedOthers);
      if (a1.outcome === 'nacked') {
        if (part.length === 1) nacked.set(part[0], { error: a1.error, nodes: a1.nodes });
        else {
          const mid = Math.ceil(part.length / 2);
          queue.unshift(part.slice(0, mid), part.slice(mid));
          this.o.log.info(
            { gateway: this.group, routes: part.length },
            'NACK of a change of several routes: trying them in halves to find the rejected ones',
          );
        }
        continue;
      }
      if (a1.outcome === 'timeout') break;
      accepted = trying;
      probes = p1.probes;
    }
    for (const [k, n] of nacked) {
      this.failedFp.set(k, fps.get(k)!);
      this.setState(k, {
        reason: 'Nacked',
        ready: false,
        phase: 'done',
        nodes: n.nodes,
        message: `Envoy rejected this change: ${n.error}; the route keeps serving its previous state`,
      });
    }
    if (a1.outcome === 'timeout') {
      const msg = `not every Envoy ACKed the change within ${this.o.ackTimeoutMs} ms: ${a1.nodes
        .filter((n) => !n.acked)
        .map((n) => n.node)
        .join(', ')}`;
      for (const k of toProve) {
        if (nacked.has(k)) continue;
        this.failedFp.set(k, fps.get(k)!);
        this.setState(k, {
          reason: 'ProbeFailed',
          ready: false,
          phase: 'done',
          message: msg,
          nodes: a1.nodes,
        });
      }
      // serve what was served for them; everything else goes on
      const keep = new Map(keepFailedOthers);
      keepAsServed(keep, toProve);
      for (const k of nacked.keys()) keep.set(k, oldOrNone(k));
      const s = compose(this.o.registry, d, this.base, keep);
      this.set(s);
      await this.waitApplied(s);
      this.finish(s, fps, [...noBackend, ...noEndpoints]);
      return;
    }
    const rejected = [...nacked.keys()];
    toProve.splice(0, toProve.length, ...toProve.filter((k) => !nacked.has(k)));
    for (const k of toProve) this.setState(k, { nodes: a1.nodes });
    // each route's probes have probeTimeoutMs from when its current desired state was first tried
    const now = Date.now();
    for (const k of toProve) {
      const since = this.provingSince.get(k);
      if (since?.fp !== fps.get(k)) this.provingSince.set(k, { fp: fps.get(k)!, at: now });
    }
    const r1 = await this.probeAll(probes, d, AbortSignal.any([this.abort.signal, this.stopping.signal]), {
      budget: (k) => this.o.probeTimeoutMs - (Date.now() - (this.provingSince.get(k)?.at ?? now)),
      graceMs: 1000,
    });
    if (r1.aborted) return superseded();
    this.o.m?.phase.observe({ phase: 'add' }, (Date.now() - t0) / 1000);
    const passed = toProve.filter((k) => {
      const ns = r1.byRoute.get(k) ?? [];
      return !r1.pending.has(k) && ns.length > 0 && ns.every((x) => x.probe?.ok);
    });
    // still probing: not promoted now, proved in the next sequence with the time they have left
    const stillProving = toProve.filter((k) => r1.pending.has(k));
    for (const k of stillProving) this.setState(k, { message: 'proving: the probes have not answered yet' });
    const failed = [...toProve.filter((k) => !passed.includes(k) && !r1.pending.has(k)), ...rejected];
    // their proof is over: a later try of the same state gets a whole budget again
    for (const k of [...passed, ...failed]) this.provingSince.delete(k);
    for (const k of failed) {
      if (nacked.has(k)) continue;
      this.failedFp.set(k, fps.get(k)!);
      const nodes = r1.byRoute.get(k) ?? [];
      const bad = nodes.filter((n) => !n.probe?.ok);
      this.setState(k, {
        reason: 'ProbeFailed',
        ready: false,
        phase: 'done',
        nodes,
        message: `probe through the data plane failed: ${bad.map((n) => `${n.node}: ${n.probe?.reason ?? '?'} ${n.probe?.detail ?? ''}`.trim()).join('; ')}; the route keeps serving its previous state`,
      });
    }
    if (this.abort.signal.aborted) return superseded(); // a newer state of a route proved here: prove that instead
    this.abort = undefined;
    this.proving.clear();

    // ---- phase 2: promote (probe routes stay)
    const t2 = Date.now();
    const keep2 = new Map(keepFailedOthers);
    keepAsServed(
      keep2,
      [...failed, ...stillProving].filter((k) => !nacked.has(k)),
    );
    for (const k of nacked.keys()) keep2.set(k, oldOrNone(k));
    const core2 = compose(this.o.registry, d, this.base, keep2);
    for (const k of [...passed, ...noBackend, ...noEndpoints]) this.setState(k, { phase: 'promote' });
    const { snap: p2, probes: probes2 } = this.withProbes(core2, d, byRoute, passed, fps);
    this.set(p2);
    const a2 = await this.waitApplied(p2);
    if (a2.outcome === 'acked' && passed.length > 0) {
      const r2 = await this.probeAll(probes2, d, this.stopping.signal);
      for (const k of passed) this.setState(k, { nodes: r2.byRoute.get(k) ?? [] });
    }

    this.o.m?.phase.observe({ phase: 'promote' }, (Date.now() - t2) / 1000);

    // ---- phase 3: drop the probe routes
    const t3 = Date.now();
    for (const k of [...passed, ...noBackend, ...noEndpoints]) this.setState(k, { phase: 'drop' });
    const p3 = core2;
    this.set(p3);
    const a3 = await this.waitApplied(p3);
    this.o.m?.phase.observe({ phase: 'drop' }, (Date.now() - t3) / 1000);
    const reprove: string[] = [];
    for (const k of passed) {
      const nodes = this.states.get(k)?.nodes ?? [];
      const probeBad = nodes.filter((n) => n.probe && !n.probe.ok);
      // an Envoy (re)connected during the proof ACKed the drop without being probed: it is
      // proved in the next sequence (it serves the promoted state meanwhile)
      const probed = new Set(nodes.filter((n) => n.probe?.ok).map((n) => n.stream));
      const unprobed = a3.outcome === 'acked' ? a3.nodes.filter((n) => !probed.has(n.stream)) : [];
      if (probeBad.length === 0 && unprobed.length > 0) {
        reprove.push(k);
        this.setState(k, {
          message: `proving on ${unprobed.map((n) => `${n.node} (stream ${n.stream})`).join(', ')}: connected during the proof`,
        });
        continue;
      }
      // every Envoy went away during promote/drop: proved again when one is back
      if (a3.outcome === 'nodata' || (a2.outcome === 'nodata' && a3.outcome !== 'acked')) this.noEnvoy(k);
      else if (a3.outcome === 'acked' && probeBad.length === 0)
        this.setState(k, {
          ready: true,
          reason: 'Ready',
          phase: 'done',
          message: `proved through ${nodes.length} Envoy(s)`,
        });
      else
        this.setState(k, {
          ready: false,
          reason: a3.outcome === 'nacked' ? 'Nacked' : 'ProbeFailed',
          phase: 'done',
          message:
            a3.outcome === 'nacked'
              ? `Envoy rejected the change: ${a3.error}`
              : `after promotion: ${probeBad.map((n) => `${n.node}: ${n.probe?.reason ?? ''}`).join('; ') || `not ACKed (${a3.outcome})`}`,
        });
    }
    this.finish(p3, fps, [...passed.filter((k) => !reprove.includes(k)), ...noBackend, ...noEndpoints], a3);
    if (stillProving.length > 0 || reprove.length > 0) this.pending = true; // their turn again at once
  }

  /**
   * No Envoy of the Gateway is connected: NoDataPlane, or EnvoyDisconnected while an Envoy
   * that went away is expected back; proved when one connects.
   */
  private noEnvoy(k: string): void {
    this.unproved.add(k);
    if (this.absent.size > 0 && this.o.mode === 'proved') {
      this.setState(k, {
        ready: false,
        reason: 'EnvoyDisconnected',
        phase: 'done',
        message: `no Envoy of Gateway ${this.group} is connected; waiting for ${this.awayText()} (expected back for ${this.o.nodeGraceMs / 1000} s)`,
      });
      this.awaiting.set(k, new Set(this.absent.keys()));
    } else
      this.setState(k, {
        ready: false,
        reason: 'NoDataPlane',
        phase: 'done',
        message: `no Envoy of Gateway ${this.group} is connected`,
      });
  }

  /** Routes promoted without a probe (nothing to prove, or no endpoints) and the end of a sequence. */
  private finish(s: Snapshot, fps: Map<string, string>, promote: string[], applied?: Applied): void {
    this.base = s;
    const entries = promote.length > 0 ? entriesByRoute(s) : undefined;
    for (const k of promote) {
      this.promoted.set(k, fps.get(k)!);
      const st = this.states.get(k);
      if (st?.reason !== 'Proving' && st?.phase === 'done') continue;
      const noEp = st && this.desired && (entries?.get(k) ?? []).length > 0;
      const clusters = [...new Set((entries?.get(k) ?? []).flatMap((r) => clustersOf(r.entry)))];
      if (noEp && clusters.length > 0 && clusters.every((c) => endpointCount(s, c) === 0))
        this.setState(k, {
          ready: false,
          reason: 'NoEndpoints',
          phase: 'done',
          message: 'no backend of this route has a ready endpoint',
        });
      else if (applied?.outcome === 'nodata') this.noEnvoy(k);
      else if (!applied || applied.outcome === 'acked')
        this.setState(k, {
          ready: true,
          reason: 'Ready',
          phase: 'done',
          message: 'no backend to prove (redirect or fixed response); ACKed by every Envoy',
        });
      else
        this.setState(k, {
          ready: false,
          reason: applied.outcome === 'nacked' ? 'Nacked' : 'ProbeFailed',
          phase: 'done',
          message:
            applied.outcome === 'nacked'
              ? `Envoy rejected the change: ${applied.error}`
              : `not every Envoy ACKed the change (${applied.outcome})`,
        });
    }
  }

  /** What failed earlier and was not edited since keeps serving its previous state. */
  private keepFailed(fps: Map<string, string>, except: string[] = []): Map<string, 'old' | 'none'> {
    const keep = new Map<string, 'old' | 'none'>();
    const baseEntries = this.base ? entriesByRoute(this.base) : new Map<string, EntryRef[]>();
    for (const [k, fp] of this.failedFp)
      if (fps.get(k) === fp && !except.includes(k)) keep.set(k, baseEntries.has(k) ? 'old' : 'none');
    return keep;
  }

  private served(): Snapshot | undefined {
    return this.o.cache.getGroup(this.group);
  }

  private async naive(d: Snapshot, fps: Map<string, string>, changed: string[]): Promise<void> {
    const t0 = Date.now();
    this.set(d);
    const a = await this.waitApplied(d);
    this.o.m?.phase.observe({ phase: 'naive' }, (Date.now() - t0) / 1000);
    this.base = d;
    for (const k of changed) {
      this.promoted.set(k, fps.get(k)!);
      if (a.outcome === 'acked')
        this.setState(k, {
          ready: true,
          reason: 'Ready',
          phase: 'done',
          nodes: a.nodes,
          message: `ACKed by ${a.nodes.length} Envoy(s) (naive: not probed)`,
        });
      else if (a.outcome === 'nodata') {
        this.unproved.add(k);
        this.setState(k, {
          reason: 'NoDataPlane',
          phase: 'done',
          message: `no Envoy of Gateway ${this.group} is connected`,
        });
      } else
        this.setState(k, {
          reason: a.outcome === 'nacked' ? 'Nacked' : 'ProbeFailed',
          phase: 'done',
          nodes: a.nodes,
          message:
            a.outcome === 'nacked' ? `Envoy rejected the change: ${a.error}` : `not ACKed (${a.outcome})`,
        });
    }
  }

  private noDataPlane(
    d: Snapshot,
    fps: Map<string, string>,
    changed: string[],
    keep: Map<string, 'old' | 'none'>,
  ): void {
    // nobody to drop requests for: serve the desired state, prove it when an Envoy connects
    const s = compose(this.o.registry, d, this.base, keep);
    this.set(s);
    this.base = s;
    for (const k of changed) {
      this.promoted.set(k, fps.get(k)!);
      this.noEnvoy(k);
    }
  }

  /** Add the probe routes of `routes` (entries from `desired`) to `core`. */
  private withProbes(
    core: Snapshot,
    desired: Snapshot,
    byRoute: Map<string, EntryRef[]>,
    routes: string[],
    fps: Map<string, string>,
    opts: { probesOnly?: boolean } = {},
  ): { snap: Snapshot; probes: { route: string; rc: string; req: ProbeRequest }[] } {
    if (routes.length === 0) return { snap: core, probes: [] };
    const perRc = new Map<string, { name: string; hash: string; route: string }[]>();
    for (const k of routes)
      for (const ref of byRoute.get(k) ?? []) {
        let l = perRc.get(ref.rc);
        if (!l) perRc.set(ref.rc, (l = []));
        l.push({ name: String(ref.entry.name), hash: fps.get(k)!, route: k });
      }
    const replaced: Resource[] = [];
    const probes: { route: string; rc: string; req: ProbeRequest }[] = [];
    // probe routes reach the desired state of their clusters: where `core` still serves a
    // cluster as it was (a kept route's endpoints), they go to a copy of the desired one
    const clones = new Map<string, Resource[]>();
    const differs = (c: string) => {
      const a = core.get(TypeUrl.Cluster).get(c);
      const b = desired.get(TypeUrl.Cluster).get(c);
      if (!a || !b) return false;
      if (a.hash !== b.hash) return true;
      return b.deps.endpoints.some(
        (e) => core.get(TypeUrl.Endpoint).get(e)?.hash !== desired.get(TypeUrl.Endpoint).get(e)?.hash,
      );
    };
    for (const [rc, entries] of perRc) {
      const from = desired.get(TypeUrl.Route).get(rc)?.json as JsonObject;
      const into = (core.get(TypeUrl.Route).get(rc)?.json as JsonObject | undefined) ?? {
        ...from,
        virtual_hosts: [],
      };
      const out = withProbeRoutes(
        into,
        entries.map(({ name, hash }) => ({ name, hash })),
        from,
      );
      const routeOf = new Map(entries.map((e) => [e.name, e.route]));
      for (const req of out.probes) probes.push({ route: routeOf.get(req.routeEntry) ?? '', rc, req });
      // which probes there are is all that is asked: no snapshot
      if (opts.probesOnly) continue;
      // (the output's virtual hosts are its own objects; their routes may be shared with the input)
      const vhs = (out.json.virtual_hosts as JsonObject[] | undefined) ?? [];
      for (const [i, vh] of vhs.entries()) {
        const rs = (vh.routes as JsonObject[] | undefined) ?? [];
        if (!rs.some((r) => isProbeRoute(r))) continue;
        vhs[i] = { ...vh };
        vhs[i].routes = rs.map((r) => {
          const action = r.route as JsonObject | undefined;
          const c = action?.cluster;
          if (!isProbeRoute(r) || typeof c !== 'string' || !differs(c)) return r;
          const hash = fps.get(routeKeyOf(String(r.name).replace(/\/probe\/.*$/, '')) ?? '') ?? 'x';
          const clone = `${c}/probe/${hash}`;
          if (!clones.has(clone)) clones.set(clone, cloneCluster(this.o.registry, desired, c, clone));
          return { ...r, route: { ...action, cluster: clone } };
        });
      }
      replaced.push(routeConfigurationFromJson(this.o.registry, out.json));
    }
    if (opts.probesOnly) return { snap: core, probes };
    const extra = [...clones.values()].flat();
    const from = extra.length > 0 ? new Snapshot([...allResources(desired), ...extra]) : desired;
    return { snap: withRoutes(core, replaced, from), probes };
  }

  /** Wait until every connected Envoy of the group holds `snap` (or NACKed it, or time is up). */
  private waitApplied(snap: Snapshot, phase?: AbortSignal): Promise<Applied> {
    const signal = phase ? AbortSignal.any([phase, this.stopping.signal]) : this.stopping.signal;
    return this.waitFor(snap, signal);
  }

  private waitFor(snap: Snapshot, signal: AbortSignal): Promise<Applied> {
    const ledger = this.o.cache.ledger;
    return new Promise((resolve) => {
      let settled = false;
      const nodes = (): NodeReadiness[] =>
        this.o.cache.streamsOf(this.group).map((st) => {
          const h = streamHolds(st, snap);
          return {
            node: st.id,
            stream: st.streamId,
            acked: h === true,
            ...(typeof h === 'object' ? { error: h.nacked } : {}),
          };
        });
      const done = (a: Applied) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        clearTimeout(noData);
        for (const e of ['ack', 'nack', 'connect', 'disconnect'] as const) ledger.off(e, check);
        signal?.removeEventListener('abort', onAbort);
        resolve(a);
      };
      const check = () => {
        const ns = nodes();
        if (ns.length === 0) return;
        const nack = ns.find((n) => n.error !== undefined);
        if (nack) return done({ outcome: 'nacked', error: `${nack.node}: ${nack.error}`, nodes: ns });
        if (ns.every((n) => n.acked)) done({ outcome: 'acked', nodes: ns });
      };
      const onAbort = () => done({ outcome: 'aborted', nodes: nodes() });
      const timer = setTimeout(() => {
        const ns = nodes();
        done(ns.length === 0 ? { outcome: 'nodata', nodes: ns } : { outcome: 'timeout', nodes: ns });
      }, this.o.ackTimeoutMs);
      // no Envoy at all: not worth the whole ACK timeout
      const noData = setTimeout(
        () => {
          if (nodes().length === 0) done({ outcome: 'nodata', nodes: [] });
        },
        Math.min(this.o.ackTimeoutMs, 2000),
      );
      for (const e of ['ack', 'nack', 'connect', 'disconnect'] as const) ledger.on(e, check);
      signal?.addEventListener('abort', onAbort);
      if (signal?.aborted) return onAbort();
      check();
    });
  }

  /** Probe every connected Envoy of the group with every probe request; results per route. */
  private async probeAll(
    probes: { route: string; rc: string; req: ProbeRequest }[],
    d: Snapshot,
    signal?: AbortSignal,
    opts: { budget?: (route: string) => number; graceMs?: number } = {},
  ): Promise<{ aborted: boolean; byRoute: Map<string, NodeReadiness[]>; pending: Set<string> }> {
    const streams = this.o.cache.streamsOf(this.group);
    const byRoute = new Map<string, NodeReadiness[]>();
    // the probes still running when the others are done are stopped (see graceMs)
    const local = new AbortController();
    const sig = signal ? AbortSignal.any([signal, local.signal]) : local.signal;
    // every probe of the phase listens to the one signal
    setMaxListeners(0, sig);
    const open = new Map<string, number>(); // route → probes not finished
    const bad = new Set<string>();
    const jobs: Promise<void>[] = [];
    for (const p of probes) {
      const listener = [...d.get(TypeUrl.Listener).values()].find((l) => l.deps.routes.includes(p.rc));
      const sa = (listener?.json.address as JsonObject | undefined)?.socket_address as JsonObject | undefined;
      const port = Number(sa?.port_value ?? 0);
      const tls = ((listener?.json.filter_chains as JsonObject[] | undefined) ?? []).some(
        (fc) => fc.transport_socket,
      );
      for (const st of streams) {
        const target: ProbeTarget = {
          address: st.probeAddress ?? peerHost(st.peer),
          port,
          ...(tls ? { tls: { servername: p.req.host } } : {}),
        };
        open.set(p.route, (open.get(p.route) ?? 0) + 1);
        const timeoutMs = Math.max(1, opts.budget ? opts.budget(p.route) : this.o.probeTimeoutMs);
        jobs.push(
          probeUntil(target, p.req, { timeoutMs, signal: sig }).then(
            (o: ProbeOutcome & { attempts: number }) => {
              if (local.signal.aborted) return; // given up on: still pending
              this.o.m?.probes.inc({ result: o.ok ? 'ok' : o.reason });
              open.set(p.route, (open.get(p.route) ?? 1) - 1);
              if (!o.ok) bad.add(p.route);
              let l = byRoute.get(p.route);
              if (!l) byRoute.set(p.route, (l = []));
              const prev = l.find((n) => n.stream === st.streamId);
              const probe = {
                ok: o.ok,
                ...(o.ok ? { status: o.status } : { reason: o.reason, status: o.status, detail: o.detail }),
                attempts: o.attempts,
                at: rfc3339(),
              };
              // one entry per Envoy: the worst of its probes (one per backend)
              if (!prev) l.push({ node: st.id, stream: st.streamId, acked: true, probe });
              else if (prev.probe?.ok && !o.ok) prev.probe = probe;
            },
          ),
        );
      }
    }
    const all = Promise.all(jobs).then(() => undefined);
    if (opts.graceMs !== undefined && open.size > 1) {
      // one slow route does not hold the others back: once some route is proved and the
      // grace is over, the routes still probing are left for the next sequence
      const start = Date.now();
      const someDone = () => [...open].some(([r, n]) => n === 0 && !bad.has(r));
      await Promise.race([
        all,
        new Promise<void>((resolve) => {
          const tick = () => {
            if (sig.aborted || (Date.now() - start >= opts.graceMs! && someDone())) return resolve();
            t = setTimeout(tick, 50);
          };
          let t = setTimeout(tick, 50);
          void all.then(() => clearTimeout(t));
        }),
      ]);
      local.abort();
    } else await all;
    const pending = new Set([...open].filter(([, n]) => n > 0).map(([r]) => r));
    for (const p of probes) if (!byRoute.has(p.route) && !pending.has(p.route)) byRoute.set(p.route, []);
    return { aborted: signal?.aborted ?? false, byRoute, pending };
  }
}

/**
 * What the other replicas of signalbox report (Kubernetes mode: each replica proves the
 * Envoys connected to it; the leader writes status): `combine` turns this replica's own
 * state of a route into the fleet's (the minimum over every replica with Envoys of the
 * Gateway; a replica that stopped reporting is unknown, never Ready).
 */
export interface FleetView {
  combine(route: string, group: string, own: RouteReadiness | undefined): RouteReadiness | undefined;
}

/** A replica's report: its routes' readiness and how many Envoys of each Gateway it serves. */
export interface ReadinessReport {
  routes: Pick<RouteReadiness, 'route' | 'group' | 'generation' | 'ready' | 'reason' | 'message' | 'hash'>[];
  envoys: Record<string, number>;
}

interface Decorated {
  input: ObjectStatus;
  states: (RouteReadiness | undefined)[];
  output: ObjectStatus;
  /** the Ready verdict per parent of ours, for the Gateways' summary */
  ready: { group: string; ready: boolean }[];
}

export class Readiness extends EventEmitter<{ changed: [] }> {
  private readonly groups = new Map<string, GroupRunner>();
  /** set in Kubernetes mode with several replicas (see FleetView) */
  fleet?: FleetView;
  private readonly o: Required<Omit<ReadinessOptions, 'log' | 'metrics'>> & {
    log: Logger;
    m?: ReadinessMetrics;
  };
  private scheduled = false;
  /** decorate()'s last output per route, reused while its inputs are the same objects */
  private decorated = new Map<string, Decorated>();

  constructor(o: ReadinessOptions) {
    super();
    this.o = {
      ...o,
      ackTimeoutMs: o.ackTimeoutMs ?? 30_000,
      probeTimeoutMs: o.probeTimeoutMs ?? 30_000,
      probeRetryMs: o.probeRetryMs ?? 30_000,
      nodeGraceMs: o.nodeGraceMs ?? 60_000,
      m: o.metrics ? new ReadinessMetrics(o.metrics, () => this.states().map((x) => x.reason)) : undefined,
    };
  }

  get mode(): ReadinessMode {
    return this.o.mode;
  }

  /** The pipeline's desired snapshot of a Gateway; `generations`: route key → generation. */
  desire(group: string, snap: Snapshot, generations: ReadonlyMap<string, number>): void {
    let g = this.groups.get(group);
    if (!g) this.groups.set(group, (g = new GroupRunner(group, this, this.o)));
    g.desired = snap;
    for (const [k, v] of generations) g.generations.set(k, v);
    g.kick();
  }

  desiredOf(group: string): Snapshot | undefined {
    return this.groups.get(group)?.desired;
  }

  /** The Gateway is gone. */
  forget(group: string): void {
    const g = this.groups.get(group);
    if (!g) return;
    g.close();
    this.groups.delete(group);
    this.o.cache.clearSnapshot(group);
    this.changed();
  }

  /** @internal */
  changed(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.emit('changed');
    });
  }

  states(): RouteReadiness[] {
    return [...this.groups.values()]
      .flatMap((g) => [...g.states.values()])
      .sort((a, b) => (a.group + a.route < b.group + b.route ? -1 : 1));
  }

  state(route: string, group: string): RouteReadiness | undefined {
    return this.groups.get(group)?.states.get(route);
  }

  /** Envoys of a Gateway this replica serves, with those away within --node-grace (as report() counts them). */
  envoysOf(group: string): number {
    const g = this.groups.get(group);
    return g ? this.o.cache.streamsOf(group).length + g.absent.size : 0;
  }

  /** This replica's report for the others (see FleetView). */
  report(): ReadinessReport {
    const envoys: Record<string, number> = {};
    // an Envoy away within the grace still counts: this replica's verdict on it matters
    for (const [k, g] of this.groups) envoys[k] = this.o.cache.streamsOf(k).length + g.absent.size;
    return {
      routes: this.states().map(({ route, group, generation, ready, reason, message, hash }) => ({
        route,
        group,
        generation,
        ready,
        reason,
        message: message.slice(0, 300),
        hash,
      })),
      envoys,
    };
  }

  /** The route's readiness over the fleet (this replica's own without a FleetView). */
  fleetState(route: string, group: string): RouteReadiness | undefined {
    const own = this.state(route, group);
    return this.fleet ? this.fleet.combine(route, group, own) : own;
  }

  /**
   * Statuses with a Ready condition in every RouteParentStatus of ours that is Accepted, and
   * the Gateways' summary (`signalbox.dev/RoutesReady`).
   */
  decorate(statuses: ObjectStatus[]): ObjectStatus[] {
    const perGroup = new Map<string, { ready: number; total: number }>();
    const memo = new Map<string, Decorated>();
    const out = statuses.map((st) => {
      if (st.kind !== 'HTTPRoute' && st.kind !== 'GRPCRoute') return st;
      const parents = st.status.parents as
        | {
            parentRef: { name: string; namespace?: string };
            controllerName: string;
            conditions: Condition[];
          }[]
        | undefined;
      if (!Array.isArray(parents)) return st;
      const k = routeKey(st.kind, st.namespace ?? '', st.name);
      const ours = (p: (typeof parents)[number]) =>
        p.controllerName === this.o.controllerName &&
        p.conditions.find((c) => c.type === 'Accepted')?.status === 'True';
      const groupOf = (p: (typeof parents)[number]) =>
        `${p.parentRef.namespace ?? st.namespace ?? ''}/${p.parentRef.name}`;
      const states = parents.map((p) => (ours(p) ? this.fleetState(k, groupOf(p)) : undefined));
      // the same status and the same readiness states as last time: the same decorated status
      // (callers compare it by identity; an unchanged state, own or the fleet's, is the same object)
      const key = `${st.kind}/${st.namespace ?? ''}/${st.name}`;
      const last = this.decorated.get(key);
      const hit =
        last !== undefined &&
        last.input === st &&
        last.states.length === states.length &&
        last.states.every((x, i) => x === states[i]);
      const d: Decorated = hit ? last : { input: st, states, output: st, ready: [] };
      if (!hit) {
        const next = parents.map((p, i) => {
          if (!ours(p)) return p;
          const accepted = p.conditions.find((c) => c.type === 'Accepted')!;
          const refs = p.conditions.find((c) => c.type === 'ResolvedRefs');
          const group = groupOf(p);
          const r = states[i];
          const gen = accepted.observedGeneration;
          // a backend that cannot be resolved answers 500 whatever Envoy holds: never Ready
          const cond: Condition =
            refs?.status === 'False'
              ? {
                  type: 'Ready',
                  status: 'False',
                  reason: refs.reason,
                  message: `not every backend resolves: ${refs.message}`.slice(0, 32_000),
                  observedGeneration: gen,
                  lastTransitionTime: refs.lastTransitionTime,
                }
              : r
                ? {
                    type: 'Ready',
                    status: r.ready && r.generation >= gen ? 'True' : 'False',
                    reason: r.generation >= gen ? r.reason : 'Proving',
                    message: (r.generation >= gen ? r.message : 'proving the new generation').slice(
                      0,
                      32_000,
                    ),
                    observedGeneration: gen,
                    lastTransitionTime: r.since,
                  }
                : {
                    type: 'Ready',
                    status: 'False',
                    reason: 'Proving',
                    message: 'waiting for the data plane',
                    observedGeneration: gen,
                    lastTransitionTime: accepted.lastTransitionTime,
                  };
          d.ready.push({ group, ready: cond.status === 'True' });
          return { ...p, conditions: [...p.conditions.filter((c) => c.type !== 'Ready'), cond] };
        });
        d.output = { ...st, status: { ...st.status, parents: next } };
      }
      memo.set(key, d);
      for (const { group, ready } of d.ready) {
        const sum = perGroup.get(group) ?? { ready: 0, total: 0 };
        sum.total++;
        if (ready) sum.ready++;
        perGroup.set(group, sum);
      }
      return d.output;
    });
    this.decorated = memo;
    return out.map((st) => {
      if (st.kind !== 'Gateway') return st;
      const group = `${st.namespace ?? ''}/${st.name}`;
      const conds = Array.isArray(st.status.conditions) ? (st.status.conditions as Condition[]) : [];
      const accepted = conds.find((c) => c.type === 'Accepted');
      if (!accepted) return st;
      const sum = perGroup.get(group) ?? { ready: 0, total: 0 };
      const all = sum.ready === sum.total;
      const cond: Condition = {
        type: 'signalbox.dev/RoutesReady',
        status: all ? 'True' : 'False',
        reason: all ? 'Ready' : 'Proving',
        message: `${sum.ready} of ${sum.total} routes Ready`,
        observedGeneration: accepted.observedGeneration,
        lastTransitionTime: accepted.lastTransitionTime,
      };
      return {
        ...st,
        status: { ...st.status, conditions: [...conds.filter((c) => c.type !== cond.type), cond] },
      };
    });
  }

  /** Envoys of each Gateway that disconnected and are still expected back (--node-grace). */
  away(): Record<string, { node: string; since: string }[]> {
    const out: Record<string, { node: string; since: string }[]> = {};
    for (const [k, g] of this.groups)
      if (g.absent.size > 0)
        out[k] = [...g.absent].map(([node, a]) => ({ node, since: rfc3339(new Date(a.since)) }));
    return out;
  }

  toJSON(): unknown {
    return { mode: this.o.mode, routes: this.states(), away: this.away() };
  }

  close(): void {
    for (const g of this.groups.values()) g.close();
    this.groups.clear();
  }
}
