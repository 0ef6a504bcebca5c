/** Incremental (delta) ADS (DeltaAggregatedResources). */
import type { ServerDuplexStream } from '@grpc/grpc-js';
import { SHORT, hashBytes } from '../resource.js';
import { anyLen, fieldLen, strLen } from './sotw.js';
import type { Resource } from '../resource.js';
import { Session } from './session.js';
import type { SessionOptions, TypeState } from './session.js';
import type { DeltaDiscoveryRequest, DeltaDiscoveryResponse } from './codec.js';

/** Encoded size of a DeltaDiscoveryResponse, without encoding it (signalbox_xds_pushed_bytes_total). */
export function deltaResponseBytes(m: DeltaDiscoveryResponse): number {
  let n = strLen(m.system_version_info) + strLen(m.type_url) + strLen(m.nonce);
  if (m.control_plane) n += fieldLen(strLen(m.control_plane.identifier));
  for (const r of m.resources) {
    n += fieldLen(
      strLen(r.name) + strLen(r.version) + fieldLen(anyLen(r.resource.type_url, r.resource.value)),
    );
  }
  for (const name of m.removed_resources) n += strLen(name);
  return n;
}

export class DeltaSession extends Session {
  readonly mode = 'delta' as const;
  /** per type: subscribed names that do not exist and were already reported removed (xds-rules 9) */
  private readonly reportedMissing = new Map<string, Set<string>>();
  /** per type: the client came with initial_resource_versions (a reconnect) */
  private readonly resumed = new Set<string>();

  constructor(
    opts: SessionOptions,
    private readonly call: ServerDuplexStream<DeltaDiscoveryRequest, DeltaDiscoveryResponse>,
    peer: string,
  ) {
    super(opts, peer);
  }

  protected write(
    t: TypeState,
    nonce: string,
    resources: Resource[],
    removed: string[],
    version: string,
  ): void {
    const msg: DeltaDiscoveryResponse = {
      system_version_info: version,
      type_url: t.typeUrl,
      nonce,
      resources: resources.map((r) => ({
        name: r.name,
        version: r.hash,
        resource: { type_url: t.typeUrl, value: r.bytes },
      })),
      removed_resources: removed,
      control_plane: { identifier: this.opts.controlPlaneId },
    };
    try {
      this.call.write(msg);
      this.opts.metrics.pushedBytes.inc({ type: SHORT[t.typeUrl], mode: this.mode }, deltaResponseBytes(msg));
    } catch (err) {
      this.log.warn({ err }, 'write failed');
      this.close('write failed');
    }
  }

  fail(code: number, reason: string, message: string): void {
    this.opts.metrics.streamErrors.inc({ reason });
    this.log.warn({ reason, peer: this.peer }, `closing stream: ${message}`);
    try {
      this.call.emit('error', { code, details: message });
    } catch {
      /* already gone */
    }
    this.close(reason);
  }

  onRequest(req: DeltaDiscoveryRequest): void {
    if (this.closed) return;
    const t = this.admit(req.node, req.type_url);
    if (!t || this.closed || !this.node) return;
    const nonce = req.response_nonce ?? '';
    const sub = (req.resource_names_subscribe ?? []).filter((n) => n !== '');
    const unsub = (req.resource_names_unsubscribe ?? []).filter((n) => n !== '');
    const wasWildcard = t.wildcard;
    if (!t.seen) {
      t.seen = true;
      // xds-rules 7: a first request naming nothing (or '*') is a wildcard subscription
      t.wildcard = sub.length === 0 || sub.includes('*');
      const initial = req.initial_resource_versions ?? {};
      for (const [name, version] of Object.entries(initial)) t.acked.set(name, version);
      if (Object.keys(initial).length > 0) this.resumed.add(t.typeUrl);
      this.mark(t, 'all');
    } else {
      if (sub.includes('*')) t.wildcard = true;
    }
    if (unsub.includes('*')) t.wildcard = false;
    if (t.wildcard !== wasWildcard) this.mark(t, 'all');
    const missing = this.missingOf(t);
    for (const n of sub) if (n !== '*') t.names.add(n);
    for (const n of unsub) {
      t.names.delete(n);
      missing.delete(n);
    }
    this.forget(t, unsub); // the client forgets them
    if (sub.length > 0 || unsub.length > 0) this.mark(t, [...sub, ...unsub]);
    // xds-rules 2: a stale nonce's ACK/NACK is ignored, its subscription changes are applied
    if (nonce !== '') {
      if (nonce !== t.lastNonce) {
        this.opts.metrics.streamErrors.inc({ reason: 'stale_nonce' });
      } else if (t.pending?.nonce === nonce) {
        if (req.error_detail) this.nack(t, req.error_detail.message ?? `code ${req.error_detail.code ?? 0}`);
        else this.ack(t);
      }
    }
    this.afterRequest(t);
  }

