/**
 * A resource that encodes fine but Envoy rejects (an invalid RE2 regex in a route): the
 * ledger has the NACK with Envoy's error text, signalbox does not resend it, Envoy keeps
 * serving the last good config, and a corrected snapshot is ACKed.
 */
import { TypeUrl } from '../src/xds/resource.js';
import { get, startBackend } from './harness/backend.js';
import type { Backend } from './harness/backend.js';
import { sleep, waitFor } from './harness/envoy.js';
import { startEnvoyStack } from './harness/stack.js';
import type { EnvoyStack } from './harness/stack.js';
import { simpleSnapshot } from './harness/resources.js';

describe.each([
  ['sotw', false],
  ['delta', true],
])('NACK from a real Envoy (%s)', (mode, delta) => {
  let s: EnvoyStack;
  let a: Backend;
  const nodeId = `envoy-nack-${mode}`;

  beforeAll(async () => {
    a = await startBackend('backend-a', '127.0.0.2');
    s = await startEnvoyStack({
      nodeId,
      delta,
      snapshot: (port) => simpleSnapshot({ listenerPort: port, backends: [a], active: 'backend-a' }),
    });
  });

  afterAll(async () => {
    await s?.close();
    await a?.close();
  });

  test('rejected route: NACK recorded with Envoy error text, not resent, old config still serves; fix → ACK', async () => {
    const t = () => s.app.cache.ledger.get(nodeId)?.types.get(TypeUrl.Route);
    const goodVersion = t()?.acked?.version;
    expect(goodVersion).toBeTruthy();
    // a regex RE2 rejects: encodes fine, Envoy NACKs
    const bad = simpleSnapshot({
      listenerPort: s.port,
      backends: [a],
      active: 'backend-a',
      routeExtra: { regex_rewrite: { pattern: { regex: '((' }, substitution: 'x' } },
    });
    s.app.cache.setSnapshot('default/gw', bad);
    const nack = await waitFor('NACK in ledger', () => t()?.nacked);
    expect(nack.error).toMatch(/missing \)|regex|RE2/i);
    expect(t()?.resources.get('main')?.nacked).toBe(bad.get(TypeUrl.Route).get('main')?.hash);
    expect(t()?.acked?.version).toBe(goodVersion);
    // not resent: the count of RDS pushes stays put while Envoy keeps running
    const pushes = await s.app.metrics.value('signalbox_xds_pushes_total', { type: 'RDS', mode });
    await sleep(1500);
    expect(await s.app.metrics.value('signalbox_xds_pushes_total', { type: 'RDS', mode })).toBe(pushes);
    expect(t()?.sent?.nonce).toBe(nack.nonce);
    // Envoy still serves the last good config
    const r = await get(`http://127.0.0.1:${s.port}/still`);
    expect(r.status).toBe(200);
    expect(r.backend).toBe('backend-a');
    const stats = await s.envoy.stats('rds.main.update_rejected');
    expect([...stats.values()].reduce((x, y) => x + y, 0)).toBeGreaterThanOrEqual(1);
    // corrected snapshot → ACK
    const fixed = simpleSnapshot({
      listenerPort: s.port,
      backends: [a],
      active: 'backend-a',
      routeExtra: { regex_rewrite: { pattern: { regex: '^/still(.*)$' }, substitution: '/fixed\\1' } },
    });
    s.app.cache.setSnapshot('default/gw', fixed);
    await waitFor(
      'ACK of the fix',
      () => t()?.resources.get('main')?.acked === fixed.get(TypeUrl.Route).get('main')?.hash,
    );
    const r2 = await waitFor('rewrite applied', async () => {
      const x = await get(`http://127.0.0.1:${s.port}/still/here`);
      return JSON.parse(x.body).path === '/fixed/here' ? x : undefined;
    });
    expect(r2.status).toBe(200);
  });
});
