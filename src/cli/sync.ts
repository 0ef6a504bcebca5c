/**
 * Whether an Envoy holds what signalbox serves it, from the debug endpoint's documents:
 * the ledger of its stream (`GET /debug/nodes`: per type what was sent, ACKed, NACKed, and
 * per resource the hash last ACKed / NACKed) against its Gateway's snapshot (`GET
 * /debug/snapshots/<ns>/<gw>`: per resource its hash and the names it references).
 *
 * What a stream should hold, per type: every listener and cluster (LDS and CDS are
 * subscribed by wildcard: one the snapshot no longer has must be gone too), and the route
 * configurations, load assignments and secrets those reference (RDS, EDS and SDS are
 * subscribed by name; one the stream ACKed earlier and nothing references now is not
 * counted: Envoy unsubscribes it).
 *
 * A type is
 *   SYNCED   every resource it should hold is ACKed at the snapshot's hash, nothing extra
 *   NACKED   not synced, and Envoy rejected the current content (or the last response sent)
 *   STALE    not synced otherwise: it ACKed an older content, a newer one is on its way or not sent yet
 *   NOT SENT nothing of this type was ever sent on this stream
 */

export const TYPES = ['CDS', 'LDS', 'EDS', 'RDS', 'SDS'] as const;
export type ShortType = (typeof TYPES)[number];
const WILDCARD = new Set<string>(['CDS', 'LDS']);

export type SyncState = 'SYNCED' | 'STALE' | 'NACKED' | 'NOT SENT';

/** A type of a stream in GET /debug/nodes. */
export interface LedgerTypeJson {
  typeUrl?: string;
  sent?: { version: string; nonce: string; at?: string; resources?: number };
  acked?: { version: string; nonce: string; at?: string };
  nacked?: { version: string; nonce: string; error: string; at?: string; candidates?: string[] };
  resources?: Record<string, { sent?: string; acked?: string; nacked?: string; error?: string }>;
}

/** A stream in GET /debug/nodes. */
export interface StreamJson {
  id: string;
  stream: number;
  group: string;
  mode: string;
  connected: boolean;
  peer?: string;
  duplicateNodeId?: boolean;
  connectedAt?: string;
  types: Record<string, LedgerTypeJson | undefined>;
}

export interface SnapshotResourceJson {
  name: string;
  version: string;
  deps?: { clusters?: string[]; endpoints?: string[]; routes?: string[]; secrets?: string[] };
  resource?: unknown;
}

/** GET /debug/snapshots/<ns>/<gw>. */
export interface SnapshotJson {
  group: string;
  node?: string;
  versions: Record<string, string>;
  resources: Record<string, SnapshotResourceJson[] | undefined>;
}

/** Per type: resource name → the hash the stream should hold. */
export function wanted(snap: SnapshotJson | undefined): Record<ShortType, Map<string, string>> {
  const out = Object.fromEntries(TYPES.map((t) => [t, new Map<string, string>()])) as Record<
    ShortType,
    Map<string, string>
  >;
  if (!snap) return out;
  const byName = (t: ShortType) => new Map((snap.resources[t] ?? []).map((r) => [r.name, r.version]));
  const all = Object.fromEntries(TYPES.map((t) => [t, byName(t)])) as Record<ShortType, Map<string, string>>;
  for (const t of ['CDS', 'LDS'] as const) for (const [n, h] of all[t]) out[t].set(n, h);
  const refer = (t: ShortType, names: string[] | undefined) => {
    for (const n of names ?? []) {
      const h = all[t].get(n);
      if (h !== undefined) out[t].set(n, h);
    }
  };
  for (const l of snap.resources.LDS ?? []) {
    refer('RDS', l.deps?.routes);
    refer('SDS', l.deps?.secrets);
  }
  for (const c of snap.resources.CDS ?? []) {
    refer('EDS', c.deps?.endpoints);
    refer('SDS', c.deps?.secrets);
  }
  return out;
}

export interface ResourceDiff {
  /** the stream does not hold it: it should */
  added: { name: string; want: string; nacked?: string }[];
  /** the stream holds another content of it */
  changed: { name: string; acked: string; want: string; nacked?: string }[];
  /** the stream holds it: it should not (LDS and CDS only) */
  removed: { name: string; acked: string }[];
}

