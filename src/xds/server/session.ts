/**
 * One ADS stream: its node, its subscriptions per type, what the client has, and the
 * make-before-break pipeline that moves the client from what it has to the node's
 * snapshot (xds-rules 13/14). A round has three steps:
 *
 *   1 add:    SDS+ CDS+ EDS+ (a fresh CLA for every new or changed cluster)
 *   2 switch: LDS, RDS+
 *   3 remove: RDS, CDS, EDS, SDS (the snapshot only)
 *
 * where "+" serves what the client has ACKed together with the snapshot (never what it
 * rejected: a resource Envoy NACKed is not carried into later pushes once the snapshot no
 * longer has it), and "remove" the snapshot only. Each step waits for the client's ACKs
 * (and, for EDS/RDS/SDS, for the client to subscribe to the names its ACKed clusters and
 * listeners reference) before the next. A step the client does not finish within the step
 * timeout is reported (a `stopped`/`timeout` round event, in the ledger) and goes on
 * waiting: a late ACK resumes the round, and routes are never published before the
 * clusters they name are ACKed (rule 14); only a newer snapshot replaces a stalled round. A
 * NACK ends the round; the content is held (never resent: xds-rules 5) until the snapshot
 * changes: per response content in state of the world, per resource in delta, where the
 * resources of a NACKed response are resent in halves until the rejected ones are found.
 *
 * The protocol variants (state of the world, delta) differ only in how requests update the
 * state and how a response is computed: see sotw.ts and delta.ts.
 */
import { EventEmitter } from 'node:events';
import type { Logger } from '../../log.js';
import type { Metrics } from '../../metrics.js';
import type { SnapshotCache, NodeKey } from '../cache/cache.js';
import { STEPS } from '../cache/ledger.js';
import type { Mode, RoundEvent } from '../cache/ledger.js';
import { Snapshot } from '../cache/snapshot.js';
import { PROBE_ADDRESS_KEY } from '../../bootstrap.js';
import { ALL_TYPES, SHORT, TypeUrl, isKnownType } from '../resource.js';
import type { Resource } from '../resource.js';

export interface SessionOptions {
  cache: SnapshotCache;
  metrics: Metrics;
  log: Logger;
  /** How long one pipeline step waits for ACKs / subscriptions before it is reported stalled (ms). */
  stepTimeoutMs: number;
  /** Requests per second above which a stream is closed as a flood. */
  maxRequestsPerSecond: number;
  controlPlaneId: string;
}

export interface Pending {
  nonce: string;
  version: string;
  /** name -> resource in the response */
  resources: Map<string, Resource>;
  removed: string[];
  sentAt: number;
  /** identifies the content, for the no-resend-after-NACK hold */
  contentKey: string;
  /** state of the world: the response is the client's whole set for this type */
  full: boolean;
  /** delta: a part of a NACKed response, resent alone to find the rejected resources */
  bisect: boolean;
}

export interface TypeState {
  readonly typeUrl: TypeUrl;
  /** a request for this type has been seen on the stream */
  seen: boolean;
  /** the client has answered/been answered at least once (xds-rules 10) */
  answered: boolean;
  wildcard: boolean;
  names: Set<string>;
  /** what signalbox wants served for this type right now */
  view: ReadonlyMap<string, Resource>;
  /** what the client has ACKed: name -> hash */
  acked: AckedMap;
  /** the resources behind `acked`, where this stream sent them (not those a resuming client brought) */
  ackedRes: Map<string, Resource>;
  /** the snapshot view of the last round the client applied whole (a shortcut for "+") */
  appliedView?: ReadonlyMap<string, Resource>;
  /** bumped on every change of view, subscription or acked (keys the required-names cache) */
  gen: number;
  /** delta: names whose state may differ from what the client holds (all others are in sync) */
  dirty: Set<string>;
  dirtyAll: boolean;
  reqCache?: { key: string; set: Set<string> };
  doneCache?: { key: string; value: boolean };
  pending?: Pending;
  lastNonce?: string;
  /** SotW: contentKey of a NACKed response: not sent again (xds-rules 5) */
  held?: string;
  /** delta: name -> hash of a resource the client rejected: not sent again at that hash */
  heldRes: Map<string, string>;
  /** delta: groups of names of NACKed responses still to resend alone (bisection) */
  bisect: string[][];
  /** Envoy's text of the last NACK of this type */
  lastError?: string;
  /** names to send again even though the client has them at the same hash */
  force: Set<string>;
  /** SotW: version of the last response sent */
  lastSentVersion?: string;
}

