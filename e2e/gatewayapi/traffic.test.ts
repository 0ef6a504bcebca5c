/**
 * Traffic through a real Envoy fed by the ADS server with the translator's output: a
 * Gateway API config (Gateway, Services, EndpointSlices, HTTPRoutes, a GRPCRoute) is
 * translated, published as the snapshot of node group default/gw, and requests through
 * Envoy must reach the expected local backend with the expected headers.
 */
import { startApp } from '../../src/app.js';
import type { App } from '../../src/app.js';
import { translate } from '../../src/gatewayapi/translator.js';
import { silentLogger } from '../../src/log.js';
import { protoRegistry } from '../../src/xds/proto.js';
import { snapshots } from '../../src/xds/translate/index.js';
import { Envoy, freePort, waitFor } from '../harness/envoy.js';
import { echoBackend, grpcBackend, grpcCall, h2cBackend, http1, upgrade } from './servers.js';
import type { TestBackend } from './servers.js';
import { gateway, gatewayClass } from '../harness/gateway-objects.js';

const G = 'gateway.networking.k8s.io/v1';
const GREETER = ['/helloworld.Greeter/SayHello', '/helloworld.Greeter/SayBye', '/other.Svc/Ping'];

function service(name: string, b: TestBackend, appProtocol?: string): unknown[] {
  return [
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { namespace: 'default', name },
      spec: { ports: [{ name: 'p', port: 8080, ...(appProtocol ? { appProtocol } : {}) }] },
    },
    {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { namespace: 'default', name: `${name}-1`, labels: { 'kubernetes.io/service-name': name } },
      addressType: 'IPv4',
      ports: [{ name: 'p', port: b.port }],
      endpoints: [{ addresses: [b.host], conditions: { ready: true } }],
    },
  ];
}

/** A Service whose endpoints come from several slices, each naming a backend and its conditions. */
function slicedService(
  name: string,
  parts: { b: TestBackend; conditions: Record<string, boolean> }[],
): unknown[] {
  return [
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { namespace: 'default', name },
      spec: { ports: [{ name: 'p', port: 8080 }] },
    },
    ...parts.map((p, i) => ({
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: {
        namespace: 'default',
        name: `${name}-${i}`,
        labels: { 'kubernetes.io/service-name': name },
      },
      addressType: 'IPv4',
      ports: [{ name: 'p', port: p.b.port }],
      endpoints: [{ addresses: [p.b.host], conditions: p.conditions }],
    })),
  ];
}

const ref = (name: string, weight?: number) => ({
  name,
  port: 8080,
  ...(weight !== undefined ? { weight } : {}),
});
const prefix = (value: string) => ({ path: { type: 'PathPrefix', value } });

function httpRoute(name: string, spec: Record<string, unknown>, listener = 'http'): unknown {
  return {
    apiVersion: G,
    kind: 'HTTPRoute',
    metadata: { namespace: 'default', name, creationTimestamp: '2026-01-01T00:00:00Z' },
    spec: { parentRefs: [{ name: 'gw', sectionName: listener }], ...spec },
  };
}

