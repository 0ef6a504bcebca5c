/**
 * Stock Envoy from envoy-bootstrap connects to signalbox over ADS (state of the world and
 * delta), gets a listener, route, cluster and endpoints, ACKs each type; a request through
 * Envoy reaches the backend; the ledger's ACKed versions agree with Envoy's config_dump.
 */
import { TypeUrl } from '../src/xds/resource.js';
import { startBackend, get } from './harness/backend.js';
import type { Backend } from './harness/backend.js';
import { dumpVersions, waitFor } from './harness/envoy.js';
import { startEnvoyStack } from './harness/stack.js';
import type { EnvoyStack } from './harness/stack.js';
import { simpleSnapshot } from './harness/resources.js';

describe.each([
  ['sotw', false],
  ['delta', true],
])('Envoy over ADS (%s)', (mode, delta) => {
  let s: EnvoyStack;
  let a: Backend;

  beforeAll(async () => {
    a = await startBackend('backend-a', '127.0.0.2');
    s = await startEnvoyStack({
      nodeId: `envoy-${mode}-1`,
      delta,
      snapshot: (port) => simpleSnapshot({ listenerPort: port, backends: [a], active: 'backend-a' }),
    });
  });

  afterAll(async () => {
    await s?.close();
    await a?.close();
  });

  test('a request through Envoy reaches the backend', async () => {
    const r = await waitFor('a 200 through envoy', async () => {
      const x = await get(`http://127.0.0.1:${s.port}/hello`);
      return x.status === 200 ? x : undefined;
    });
    expect(r.backend).toBe('backend-a');
    expect(JSON.parse(r.body).path).toBe('/hello');
  });

  test('every type is ACKed, and the ledger agrees with config_dump', async () => {
    const node = s.app.cache.ledger.get(`envoy-${mode}-1`);
    expect(node?.mode).toBe(mode);
    expect(node?.connected).toBe(true);
    for (const t of [TypeUrl.Cluster, TypeUrl.Endpoint, TypeUrl.Listener, TypeUrl.Route]) {
      const tl = node?.types.get(t);
      expect(tl?.acked?.version).toBeTruthy();
      expect(tl?.acked?.version).toBe(tl?.sent?.version);
      expect(tl?.nacked).toBeUndefined();
    }
    const snap = s.app.cache.getGroup('default/gw');
    const dump = dumpVersions(await s.envoy.configDump('?include_eds'));
    if (!delta) {
      // SotW: a version per response; Envoy shows it on every resource of that response
      expect(dump.clusters['backend-a']).toBe(node?.types.get(TypeUrl.Cluster)?.acked?.version);
      expect(dump.listeners['http']).toBe(node?.types.get(TypeUrl.Listener)?.acked?.version);
      expect(dump.routes['main']).toBe(node?.types.get(TypeUrl.Route)?.acked?.version);
    } else {
      // delta: per-resource versions are the resources' content hashes
      expect(dump.clusters['backend-a']).toBe(snap?.get(TypeUrl.Cluster).get('backend-a')?.hash);
      expect(dump.listeners['http']).toBe(snap?.get(TypeUrl.Listener).get('http')?.hash);
      expect(dump.routes['main']).toBe(snap?.get(TypeUrl.Route).get('main')?.hash);
    }
    // Envoy's dump has no EDS version: the endpoints it holds are the ones ACKed
    expect(dump.endpoints['backend-a']).toBe(`${a.host}:${a.port}`);
    expect(node?.types.get(TypeUrl.Endpoint)?.resources.get('backend-a')?.acked).toBe(
      snap?.get(TypeUrl.Endpoint).get('backend-a')?.hash,
    );
    for (const [name, r] of snap?.get(TypeUrl.Cluster) ?? []) {
      expect(node?.types.get(TypeUrl.Cluster)?.resources.get(name)?.acked).toBe(r.hash);
    }
  });
});
