/** State-of-the-world ADS (StreamAggregatedResources). */
import type { ServerDuplexStream } from '@grpc/grpc-js';
import { SHORT, versionOf } from '../resource.js';
import type { Resource } from '../resource.js';
import { Session } from './session.js';
import type { SessionOptions, TypeState } from './session.js';
import type { DiscoveryRequest, DiscoveryResponse } from './codec.js';

/** Bytes of a length-delimited protobuf field (tag < 16) whose payload is n bytes. */
export function fieldLen(n: number): number {
  let v = 1;
  for (let x = n; x >= 0x80; x >>>= 7) v++;
  return 1 + v + n;
}
/** Bytes of a string field. */
export const strLen = (s: string): number => fieldLen(Buffer.byteLength(s));
/** Payload bytes of a google.protobuf.Any. */
export const anyLen = (typeUrl: string, value: Uint8Array): number =>
  strLen(typeUrl) + fieldLen(value.length);

/** Encoded size of a DiscoveryResponse, without encoding it (for signalbox_xds_pushed_bytes_total). */
export function responseBytes(m: DiscoveryResponse): number {
  let n = strLen(m.version_info) + strLen(m.type_url) + strLen(m.nonce);
  if (m.control_plane) n += fieldLen(strLen(m.control_plane.identifier));
  for (const r of m.resources) n += fieldLen(anyLen(r.type_url, r.value));
  return n;
}

export class SotwSession extends Session {
  readonly mode = 'sotw' as const;
  /** version the client said it has on its first request of a type (reconnects) */
  private readonly offered = new Map<string, string>();

  constructor(
    opts: SessionOptions,
    private readonly call: ServerDuplexStream<DiscoveryRequest, DiscoveryResponse>,
    peer: string,
  ) {
    super(opts, peer);
  }

  protected write(
    t: TypeState,
    nonce: string,
    resources: Resource[],
    _removed: string[],
    version: string,
  ): void {
    const msg: DiscoveryResponse = {
      version_info: version,
      type_url: t.typeUrl,
      nonce,
      resources: resources.map((r) => ({ type_url: t.typeUrl, value: r.bytes })),
      control_plane: { identifier: this.opts.controlPlaneId },
    };
    try {
      this.call.write(msg);
      this.opts.metrics.pushedBytes.inc({ type: SHORT[t.typeUrl], mode: this.mode }, responseBytes(msg));
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

  onRequest(req: DiscoveryRequest): void {
    if (this.closed) return;
    const t = this.admit(req.node, req.type_url);
    if (!t || this.closed || !this.node) return;
    const nonce = req.response_nonce ?? '';
    // xds-rules 2: a request answering an older response is stale; ignore it whole
    if (nonce !== '' && nonce !== t.lastNonce) {
      this.opts.metrics.streamErrors.inc({ reason: 'stale_nonce' });
      return;
    }
    if (nonce !== '' && t.pending?.nonce === nonce) {
      // xds-rules 4: NACK iff error_detail is present
      if (req.error_detail) this.nack(t, req.error_detail.message ?? `code ${req.error_detail.code ?? 0}`);
      else this.ack(t);
    }
    // subscriptions (xds-rules 7: never named = wildcard)
    const names = (req.resource_names ?? []).filter((n) => n !== '');
    if (!t.seen) {
      t.seen = true;
      t.wildcard = names.length === 0 || names.includes('*');
      if (nonce === '' && req.version_info) this.offered.set(t.typeUrl, req.version_info);
    } else if (names.length > 0 || !t.wildcard) {
      t.wildcard = names.includes('*');
    }
    const next = new Set(names.filter((n) => n !== '*'));
    // xds-rules 8: names the client stopped asking for are names it dropped; should it ask
    // for them again, they are sent again (even at the same version)
    const dropped = t.wildcard ? [] : [...t.names].filter((n) => !next.has(n));
    if (dropped.length > 0) {
      this.forget(t, dropped);
      t.lastSentVersion = undefined;
    }
    t.names = next;
    this.mark(t, 'all');
    this.afterRequest(t);
  }

  private selected(t: TypeState): Resource[] {
    if (t.wildcard) return [...t.view.values()];
    const out: Resource[] = [];
    for (const n of t.names) {
      const r = t.view.get(n);
      if (r) out.push(r);
    }
    return out;
  }

  trySend(t: TypeState): void {
    // state of the world recomputes the whole selection: no use for dirty names
    t.dirty.clear();
    t.dirtyAll = false;
    if (this.closed || !this.node || !t.seen || t.pending) return;
    if (!t.wildcard && t.names.size === 0) {
      // the client unsubscribed every name (Envoy does so for EDS when its last cluster
      // goes): it has no watch left to ACK a response with, so none is sent
      if (t.acked.size > 0) {
        this.forget(t, [...t.acked.keys()]);
        this.mark(t, 'all');
      }
      t.lastSentVersion = undefined;
      t.force.clear();
      return;
    }
    const sel = this.selected(t);
    const version = versionOf(sel);
    if (t.held === version) return; // xds-rules 5
    const offered = this.offered.get(t.typeUrl);
    if (offered !== undefined) {
      this.offered.delete(t.typeUrl);
      if (offered === version) {
        // a reconnecting client already has exactly this: nothing to send
        t.answered = true;
        t.acked.clear();
        t.ackedRes.clear();
        for (const r of sel) {
          t.acked.set(r.name, r.hash);
          t.ackedRes.set(r.name, r);
        }
        this.mark(t, 'all');
        t.lastSentVersion = version;
        this.opts.cache.ledger.recordAlreadyHas(
          this.streamId,
          t.typeUrl,
          version,
          sel.map((r) => ({ name: r.name, hash: r.hash })),
        );
        return;
      }
    }
    const forced = sel.some((r) => t.force.has(r.name));
    if (!t.wildcard && t.answered && !forced && sel.every((r) => t.acked.get(r.name) === r.hash)) {
      // xds-rules 12: SotW EDS/RDS have no deletion; a name that merely went away is not
      // worth a response (Envoy drops it when nothing references it, and a response for a
      // name it no longer watches would never be ACKed)
      return;
    }
    // xds-rules 10: answer the first request even with nothing to send;
    // xds-rules 6/8: otherwise only when what the client should have changed
    if (t.answered && version === t.lastSentVersion && !forced) return;
    if (t.force.size > 0 && !forced) {
      // forced names the client does not subscribe to (any more): nothing to refresh
      for (const n of t.force) if (!sel.some((r) => r.name === n)) t.force.delete(n);
    }
    t.lastSentVersion = version;
    this.send(t, sel, [], version, version, true);
  }
}
