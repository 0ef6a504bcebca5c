/**
 * The sync logic of `signalbox status` and `signalbox diff`, on the documents the debug
 * endpoint serves: a real ledger's JSON (GET /debug/nodes) against a real snapshot's JSON
 * (GET /debug/snapshots/<ns>/<gw>), round-tripped through JSON as the CLI reads them.
 */
import { snapshotJson } from '../../src/debug/server.js';
import { SnapshotCache } from '../../src/xds/cache/cache.js';
import { Snapshot } from '../../src/xds/cache/snapshot.js';
import { TypeUrl } from '../../src/xds/resource.js';
import type { Resource } from '../../src/xds/resource.js';
import { differences, streamSync, wanted } from '../../src/cli/sync.js';
import type { SnapshotJson, StreamJson } from '../../src/cli/sync.js';
import { diffTable, statusTable } from '../../src/cli/commands.js';
import { cla, cluster, listener, res, route } from '../../e2e/harness/resources.js';

const G = 'default/gw';
const roundTrip = <T>(v: unknown): T => JSON.parse(JSON.stringify(v)) as T;

function snap(backend: string, extraCluster = false): Snapshot {
  return new Snapshot([
    res(TypeUrl.Listener, listener('http', 10080, 'main')),
    res(TypeUrl.Route, route('main', backend)),
    res(TypeUrl.Route, route('unreferenced', backend)),
    res(TypeUrl.Cluster, cluster(backend)),
    res(TypeUrl.Endpoint, cla(backend, [{ host: '127.0.0.2', port: 80 }])),
    ...(extraCluster
      ? [res(TypeUrl.Cluster, cluster('extra')), res(TypeUrl.Endpoint, cla('extra', []))]
      : []),
  ]);
}

let nonce = 0;
/** Send the snapshot's resources of type t (the ones the stream should hold) and answer. */
function push(
  cache: SnapshotCache,
  stream: number,
  s: Snapshot,
  t: TypeUrl,
  answer: 'ack' | 'nack' | 'none',
  names?: string[],
): void {
  const rs = [...s.get(t).values()].filter((r: Resource) => !names || names.includes(r.name));
  const n = String(++nonce);
  cache.ledger.recordSent(stream, t, {
    version: s.version(t),
    nonce: n,
    at: Date.now(),
    resources: rs.map((r) => ({ name: r.name, hash: r.hash })),
    removed: [],
  });
  if (answer === 'ack') cache.ledger.recordAck(stream, t, n);
  if (answer === 'nack') cache.ledger.recordNack(stream, t, n, 'Envoy: bad regex');
}

function docs(cache: SnapshotCache, stream: number): [StreamJson, SnapshotJson] {
  const st = roundTrip<StreamJson[]>(cache.ledger.toJSON()).find((x) => x.stream === stream)!;
  return [st, roundTrip<SnapshotJson>(snapshotJson(cache, G))];
}

test('what a stream should hold: every listener and cluster, and the routes, endpoints and secrets they reference', () => {
  const cache = new SnapshotCache();
  cache.setSnapshot(G, snap('a'));
  const w = wanted(roundTrip<SnapshotJson>(snapshotJson(cache, G)));
  expect([...w.LDS.keys()]).toEqual(['http']);
  expect([...w.RDS.keys()]).toEqual(['main']); // 'unreferenced' is never subscribed
  expect([...w.CDS.keys()]).toEqual(['a']);
  expect([...w.EDS.keys()]).toEqual(['a']);
  expect(w.SDS.size).toBe(0);
  expect(wanted(undefined).CDS.size).toBe(0);
});

