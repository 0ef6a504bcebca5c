/**
 * The ACK/NACK ledger: per node and per type, what was sent (version, nonce, time), what
 * the client ACKed, its last NACK with Envoy's error text, and per resource the hash last
 * sent / ACKed / NACKed (a NACKed response may be partly applied: xds-rules 15). Stream
 * connects and disconnects are kept too. Everything here is data for the debug endpoint
 * and for the readiness layer's wait-for-ACK API.
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

export interface TypeLedger {
  sent?: { version: string; nonce: string; at: number; count: number };
  acked?: { version: string; nonce: string; at: number };
  nacked?: { version: string; nonce: string; error: string; at: number };
  /** name -> per resource state */
  resources: Map<string, { sent?: string; acked?: string; nacked?: string; error?: string }>;
  /** sent responses still waiting for their ACK/NACK, by nonce */
  inflight: Map<string, SentRecord>;
}

export interface NodeLedger {
  id: string;
  group: string;
  mode: Mode;
  connected: boolean;
  peer: string;
  streamId: number;
  connectedAt: number;
  disconnectedAt?: number;
  connects: number;
  types: Map<string, TypeLedger>;
}

export interface AckEvent {
  node: string;
  typeUrl: string;
  nonce: string;
  version: string;
  resources: { name: string; hash: string }[];
  removed: string[];
  latencyMs: number;
}

export interface NackEvent extends AckEvent {
  error: string;
}

export class Ledger extends EventEmitter<{
  ack: [AckEvent];
  nack: [NackEvent];
  connect: [NodeLedger];
  disconnect: [NodeLedger];
}> {
  private readonly nodes = new Map<string, NodeLedger>();
  private nextStream = 1;

  /** @param keepDisconnected how many disconnected nodes to remember (oldest forgotten first) */
  constructor(private readonly keepDisconnected = 1000) {
    super();
  }

  connect(id: string, group: string, mode: Mode, peer: string): number {
    const streamId = this.nextStream++;
    const prev = this.nodes.get(id);
    const n: NodeLedger = {
      id,
      group,
      mode,
      peer,
      connected: true,
      streamId,
      connectedAt: Date.now(),
      connects: (prev?.connects ?? 0) + 1,
      // keep history of what the node ACKed before (useful after a reconnect)
      types: prev?.types ?? new Map(),
    };
    for (const t of n.types.values()) t.inflight.clear();
    this.nodes.set(id, n);
    this.emit('connect', n);
    return streamId;
  }

  disconnect(id: string, streamId: number): void {
    const n = this.nodes.get(id);
    if (!n || n.streamId !== streamId) return; // a newer stream of the same node took over
    n.connected = false;
    n.disconnectedAt = Date.now();
    for (const t of n.types.values()) t.inflight.clear();
    this.emit('disconnect', n);
    this.prune();
  }

  /** Forget the longest-disconnected nodes beyond keepDisconnected (Envoy pods come and go). */
  private prune(): void {
    const gone = [...this.nodes.values()].filter((x) => !x.connected);
    if (gone.length <= this.keepDisconnected) return;
    gone.sort((a, b) => (a.disconnectedAt ?? 0) - (b.disconnectedAt ?? 0));
    for (const x of gone.slice(0, gone.length - this.keepDisconnected)) this.nodes.delete(x.id);
  }

  get(id: string): NodeLedger | undefined {
    return this.nodes.get(id);
  }

  all(): NodeLedger[] {
    return [...this.nodes.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  private typeLedger(id: string, typeUrl: string): TypeLedger | undefined {
    const n = this.nodes.get(id);
    if (!n) return undefined;
    let t = n.types.get(typeUrl);
    if (!t) {
      t = { resources: new Map(), inflight: new Map() };
      n.types.set(typeUrl, t);
    }
    return t;
  }

  recordSent(id: string, typeUrl: string, rec: SentRecord): void {
    const t = this.typeLedger(id, typeUrl);
    if (!t) return;
    t.sent = { version: rec.version, nonce: rec.nonce, at: rec.at, count: rec.resources.length };
    t.inflight.set(rec.nonce, rec);
    for (const r of rec.resources) {
      const s = t.resources.get(r.name) ?? {};
      s.sent = r.hash;
      t.resources.set(r.name, s);
    }
  }

  /** The client ACKed the response with this nonce. Returns false when the nonce is unknown. */
  recordAck(id: string, typeUrl: string, nonce: string): AckEvent | undefined {
    const t = this.typeLedger(id, typeUrl);
    const rec = t?.inflight.get(nonce);
    if (!t || !rec) return undefined;
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
      node: id,
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
    id: string,
    typeUrl: string,
    version: string,
    resources: { name: string; hash: string }[],
  ): void {
    const t = this.typeLedger(id, typeUrl);
    if (!t) return;
    const now = Date.now();
    t.acked = { version, nonce: '', at: now };
    for (const r of resources) {
      const s = t.resources.get(r.name) ?? {};
      s.acked = r.hash;
      t.resources.set(r.name, s);
    }
    this.emit('ack', { node: id, typeUrl, nonce: '', version, resources, removed: [], latencyMs: 0 });
  }

  recordNack(id: string, typeUrl: string, nonce: string, error: string): NackEvent | undefined {
    const t = this.typeLedger(id, typeUrl);
    const rec = t?.inflight.get(nonce);
    if (!t || !rec) return undefined;
    t.inflight.delete(nonce);
    const now = Date.now();
    t.nacked = { version: rec.version, nonce, error, at: now };
    for (const r of rec.resources) {
      const s = t.resources.get(r.name) ?? {};
      s.nacked = r.hash;
      s.error = error;
      t.resources.set(r.name, s);
    }
    const ev: NackEvent = {
      node: id,
      typeUrl,
      nonce,
      version: rec.version,
      resources: rec.resources,
      removed: rec.removed,
      latencyMs: now - rec.at,
      error,
    };
    this.emit('nack', ev);
    return ev;
  }

  /** The hash of resource `name` the node last ACKed, if any. */
  ackedHash(id: string, typeUrl: string, name: string): string | undefined {
    return this.nodes.get(id)?.types.get(typeUrl)?.resources.get(name)?.acked;
  }

  /** JSON view for the debug endpoint. */
  toJSON(): unknown[] {
    const iso = (ms?: number) => (ms === undefined ? undefined : new Date(ms).toISOString());
    return this.all().map((n) => ({
      id: n.id,
      group: n.group,
      mode: n.mode,
      connected: n.connected,
      peer: n.peer,
      connects: n.connects,
      connectedAt: iso(n.connectedAt),
      disconnectedAt: iso(n.disconnectedAt),
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
              at: iso(t.nacked.at),
            },
            resources: Object.fromEntries([...t.resources.entries()].sort(([a], [b]) => (a < b ? -1 : 1))),
          },
        ]),
      ),
    }));
  }
}
