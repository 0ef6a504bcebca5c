/**
 * A steady stream of changes to other routes does not hold a proof back (standalone, real
 * Envoy): route `slow`'s backend answers after 1.5 s, so its probes keep its proof in phase
 * 1 for that long, while a new route is created every 150 ms. Only a change to a route being
 * proved supersedes a proof; the others wait for the next sequence. Before, every change
 * aborted the proof under way: with changes more frequent than a proof lasts, no route was
 * promoted until the changes stopped (found by bench/readiness-scale.ts at 1,000 routes).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { App } from '../src/app.js';
import { get, startBackend } from './harness/backend.js';
import type { Backend } from './harness/backend.js';
import { Envoy, freePort, waitFor } from './harness/envoy.js';
import { gateway, gatewayClass, httpRoute, service } from './harness/gateway-objects.js';
import { startStandalone, yamlOf } from './harness/standalone.js';

describe('proved readiness under a stream of changes', () => {
  let dir: string;
  let app: App;
  let envoy: Envoy;
  let fast: Backend;
  let slow: Backend;
  let port: number;

  beforeAll(async () => {
    fast = await startBackend('fast', '127.0.0.2');
    slow = await startBackend('slow', '127.0.0.3', 0, { delayMs: 1500 });
    port = await freePort();
    dir = mkdtempSync(join(tmpdir(), 'signalbox-e2e-stream-'));
    writeFileSync(
      join(dir, 'gateway.yaml'),
      yamlOf(
        gatewayClass(),
        gateway([{ name: 'http', protocol: 'HTTP', port }]),
        ...service('svc-fast', [fast]),
        ...service('svc-slow', [slow]),
      ),
    );
    app = await startStandalone(dir);
    envoy = await Envoy.start({ nodeId: 'envoy-1', group: 'default/gw', xdsPort: app.xdsPort });
    // a first route, so that the Gateway's first sequence (served at once) is behind us
    writeFileSync(join(dir, 'r-first.yaml'), yamlOf(httpRoute('r-first', '/first', 'svc-fast')));
    await waitFor(
      'r-first Ready',
      () => app.readiness!.state('httproute/default/r-first', 'default/gw')?.ready,
    );
  }, 60_000);

  afterAll(async () => {
    await envoy?.stop();
    await app?.close();
    await fast?.close();
    await slow?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a slow route turns Ready while a new route is created every 150 ms', async () => {
    const state = (name: string) => app.readiness!.state(`httproute/default/${name}`, 'default/gw');
    writeFileSync(join(dir, 'slow.yaml'), yamlOf(httpRoute('slow', '/slow', 'svc-slow')));
    await waitFor('slow Proving', () => state('slow')?.reason === 'Proving');
    let created = 0;
    let readyAt = 0;
    const t0 = Date.now();
    // the stream goes on until `slow` is Ready (or 60 routes, 9 s: then the test fails)
    while (created < 60) {
      if (state('slow')?.ready) {
        readyAt = Date.now();
        break;
      }
      writeFileSync(
        join(dir, `n-${created}.yaml`),
        yamlOf(httpRoute(`n-${created}`, `/n-${created}`, 'svc-fast')),
      );
      created++;
      await new Promise((r) => setTimeout(r, 150));
    }
    console.log(
      `slow Ready: ${readyAt ? `after ${readyAt - t0} ms` : 'not'}, ${created} routes created meanwhile`,
    );
    expect(readyAt).toBeGreaterThan(0); // Ready while the changes went on
    expect(created).toBeGreaterThanOrEqual(5); // there was a stream (its proof took over 0.75 s)
    expect(state('slow')).toMatchObject({ ready: true, reason: 'Ready' });
    expect((await get(`http://127.0.0.1:${port}/slow`)).backend).toBe('slow');
    // and the routes of the stream are proved too
    await waitFor(
      'every route of the stream Ready',
      () => Array.from({ length: created }, (_, i) => state(`n-${i}`)?.ready).every(Boolean),
      60_000,
    );
  }, 120_000);
});