export class StreamClosed extends Error {}

const EMPTY = new Snapshot([]);
/** Nonces are unique across the streams of this process and across its restarts. */
const BOOT = Date.now().toString(36);

type StepResult = 'ok' | 'nack' | 'closed' | 'superseded';

export abstract class Session extends EventEmitter<{ changed: [] }> {
  abstract readonly mode: Mode;
  node?: NodeKey;
  streamId = 0;
  closed = false;
  log: Logger;
  /**
   * mTLS: the node groups (Gateways) this client's certificate allows; a first request
   * claiming another one is refused. Undefined: no check (plaintext ADS).
   */
  allowedGroups?: ReadonlySet<string>;
  protected readonly types = new Map<TypeUrl, TypeState>();
  private nonceSeq = 0;
  private syncing = false;
  private dirty = false;
  private roundSeq = 0;
  private reqWindowStart = Date.now();
  private reqCount = 0;
  private readonly onSnapshot = (key: string) => {
    if (this.node && (key === this.node.cluster || key === this.node.id)) this.kick();
  };

  constructor(
    protected readonly opts: SessionOptions,
    readonly peer: string,
  ) {
    super();
    this.setMaxListeners(0);
    this.log = opts.log;
    for (const t of ALL_TYPES) {
      this.types.set(t, {
        typeUrl: t,
        seen: false,
        answered: false,
        wildcard: false,
        names: new Set(),
        view: new Map(),
        acked: new AckedMap(),
        ackedRes: new Map(),
        gen: 0,
        dirty: new Set(),
        dirtyAll: true,
        heldRes: new Map(),
        bisect: [],
        force: new Set(),
      });
    }
  }

  /** Send one encoded response on the stream (implemented by the transport). */
  protected abstract write(
    t: TypeState,
    nonce: string,
    resources: Resource[],
    removed: string[],
    version: string,
  ): void;
  /** Close the stream with an error status. */
  abstract fail(code: number, reason: string, message: string): void;

  nextNonce(): string {
    return `${BOOT}.${this.streamId}.${++this.nonceSeq}`;
  }

  /** Common request preamble: node identity (first request only), flood check, type check. */
  protected admit(
    node:
      | {
          id?: string;
          cluster?: string;
          metadata?: { fields?: Record<string, { stringValue?: string }> } | null;
        }
      | null
      | undefined,
    typeUrl: string,
  ): TypeState | undefined {
    const now = Date.now();
    if (now - this.reqWindowStart >= 1000) {
      this.reqWindowStart = now;
      this.reqCount = 0;
    }
    if (++this.reqCount > this.opts.maxRequestsPerSecond) {
      this.fail(
        8 /* RESOURCE_EXHAUSTED */,
        'flood',
        `more than ${this.opts.maxRequestsPerSecond} requests/s`,
      );
      return undefined;
    }
    if (!this.node) {
      if (!node?.id) {
        this.fail(3 /* INVALID_ARGUMENT */, 'no_node', 'the first request of a stream must carry node.id');
        return undefined;
      }
      if (!node.cluster) {
        this.fail(
          3,
          'no_node',
          'node.cluster must name the node group: <namespace>/<gateway-name> of the Gateway this Envoy serves',
        );
        return undefined;
      }
      if (this.allowedGroups && !this.allowedGroups.has(node.cluster)) {
        const allowed = [...this.allowedGroups].join(', ') || 'none';
        this.fail(
          7 /* PERMISSION_DENIED */,
          'unauthorized',
          `node ${node.id} claims Gateway ${node.cluster}, but its client certificate allows only: ${allowed}`,
        );
        return undefined;
      }
      const probe = node.metadata?.fields?.[PROBE_ADDRESS_KEY]?.stringValue;
      this.start(
        { id: node.id, cluster: node.cluster },
        typeof probe === 'string' && probe !== '' ? probe : undefined,
      );
    }
    if (!isKnownType(typeUrl)) {
      this.opts.metrics.streamErrors.inc({ reason: 'unknown_type' });
      this.log.warn({ typeUrl }, 'request for an unknown resource type ignored');
      return undefined;
    }
    return this.types.get(typeUrl);
  }

