/**
 * Proved readiness through HTTPS listeners of a real Envoy (standalone mode, `serve
 * --config-dir --readiness proved`). One port carries two HTTPS listeners of the Gateway: an
 * exact `secure.example.com` and a wildcard `*.example.com`, each its own filter chain chosen
 * by SNI, with no default chain (an SNI name no listener serves is refused). A route on the
 * exact listener is Ready only if the prober spoke TLS with SNI = the route's host (plain HTTP,
 * or the wildcard's chain, would not reach its probe route); a route without hostnames on the
 * wildcard listener is proved with the Host/SNI `probe.example.com`. An edit of the exact
 * route moves it to another backend: Ready again at generation 2, and HTTPS traffic with that
 * SNI reaches the new backend.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { App } from '../src/app.js';
import type { RouteReadiness } from '../src/readiness/index.js';
import { startBackend } from './harness/backend.js';
import type { Backend } from './harness/backend.js';
import { replaceFile, startStandalone, yamlOf } from './harness/standalone.js';
import { Envoy, freePort, waitFor } from './harness/envoy.js';
import { GATEWAY_API, gateway, gatewayClass, service } from './harness/gateway-objects.js';

// certificate for example.com and *.example.com (also used by e2e/gatewayapi/https.test.ts)
const certs = 'test/gatewayapi/testdata/certs';
const b64 = (f: string) => readFileSync(`${certs}/${f}`).toString('base64');
const tlsSecret = (name: string, c: string) => ({
  apiVersion: 'v1',
  kind: 'Secret',
  metadata: { namespace: 'default', name },
  type: 'kubernetes.io/tls',
  data: { 'tls.crt': b64(`${c}.crt`), 'tls.key': b64(`${c}.key`) },
});

/** HTTPRoute on one listener (sectionName) of Gateway `gw`: one rule → Service `backend` port 80. */
const route = (name: string, section: string, backend: string, hostnames?: string[]) => ({
  apiVersion: GATEWAY_API,
  kind: 'HTTPRoute',
  metadata: { name },
  spec: {
    parentRefs: [{ name: 'gw', sectionName: section }],
    ...(hostnames ? { hostnames } : {}),
    rules: [{ backendRefs: [{ name: backend, port: 80 }] }],
  },
});

/** One HTTPS request on a new connection with this SNI (and Host); certificate not verified. */
function httpsGet(
  port: number,
  servername: string,
  path = '/',
): Promise<{ status: number; backend: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        servername,
        headers: { host: servername, connection: 'close' },
        rejectUnauthorized: false,
        agent: false,
      },
      (res) => {
        res.resume();
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, backend: String(res.headers['x-backend'] ?? '') }),
        );
        res.on('error', reject);
      },
    );
    req.setTimeout(5000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

describe('proved readiness through HTTPS listeners (standalone, real Envoy)', () => {
  let dir: string;
  let app: App;
  let envoy: Envoy;
  let a: Backend;
  let b: Backend;
  let port: number;

  const replace = (file: string, text: string) => replaceFile(dir, file, text);
  const state = (name: string) => app.readiness!.state(`httproute/default/${name}`, 'default/gw');
  /** waits for the route's readiness to be Ready at this generation; on failure, says what it was */
  const readyAt = (name: string, generation: number): Promise<RouteReadiness> =>
    waitFor(
      `${name} Ready at generation ${generation}`,
      () => {
        const s = state(name);
        return s?.ready && s.reason === 'Ready' && s.generation === generation ? s : undefined;
      },
      60_000,
    ).catch((err: Error) => {
      throw new Error(
        `${err.message}; state: ${JSON.stringify(state(name))}; readiness: ${JSON.stringify(
          app.readiness?.toJSON(),
        )}; envoy logs: ${envoy.logs.slice(-4000)}`,
      );
    });

  beforeAll(async () => {
    a = await startBackend('a', '127.0.0.2');
    b = await startBackend('b', '127.0.0.3');
    port = await freePort();
    dir = mkdtempSync(join(tmpdir(), 'signalbox-e2e-readiness-https-'));
    writeFileSync(
      join(dir, 'gateway.yaml'),
      yamlOf(
        gatewayClass(),
        gateway([
          {
            name: 'secure',
            protocol: 'HTTPS',
            port,
            hostname: 'secure.example.com',
            tls: { certificateRefs: [{ name: 'example-cert' }] },
          },
          {
            name: 'wild',
            protocol: 'HTTPS',
            port,
            hostname: '*.example.com',
            tls: { certificateRefs: [{ name: 'example-cert' }] },
          },
        ]),
        tlsSecret('example-cert', 'rsa'),
      ),
    );
    writeFileSync(join(dir, 'services.yaml'), yamlOf(...service('svc-a', [a]), ...service('svc-b', [b])));
    writeFileSync(
      join(dir, 'secure.yaml'),
      yamlOf(route('secure', 'secure', 'svc-a', ['secure.example.com'])),
    );
    writeFileSync(join(dir, 'wild.yaml'), yamlOf(route('wild', 'wild', 'svc-a')));
    app = await startStandalone(dir);
    envoy = await Envoy.start({ nodeId: 'envoy-https', group: 'default/gw', xdsPort: app.xdsPort });
  }, 60_000);

  afterAll(async () => {
    await envoy?.stop();
    await app?.close();
    await a?.close();
    await b?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a route on an exact-hostname HTTPS listener is proved through Envoy (TLS, SNI = its host)', async () => {
    const s = await readyAt('secure', 1);
    expect(s).toMatchObject({ group: 'default/gw', ready: true, phase: 'done' });
    expect(s.nodes.map((n) => [n.node, n.probe?.ok])).toEqual([['envoy-https', true]]);
    // the listener only speaks TLS and picks its chain by SNI: nothing else reaches the route
    expect(await httpsGet(port, 'secure.example.com')).toEqual({ status: 200, backend: 'a' });
    await expect(httpsGet(port, 'nobody.test')).rejects.toThrow();
    // the probe routes are gone once the routes are Ready
    await waitFor('wild Ready too', () => state('wild')?.ready, 60_000);
    const rc = JSON.stringify(await envoy.configDump('?resource=dynamic_route_configs'));
    expect(rc).not.toContain('/probe/');
  });

  test('a route without hostnames on a wildcard HTTPS listener is proved with probe.example.com', async () => {
    const s = await readyAt('wild', 1);
    expect(s.nodes.map((n) => [n.node, n.probe?.ok])).toEqual([['envoy-https', true]]);
    expect(await httpsGet(port, 'probe.example.com')).toEqual({ status: 200, backend: 'a' });
    expect(await httpsGet(port, 'www.example.com')).toEqual({ status: 200, backend: 'a' });
  });

  test('an edit of the HTTPS route to backend b: Ready at generation 2, HTTPS with its SNI reaches b', async () => {
    replace('secure.yaml', yamlOf(route('secure', 'secure', 'svc-b', ['secure.example.com'])));
    const s = await readyAt('secure', 2);
    expect(s.nodes.map((n) => [n.node, n.probe?.ok])).toEqual([['envoy-https', true]]);
    expect(await httpsGet(port, 'secure.example.com', '/after')).toEqual({ status: 200, backend: 'b' });
    // the wildcard listener's route is untouched
    expect(state('wild')).toMatchObject({ ready: true, generation: 1 });
    expect(await httpsGet(port, 'www.example.com')).toEqual({ status: 200, backend: 'a' });
  });
});
