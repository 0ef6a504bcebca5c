/**
 * Removing everything step by step: the last cluster goes (Envoy drops its EDS
 * subscription altogether and ACKs nothing more for EDS), then the listener. signalbox must
 * not wait for an EDS ACK that never comes: each change reaches Envoy promptly.
 */
import { Snapshot } from '../src/xds/cache/snapshot.js';
import { TypeUrl } from '../src/xds/resource.js';
import { startBackend } from './harness/backend.js';
import type { Backend } from './harness/backend.js';
import { dumpVersions, waitFor } from './harness/envoy.js';
import { res, listener, route, simpleSnapshot } from './harness/resources.js';
import { startEnvoyStack } from './harness/stack.js';
import type { EnvoyStack } from './harness/stack.js';

describe.each([
  ['sotw', false],
  ['delta', true],
])('removing the last cluster, then the listener (%s)', (mode, delta) => {
  let s: EnvoyStack;
  let a: Backend;

  beforeAll(async () => {
    a = await startBackend('backend-a', '127.0.0.2');
    s = await startEnvoyStack({
      nodeId: `envoy-remove-${mode}`,
      delta,
      snapshot: (port) => simpleSnapshot({ listenerPort: port, backends: [a], active: 'backend-a' }),
    });
  });

  afterAll(async () => {
    await s?.close();
    await a?.close();
  });

  test('each removal reaches Envoy well before the 10 s step timeout', async () => {
    // 1. the route no longer names a cluster; the only cluster and its endpoints go
    s.app.cache.setSnapshot(
      'default/gw',
      new Snapshot([
        res(TypeUrl.Listener, listener('http', s.port, 'main')),
        res(TypeUrl.Route, route('main', 'nowhere')),
      ]),
    );
    await waitFor(
      'cluster removed in Envoy',
      async () => !('backend-a' in dumpVersions(await s.envoy.configDump()).clusters),
      3000,
    );
    // 2. the listener goes too
    const t0 = Date.now();
    s.app.cache.setSnapshot('default/gw', new Snapshot([]));
    await waitFor(
      'listener removed in Envoy',
      async () => !('http' in dumpVersions(await s.envoy.configDump()).listeners),
      3000,
    );
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(await s.app.metrics.value('signalbox_xds_stream_errors_total', { reason: 'step_timeout' })).toBe(
      0,
    );
  });
});