  private start(node: NodeKey, probeAddress?: string): void {
    this.node = node;
    this.streamId = this.opts.cache.ledger.connect(node.id, node.cluster, this.mode, this.peer, probeAddress);
    this.log = this.opts.log.child({
      node: node.id,
      stream: this.streamId,
      group: node.cluster,
      mode: this.mode,
    });
    this.opts.metrics.connectedNodes.inc({ mode: this.mode });
    const dup = this.opts.cache.ledger.stream(this.streamId)?.duplicates ?? [];
    if (dup.length > 0) {
      this.opts.metrics.duplicateNodeIds.inc({ mode: this.mode });
      this.log.warn(
        { peer: this.peer, otherStreams: dup },
        'duplicate node id: another stream with this node.id is connected; each is served and tracked as its own Envoy (give every Envoy a unique node.id)',
      );
    }
    const snap = this.opts.cache.snapshotFor(node);
    if (!snap) {
      this.opts.metrics.streamErrors.inc({ reason: 'unknown_group' });
      this.log.warn('no snapshot for this node group yet: serving an empty configuration until one is set');
    }
    const s = snap ?? EMPTY;
    for (const t of ALL_TYPES) {
      this.state(t).view = s.get(t);
      this.mark(this.state(t), 'all');
    }
    this.opts.cache.on('snapshot', this.onSnapshot);
    this.log.info({ peer: this.peer }, 'stream opened');
  }

  close(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.opts.cache.off('snapshot', this.onSnapshot);
    if (this.node) {
      this.opts.cache.ledger.disconnect(this.streamId);
      this.opts.metrics.connectedNodes.dec({ mode: this.mode });
      this.log.info({ reason }, 'stream closed');
    }
    this.emit('changed');
  }

  state(t: TypeUrl): TypeState {
    return this.types.get(t) as TypeState;
  }

  /** Record that t's view, subscription or acked state changed for these names (or all). */
  mark(t: TypeState, names: Iterable<string> | 'all'): void {
    t.gen++;
    if (names === 'all') t.dirtyAll = true;
    else for (const n of names) t.dirty.add(n);
  }

  /** The client no longer holds these names (it unsubscribed them). */
  protected forget(t: TypeState, names: Iterable<string>): void {
    for (const n of names) {
      t.acked.delete(n);
      t.ackedRes.delete(n);
    }
  }

  // ---------- sending ----------