export interface TypeSync {
  state: SyncState;
  /** the snapshot's version of the type (what it holds now) */
  snapshotVersion?: string;
  /** the version of the last response the stream ACKed, and of the last one sent */
  ackedVersion?: string;
  sentVersion?: string;
  /** a response is sent and not answered yet */
  pending: boolean;
  /** resources the stream should hold, and of them how many it holds */
  want: number;
  holds: number;
  /** Envoy's error text (NACKED) */
  error?: string;
  diff: ResourceDiff;
}

/** One type of one stream against what its snapshot holds now. */
export function typeSync(
  t: ShortType,
  ledger: LedgerTypeJson | undefined,
  want: Map<string, string>,
  snapshotVersion?: string,
): TypeSync {
  const res = ledger?.resources ?? {};
  const diff: ResourceDiff = { added: [], changed: [], removed: [] };
  let holds = 0;
  let nackedNow: string | undefined;
  for (const [name, h] of want) {
    const r = res[name];
    const nacked = r?.nacked === h ? (r.error ?? ledger?.nacked?.error ?? 'NACKed') : undefined;
    if (nacked && nackedNow === undefined) nackedNow = nacked;
    if (r?.acked === h) holds++;
    else if (r?.acked === undefined) diff.added.push({ name, want: h, ...(nacked ? { nacked } : {}) });
    else diff.changed.push({ name, acked: r.acked, want: h, ...(nacked ? { nacked } : {}) });
  }
  if (WILDCARD.has(t))
    for (const [name, r] of Object.entries(res))
      if (r.acked !== undefined && !want.has(name)) diff.removed.push({ name, acked: r.acked });
  for (const k of ['added', 'changed', 'removed'] as const)
    diff[k].sort((a, b) => (a.name < b.name ? -1 : 1));
  const sent = ledger?.sent;
  const acked = ledger?.acked;
  const pending = !!sent && sent.nonce !== acked?.nonce && sent.nonce !== ledger?.nacked?.nonce;
  const inSync = diff.added.length + diff.changed.length + diff.removed.length === 0;
  const lastNacked = !!sent && ledger?.nacked?.nonce === sent.nonce;
  let state: SyncState;
  let error: string | undefined;
  if (!sent && !acked) state = 'NOT SENT';
  else if (inSync) state = 'SYNCED';
  else if (nackedNow !== undefined || lastNacked) {
    state = 'NACKED';
    error = nackedNow ?? ledger?.nacked?.error;
  } else state = 'STALE';
  return {
    state,
    ...(snapshotVersion !== undefined ? { snapshotVersion } : {}),
    ...(acked ? { ackedVersion: acked.version } : {}),
    ...(sent ? { sentVersion: sent.version } : {}),
    pending,
    want: want.size,
    holds,
    ...(error !== undefined ? { error } : {}),
    diff,
  };
}

export interface StreamSync {
  node: string;
  stream: number;
  gateway: string;
  connected: boolean;
  mode: string;
  peer?: string;
  duplicateNodeId: boolean;
  /** the Gateway has a snapshot (false: nothing is served for it, e.g. it is gone) */
  hasSnapshot: boolean;
  types: Record<ShortType, TypeSync>;
}

/** Every type of a stream against its Gateway's snapshot. */
export function streamSync(st: StreamJson, snap: SnapshotJson | undefined): StreamSync {
  const want = wanted(snap);
  return {
    node: st.id,
    stream: st.stream,
    gateway: st.group,
    connected: st.connected,
    mode: st.mode,
    ...(st.peer ? { peer: st.peer } : {}),
    duplicateNodeId: !!st.duplicateNodeId,
    hasSnapshot: !!snap,
    types: Object.fromEntries(
      TYPES.map((t) => [t, typeSync(t, st.types[t], want[t], snap?.versions[t])]),
    ) as Record<ShortType, TypeSync>,
  };
}

/** How many resources differ between what the stream holds and what it should. */
export function differences(s: StreamSync): number {
  return TYPES.reduce((n, t) => {
    const d = s.types[t].diff;
    return n + d.added.length + d.changed.length + d.removed.length;
  }, 0);
}
