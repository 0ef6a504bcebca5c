/**
 * Snapshot cache. Snapshots are keyed by node group (an Envoy's node.cluster, which is
 * `<namespace>/<gateway-name>` of the Gateway it serves) or, to override the group for one
 * Envoy, by node id. Setting a snapshot notifies every open stream whose node it concerns.
 *
 * The readiness layer uses `waitForAck`: resolve when a node has ACKed resource R of type T
 * at a given hash, or report the NACK.
 */
import { EventEmitter } from 'node:events';
import { Ledger } from './ledger.js';
import type { AckEvent, NackEvent, StreamLedger } from './ledger.js';
import type { Snapshot } from './snapshot.js';
import { streamInSync, wantedHashes } from './sync.js';
import type { Metrics } from '../../metrics.js';

export interface NodeKey {
  id: string;
  cluster: string;
}

export type AckOutcome = { node: string; stream?: number } & (
  | { outcome: 'acked'; version: string }
  | { outcome: 'nacked'; version: string; error: string }
  | { outcome: 'timeout' }
  | { outcome: 'disconnected' }
);

export class SnapshotCache extends EventEmitter<{ snapshot: [string] }> {
  readonly ledger = new Ledger();
  private readonly snapshots = new Map<string, Snapshot>();
  private readonly nodeOverrides = new Map<string, Snapshot>();
  /**
   * Groups with a configuration change on its way (signalbox_event_push_latency_seconds):
   * when its first event happened, and whether a snapshot was set since (`armed`: the next
   * response sent to an Envoy of the group carries it).
   */
  private readonly changes = new Map<string, { at: number; armed: boolean }>();

  constructor(private readonly metrics?: Metrics) {
    super();
    this.setMaxListeners(0);
    metrics?.trackSync(() => this.streamsOutOfSync());
  }

  /** Connected streams whose ACKed resources differ from what their snapshot serves now. */
  streamsOutOfSync(): number {
    let n = 0;
    // what a snapshot's streams should hold is the same for all of them: computed once
    const wanted = new Map<Snapshot | undefined, ReturnType<typeof wantedHashes>>();
    for (const s of this.ledger.all()) {
      if (!s.connected) continue;
      const snap = this.snapshotFor({ id: s.id, cluster: s.group });
      let w = wanted.get(snap);
      if (!w) wanted.set(snap, (w = wantedHashes(snap)));
      if (!streamInSync(s, w)) n++;
    }
    return n;
  }

  /**
   * A change of the group's configuration whose first event (informer event, file change)
   * happened at `at` (ms): the first response sent to one of the group's Envoys after its
   * snapshot is set observes signalbox_event_push_latency_seconds. Nothing is observed for
   * a group with no Envoy connected; a change still on its way keeps its earlier event.
   */
  noteChange(group: string, at: number): void {
    if (this.streamsOf(group).length === 0) this.changes.delete(group);
    else if (!this.changes.has(group)) this.changes.set(group, { at, armed: false });
  }

  /** A response was sent to an Envoy of `group` (session.ts). */
  notePushed(group: string): void {
    const c = this.changes.get(group);
    if (!c?.armed) return;
    this.changes.delete(group);
    this.metrics?.eventPushLatency.observe(Math.max(0, Date.now() - c.at) / 1000);
  }

  /** Set the snapshot of a node group (`namespace/gateway`). Pushes to every node of the group. */
  setSnapshot(group: string, snap: Snapshot): void {
    if (this.snapshots.get(group) === snap) return;
    this.snapshots.set(group, snap);
    this.metrics?.snapshots.inc();
    const c = this.changes.get(group);
    if (c) c.armed = true;
    this.emit('snapshot', group);
  }

  /** Override the snapshot for one node id (takes precedence over its group's). */
  setNodeSnapshot(nodeId: string, snap: Snapshot): void {
    this.nodeOverrides.set(nodeId, snap);
    this.metrics?.snapshots.inc();
    this.emit('snapshot', nodeId);
  }