  /** Record and write a response. */
  protected send(
    t: TypeState,
    resources: Resource[],
    removed: string[],
    version: string,
    contentKey: string,
    full: boolean,
    bisect = false,
  ): void {
    if (this.closed || !this.node) return;
    if (full) {
      // state of the world: whatever the client holds and the response lacks is gone
      const inResponse = new Set(resources.map((r) => r.name));
      removed = [...t.acked.keys()].filter((n) => !inResponse.has(n));
    }
    const nonce = this.nextNonce();
    const now = Date.now();
    t.pending = {
      nonce,
      version,
      resources: new Map(resources.map((r) => [r.name, r])),
      removed,
      sentAt: now,
      contentKey,
      full,
      bisect,
    };
    t.lastNonce = nonce;
    t.answered = true;
    this.opts.cache.ledger.recordSent(this.streamId, t.typeUrl, {
      version,
      nonce,
      at: now,
      resources: resources.map((r) => ({ name: r.name, hash: r.hash })),
      removed,
    });
    this.opts.metrics.pushes.inc({ type: SHORT[t.typeUrl], mode: this.mode });
    this.opts.cache.notePushed(this.node.cluster);
    this.log.debug(
      {
        type: SHORT[t.typeUrl],
        version,
        nonce,
        resources: resources.length,
        removed: removed.length,
        bisect,
      },
      'push',
    );
    this.write(t, nonce, resources, removed, version);
  }

  /** Handle the ACK of the pending response. */
  protected ack(t: TypeState): void {
    const p = t.pending;
    if (!p || !this.node) return;
    t.pending = undefined;
    if (p.full) {
      t.acked.clear();
      t.ackedRes.clear();
    }
    for (const [name, r] of p.resources) {
      t.acked.set(name, r.hash);
      t.ackedRes.set(name, r);
      t.heldRes.delete(name);
    }
    for (const name of p.removed) {
      t.acked.delete(name);
      t.ackedRes.delete(name);
    }
    if (p.bisect) t.bisect.shift();
    this.mark(t, p.full ? 'all' : [...p.resources.keys(), ...p.removed]);
    for (const name of p.resources.keys()) t.force.delete(name);
    t.held = undefined;
    this.opts.cache.ledger.recordAck(this.streamId, t.typeUrl, p.nonce);
    this.opts.metrics.acks.inc({ type: SHORT[t.typeUrl] });
    this.opts.metrics.pushAckLatency.observe({ type: SHORT[t.typeUrl] }, (Date.now() - p.sentAt) / 1000);
  }

  /** Handle the NACK of the pending response. */
  protected nack(t: TypeState, error: string): void {
    const p = t.pending;
    if (!p || !this.node) return;
    t.pending = undefined;
    t.lastError = error;
    // what the response changed for the client: only those can have caused the NACK
    const candidates = [...p.resources.values()]
      .filter((r) => t.acked.get(r.name) !== r.hash)
      .map((r) => r.name);
    if (this.mode === 'sotw' || candidates.length === 0) {
      // state of the world (or a delta response of removals only): hold the content
      t.held = p.contentKey;
    } else {
      // delta: find the rejected resources by resending the response's changes in halves
      if (p.bisect) t.bisect.shift();
      if (candidates.length === 1) {
        const r = p.resources.get(candidates[0]) as Resource;
        t.heldRes.set(r.name, r.hash);
      } else if (candidates.length > 1) {
        const mid = Math.ceil(candidates.length / 2);
        t.bisect.unshift(candidates.slice(0, mid), candidates.slice(mid));
      }
    }
    // still out of sync: looked at again when anything else changes
    this.mark(t, [...p.resources.keys(), ...p.removed]);
    this.opts.cache.ledger.recordNack(this.streamId, t.typeUrl, p.nonce, error, candidates);
    this.opts.metrics.nacks.inc({ type: SHORT[t.typeUrl] });
    this.opts.metrics.pushAckLatency.observe({ type: SHORT[t.typeUrl] }, (Date.now() - p.sentAt) / 1000);
    this.log.warn(
      {
        type: SHORT[t.typeUrl],
        version: p.version,
        nonce: p.nonce,
        error,
        candidates: candidates.slice(0, 20),
        held: this.mode === 'delta' ? [...t.heldRes.keys()].slice(0, 20) : undefined,
      },
      this.mode === 'sotw'
        ? 'NACK: holding this content'
        : candidates.length > 1
          ? 'NACK: resending its resources in halves to find the rejected ones'
          : 'NACK: holding this resource',
    );
  }

  /** Compute and send what type t needs now, if anything (variant-specific). */
  abstract trySend(t: TypeState): void;

