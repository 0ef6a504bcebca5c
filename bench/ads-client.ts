/**
 * An ADS client that behaves like Envoy, for benchmarks: raw @grpc/grpc-js streams with
 * signalbox's AdsCodec. Per stream it subscribes to CDS and LDS as wildcards, then to EDS
 * and RDS by the names its clusters and listeners reference, and ACKs every response (SotW:
 * echoing version_info + nonce; delta: the nonce). It keeps what it holds per type
 * (name → content hash, the same hash signalbox uses as a resource version) and counts the
 * encoded bytes of every response it receives.
 */
import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import { AdsCodec, DELTA_PATH, SOTW_PATH } from '../src/xds/server/codec.js';
import type {
  DeltaDiscoveryRequestIn,
  DeltaDiscoveryResponseOut,
  DiscoveryRequestIn,
  DiscoveryResponseOut,
} from '../src/xds/server/codec.js';
import { protoRegistry } from '../src/xds/proto.js';
import { TypeUrl, findDeps, hashBytes, protoName } from '../src/xds/resource.js';
import type { Resource } from '../src/xds/resource.js';

export type Mode = 'sotw' | 'delta';
/** type URL → name → content hash */
export type Held = Map<string, Map<string, string>>;
/** The same as Held, as plain JSON (for IPC). */
export type Target = Record<string, Record<string, string>>;

const C = TypeUrl.Cluster;
const E = TypeUrl.Endpoint;
const L = TypeUrl.Listener;
const R = TypeUrl.Route;

let codec: AdsCodec | undefined;
function getCodec(): AdsCodec {
  codec ??= new AdsCodec(protoRegistry());
  return codec;
}

/** Names a resource references, decoded once per content hash (shared by every stream). */
const depsCache = new Map<string, string[]>();
function refs(t: string, hash: string, bytes: Uint8Array): string[] {
  let d = depsCache.get(hash);
  if (!d) {
    const json = protoRegistry().decode(protoName(t as TypeUrl), bytes);
    const deps = findDeps(t as TypeUrl, json);
    d = t === C ? deps.endpoints : deps.routes;
    depsCache.set(hash, d);
  }
  return d;
}

/** The resource name (field 1 of Cluster, Listener, RouteConfiguration, ClusterLoadAssignment). */
export function nameOf(bytes: Uint8Array): string {
  const r = protobuf.Reader.create(bytes);
  while (r.pos < r.len) {
    const tag = r.uint32();
    if (tag >>> 3 === 1 && (tag & 7) === 2) return r.string();
    r.skipType(tag & 7);
  }
  return '';
}

/** Build a Target from resources (as the parent computes what every client must end up with). */
export function targetOf(resources: Iterable<Resource>): Target {
  const t: Target = {};
  for (const r of resources) (t[r.typeUrl] ??= {})[r.name] = r.hash;
  return t;
}

export function matches(held: Held, target: Target): boolean {
  for (const [t, want] of Object.entries(target)) {
    const h = held.get(t);
    const names = Object.keys(want);
    if ((h?.size ?? 0) !== names.length) return false;
    for (const n of names) if (h?.get(n) !== want[n]) return false;
  }
  return true;
}

export interface StreamOptions {
  client: grpc.Client;
  mode: Mode;
  nodeId: string;
  group: string;
  /** called after every ACK the stream sends */
  onAck?: (s: AdsStream, typeUrl: string) => void;
  onError?: (s: AdsStream, err: Error) => void;
}

type Req = Partial<DiscoveryRequestIn> | Partial<DeltaDiscoveryRequestIn>;
type Res = (DiscoveryResponseOut | DeltaDiscoveryResponseOut) & { wireBytes?: number };

export class AdsStream {
  readonly held: Held = new Map([
    [C, new Map()],
    [E, new Map()],
    [L, new Map()],
    [R, new Map()],
  ]);
  /** encoded response bytes received, per type */
  readonly bytes = new Map<string, number>();
  readonly responses = new Map<string, number>();
  acks = 0;
  nacks = 0;
  closed = false;
  error?: Error;
  private readonly call: grpc.ClientDuplexStream<Req, Res>;
  private nodeSent = false;
  /** SotW: last version/nonce per type; subscribed names for EDS/RDS */
  private readonly version = new Map<string, string>();
  private readonly nonce = new Map<string, string>();
  private readonly subscribed = new Map<string, Set<string>>([
    [E, new Set()],
    [R, new Set()],
  ]);

  constructor(readonly o: StreamOptions) {
    const c = getCodec();
    const delta = o.mode === 'delta';
    const count = (b: Buffer): Res => {
      const m = (delta ? c.decodeDeltaResponse(b) : c.decodeResponse(b)) as Res;
      m.wireBytes = b.length;
      return m;
    };
    this.call = o.client.makeBidiStreamRequest<Req, Res>(
      delta ? DELTA_PATH : SOTW_PATH,
      (m: Req) =>
        delta
          ? c.encodeDeltaRequest(m as Partial<DeltaDiscoveryRequestIn>)
          : c.encodeRequest(m as DiscoveryRequestIn),
      count,
    );
    this.call.on('data', (m: Res) => {
      try {
        this.onResponse(m);
      } catch (err) {
        this.fail(err as Error);
      }
    });
    this.call.on('error', (err: Error) => this.fail(err));
    this.call.on('end', () => (this.closed = true));
    // Envoy starts with the wildcard types
    this.request(C, []);
    this.request(L, []);
  }