  clearSnapshot(key: string): void {
    this.changes.delete(key);
    const had = this.snapshots.delete(key) || this.nodeOverrides.delete(key);
    if (had) this.emit('snapshot', key);
  }

  snapshotFor(node: NodeKey): Snapshot | undefined {
    return this.nodeOverrides.get(node.id) ?? this.snapshots.get(node.cluster);
  }

  hasGroup(group: string): boolean {
    return this.snapshots.has(group);
  }

  groups(): [string, Snapshot][] {
    return [...this.snapshots.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  }

  getGroup(group: string): Snapshot | undefined {
    return this.snapshots.get(group);
  }

  /** Connected node ids of a group (a node id with several streams once). */
  nodesOf(group: string): string[] {
    return [...new Set(this.streamsOf(group).map((n) => n.id))];
  }

  /** Connected streams of a group: each is one Envoy, even when two share a node id. */
  streamsOf(group: string): StreamLedger[] {
    return this.ledger.all().filter((n) => n.connected && n.group === group);
  }

  /**
   * Resolve when `node` has ACKed resource `name` of `typeUrl` at content hash `hash`
   * (already, or later), or its response containing it was NACKed. Only what the node's
   * streams open now ACK counts (a reconnect inherits nothing); with several streams of the
   * same node id (a duplicate), every one of them must ACK.
   */
  async waitForAck(
    node: string,
    typeUrl: string,
    name: string,
    hash: string,
    timeoutMs = 30_000,
  ): Promise<AckOutcome> {
    const streams = this.ledger.streamsOf(node, true);
    if (streams.length === 0) return { node, outcome: 'disconnected' };
    const outs = await Promise.all(
      streams.map((s) => this.waitForStreamAck(s.streamId, typeUrl, name, hash, timeoutMs)),
    );
    return outs.find((o) => o.outcome !== 'acked') ?? outs[outs.length - 1];
  }

  /** waitForAck for one stream. */
  waitForStreamAck(
    stream: number,
    typeUrl: string,
    name: string,
    hash: string,
    timeoutMs = 30_000,
  ): Promise<AckOutcome> {
    const ledger = this.ledger;
    const s = ledger.stream(stream);
    const node = s?.id ?? '';
    if (!s?.connected) return Promise.resolve({ node, stream, outcome: 'disconnected' });
    const tl = s.types.get(typeUrl);
    if (tl?.resources.get(name)?.acked === hash) {
      return Promise.resolve({ node, stream, outcome: 'acked', version: tl.acked?.version ?? '' });
    }
    return new Promise((resolve) => {
      const done = (o: AckOutcome) => {
        clearTimeout(timer);
        ledger.off('ack', onAck);
        ledger.off('nack', onNack);
        ledger.off('disconnect', onDisc);
        resolve(o);
      };
      const concerns = (ev: AckEvent) =>
        ev.stream === stream &&
        ev.typeUrl === typeUrl &&
        ev.resources.some((r) => r.name === name && r.hash === hash);
      const onAck = (ev: AckEvent) => {
        if (concerns(ev)) done({ node, stream, outcome: 'acked', version: ev.version });
      };
      const onNack = (ev: NackEvent) => {
        if (concerns(ev)) done({ node, stream, outcome: 'nacked', version: ev.version, error: ev.error });
      };
      const onDisc = (n: StreamLedger) => {
        if (n.streamId === stream) done({ node, stream, outcome: 'disconnected' });
      };
      const timer = setTimeout(() => done({ node, stream, outcome: 'timeout' }), timeoutMs);
      ledger.on('ack', onAck);
      ledger.on('nack', onNack);
      ledger.on('disconnect', onDisc);
    });
  }

  /** waitForAck on every stream of a group connected now; the group is ready when all ACK. */
  async waitForGroupAck(
    group: string,
    typeUrl: string,
    name: string,
    hash: string,
    timeoutMs = 30_000,
  ): Promise<AckOutcome[]> {
    return Promise.all(
      this.streamsOf(group).map((s) => this.waitForStreamAck(s.streamId, typeUrl, name, hash, timeoutMs)),
    );
  }
}
