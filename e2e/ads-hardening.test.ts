/**
 * The xDS hardening failure modes with a real Envoy: a cluster Envoy rejected and the user
 * then removed does not ride along with the next change; a listener removed and added back
 * with an unchanged route configuration serves again; two Envoys with the same node id are
 * two streams in the ledger, both served.
 */
import { TypeUrl } from '../src/xds/resource.js';
import { Snapshot } from '../src/xds/cache/snapshot.js';
import { get, startBackend } from './harness/backend.js';
import type { Backend } from './harness/backend.js';
import { Envoy, freePort, waitFor } from './harness/envoy.js';
import { startEnvoyStack } from './harness/stack.js';
import type { EnvoyStack } from './harness/stack.js';
import { cluster, listener, res, route, simpleSnapshot } from './harness/resources.js';

describe.each([
  ['sotw', false],
  ['delta', true],
])('xDS hardening with a real Envoy (%s)', (mode, delta) => {
  let s: EnvoyStack;
  let a: Backend;
  let b: Backend;
  const nodeId = `envoy-hardening-${mode}`;

  beforeAll(async () => {
    a = await startBackend('backend-a', '127.0.0.2');
    b = await startBackend('backend-b', '127.0.0.3');
    s = await startEnvoyStack({
      nodeId,
      delta,
      snapshot: (port) => simpleSnapshot({ listenerPort: port, backends: [a], active: 'backend-a' }),
    });
  });

  afterAll(async () => {
    await s?.close();
    await a?.close();
    await b?.close();
  });

  test('a rejected cluster the user removes is not sent again: the next change is ACKed and served', async () => {
    const cds = () => s.app.cache.ledger.get(nodeId)?.types.get(TypeUrl.Cluster);
    const nacks = () => s.app.metrics.value('signalbox_xds_nacks_total', { type: 'CDS' });
    const base = simpleSnapshot({ listenerPort: s.port, backends: [a], active: 'backend-a' });
    // connect_timeout must be > 0 (Envoy's proto validation): encodes fine, Envoy NACKs
    const bad = res(TypeUrl.Cluster, cluster('bad', { connect_timeout: '0s' }));
    s.app.cache.setSnapshot('default/gw', new Snapshot([...allOf(base), bad]));
    const nack = await waitFor('NACK of the bad cluster', () => cds()?.nacked);
    expect(nack.error).toMatch(/connect_timeout|ConnectTimeout|greater than/i);
    expect(nack.candidates).toEqual(['bad']);
    expect(await nacks()).toBe(1);
    // the user removes it and switches the route to a new backend
    s.app.cache.setSnapshot(
      'default/gw',
      simpleSnapshot({ listenerPort: s.port, backends: [a, b], active: 'backend-b' }),
    );
    await waitFor(
      'traffic to backend-b',
      async () => (await get(`http://127.0.0.1:${s.port}/`)).backend === 'backend-b',
    );
    expect(await nacks()).toBe(1); // nothing rejected again
    const dump = await s.envoy.configDump('?resource=dynamic_active_clusters');
    const names = dump.configs.map((c) => (c.cluster as { name: string }).name).sort();
    expect(names).toEqual(['backend-a', 'backend-b']);
  });

  test('a listener removed and added back with an unchanged route configuration serves again', async () => {
    const port2 = await freePort();
    const withSecond = () =>
      new Snapshot([
        ...allOf(simpleSnapshot({ listenerPort: s.port, backends: [a], active: 'backend-a' })),
        res(TypeUrl.Listener, listener('second', port2, 'second-routes')),
        res(TypeUrl.Route, route('second-routes', 'backend-a')),
      ]);
    s.app.cache.setSnapshot('default/gw', withSecond());
    await waitFor(
      'second listener serves',
      async () => (await get(`http://127.0.0.1:${port2}/`)).status === 200,
    );
    // the second listener goes, and with it its route configuration
    s.app.cache.setSnapshot(
      'default/gw',
      simpleSnapshot({ listenerPort: s.port, backends: [a], active: 'backend-a' }),
    );
    await waitFor('second listener gone', async () => {
      const d = await s.envoy.configDump('?resource=dynamic_listeners');
      return !d.configs.some((c) => c.name === 'second');
    });
    // back, with the same route configuration: Envoy dropped it and must be sent it again
    // (before the fix it waited for RDS until its 15 s initial fetch timeout, then 404)
    s.app.cache.setSnapshot('default/gw', withSecond());
    await waitFor(
      'second listener serves again',
      async () => (await get(`http://127.0.0.1:${port2}/`)).status === 200,
      10_000,
    );
  });

  test('two Envoys with the same node id: two streams, both served, the duplicate counted and shown', async () => {
    const twin = await Envoy.start({ nodeId, group: 'default/gw', xdsPort: s.app.xdsPort, delta });
    try {
      const streams = () => s.app.cache.ledger.streamsOf(nodeId, true);
      const lds = s.app.cache.getGroup('default/gw')?.get(TypeUrl.Listener).get('http')?.hash;
      await waitFor('both streams ACKed the listener', () => {
        const st = streams();
        return (
          st.length === 2 &&
          st.every((x) => x.types.get(TypeUrl.Listener)?.resources.get('http')?.acked === lds)
        );
      });
      const [first, second] = streams();
      expect(second.duplicates).toEqual([first.streamId]);
      expect(await s.app.metrics.value('signalbox_xds_duplicate_node_ids_total', { mode })).toBe(1);
      // what /debug/nodes shows
      const nodes = s.app.cache.ledger.toJSON() as { id: string; duplicateNodeId: boolean }[];
      expect(nodes.filter((n) => n.id === nodeId).map((n) => n.duplicateNodeId)).toContain(true);
      const twinListeners = await twin.configDump('?resource=dynamic_listeners');
      expect(twinListeners.configs.map((c) => c.name)).toContain('http');
    } finally {
      await twin.stop();
    }
    // the first Envoy's stream is untouched by its twin going away
    await waitFor('twin gone', () => s.app.cache.ledger.streamsOf(nodeId, true).length === 1);
    expect((await get(`http://127.0.0.1:${s.port}/`)).status).toBe(200);
  });
});

function allOf(snap: Snapshot) {
  return [...snap.resources.values()].flatMap((m) => [...m.values()]);
}