  private fail(err: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.error = err;
    this.o.onError?.(this, err);
  }

  close(): void {
    this.closed = true;
    this.call.cancel();
  }

  private node() {
    if (this.nodeSent) return undefined;
    this.nodeSent = true;
    return { id: this.o.nodeId, cluster: this.o.group, user_agent_name: 'signalbox-bench' };
  }

  /** SotW: a request with the type's current names; delta: subscribe/unsubscribe. */
  private request(t: string, names: string[], unsub: string[] = [], nonce?: string): void {
    if (this.closed) return;
    if (this.o.mode === 'sotw') {
      this.call.write({
        node: this.node(),
        type_url: t,
        resource_names: names,
        version_info: this.version.get(t) ?? '',
        response_nonce: nonce ?? this.nonce.get(t) ?? '',
      });
    } else {
      this.call.write({
        node: this.node(),
        type_url: t,
        resource_names_subscribe: names,
        resource_names_unsubscribe: unsub,
        response_nonce: nonce ?? '',
      });
    }
  }

  private onResponse(m: Res): void {
    const t = m.type_url;
    const held = this.held.get(t);
    if (!held) throw new Error(`response for a type never asked for: ${t}`);
    this.bytes.set(t, (this.bytes.get(t) ?? 0) + (m.wireBytes ?? 0));
    this.responses.set(t, (this.responses.get(t) ?? 0) + 1);
    const seenNames = new Set<string>();
    if (this.o.mode === 'sotw') {
      const r = m as DiscoveryResponseOut;
      // SotW: the response is the whole set for this type (of the names asked for)
      held.clear();
      for (const a of r.resources ?? []) {
        const name = nameOf(a.value);
        if (seenNames.has(name)) throw new Error(`duplicate name ${name} in one response (xds-rules 11)`);
        seenNames.add(name);
        held.set(name, hashBytes(t, '\0', a.value));
      }
      this.version.set(t, r.version_info);
      this.nonce.set(t, r.nonce);
      this.request(t, t === C || t === L ? [] : [...(this.subscribed.get(t) ?? [])], [], r.nonce);
    } else {
      const r = m as DeltaDiscoveryResponseOut;
      for (const x of r.resources ?? []) {
        if (seenNames.has(x.name)) throw new Error(`duplicate name ${x.name} in one response (xds-rules 11)`);
        seenNames.add(x.name);
        held.set(x.name, x.version);
      }
      for (const n of r.removed_resources ?? []) held.delete(n);
      this.request(t, [], [], r.nonce);
    }
    this.acks++;
    // follow references like Envoy: clusters → their endpoints, listeners → their routes
    if (t === C || t === L) {
      const dt = t === C ? E : R;
      const want = new Set<string>();
      const raw =
        this.o.mode === 'sotw'
          ? ((m as DiscoveryResponseOut).resources ?? []).map((a) => a.value)
          : ((m as DeltaDiscoveryResponseOut).resources ?? []).map(
              (x) => x.resource?.value ?? Buffer.alloc(0),
            );
      // in delta only changed resources come: keep what the others referenced
      const byName = this.refsByName.get(t) ?? new Map<string, string[]>();
      this.refsByName.set(t, byName);
      if (this.o.mode === 'sotw') byName.clear();
      else for (const n of (m as DeltaDiscoveryResponseOut).removed_resources ?? []) byName.delete(n);
      for (const v of raw) byName.set(nameOf(v), refs(t, hashBytes(t, '\0', v), v));
      for (const list of byName.values()) for (const n of list) want.add(n);
      const cur = this.subscribed.get(dt) as Set<string>;
      const add = [...want].filter((n) => !cur.has(n));
      const drop = [...cur].filter((n) => !want.has(n));
      if (add.length > 0 || drop.length > 0) {
        this.subscribed.set(dt, want);
        // like Envoy: what nothing references any more is dropped (SotW EDS/RDS have no deletion)
        for (const n of drop) this.held.get(dt)?.delete(n);
        if (this.o.mode === 'sotw') this.request(dt, [...want].sort());
        else this.request(dt, add, drop);
      }
    }
    this.o.onAck?.(this, t);
  }

  private readonly refsByName = new Map<string, Map<string, string[]>>();
}

/** Channels (HTTP/2 connections) for many streams: each gets its own subchannel. */
export function makeClients(port: number, n: number): grpc.Client[] {
  const out: grpc.Client[] = [];
  for (let i = 0; i < n; i++) {
    out.push(
      new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), {
        'grpc.use_local_subchannel_pool': 1,
        'grpc.max_receive_message_length': 512 * 1024 * 1024,
        'grpc.keepalive_time_ms': 60_000,
      }),
    );
  }
  return out;
}
