/**
 * signalbox restarts (killed, started again) while Envoy runs: Envoy reconnects, the
 * versions are identical, Envoy receives no changed config (its update counters do not
 * move), and requests keep succeeding throughout (0 failed).
 */
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { TypeUrl } from '../src/xds/resource.js';
import { get, startBackend } from './harness/backend.js';
import type { Backend } from './harness/backend.js';
import { Envoy, freePort, sleep, waitFor } from './harness/envoy.js';
import { startLoad } from './harness/load.js';
import { cla, cluster, listener, route } from './harness/resources.js';
import { SignalboxProcess } from './harness/signalbox.js';

interface NodeView {
  id: string;
  connected: boolean;
  connects: number;
  types: Record<string, { acked?: { version: string }; nacked?: unknown }>;
}

/** Envoy's config update counters (update_failure counts lost connections, so it is left out). */
async function updateCounters(envoy: Envoy): Promise<Record<string, number>> {
  const m = await envoy.stats();
  const out: Record<string, number> = {};
  for (const [k, v] of m) if (/\.(update_success|update_rejected)$/.test(k)) out[k] = v;
  return out;
}

describe.each([
  ['sotw', false],
  ['delta', true],
])('signalbox restart under load (%s)', (mode, delta) => {
  let a: Backend;
  let envoy: Envoy;
  let sb: SignalboxProcess | undefined;
  const nodeId = `envoy-restart-${mode}`;

  afterAll(async () => {
    await envoy?.stop();
    await sb?.kill();
    await a?.close();
  });

  test('Envoy reconnects to identical versions, gets no changed config, 0 failed requests', async () => {
    a = await startBackend('backend-a', '127.0.0.2');
    const port = await freePort();
    const xdsPort = await freePort();
    const debugPort = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'signalbox-restart-'));
    mkdirSync(join(dir, 'default', 'gw'), { recursive: true });
    const docs = [
      { '@type': TypeUrl.Listener, ...listener('http', port, 'main') },
      { '@type': TypeUrl.Route, ...route('main', 'backend-a') },
      { '@type': TypeUrl.Cluster, ...cluster('backend-a') },
      { '@type': TypeUrl.Endpoint, ...cla('backend-a', [{ host: a.host, port: a.port }]) },
    ];
    writeFileSync(join(dir, 'default', 'gw', 'all.yaml'), docs.map((d) => stringify(d)).join('---\n'));
    const args = ['--envoy-dir', dir, '--xds-address', `127.0.0.1:${xdsPort}`, '--log-level', 'warn'];
    sb = await SignalboxProcess.start(args, debugPort);
    envoy = await Envoy.start({ nodeId, group: 'default/gw', xdsPort, delta });
    await waitFor('first 200', async () => (await get(`http://127.0.0.1:${port}/`)).status === 200);

    const acked = (n?: NodeView) =>
      n && ['CDS', 'EDS', 'LDS', 'RDS'].every((t) => n.types[t]?.acked?.version) ? n : undefined;
    const before = await waitFor('all types ACKed', async () =>
      acked((await sb!.json<NodeView[]>('/debug/nodes')).find((n) => n.id === nodeId)),
    );
    await sleep(300);
    const countersBefore = await updateCounters(envoy);
    expect(Object.keys(countersBefore).length).toBeGreaterThanOrEqual(4);

    const load = startLoad(`http://127.0.0.1:${port}/`, 2);
    await sleep(500);
    await sb.kill();
    await sleep(500); // Envoy notices the stream is gone and keeps serving what it has
    sb = await SignalboxProcess.start(args, debugPort);
    const after = await waitFor(
      'Envoy reconnected and ACKed',
      async () =>
        acked((await sb!.json<NodeView[]>('/debug/nodes')).find((n) => n.id === nodeId && n.connected)),
      30_000,
    );
    await sleep(1000);
    const r = await load.stop();

    for (const t of ['CDS', 'EDS', 'LDS', 'RDS'])
      expect(after.types[t]?.acked?.version).toBe(before.types[t]?.acked?.version);
    expect(await updateCounters(envoy)).toEqual(countersBefore);
    expect(r.failures).toEqual([]);
    expect(r.failed).toBe(0);
    expect(r.ok).toBeGreaterThan(20);
    const connected = await envoy.stats('control_plane.connected_state');
    expect([...connected.values()]).toEqual([1]);
  });
});
