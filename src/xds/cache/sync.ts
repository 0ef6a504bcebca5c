/**
 * Whether a stream holds what its snapshot serves now, from the ledger alone (for the
 * `signalbox_xds_nodes_out_of_sync` gauge). What a stream should hold, per type: every
 * listener and cluster (LDS and CDS are wildcard: one the snapshot no longer has must be
 * gone too), and the route configurations, load assignments and secrets those reference
 * (RDS, EDS and SDS are subscribed by name: one it ACKed earlier and nothing references now
 * is not counted, Envoy unsubscribes it). In sync: every such resource ACKed at the
 * snapshot's content hash, and no other listener or cluster ACKed.
 */
import type { StreamLedger } from './ledger.js';
import type { Snapshot } from './snapshot.js';
import { ALL_TYPES, TypeUrl, WILDCARD_TYPES } from '../resource.js';

/** Per type: resource name → the content hash a stream of this snapshot should hold. */
export function wantedHashes(snap: Snapshot | undefined): Map<TypeUrl, Map<string, string>> {
  const out = new Map<TypeUrl, Map<string, string>>(ALL_TYPES.map((t) => [t, new Map()]));
  if (!snap) return out;
  const refer = (t: TypeUrl, names: Iterable<string>) => {
    const have = snap.get(t);
    for (const n of names) {
      const r = have.get(n);
      if (r) out.get(t)!.set(n, r.hash);
    }
  };
  for (const t of [TypeUrl.Listener, TypeUrl.Cluster])
    for (const r of snap.get(t).values()) out.get(t)!.set(r.name, r.hash);
  for (const l of snap.get(TypeUrl.Listener).values()) {
    refer(TypeUrl.Route, l.deps.routes);
    refer(TypeUrl.Secret, l.deps.secrets);
  }
  for (const c of snap.get(TypeUrl.Cluster).values()) {
    refer(TypeUrl.Endpoint, c.deps.endpoints);
    refer(TypeUrl.Secret, c.deps.secrets);
  }
  return out;
}

/** The stream has ACKed exactly what it should hold (`wanted`: wantedHashes of its snapshot). */
export function streamInSync(s: StreamLedger, wanted: Map<TypeUrl, Map<string, string>>): boolean {
  for (const [t, want] of wanted) {
    const res = s.types.get(t)?.resources;
    for (const [name, hash] of want) if (res?.get(name)?.acked !== hash) return false;
    if (WILDCARD_TYPES.has(t) && res)
      for (const [name, r] of res) if (r.acked !== undefined && !want.has(name)) return false;
  }
  return true;
}