  /** After a request was processed. */
  protected afterRequest(t: TypeState): void {
    this.trySend(t);
    this.emit('changed');
  }

  // ---------- the make-before-break pipeline ----------

  kick(): void {
    if (this.closed) return;
    if (this.syncing) {
      this.dirty = true;
      this.emit('changed'); // a stalled step gives way to the newer snapshot
      return;
    }
    this.syncing = true;
    this.sync()
      .catch((err: unknown) => this.log.error({ err }, 'pipeline failed'))
      .finally(() => {
        this.syncing = false;
      });
  }

  private async sync(): Promise<void> {
    do {
      this.dirty = false;
      if (!this.node || this.closed) return;
      const snap = this.opts.cache.snapshotFor(this.node) ?? EMPTY;
      const r = await this.round(snap);
      if (r !== 'ok' && r !== 'superseded' && !this.dirty) return; // NACK or closed: wait for the next snapshot
    } while (this.dirty && !this.closed);
  }

  /** "+" of type t: what the client has ACKed that the snapshot lacks, and the snapshot. */
  private plus(tu: TypeUrl, desired: ReadonlyMap<string, Resource>): ReadonlyMap<string, Resource> {
    const t = this.state(tu);
    if (t.appliedView) return unionView(t.appliedView, desired);
    let extra: Resource[] | undefined;
    for (const [name, r] of t.ackedRes) if (!desired.has(name)) (extra ??= []).push(r);
    if (!extra) return desired;
    return byName([...desired.values(), ...extra]);
  }

  /** Endpoint names of the clusters of `desired` that the client does not have as they are there. */
  private freshEds(desired: ReadonlyMap<string, Resource>): ReadonlySet<string> {
    const c = this.state(TypeUrl.Cluster);
    if (c.appliedView) return freshEndpoints(c.appliedView, desired);
    const out = new Set<string>();
    for (const r of desired.values())
      if (c.acked.get(r.name) !== r.hash) for (const d of r.deps.endpoints) out.add(d);
    return out;
  }

  private async round(snap: Snapshot): Promise<StepResult> {
    const S = TypeUrl.Secret;
    const C = TypeUrl.Cluster;
    const E = TypeUrl.Endpoint;
    const L = TypeUrl.Listener;
    const R = TypeUrl.Route;
    const n = ++this.roundSeq;
    const node = this.node as NodeKey;
    // Steps are groups of types moved together; each group waits for its ACKs before the
    // next. Secrets, clusters and endpoints go in one group because Envoy (SotW) ACKs a CDS
    // update only once its new clusters have warmed, which needs their EDS (and SDS).
    const fresh = this.freshEds(snap.get(C));
    const plus: Partial<Record<TypeUrl, ReadonlyMap<string, Resource>>> = {};
    for (const t of [S, C, E, R]) plus[t] = this.plus(t, snap.get(t));
    // until this round is applied whole, "+" is computed from what the client ACKed
    for (const t of ALL_TYPES) this.state(t).appliedView = undefined;
    const steps: [TypeUrl, ReadonlyMap<string, Resource>, ReadonlySet<string>?][][] = [
      [
        [S, plus[S] as ReadonlyMap<string, Resource>],
        [C, plus[C] as ReadonlyMap<string, Resource>],
        [E, plus[E] as ReadonlyMap<string, Resource>, fresh],
      ],
      [
        [L, snap.get(L)],
        [R, plus[R] as ReadonlyMap<string, Resource>],
      ],
      [
        [R, snap.get(R)],
        [C, snap.get(C)],
        [E, snap.get(E)],
        [S, snap.get(S)],
      ],
    ];
    const event = (outcome: RoundEvent['outcome'], k: number, extra: Partial<RoundEvent> = {}): void => {
      const ev: RoundEvent = {
        node: node.id,
        stream: this.streamId,
        group: node.cluster,
        round: n,
        outcome,
        step: k + 1,
        stepName: STEPS[k],
        versions: snap.allVersions(),
        at: Date.now(),
        ...extra,
      };
      this.opts.metrics.rounds.inc({ outcome, reason: ev.reason ?? '' });
      this.opts.cache.ledger.recordRound(ev);
    };
    for (const [k, group] of steps.entries()) {
      this.opts.cache.ledger.recordStep(this.streamId, n, k + 1, STEPS[k]);
      const r = await this.step(group, (waiting) => {
        event('stopped', k, { reason: 'timeout', waiting });
      });
      if (r !== 'ok') {
        const types = group.map(([t]) => this.state(t));
        if (r === 'nack') {
          const error = types.map((t) => t.lastError).find((e) => e !== undefined);
          event('stopped', k, { reason: 'nack', error, waiting: this.waitingOn(types) });
          this.log.warn(
            { round: n, step: STEPS[k], types: group.map(([t]) => SHORT[t]), error },
            'round stopped by a NACK',
          );
        } else event(r, k);
        return r;
      }
    }
    for (const t of ALL_TYPES) this.state(t).appliedView = snap.get(t);
    event('applied', 2);
    this.log.debug({ round: n, versions: snap.allVersions() }, 'round applied');
    return 'ok';
  }

