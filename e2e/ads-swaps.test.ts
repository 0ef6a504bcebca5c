/**
 * 50 swaps of a route's backend cluster under continuous requests (a new connection per
 * request): every swap adds a new cluster, switches the route to it and drops the old one.
 * Make-before-break ordering means 0 failed requests.
 */
import { Snapshot } from '../src/xds/cache/snapshot.js';
import { TypeUrl } from '../src/xds/resource.js';
import { get, startBackend } from './harness/backend.js';
import type { Backend } from './harness/backend.js';
import { waitFor } from './harness/envoy.js';
import { startEnvoyStack } from './harness/stack.js';
import type { EnvoyStack } from './harness/stack.js';
import { startLoad } from './harness/load.js';
import { cla, cluster, listener, res, route } from './harness/resources.js';

function swapSnapshot(port: number, i: number, b: Backend): Snapshot {
  const name = `pool-${i}`;
  return new Snapshot([
    res(TypeUrl.Listener, listener('http', port, 'main')),
    res(TypeUrl.Route, route('main', name)),
    res(TypeUrl.Cluster, cluster(name)),
    res(TypeUrl.Endpoint, cla(name, [{ host: b.host, port: b.port }])),
  ]);
}

describe.each([
  ['sotw', false],
  ['delta', true],
])('backend swaps under load (%s)', (mode, delta) => {
  let s: EnvoyStack;
  let a: Backend;
  let b: Backend;
  const nodeId = `envoy-swaps-${mode}`;

  beforeAll(async () => {
    a = await startBackend('backend-a', '127.0.0.2');
    b = await startBackend('backend-b', '127.0.0.3');
    s = await startEnvoyStack({ nodeId, delta, snapshot: (port) => swapSnapshot(port, 0, a) });
  });

  afterAll(async () => {
    await s?.close();
    await a?.close();
    await b?.close();
  });

  test('50 swaps, 0 failed requests, both backends served, old clusters gone', async () => {
    const load = startLoad(`http://127.0.0.1:${s.port}/`, 2);
    for (let i = 1; i <= 50; i++) {
      const backend = i % 2 === 0 ? a : b;
      const snap = swapSnapshot(s.port, i, backend);
      s.app.cache.setSnapshot('default/gw', snap);
      // the swap is done when Envoy ACKed the switched route and the removal of the old cluster
      const rh = snap.get(TypeUrl.Route).get('main')?.hash as string;
      await waitFor(`swap ${i} ACKed`, () => {
        const n = s.app.cache.ledger.get(nodeId);
        const routeAcked = n?.types.get(TypeUrl.Route)?.resources.get('main')?.acked === rh;
        const cds = n?.types.get(TypeUrl.Cluster);
        const oldGone =
          !cds?.resources.has(`pool-${i - 1}`) || cds.resources.get(`pool-${i - 1}`)?.acked === undefined;
        return routeAcked && oldGone && cds?.inflight.size === 0;
      });
      // the switched route answers from the new backend
      await waitFor(
        `swap ${i} serves ${backend.name}`,
        async () => (await get(`http://127.0.0.1:${s.port}/`)).backend === backend.name,
        5000,
        20,
      );
    }
    const r = await load.stop();
    expect(r.failures).toEqual([]);
    expect(r.failed).toBe(0);
    expect(r.ok).toBeGreaterThan(100);
    expect(r.byBackend['backend-a']).toBeGreaterThan(0);
    expect(r.byBackend['backend-b']).toBeGreaterThan(0);
    const dump = await s.envoy.configDump();
    const clusters = JSON.stringify(
      dump.configs.find((c) => String(c['@type']).endsWith('ClustersConfigDump')),
    );
    expect(clusters).toContain('"pool-50"');
    expect(clusters).not.toContain('"pool-49"');
    expect(s.app.cache.ledger.get(nodeId)?.types.get(TypeUrl.Route)?.nacked).toBeUndefined();
  });
});