test('SYNCED, NOT SENT, then STALE while a new snapshot is on its way, NACKED with Envoy’s text, SYNCED after the fix', () => {
  const cache = new SnapshotCache();
  const s1 = snap('a');
  cache.setSnapshot(G, s1);
  const id = cache.ledger.connect('envoy-1', G, 'sotw', '127.0.0.1:1');
  for (const t of [TypeUrl.Cluster, TypeUrl.Endpoint, TypeUrl.Listener]) push(cache, id, s1, t, 'ack');
  push(cache, id, s1, TypeUrl.Route, 'ack', ['main']);
  let sync = streamSync(...docs(cache, id));
  expect(Object.fromEntries(Object.entries(sync.types).map(([t, x]) => [t, x.state]))).toEqual({
    CDS: 'SYNCED',
    LDS: 'SYNCED',
    EDS: 'SYNCED',
    RDS: 'SYNCED',
    SDS: 'NOT SENT',
  });
  expect(differences(sync)).toBe(0);
  expect(sync.types.CDS).toMatchObject({
    want: 1,
    holds: 1,
    pending: false,
    ackedVersion: s1.version(TypeUrl.Cluster),
  });

  // a new snapshot: cluster b instead of a, the route moves to b
  const s2 = snap('b');
  cache.setSnapshot(G, s2);
  sync = streamSync(...docs(cache, id));
  expect(sync.types.CDS.state).toBe('STALE');
  expect(sync.types.CDS.diff).toEqual({
    added: [{ name: 'b', want: s2.get(TypeUrl.Cluster).get('b')!.hash }],
    changed: [],
    removed: [{ name: 'a', acked: s1.get(TypeUrl.Cluster).get('a')!.hash }],
  });
  expect(sync.types.RDS.diff.changed).toEqual([
    {
      name: 'main',
      acked: s1.get(TypeUrl.Route).get('main')!.hash,
      want: s2.get(TypeUrl.Route).get('main')!.hash,
    },
  ]);
  expect(sync.types.LDS.state).toBe('SYNCED');

  // sent, not answered yet: STALE and pending
  push(cache, id, s2, TypeUrl.Cluster, 'none');
  sync = streamSync(...docs(cache, id));
  expect(sync.types.CDS).toMatchObject({
    state: 'STALE',
    pending: true,
    sentVersion: s2.version(TypeUrl.Cluster),
  });

  // the route is NACKED: Envoy's error, the resource marked
  push(cache, id, s2, TypeUrl.Route, 'nack', ['main']);
  sync = streamSync(...docs(cache, id));
  expect(sync.types.RDS).toMatchObject({ state: 'NACKED', error: 'Envoy: bad regex', pending: false });
  expect(sync.types.RDS.diff.changed[0].nacked).toBe('Envoy: bad regex');

  // the snapshot goes back to what the Envoy holds: SYNCED, whatever the last NACK said
  cache.setSnapshot(G, s1);
  sync = streamSync(...docs(cache, id));
  expect(sync.types.RDS.state).toBe('SYNCED');
});

test('a resource the stream still holds is removed for LDS and CDS only; a Gateway without snapshot wants nothing', () => {
  const cache = new SnapshotCache();
  const big = snap('a', true);
  cache.setSnapshot(G, big);
  const id = cache.ledger.connect('envoy-1', G, 'delta', 'p');
  for (const t of [TypeUrl.Cluster, TypeUrl.Endpoint, TypeUrl.Listener]) push(cache, id, big, t, 'ack');
  cache.setSnapshot(G, snap('a'));
  const sync = streamSync(...docs(cache, id));
  expect(sync.types.CDS.diff.removed.map((r) => r.name)).toEqual(['extra']);
  expect(sync.types.CDS.state).toBe('STALE');
  // EDS 'extra' is no longer referenced: Envoy unsubscribes it, nothing to remove
  expect(sync.types.EDS.diff.removed).toEqual([]);
  expect(sync.types.EDS.state).toBe('SYNCED');

  const [st] = docs(cache, id);
  const none = streamSync(st, undefined);
  expect(none.hasSnapshot).toBe(false);
  expect(none.types.LDS.diff.removed.map((r) => r.name)).toEqual(['http']);
  expect(none.types.EDS.state).toBe('SYNCED');
});

test('status and diff tables: one row per stream, NACK errors under the table, differences per resource', () => {
  const cache = new SnapshotCache();
  const s1 = snap('a');
  cache.setSnapshot(G, s1);
  const id = cache.ledger.connect('envoy-1', G, 'sotw', 'p');
  for (const t of [TypeUrl.Cluster, TypeUrl.Endpoint, TypeUrl.Listener]) push(cache, id, s1, t, 'ack');
  push(cache, id, s1, TypeUrl.Route, 'nack', ['main']);
  const sync = streamSync(...docs(cache, id));
  const text = statusTable({ nodes: [sync], gatewaysWithoutEnvoy: ['default/other'] });
  const lines = text.split('\n');
  expect(lines[0].split(/\s+/)).toEqual(['NODE', 'STREAM', 'GATEWAY', 'CDS', 'LDS', 'EDS', 'RDS', 'SDS']);
  expect(lines[1].split(/\s{2,}/)).toEqual([
    'envoy-1',
    String(id),
    G,
    'SYNCED',
    'SYNCED',
    'SYNCED',
    'NACKED',
    'NOT SENT',
  ]);
  expect(text).toContain(`envoy-1 (stream ${id}) RDS NACKED: Envoy: bad regex`);
  expect(text).toContain('no Envoy connected for: default/other');
  expect(statusTable({ nodes: [], gatewaysWithoutEnvoy: [] })).toBe('no Envoy connected\n');

  const d = diffTable([sync]);
  expect(d).toContain(`envoy-1 (stream ${id}) default/gw: 1 difference`);
  expect(d).toMatch(/RDS\s+added\s+main\s+-\s+[0-9a-f]{8}\s+NACKED: Envoy: bad regex/);
  push(cache, id, s1, TypeUrl.Route, 'ack', ['main']);
  expect(diffTable([streamSync(...docs(cache, id))])).toBe(
    `envoy-1 (stream ${id}) default/gw: in sync (4 resources)\n`,
  );
});
