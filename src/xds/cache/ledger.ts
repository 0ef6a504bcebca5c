/**
 * The ACK/NACK ledger, kept per ADS stream (an Envoy's node id is only a label: two Envoys
 * with the same id, or a restarted Envoy racing its predecessor, are two streams with
 * separate histories, and a new stream starts with nothing ACKed). Per stream and per type:
 * what was sent (version, nonce, time), what the client ACKed, its last NACK with Envoy's
 * error text, and per resource the hash last sent / ACKed / NACKed (a NACKed response may
 * be partly applied: xds-rules 15; a NACK is recorded against the resources that changed in
 * that response, its candidates, not against unchanged ones). Per stream also the rounds
 * of the make-before-break pipeline (see session.ts): the one running and the last outcome.
 * Everything here is data for the debug endpoint and for the readiness layer.
 */
import { EventEmitter } from 'node:events';
import { shortType } from '../resource.js';

export type Mode = 'sotw' | 'delta';

export interface SentRecord {
  version: string;
  nonce: string;
  at: number;
  resources: { name: string; hash: string }[];
  removed: string[];
}

export interface ResourceLedger {
  sent?: string;
  acked?: string;
  nacked?: string;
  error?: string;
}

export interface TypeLedger {
  sent?: { version: string; nonce: string; at: number; count: number };
  acked?: { version: string; nonce: string; at: number };
  nacked?: { version: string; nonce: string; error: string; at: number; candidates: string[] };
  /** name -> per resource state */
  resources: Map<string, ResourceLedger>;
  /** sent responses still waiting for their ACK/NACK, by nonce */
  inflight: Map<string, SentRecord>;
}

/** The pipeline's steps, in order (session.ts). */
export const STEPS = ['add', 'switch', 'remove'] as const;
export type StepName = (typeof STEPS)[number];

/**
 * One round of the make-before-break pipeline on one stream. `applied`: the client holds the
 * whole snapshot. `stopped`: a step could not finish: `nack` (final for this round: the next
 * snapshot starts a new one), or `timeout` (not final: the step keeps waiting, and a late
 * ACK resumes the round; its `applied` then follows with the same round number).
 * `superseded`: a newer snapshot replaced this one before it was applied. `closed`: the
 * stream went away.
 */
export interface RoundEvent {
  node: string;
  stream: number;
  group: string;
  round: number;
  outcome: 'applied' | 'stopped' | 'superseded' | 'closed';
  /** 1-based step the round stopped at (or reached) */
  step: number;
  stepName: StepName;
  reason?: 'nack' | 'timeout';
  /** types of the step, and per type what it waits for (stopped) */
  waiting?: Record<string, { pending?: string; missing: string[]; nacked?: string[] }>;
  error?: string;
  /** the snapshot's versions per type */
  versions: Record<string, string>;
  at: number;
}

export interface StreamLedger {
  /** node.id */
  id: string;
  group: string;
  mode: Mode;
  connected: boolean;
  peer: string;
  /** where the readiness prober reaches this Envoy, from its node metadata (else the peer's address) */
  probeAddress?: string;
  streamId: number;
  connectedAt: number;
  disconnectedAt?: number;
  /** streams of this node id opened by this process so far (this one included) */
  connects: number;
  /** other streams of the same node id that were connected at the same time as this one */
  duplicates: number[];
  types: Map<string, TypeLedger>;
  round?: { round: number; step: number; stepName: StepName; since: number; stalled?: RoundEvent };
  lastRound?: RoundEvent;
}

/** @deprecated the ledger is per stream; kept as the name the debug endpoint and tests use */
export type NodeLedger = StreamLedger;

export interface AckEvent {
  node: string;
  stream: number;
  typeUrl: string;
  nonce: string;
  version: string;
  resources: { name: string; hash: string }[];
  removed: string[];
  latencyMs: number;
}

export interface NackEvent extends AckEvent {
  error: string;
  /** names whose content changed in the NACKed response: what may have caused it */
  candidates: string[];
}

export interface DuplicateEvent {
  node: string;
  stream: StreamLedger;
  others: StreamLedger[];
}

