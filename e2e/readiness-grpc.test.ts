/**
 * Proved readiness (startApp's default mode) for a GRPCRoute, standalone (config dir) with a
 * real Envoy: the route (a method match on the echo service) to gRPC backend 1 becomes Ready
 * only after its HTTP/1.1 probe through Envoy reached the backend over its HTTP/2 upstream,
 * and a gRPC call through Envoy reaches backend 1; edited to backend 2 it is Ready at
 * generation 2 and the call reaches backend 2.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { App } from '../src/app.js';
import type { RouteReadiness } from '../src/readiness/index.js';
import { replaceFile, startStandalone, yamlOf } from './harness/standalone.js';
import { Envoy, freePort, waitFor } from './harness/envoy.js';
import { GATEWAY_API, gateway, gatewayClass, service } from './harness/gateway-objects.js';
import { say, startEchoServer } from './harness/grpc.js';
import type { EchoServer } from './harness/grpc.js';

/** GRPCRoute `name` on Gateway `gw`: signalbox.test.Echo/Say → Service `backend` port 80. */
const grpcRoute = (name: string, backend: string) => ({
  apiVersion: GATEWAY_API,
  kind: 'GRPCRoute',
  metadata: { namespace: 'default', name },
  spec: {
    parentRefs: [{ name: 'gw' }],
    rules: [
      {
        matches: [{ method: { service: 'signalbox.test.Echo', method: 'Say' } }],
        backendRefs: [{ name: backend, port: 80 }],
      },
    ],
  },
});

describe('proved readiness for a GRPCRoute (standalone, real Envoy)', () => {
  let dir: string;
  let app: App;
  let envoy: Envoy;
  let g1: EchoServer;
  let g2: EchoServer;
  let port: number;

  const replace = (file: string, text: string) => replaceFile(dir, file, text);
  const state = () => app.readiness!.state('grpcroute/default/echo', 'default/gw');
  const readyAt = (generation: number): Promise<RouteReadiness> =>
    waitFor(
      `grpcroute/default/echo Ready at generation ${generation}`,
      () => {
        const s = state();
        return s?.ready && s.reason === 'Ready' && s.generation === generation ? s : undefined;
      },
      60_000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}; state: ${JSON.stringify(state())}`);
    });
  const call = async (text: string): Promise<string> => {
    const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    try {
      return await say(client, text);
    } finally {
      client.close();
    }
  };

  beforeAll(async () => {
    g1 = await startEchoServer('g1', '127.0.0.2');
    g2 = await startEchoServer('g2', '127.0.0.3');
    port = await freePort();
    dir = mkdtempSync(join(tmpdir(), 'signalbox-e2e-readiness-grpc-'));
    writeFileSync(
      join(dir, 'gateway.yaml'),
      yamlOf(gatewayClass(), gateway([{ name: 'http', protocol: 'HTTP', port }])),
    );
    // like traffic.test.ts: no appProtocol; a GRPCRoute's backend cluster speaks HTTP/2 (h2c)
    writeFileSync(join(dir, 'services.yaml'), yamlOf(...service('svc-g1', [g1]), ...service('svc-g2', [g2])));
    writeFileSync(join(dir, 'echo.yaml'), yamlOf(grpcRoute('echo', 'svc-g1')));
    app = await startStandalone(dir);
    envoy = await Envoy.start({ nodeId: 'envoy-1', group: 'default/gw', xdsPort: app.xdsPort });
  });

  afterAll(async () => {
    await envoy?.stop();
    await app?.close();
    await g1?.close();
    await g2?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('the GRPCRoute is Ready once proved through Envoy; a gRPC call reaches backend 1', async () => {
    const s = await readyAt(1);
    expect(s).toMatchObject({ group: 'default/gw', ready: true, reason: 'Ready', phase: 'done' });
    expect(s.nodes.map((n) => [n.node, n.probe?.ok])).toEqual([['envoy-1', true]]);
    expect(await call('one')).toBe('g1: one');
    expect(g1.calls).toBeGreaterThanOrEqual(1);
    expect(g2.calls).toBe(0);
  });

  test('edited to backend 2: Ready at generation 2, the gRPC call reaches backend 2', async () => {
    replace('echo.yaml', yamlOf(grpcRoute('echo', 'svc-g2')));
    const s = await readyAt(2);
    expect(s.nodes.map((n) => [n.node, n.probe?.ok])).toEqual([['envoy-1', true]]);
    const before = g1.calls;
    expect(await call('two')).toBe('g2: two');
    expect(g1.calls).toBe(before);
    expect(g2.calls).toBeGreaterThanOrEqual(1);
  });
});