  /** Names of type t the client must hold (at the view's hash) before the step is done. */
  private required(t: TypeState): Set<string> {
    const key = `${t.gen}/${this.state(TypeUrl.Cluster).gen}/${this.state(TypeUrl.Listener).gen}`;
    if (t.reqCache?.key === key) return t.reqCache.set;
    const req = new Set<string>();
    t.reqCache = { key, set: req };
    if (t.seen) {
      if (t.wildcard) for (const n of t.view.keys()) req.add(n);
      else for (const n of t.names) if (t.view.has(n)) req.add(n);
    }
    // names referenced by what the client ACKed upstream
    const upstream: [TypeUrl, (r: Resource) => string[]][] =
      t.typeUrl === TypeUrl.Endpoint
        ? [[TypeUrl.Cluster, (r) => r.deps.endpoints]]
        : t.typeUrl === TypeUrl.Route
          ? [[TypeUrl.Listener, (r) => r.deps.routes]]
          : t.typeUrl === TypeUrl.Secret
            ? [
                [TypeUrl.Cluster, (r) => r.deps.secrets],
                [TypeUrl.Listener, (r) => r.deps.secrets],
              ]
            : [];
    for (const [ut, deps] of upstream) {
      const us = this.state(ut);
      for (const [name, hash] of us.acked) {
        const r = us.view.get(name);
        if (r && r.hash === hash) for (const d of deps(r)) if (t.view.has(d)) req.add(d);
      }
    }
    return req;
  }

  private stepDone(t: TypeState): boolean {
    if (t.pending || t.force.size > 0 || t.bisect.length > 0) return false;
    const req = this.required(t); // refreshes t.reqCache
    const key = t.reqCache?.key;
    if (t.doneCache && t.doneCache.key === key) return t.doneCache.value;
    let value = true;
    for (const n of req) {
      if (t.acked.get(n) !== t.view.get(n)?.hash) {
        value = false;
        break;
      }
    }
    t.doneCache = { key: key ?? '', value };
    return value;
  }

  /** The step cannot finish because the client rejected some of what it needs. */
  private rejected(t: TypeState): boolean {
    if (t.pending) return false;
    if (t.held !== undefined) return true;
    if (t.bisect.length > 0 || t.heldRes.size === 0) return false;
    for (const n of this.required(t)) if (t.heldRes.get(n) === t.view.get(n)?.hash) return true;
    return false;
  }