  private missingOf(t: TypeState): Set<string> {
    let m = this.reportedMissing.get(t.typeUrl);
    if (!m) {
      m = new Set();
      this.reportedMissing.set(t.typeUrl, m);
    }
    return m;
  }

  private wants(t: TypeState, name: string): boolean {
    return t.wildcard || t.names.has(name);
  }

  /**
   * After a NACK of several resources: resend them in halves, one part at a time, until
   * each part is ACKed or down to the single resources the client rejects (held at their
   * hash). Parts whose resources changed, went away or are in sync meanwhile shrink or go.
   * True when a part was sent.
   */
  private bisectSend(t: TypeState): boolean {
    while (t.bisect.length > 0) {
      const part = t.bisect[0].filter((n) => {
        const r = t.view.get(n);
        return (
          r !== undefined && this.wants(t, n) && t.acked.get(n) !== r.hash && t.heldRes.get(n) !== r.hash
        );
      });
      if (part.length === 0) {
        t.bisect.shift();
        continue;
      }
      const res = part.map((n) => t.view.get(n) as Resource);
      const version = t.acked.versionAfter(
        [],
        res.map((r) => ({ name: r.name, hash: r.hash })),
      );
      const contentKey = hashBytes(res.map((r) => `${r.name}\0${r.hash}`).join('\n'), '\u0001');
      t.bisect[0] = part;
      this.send(t, res, [], version, contentKey, false, true);
      return true;
    }
    return false;
  }

  /**
   * Send what the client lacks. Only names marked dirty are looked at (every change of view,
   * subscription or ACKed state marks its names): all other names are known to be in sync,
   * so a one-route change costs O(changed), not O(all resources).
   */
  trySend(t: TypeState): void {
    if (this.closed || !this.node || !t.seen || t.pending) return;
    if (this.bisectSend(t)) return;
    const missing = this.missingOf(t);
    let names: Iterable<string> = t.dirty;
    if (t.dirtyAll) {
      const all = new Set<string>(t.view.keys());
      for (const n of t.acked.keys()) all.add(n);
      for (const n of t.names) all.add(n);
      for (const n of t.dirty) all.add(n);
      names = all;
    }
    const add: Resource[] = [];
    const removed: string[] = [];
    const newlyMissing: string[] = [];
    for (const name of names) {
      const r = t.view.get(name);
      if (r) {
        // a resource the client rejected is not sent again at that content (xds-rules 5)
        if (t.heldRes.get(name) === r.hash) continue;
        if (this.wants(t, name) && (t.acked.get(name) !== r.hash || t.force.has(name))) add.push(r);
      } else if (t.acked.has(name)) {
        removed.push(name);
      } else if (t.names.has(name) && !missing.has(name)) {
        newlyMissing.push(name);
      }
    }
    add.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const n of t.force) if (!add.some((r) => r.name === n)) t.force.delete(n);
    const allRemoved = [...removed, ...newlyMissing].sort();
    const contentKey = hashBytes(
      add.map((r) => `${r.name}\0${r.hash}`).join('\n'),
      '\u0001',
      allRemoved.join('\n'),
    );
    if (t.held === contentKey) return; // xds-rules 5 (the names stay dirty)
    if (add.length === 0 && allRemoved.length === 0) {
      t.dirty.clear();
      t.dirtyAll = false;
      // xds-rules 10: a fresh client's first request gets an answer even when empty;
      // a resuming client that already has everything gets nothing
      if (t.answered || this.resumed.has(t.typeUrl)) {
        if (!t.answered && this.resumed.has(t.typeUrl)) {
          t.answered = true;
          this.opts.cache.ledger.recordAlreadyHas(
            this.streamId,
            t.typeUrl,
            t.acked.versionAfter([], []),
            [...t.acked].map(([name, hash]) => ({ name, hash })),
          );
        }
        return;
      }
    }
    for (const n of newlyMissing) missing.add(n);
    for (const n of removed) if (t.names.has(n)) missing.add(n);
    for (const r of add) missing.delete(r.name);
    // what was looked at is now either in sync or in this response (its ACK marks it again)
    t.dirty.clear();
    t.dirtyAll = false;
    // the type's version is that of the whole set the client holds once it applies this
    const version = t.acked.versionAfter(
      allRemoved,
      add.map((r) => ({ name: r.name, hash: r.hash })),
    );
    this.send(t, add, allRemoved, version, contentKey, false);
  }
}