describe('traffic through Envoy, configured from Gateway API objects', () => {
  let app: App;
  let envoy: Envoy;
  let port: number;
  let grpcPort: number;
  const b: Record<string, TestBackend> = {};
  let url: (path: string) => string;
  let allObjects: unknown[] = [];

  beforeAll(async () => {
    b.a = await echoBackend('a', '127.0.0.2');
    b.b = await echoBackend('b', '127.0.0.3');
    b.c = await echoBackend('c', '127.0.0.4');
    b.mirror1 = await echoBackend('mirror1', '127.0.0.5');
    b.mirror2 = await echoBackend('mirror2', '127.0.0.6');
    b.h2 = await h2cBackend('h2', '127.0.0.7');
    b.ws = await echoBackend('ws', '127.0.0.8');
    b.ga = await grpcBackend('grpc-a', '127.0.0.9', GREETER);
    b.gb = await grpcBackend('grpc-b', '127.0.0.10', GREETER);
    port = await freePort();
    grpcPort = await freePort();
    url = (p) => `http://127.0.0.1:${port}${p}`;
    const objects: unknown[] = [
      gatewayClass(),
      gateway(
        [
          { name: 'http', protocol: 'HTTP', port },
          { name: 'isolated', protocol: 'HTTP', port, hostname: 'exact.example.com' },
          { name: 'grpc', protocol: 'HTTP', port: grpcPort },
        ],
        { generation: 1 },
      ),
      ...service('svc-a', b.a),
      ...service('svc-b', b.b),
      ...service('svc-c', b.c),
      ...service('svc-m1', b.mirror1),
      ...service('svc-m2', b.mirror2),
      ...service('svc-h2', b.h2, 'kubernetes.io/h2c'),
      ...service('svc-ws', b.ws, 'kubernetes.io/ws'),
      ...service('svc-ga', b.ga),
      ...service('svc-gb', b.gb),
      {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { namespace: 'default', name: 'svc-empty' },
        spec: { ports: [{ name: 'p', port: 8080 }] },
      },
      ...slicedService('svc-mixed', [
        { b: b.b, conditions: { ready: true } },
        { b: b.c, conditions: { ready: false, serving: true, terminating: true } },
      ]),
      ...slicedService('svc-draining', [
        { b: b.c, conditions: { ready: false, serving: true, terminating: true } },
      ]),
      ...slicedService('svc-down', [{ b: b.a, conditions: { ready: false, serving: false } }]),
      httpRoute('endpoints', {
        rules: [
          { matches: [prefix('/ep/mixed')], backendRefs: [ref('svc-mixed')] },
          { matches: [prefix('/ep/draining')], backendRefs: [ref('svc-draining')] },
          { matches: [prefix('/ep/down')], backendRefs: [ref('svc-down')] },
        ],
      }),
      httpRoute('precedence', {
        rules: [
          { matches: [prefix('/')], backendRefs: [ref('svc-a')] },
          { matches: [prefix('/p')], backendRefs: [ref('svc-b')] },
          { matches: [{ path: { type: 'Exact', value: '/p/exact' } }], backendRefs: [ref('svc-c')] },
          {
            matches: [{ path: { type: 'RegularExpression', value: '/p/re/[0-9]+' } }],
            backendRefs: [ref('svc-c')],
          },
          {
            matches: [{ path: { type: 'RegularExpression', value: '/p/(?=x)' } }],
            backendRefs: [ref('svc-c')],
          },
        ],
      }),
      httpRoute('matches', {
        rules: [
          {
            matches: [{ ...prefix('/m'), headers: [{ name: 'x-env', value: 'canary' }] }],
            backendRefs: [ref('svc-b')],
          },
          {
            matches: [
              {
                ...prefix('/m'),
                headers: [{ name: 'x-env', type: 'RegularExpression', value: 'stag(e|ing)' }],
              },
            ],
            backendRefs: [ref('svc-c')],
          },
          { matches: [{ ...prefix('/m'), method: 'POST' }], backendRefs: [ref('svc-c')] },
          {
            matches: [{ ...prefix('/m'), queryParams: [{ name: 'v', value: '2' }] }],
            backendRefs: [ref('svc-b')],
          },
          { matches: [prefix('/m')], backendRefs: [ref('svc-a')] },
        ],
      }),
      httpRoute('weights', {
        rules: [
          { matches: [prefix('/w')], backendRefs: [ref('svc-a', 3), ref('svc-b', 1), ref('svc-c', 0)] },
        ],
      }),
      httpRoute('invalid', {
        rules: [
          { matches: [prefix('/invalid/all')], backendRefs: [{ name: 'nope', port: 8080 }] },
          {
            matches: [prefix('/invalid/half')],
            backendRefs: [ref('svc-a', 1), { name: 'nope', port: 8080, weight: 1 }],
          },
          { matches: [prefix('/empty')], backendRefs: [ref('svc-empty')] },
        ],
      }),
      httpRoute('redirects', {
        rules: [
          {
            matches: [prefix('/r/https')],
            filters: [
              {
                type: 'RequestRedirect',
                requestRedirect: { scheme: 'https', hostname: 'secure.example.com', statusCode: 301 },
              },
            ],
          },
          {
            matches: [prefix('/r/scheme-only')],
            filters: [{ type: 'RequestRedirect', requestRedirect: { scheme: 'https' } }],
          },
          {
            matches: [prefix('/r/host-only')],
            filters: [{ type: 'RequestRedirect', requestRedirect: { hostname: 'example.org' } }],
          },
          {
            matches: [prefix('/r/port')],
            filters: [{ type: 'RequestRedirect', requestRedirect: { hostname: 'example.org', port: 8443 } }],
          },
          {
            matches: [prefix('/r/same')],
            filters: [
              {
                type: 'RequestRedirect',
                requestRedirect: {
                  statusCode: 307,
                  path: { type: 'ReplaceFullPath', replaceFullPath: '/elsewhere' },
                },
              },
            ],
          },
          {
            matches: [prefix('/r/prefix')],
            filters: [
              {
                type: 'RequestRedirect',
                requestRedirect: {
                  statusCode: 308,
                  path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/new' },
                },
              },
            ],
          },
        ],
      }),
      httpRoute('rewrites', {
        rules: [
          {
            matches: [prefix('/rw/prefix')],
            filters: [
              {
                type: 'URLRewrite',
                urlRewrite: { path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/other' } },
              },
            ],
            backendRefs: [ref('svc-a')],
          },
          {
            matches: [prefix('/rw/strip')],
            filters: [
              {
                type: 'URLRewrite',
                urlRewrite: { path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/' } },
              },
            ],
            backendRefs: [ref('svc-a')],
          },
          {
            matches: [prefix('/rw/full')],
            filters: [
              {
                type: 'URLRewrite',
                urlRewrite: {
                  hostname: 'rewritten.example.com',
                  path: { type: 'ReplaceFullPath', replaceFullPath: '/full' },
                },
              },
            ],
            backendRefs: [ref('svc-a')],
          },
        ],
      }),
      httpRoute('headers', {
        rules: [
          {
            matches: [prefix('/h')],
            filters: [
              {
                type: 'RequestHeaderModifier',
                requestHeaderModifier: {
                  set: [
                    { name: 'x-set', value: 'set' },
                    { name: 'x-percent', value: '100% %DOWNSTREAM_REMOTE_ADDRESS%' },
                  ],
                  add: [{ name: 'x-add', value: 'added' }],
                  remove: ['x-remove'],
                },
              },
              {
                type: 'ResponseHeaderModifier',
                responseHeaderModifier: {
                  set: [{ name: 'x-resp', value: 'yes' }],
                  remove: ['x-backend-secret'],
                },
              },
            ],
            backendRefs: [
              {
                ...ref('svc-b'),
                filters: [
                  {
                    type: 'RequestHeaderModifier',
                    requestHeaderModifier: { set: [{ name: 'x-per-backend', value: 'b' }] },
                  },
                ],
              },
            ],
          },
        ],
      }),
      httpRoute('mirrors', {
        rules: [
          {
            matches: [prefix('/mirror')],
            filters: [
              { type: 'RequestMirror', requestMirror: { backendRef: ref('svc-m1') } },
              { type: 'RequestMirror', requestMirror: { backendRef: ref('svc-m2'), percent: 100 } },
            ],
            backendRefs: [ref('svc-a')],
          },
        ],
      }),
      httpRoute('timeouts', {
        rules: [
          { matches: [prefix('/t/request')], timeouts: { request: '500ms' }, backendRefs: [ref('svc-a')] },
          {
            matches: [prefix('/t/backend')],
            timeouts: { request: '5s', backendRequest: '300ms' },
            backendRefs: [ref('svc-a')],
          },
        ],
      }),
      httpRoute('api-host', {
        hostnames: ['api.example.com'],
        rules: [{ matches: [prefix('/api-only')], backendRefs: [ref('svc-b')] }],
      }),
      httpRoute('retries', {
        rules: [
          {
            matches: [prefix('/retry/yes')],
            retry: { attempts: 2, codes: [503], backoff: '10ms' },
            backendRefs: [ref('svc-a')],
          },
          { matches: [prefix('/retry/no')], backendRefs: [ref('svc-a')] },
        ],
      }),
      httpRoute('protocols', {
        rules: [
          { matches: [prefix('/h2c')], backendRefs: [ref('svc-h2')] },
          { matches: [prefix('/ws')], backendRefs: [ref('svc-ws')] },
        ],
      }),
      httpRoute('cors', {
        rules: [
          {
            matches: [prefix('/cors')],
            filters: [
              {
                type: 'CORS',
                cors: { allowOrigins: ['https://app.example.com'], allowMethods: ['GET', 'PUT'], maxAge: 60 },
              },
            ],
            backendRefs: [ref('svc-a')],
          },
        ],
      }),
      httpRoute(
        'isolated',
        { rules: [{ matches: [prefix('/only-exact')], backendRefs: [ref('svc-c')] }] },
        'isolated',
      ),
      {
        apiVersion: G,
        kind: 'GRPCRoute',
        metadata: { namespace: 'default', name: 'greeter' },
        spec: {
          parentRefs: [{ name: 'gw', sectionName: 'grpc' }],
          rules: [
            {
              matches: [{ method: { service: 'helloworld.Greeter', method: 'SayHello' } }],
              backendRefs: [ref('svc-ga')],
            },
            { matches: [{ method: { service: 'helloworld.Greeter' } }], backendRefs: [ref('svc-gb')] },
            // a method-only match loses to the service match above (spec precedence)
            { matches: [{ method: { method: 'SayBye' } }], backendRefs: [ref('svc-ga')] },
            {
              matches: [{ headers: [{ name: 'x-tenant', value: 'blue' }] }],
              filters: [
                {
                  type: 'ResponseHeaderModifier',
                  responseHeaderModifier: { set: [{ name: 'x-tenant-route', value: 'blue' }] },
                },
              ],
              backendRefs: [ref('svc-gb')],
            },
          ],
        },
      },
    ];
    allObjects = objects;
    const result = translate(objects, { now: '2026-01-01T00:00:00Z' });
    const gwStatus = result.statuses.find((s) => s.kind === 'Gateway');
    expect(JSON.stringify(gwStatus)).toContain('"type":"Programmed","status":"True"');
    const snaps = snapshots(protoRegistry(), result.ir, { bindAddress: '127.0.0.1' });
    app = await startApp({ log: silentLogger(), xdsAddress: '127.0.0.1:0' });
    app.cache.setSnapshot('default/gw', snaps.get('default/gw')!);
    envoy = await Envoy.start({
      nodeId: 'gwapi-traffic-1',
      group: 'default/gw',
      xdsPort: app.xdsPort,
      delta: true,
    });
    await waitFor('route through Envoy', async () => (await http1(url('/'))).status === 200, 30_000);
  }, 60_000);

  afterAll(async () => {
    await envoy?.stop();
    await app?.close();
    for (const x of Object.values(b)) await x.close();
  });

  const backendOf = async (path: string, headers: Record<string, string> = {}, method = 'GET') => {
    const r = await http1(url(path), { headers, method });
    return r.json?.backend ?? `status ${r.status}`;
  };

  test('path precedence: Exact > RegularExpression > longest PathPrefix > "/"; invalid RE2 rule not programmed', async () => {
    expect(await backendOf('/p/exact')).toBe('c');
    expect(await backendOf('/p/re/42')).toBe('c');
    expect(await backendOf('/p/re/x')).toBe('b');
    expect(await backendOf('/p/other')).toBe('b');
    expect(await backendOf('/p')).toBe('b');
    expect(await backendOf('/pp')).toBe('a'); // PathPrefix matches whole path elements
    expect(await backendOf('/x')).toBe('a');
    expect(await backendOf('/p/x')).toBe('b'); // the lookahead rule was dropped
  });

  test('header, method and query parameter matches', async () => {
    expect(await backendOf('/m', { 'x-env': 'canary' })).toBe('b');
    expect(await backendOf('/m', { 'x-env': 'staging' })).toBe('c');
    expect(await backendOf('/m', { 'x-env': 'production' })).toBe('a');
    expect(await backendOf('/m', {}, 'POST')).toBe('c');
    expect(await backendOf('/m?v=2')).toBe('b');
    expect(await backendOf('/m?v=3')).toBe('a');
  });

  test('weights 3:1:0 over 400 requests', async () => {
    const n = 400;
    const count: Record<string, number> = {};
    for (let i = 0; i < n; i++) {
      const k = await backendOf('/w');
      count[k] = (count[k] ?? 0) + 1;
    }
    expect(count.c).toBeUndefined();
    expect((count.a ?? 0) + (count.b ?? 0)).toBe(n);
    // expected 300 / 100; binomial sd ≈ 8.7, tolerance ±40
    expect(Math.abs((count.a ?? 0) - 300)).toBeLessThanOrEqual(40);
  }, 120_000);

  test('invalid backendRefs answer 500 for their share; a Service without endpoints answers 503', async () => {
    expect((await http1(url('/invalid/all'))).status).toBe(500);
    const statuses = new Set<number>();
    for (let i = 0; i < 40; i++) statuses.add((await http1(url('/invalid/half'))).status);
    expect([...statuses].sort()).toEqual([200, 500]);
    expect((await http1(url('/empty'))).status).toBe(503);
  });

  test('EndpointSlice conditions: ready endpoints only; terminating-but-serving ones when none is ready; none → 503', async () => {
    for (let i = 0; i < 10; i++) expect(await backendOf('/ep/mixed')).toBe('b');
    expect(await backendOf('/ep/draining')).toBe('c');
    expect((await http1(url('/ep/down'))).status).toBe(503);
  });

  test('redirects: scheme/hostname with the well-known port, explicit port, full path and prefix replacement', async () => {
    const https = await http1(url('/r/https/x?q=1'));
    expect(https.status).toBe(301);
    expect(https.headers.location).toBe('https://secure.example.com/r/https/x?q=1');
    // no hostname given: the request's Host (forwarded unmodified, as the spec requires) stays
    const so = await http1(url('/r/scheme-only'), { headers: { host: 'app.example.com' } });
    expect(so.headers.location).toBe('https://app.example.com/r/scheme-only');
    const ho = await http1(url('/r/host-only'));
    expect(ho.headers.location).toBe(`http://example.org:${port}/r/host-only`);
    const p = await http1(url('/r/port'));
    expect(p.status).toBe(302);
    expect(p.headers.location).toBe('http://example.org:8443/r/port');
    const same = await http1(url('/r/same/a'));
    expect(same.status).toBe(307);
    expect(same.headers.location).toBe(`http://127.0.0.1:${port}/elsewhere`);
    const pre = await http1(url('/r/prefix/a/b'));
    expect(pre.status).toBe(308);
    expect(pre.headers.location).toBe(`http://127.0.0.1:${port}/new/a/b`);
  });

  test('URL rewrites: prefix, prefix to "/", full path and hostname', async () => {
    expect((await http1(url('/rw/prefix/a?x=1'))).json?.path).toBe('/other/a?x=1');
    expect((await http1(url('/rw/strip/a/b'))).json?.path).toBe('/a/b');
    expect((await http1(url('/rw/strip'))).json?.path).toBe('/');
    const full = await http1(url('/rw/full/deep/path'));
    expect(full.json?.path).toBe('/full');
    expect(full.json?.headers?.host).toBe('rewritten.example.com');
  });

  test('request and response header modifiers, route- and backend-level', async () => {
    const r = await http1(url('/h'), { headers: { 'x-remove': 'gone', 'x-add': 'first', 'x-set': 'old' } });
    expect(r.json?.backend).toBe('b');
    const h = r.json?.headers ?? {};
    expect(h['x-set']).toBe('set');
    expect(h['x-percent']).toBe('100% %DOWNSTREAM_REMOTE_ADDRESS%'); // literal, not an Envoy formatter
    expect(String(h['x-add']).split(/,\s*/)).toEqual(['first', 'added']);
    expect(h['x-remove']).toBeUndefined();
    expect(h['x-per-backend']).toBe('b');
    expect(r.headers['x-resp']).toBe('yes');
  });

  test('request mirrors: every mirror receives a copy, the client gets the primary answer', async () => {
    const before1 = b.mirror1.seen.length;
    const before2 = b.mirror2.seen.length;
    const r = await http1(url('/mirror/1'));
    expect(r.json?.backend).toBe('a');
    await waitFor('mirrors', () => b.mirror1.seen.length > before1 && b.mirror2.seen.length > before2, 5000);
    expect(b.mirror1.seen.at(-1)?.path).toBe('/mirror/1');
  });

  test('timeouts: request and backendRequest answer 504 when the backend is slow', async () => {
    let t = Date.now();
    expect((await http1(url('/t/request'), { headers: { 'x-delay-ms': '3000' } })).status).toBe(504);
    expect(Date.now() - t).toBeLessThan(2500);
    t = Date.now();
    expect((await http1(url('/t/backend'), { headers: { 'x-delay-ms': '3000' } })).status).toBe(504);
    expect(Date.now() - t).toBeLessThan(2500);
    expect((await http1(url('/t/request'), { headers: { 'x-delay-ms': '10' } })).status).toBe(200);
  });

  test('retry: a 503 is retried up to attempts; without retry it reaches the client', async () => {
    const once = await http1(url('/retry/yes'), { headers: { 'x-fail-key': 'k1', 'x-fail-times': '1' } });
    expect(once.status).toBe(200);
    const twice = await http1(url('/retry/yes'), { headers: { 'x-fail-key': 'k2', 'x-fail-times': '2' } });
    expect(twice.status).toBe(200);
    const thrice = await http1(url('/retry/yes'), { headers: { 'x-fail-key': 'k3', 'x-fail-times': '3' } });
    expect(thrice.status).toBe(503);
    expect(thrice.headers['x-attempt']).toBe('3');
    const none = await http1(url('/retry/no'), { headers: { 'x-fail-key': 'k4', 'x-fail-times': '1' } });
    expect(none.status).toBe(503);
  });

  test('Service appProtocol kubernetes.io/h2c reaches the backend over HTTP/2', async () => {
    const r = await http1(url('/h2c/x'));
    expect(r.json?.backend).toBe('h2');
    expect(r.json?.proto).toBe('HTTP/2.0');
  });

  test('WebSocket upgrade reaches the kubernetes.io/ws backend and carries bytes both ways', async () => {
    const r = await upgrade(url('/ws/chat'), 'ping');
    expect(r.status).toBe(101);
    expect(r.backend).toBe('ws');
    expect(r.echo).toBe('ws:ping');
  });

  test('CORS preflight is answered by Envoy for allowed origins only', async () => {
    const ok = await http1(url('/cors'), {
      method: 'OPTIONS',
      headers: { origin: 'https://app.example.com', 'access-control-request-method': 'PUT' },
    });
    expect(ok.headers['access-control-allow-origin']).toBe('https://app.example.com');
    expect(String(ok.headers['access-control-allow-methods'])).toContain('PUT');
    const bad = await http1(url('/cors'), {
      method: 'OPTIONS',
      headers: { origin: 'https://evil.example.net', 'access-control-request-method': 'PUT' },
    });
    expect(bad.headers['access-control-allow-origin']).toBeUndefined();
  });

  test('hostname precedence: a host-specific route first, then routes without hostnames still apply', async () => {
    expect(await backendOf('/api-only', { host: 'api.example.com' })).toBe('b');
    expect(await backendOf('/p/exact', { host: 'api.example.com' })).toBe('c');
    expect(await backendOf('/api-only', { host: 'other.example.com' })).toBe('a');
  });

  test('listener isolation: the exact-hostname listener serves only its own routes', async () => {
    expect(await backendOf('/only-exact', { host: 'exact.example.com' })).toBe('c');
    expect((await http1(url('/'), { headers: { host: 'exact.example.com' } })).status).toBe(404);
    expect(await backendOf('/', { host: 'other.example.com' })).toBe('a');
    expect((await http1(url('/only-exact'), { headers: { host: 'other.example.com' } })).json?.backend).toBe(
      'a',
    );
  });

  test('gRPC routing by service/method and header, with response header filter', async () => {
    const target = `127.0.0.1:${grpcPort}`;
    const hello = await grpcCall(target, '/helloworld.Greeter/SayHello');
    expect(hello).toMatchObject({ ok: true, text: 'grpc-a:/helloworld.Greeter/SayHello' });
    const bye = await grpcCall(target, '/helloworld.Greeter/SayBye');
    expect(bye).toMatchObject({ ok: true, text: 'grpc-b:/helloworld.Greeter/SayBye' });
    const tenant = await grpcCall(target, '/other.Svc/Ping', { 'x-tenant': 'blue' });
    expect(tenant).toMatchObject({ ok: true, text: 'grpc-b:/other.Svc/Ping' });
    if (tenant.ok) expect(tenant.headers['x-tenant-route']).toBe('blue');
    const none = await grpcCall(target, '/other.Svc/Ping');
    expect(none.ok).toBe(false);
  });

  test('a changed HTTPRoute, translated again, reaches Envoy over ADS and moves the traffic', async () => {
    const changed = allObjects.map((o) => {
      const x = o as {
        kind?: string;
        metadata?: { name?: string };
        spec?: { rules?: { backendRefs?: unknown[] }[] };
      };
      if (x.kind !== 'HTTPRoute' || x.metadata?.name !== 'weights') return o;
      return { ...x, spec: { ...x.spec, rules: [{ matches: [prefix('/w')], backendRefs: [ref('svc-c')] }] } };
    });
    expect(await backendOf('/w/x')).not.toBe('c');
    const result = translate(changed, { now: '2026-01-01T00:00:01Z' });
    app.cache.setSnapshot(
      'default/gw',
      snapshots(protoRegistry(), result.ir, { bindAddress: '127.0.0.1' }).get('default/gw')!,
    );
    await waitFor('traffic on the new backend', async () => (await backendOf('/w/x')) === 'c', 20_000);
    for (let i = 0; i < 20; i++) expect(await backendOf('/w/x')).toBe('c');
    // routes that did not change still answer as before
    expect(await backendOf('/p/exact')).toBe('c');
    expect(await backendOf('/m', { 'x-env': 'canary' })).toBe('b');
  });
});