  /** Per type of a step: the response in flight, and the names still missing or rejected. */
  private waitingOn(ts: TypeState[]): NonNullable<RoundEvent['waiting']> {
    return Object.fromEntries(
      ts.map((t) => {
        const missing = [...this.required(t)].filter((n) => t.acked.get(n) !== t.view.get(n)?.hash);
        const nacked =
          this.mode === 'delta'
            ? missing.filter((n) => t.heldRes.get(n) === t.view.get(n)?.hash)
            : t.held !== undefined
              ? missing
              : [];
        return [
          SHORT[t.typeUrl],
          {
            pending: t.pending?.nonce,
            missing: missing.slice(0, 20),
            ...(nacked.length > 0 ? { nacked: nacked.slice(0, 20) } : {}),
          },
        ];
      }),
    );
  }

  private async step(
    group: [TypeUrl, ReadonlyMap<string, Resource>, ReadonlySet<string>?][],
    onStall: (waiting: NonNullable<RoundEvent['waiting']>) => void,
  ): Promise<StepResult> {
    const ts = group.map(([tu, view, force]) => {
      const t = this.state(tu);
      if (t.view !== view) {
        const changed = viewDiff(t.view, view);
        if (changed.length > 0) {
          t.held = undefined; // the content changed: a NACK hold no longer applies
          this.mark(t, changed);
        }
        t.view = view;
      }
      if (force) {
        const add = [...force].filter((n) => view.has(n));
        for (const n of add) t.force.add(n);
        if (add.length > 0) this.mark(t, add);
      }
      return t;
    });
    for (const t of ts) this.trySend(t);
    const nacked = () => ts.some((t) => this.rejected(t));
    // cheap checks first: most wake-ups find a response still in flight
    const done = () =>
      ts.every((t) => !t.pending && t.force.size === 0 && t.bisect.length === 0) &&
      ts.every((t) => this.stepDone(t));
    if (done()) return 'ok';
    if (nacked()) return 'nack';
    return new Promise((resolve) => {
      let stalled = false;
      const finish = (r: StepResult) => {
        clearTimeout(timer);
        this.off('changed', check);
        resolve(r);
      };
      const check = () => {
        if (this.closed) return finish('closed');
        if (nacked()) return finish('nack');
        if (done()) return finish('ok');
        // a stalled step gives way to a newer snapshot; a step still in time runs to its end
        if (stalled && this.dirty) finish('superseded');
      };
      const timer = setTimeout(() => {
        stalled = true;
        this.opts.metrics.streamErrors.inc({ reason: 'step_timeout' });
        const waiting = this.waitingOn(ts);
        this.log.warn(
          waiting,
          'pipeline step stalled: the client has not finished it; waiting on (what depends on it is held back)',
        );
        // forced fresh EDS the client never asked for again is not worth waiting for
        for (const t of ts) if (!t.pending) t.force.clear();
        onStall(waiting);
        check();
      }, this.opts.stepTimeoutMs);
      this.on('changed', check);
    });
  }
}

/** A view in name order, as a Snapshot keeps its maps (versions and listings are deterministic). */
function byName(rs: Iterable<Resource>): ReadonlyMap<string, Resource> {
  return new Map(
    [...rs].sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0)).map((r) => [r.name, r]),
  );
}

// Views are shared between the sessions of a group: the union of the same two maps, or
// the fresh-EDS set of the same two cluster maps, is computed once (keyed by identity).
const unionMemo = new WeakMap<
  ReadonlyMap<string, Resource>,
  WeakMap<ReadonlyMap<string, Resource>, ReadonlyMap<string, Resource>>
>();

function unionView(
  a: ReadonlyMap<string, Resource>,
  b: ReadonlyMap<string, Resource>,
): ReadonlyMap<string, Resource> {
  if (a === b || a.size === 0) return b;
  let inner = unionMemo.get(a);
  if (!inner) {
    inner = new WeakMap();
    unionMemo.set(a, inner);
  }
  let u = inner.get(b);
  if (!u) {
    let superset = true;
    for (const k of a.keys()) {
      if (!b.has(k)) {
        superset = false;
        break;
      }
    }
    if (superset) u = b;
    else {
      const m = new Map(a);
      for (const [k, v] of b) m.set(k, v);
      u = byName(m.values());
    }
    inner.set(b, u);
  }
  return u;
}