export class Ledger extends EventEmitter<{
  ack: [AckEvent];
  nack: [NackEvent];
  connect: [StreamLedger];
  disconnect: [StreamLedger];
  duplicate: [DuplicateEvent];
  round: [RoundEvent];
}> {
  private readonly streams = new Map<number, StreamLedger>();
  /** node id -> its streams, oldest first */
  private readonly byNode = new Map<string, StreamLedger[]>();
  private readonly connectCount = new Map<string, number>();
  private nextStream = 1;

  /** @param keepDisconnected how many disconnected streams to remember (oldest forgotten first) */
  constructor(private readonly keepDisconnected = 1000) {
    super();
    this.setMaxListeners(0);
  }

  connect(id: string, group: string, mode: Mode, peer: string, probeAddress?: string): number {
    const streamId = this.nextStream++;
    const connects = (this.connectCount.get(id) ?? 0) + 1;
    this.connectCount.set(id, connects);
    const others = (this.byNode.get(id) ?? []).filter((x) => x.connected);
    const n: StreamLedger = {
      id,
      group,
      mode,
      peer,
      ...(probeAddress ? { probeAddress } : {}),
      connected: true,
      streamId,
      connectedAt: Date.now(),
      connects,
      duplicates: others.map((o) => o.streamId),
      // a new stream inherits nothing: what an earlier stream ACKed says nothing of this one
      types: new Map(),
    };
    for (const o of others) o.duplicates.push(streamId);
    this.streams.set(streamId, n);
    const list = this.byNode.get(id) ?? [];
    list.push(n);
    this.byNode.set(id, list);
    this.emit('connect', n);
    if (others.length > 0) this.emit('duplicate', { node: id, stream: n, others });
    return streamId;
  }

  disconnect(streamId: number): void {
    const n = this.streams.get(streamId);
    if (!n || !n.connected) return;
    n.connected = false;
    n.disconnectedAt = Date.now();
    for (const t of n.types.values()) t.inflight.clear();
    this.emit('disconnect', n);
    this.prune();
  }

  /** Forget the longest-disconnected streams beyond keepDisconnected (Envoy pods come and go). */
  private prune(): void {
    const gone = [...this.streams.values()].filter((x) => !x.connected);
    if (gone.length <= this.keepDisconnected) return;
    gone.sort((a, b) => (a.disconnectedAt ?? 0) - (b.disconnectedAt ?? 0));
    for (const x of gone.slice(0, gone.length - this.keepDisconnected)) {
      this.streams.delete(x.streamId);
      const list = (this.byNode.get(x.id) ?? []).filter((s) => s !== x);
      if (list.length > 0) this.byNode.set(x.id, list);
      else {
        this.byNode.delete(x.id);
        this.connectCount.delete(x.id);
      }
    }
  }

  /** The newest connected stream of a node id, else its newest stream. */
  get(id: string): StreamLedger | undefined {
    const list = this.byNode.get(id);
    if (!list) return undefined;
    for (let i = list.length - 1; i >= 0; i--) if (list[i].connected) return list[i];
    return list[list.length - 1];
  }

  stream(streamId: number): StreamLedger | undefined {
    return this.streams.get(streamId);
  }

  /** Every stream of a node id (oldest first); `connected` only those open now. */
  streamsOf(id: string, connected = false): StreamLedger[] {
    const list = this.byNode.get(id) ?? [];
    return connected ? list.filter((s) => s.connected) : [...list];
  }

  /** Every stream, by node id then stream. */
  all(): StreamLedger[] {
    return [...this.streams.values()].sort((a, b) =>
      a.id < b.id ? -1 : a.id > b.id ? 1 : a.streamId - b.streamId,
    );
  }

  private typeLedger(streamId: number, typeUrl: string): TypeLedger | undefined {
    const n = this.streams.get(streamId);
    if (!n) return undefined;
    let t = n.types.get(typeUrl);
    if (!t) {
      t = { resources: new Map(), inflight: new Map() };
      n.types.set(typeUrl, t);
    }
    return t;
  }

  recordSent(streamId: number, typeUrl: string, rec: SentRecord): void {
    const t = this.typeLedger(streamId, typeUrl);
    if (!t) return;
    t.sent = { version: rec.version, nonce: rec.nonce, at: rec.at, count: rec.resources.length };
    t.inflight.set(rec.nonce, rec);
    for (const r of rec.resources) {
      const s = t.resources.get(r.name) ?? {};
      s.sent = r.hash;
      t.resources.set(r.name, s);
    }
  }

  /** The client ACKed the response with this nonce. Returns undefined when the nonce is unknown. */
  recordAck(streamId: number, typeUrl: string, nonce: string): AckEvent | undefined {
    const n = this.streams.get(streamId);
    const t = this.typeLedger(streamId, typeUrl);
    const rec = t?.inflight.get(nonce);
    if (!n || !t || !rec) return undefined;
    t.inflight.delete(nonce);
    const now = Date.now();
    t.acked = { version: rec.version, nonce, at: now };
    for (const r of rec.resources) {
      const s = t.resources.get(r.name) ?? {};
      s.acked = r.hash;
      delete s.nacked;
      delete s.error;
      t.resources.set(r.name, s);
    }
    for (const name of rec.removed) t.resources.delete(name);
    const ev: AckEvent = {
      node: n.id,
      stream: streamId,
      typeUrl,
      nonce,
      version: rec.version,
      resources: rec.resources,
      removed: rec.removed,
      latencyMs: now - rec.at,
    };
    this.emit('ack', ev);
    return ev;
  }

  /** The client has this version already (a reconnect that offered the same version). */
  recordAlreadyHas(
    streamId: number,
    typeUrl: string,
    version: string,
    resources: { name: string; hash: string }[],
  ): void {
    const n = this.streams.get(streamId);
    const t = this.typeLedger(streamId, typeUrl);
    if (!n || !t) return;
    const now = Date.now();
    t.acked = { version, nonce: '', at: now };
    for (const r of resources) {
      const s = t.resources.get(r.name) ?? {};
      s.acked = r.hash;
      t.resources.set(r.name, s);
    }
    this.emit('ack', {
      node: n.id,
      stream: streamId,
      typeUrl,
      nonce: '',
      version,
      resources,
      removed: [],
      latencyMs: 0,
    });
  }

  /**
   * The client NACKed the response with this nonce. `candidates`: the names whose content
   * the response changed (what may have caused the NACK); only those are marked NACKed.
   * Default: every resource of the response.
   */
  recordNack(
    streamId: number,
    typeUrl: string,
    nonce: string,
    error: string,
    candidates?: string[],
  ): NackEvent | undefined {
    const n = this.streams.get(streamId);
    const t = this.typeLedger(streamId, typeUrl);
    const rec = t?.inflight.get(nonce);
    if (!n || !t || !rec) return undefined;
    t.inflight.delete(nonce);
    const now = Date.now();
    const cand = candidates ?? rec.resources.map((r) => r.name);
    const inResponse = new Map(rec.resources.map((r) => [r.name, r.hash]));
    t.nacked = { version: rec.version, nonce, error, at: now, candidates: cand };
    for (const name of cand) {
      const hash = inResponse.get(name);
      if (hash === undefined) continue;
      const s = t.resources.get(name) ?? {};
      s.nacked = hash;
      s.error = error;
      t.resources.set(name, s);
    }
    const ev: NackEvent = {
      node: n.id,
      stream: streamId,
      typeUrl,
      nonce,
      version: rec.version,
      resources: rec.resources,
      removed: rec.removed,
      latencyMs: now - rec.at,
      error,
      candidates: cand,
    };
    this.emit('nack', ev);
    return ev;
  }

  /** A round of the pipeline started, or moved on to another step. */
  recordStep(streamId: number, round: number, step: number, stepName: StepName): void {
    const n = this.streams.get(streamId);
    if (!n) return;
    if (n.round?.round === round && n.round.step === step) return;
    n.round = { round, step, stepName, since: Date.now() };
  }

  /** A round's outcome (see RoundEvent). */
  recordRound(ev: RoundEvent): void {
    const n = this.streams.get(ev.stream);
    if (!n) return;
    if (ev.outcome === 'stopped' && ev.reason === 'timeout') {
      if (n.round?.round === ev.round) n.round.stalled = ev;
    } else {
      n.lastRound = ev;
      if (n.round?.round === ev.round) n.round = undefined;
    }
    this.emit('round', ev);
  }

  /** The hash of resource `name` the node's current stream last ACKed, if any. */
  ackedHash(id: string, typeUrl: string, name: string): string | undefined {
    return this.get(id)?.types.get(typeUrl)?.resources.get(name)?.acked;
  }

  /** JSON view for the debug endpoint. */
  toJSON(): unknown[] {
    const iso = (ms?: number) => (ms === undefined ? undefined : new Date(ms).toISOString());
    const round = (r?: RoundEvent) => r && { ...r, at: iso(r.at) };
    return this.all().map((n) => ({
      id: n.id,
      stream: n.streamId,
      group: n.group,
      mode: n.mode,
      connected: n.connected,
      peer: n.peer,
      probeAddress: n.probeAddress,
      connects: n.connects,
      duplicateNodeId: n.duplicates.length > 0,
      duplicates: n.duplicates,
      connectedAt: iso(n.connectedAt),
      disconnectedAt: iso(n.disconnectedAt),
      round: n.round && {
        round: n.round.round,
        step: n.round.step,
        stepName: n.round.stepName,
        since: iso(n.round.since),
        stalled: round(n.round.stalled),
      },
      lastRound: round(n.lastRound),
      types: Object.fromEntries(
        [...n.types.entries()].map(([url, t]) => [
          shortType(url),
          {
            typeUrl: url,
            sent: t.sent && {
              version: t.sent.version,
              nonce: t.sent.nonce,
              at: iso(t.sent.at),
              resources: t.sent.count,
            },
            acked: t.acked && { version: t.acked.version, nonce: t.acked.nonce, at: iso(t.acked.at) },
            nacked: t.nacked && {
              version: t.nacked.version,
              nonce: t.nacked.nonce,
              error: t.nacked.error,
              candidates: t.nacked.candidates,
              at: iso(t.nacked.at),
            },
            resources: Object.fromEntries([...t.resources.entries()].sort(([a], [b]) => (a < b ? -1 : 1))),
          },
        ]),
      ),
    }));
  }
}