const freshMemo = new WeakMap<
  ReadonlyMap<string, Resource>,
  WeakMap<ReadonlyMap<string, Resource>, ReadonlySet<string>>
>();

function freshEndpoints(
  before: ReadonlyMap<string, Resource>,
  after: ReadonlyMap<string, Resource>,
): ReadonlySet<string> {
  if (before === after) return new Set();
  let inner = freshMemo.get(before);
  if (!inner) {
    inner = new WeakMap();
    freshMemo.set(before, inner);
  }
  let f = inner.get(after);
  if (!f) {
    const out = new Set<string>();
    for (const r of after.values())
      if (before.get(r.name)?.hash !== r.hash) for (const d of r.deps.endpoints) out.add(d);
    f = out;
    inner.set(after, f);
  }
  return f;
}

const diffMemo = new WeakMap<
  ReadonlyMap<string, Resource>,
  WeakMap<ReadonlyMap<string, Resource>, string[]>
>();

/** Names whose resource differs between two views (added, changed or removed); memoized. */
function viewDiff(a: ReadonlyMap<string, Resource>, b: ReadonlyMap<string, Resource>): string[] {
  if (a === b) return [];
  let inner = diffMemo.get(a);
  if (!inner) {
    inner = new WeakMap();
    diffMemo.set(a, inner);
  }
  let d = inner.get(b);
  if (!d) {
    const out: string[] = [];
    for (const [k, v] of a) if (b.get(k)?.hash !== v.hash) out.push(k);
    for (const k of b.keys()) if (!a.has(k)) out.push(k);
    d = out;
    inner.set(b, d);
  }
  return d;
}

/** Two 32-bit lanes of an FNV-1a-style hash of one (name, hash) entry. */
function entryHash(name: string, hash: string): [number, number] {
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ 0x5bd1e995;
  const s = name + '\0' + hash;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
    b ^= b >>> 15;
  }
  return [a >>> 0, b >>> 0];
}

/**
 * The client's ACKed (name -> hash) set, with an order-independent 64-bit sum of its
 * entries kept up to date, so the version of what a delta client holds is O(changed).
 */
export class AckedMap extends Map<string, string> {
  private lo = 0;
  private hi = 0;

  override set(k: string, v: string): this {
    const old = super.get(k);
    if (old !== undefined) this.adjust(k, old, -1);
    if (v !== undefined) this.adjust(k, v, +1);
    return super.set(k, v);
  }

  override delete(k: string): boolean {
    const old = super.get(k);
    if (old === undefined) return false;
    this.adjust(k, old, -1);
    return super.delete(k);
  }

  override clear(): void {
    this.lo = 0;
    this.hi = 0;
    super.clear();
  }

  private adjust(k: string, v: string, sign: 1 | -1): void {
    const [a, b] = entryHash(k, v);
    this.lo = (this.lo + sign * a) >>> 0;
    this.hi = (this.hi + sign * b) >>> 0;
  }

  /** Version of this set after removing `removed` and setting `added` (without changing it). */
  versionAfter(removed: string[], added: { name: string; hash: string }[]): string {
    let lo = this.lo;
    let hi = this.hi;
    const sub = (k: string, v: string | undefined) => {
      if (v === undefined) return;
      const [a, b] = entryHash(k, v);
      lo = (lo - a) >>> 0;
      hi = (hi - b) >>> 0;
    };
    for (const n of removed) sub(n, this.get(n));
    for (const r of added) {
      sub(r.name, this.get(r.name));
      const [a, b] = entryHash(r.name, r.hash);
      lo = (lo + a) >>> 0;
      hi = (hi + b) >>> 0;
    }
    return hi.toString(16).padStart(8, '0') + lo.toString(16).padStart(8, '0');
  }
}
