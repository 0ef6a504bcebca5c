/**
 * Property-based: random valid Gateways, Services and HTTP/gRPC routes (fast-check). For
 * each: the translator does not throw, every route gets an Accepted condition, the
 * resources encode; and Envoy accepts every output (all samples in one bootstrap, split
 * only to name the rejected ones).
 */
import fc from 'fast-check';
import { protoRegistry } from '../../src/xds/proto.js';
import { envoyAvailable, run, validateCases, withCerts } from './helpers.js';
import type { Translated } from './helpers.js';
import { gateway, gatewayClass } from '../../e2e/harness/gateway-objects.js';

const reg = protoRegistry();
const G = 'gateway.networking.k8s.io/v1';
const HOSTS = ['a.example.com', 'x.example.com', '*.example.com', 'b.test', '*.b.test'];
const SERVICES = ['svc-0', 'svc-1', 'svc-2', 'svc-3', 'missing'];
const REGEXES = ['/v[0-9]+/.*', '/(a|b)c*', '/items/[a-z0-9-]{1,16}', '.*', '/x/\\d+/y', '[^/]+'];

const segment = fc.stringMatching(/^[a-z0-9-]{1,8}$/);
const path = fc.array(segment, { minLength: 0, maxLength: 3 }).map((s) => '/' + s.join('/'));
const headerName = fc.constantFrom('x-a', 'x-b', 'X-Env', 'user-agent', 'x-tenant');
const headerValue = fc.stringMatching(/^[a-zA-Z0-9 ._-]{0,12}$/);
const stringMatch = (name: fc.Arbitrary<string>) =>
  fc.oneof(
    fc.record({ name, value: headerValue }),
    fc.record({ name, type: fc.constant('RegularExpression'), value: fc.constantFrom(...REGEXES) }),
  );
const headerMod = fc.record(
  {
    set: fc.uniqueArray(fc.record({ name: headerName, value: headerValue }), {
      maxLength: 2,
      selector: (h) => h.name.toLowerCase(),
    }),
    add: fc.uniqueArray(fc.record({ name: fc.constantFrom('x-add', 'x-more'), value: headerValue }), {
      maxLength: 2,
      selector: (h) => h.name,
    }),
    remove: fc.uniqueArray(fc.constantFrom('x-gone', 'x-old'), { maxLength: 2 }),
  },
  { requiredKeys: [] },
);
const backendRef = fc.record(
  { name: fc.constantFrom(...SERVICES), port: fc.constant(8080), weight: fc.integer({ min: 0, max: 100 }) },
  { requiredKeys: ['name', 'port'] },
);
const duration = fc.constantFrom('1s', '500ms', '10s', '1m30s', '0s');

const httpMatch = fc.record(
  {
    path: fc.oneof(
      fc.record({ type: fc.constant('Exact'), value: path }),
      fc.record({ type: fc.constant('PathPrefix'), value: path }),
      fc.record({ type: fc.constant('RegularExpression'), value: fc.constantFrom(...REGEXES) }),
    ),
    headers: fc.array(stringMatch(headerName), { maxLength: 2 }),
    queryParams: fc.array(stringMatch(fc.constantFrom('q', 'page', 'v')), { maxLength: 2 }),
    method: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH'),
  },
  { requiredKeys: [] },
);

const httpRule = fc
  .record(
    {
      name: fc.stringMatching(/^[a-z]{1,6}$/),
      matches: fc.array(httpMatch, { maxLength: 3 }),
      reqHeaders: headerMod,
      respHeaders: headerMod,
      mode: fc.constantFrom('forward', 'redirect', 'rewrite'),
      redirect: fc.record(
        {
          scheme: fc.constantFrom('http', 'https'),
          hostname: fc.constantFrom('r.example.com', 'other.test'),
          port: fc.integer({ min: 1, max: 65535 }),
          statusCode: fc.constantFrom(301, 302, 303, 307, 308),
          fullPath: path,
        },
        { requiredKeys: [] },
      ),
      rewrite: fc.record(
        { hostname: fc.constantFrom('rw.example.com'), fullPath: path, prefix: path },
        { requiredKeys: [] },
      ),
      mirrors: fc.array(
        fc.record({
          name: fc.constantFrom('svc-0', 'svc-1', 'missing'),
          percent: fc.integer({ min: 0, max: 100 }),
        }),
        { maxLength: 2 },
      ),
      cors: fc.option(
        fc.record({
          allowOrigins: fc.constant(['https://app.example.com', 'https://*.b.test']),
          maxAge: fc.integer({ min: 1, max: 3600 }),
        }),
      ),
      backendRefs: fc.array(backendRef, { maxLength: 3 }),
      request: duration,
      backendRequest: fc.constantFrom('1s', '500ms'),
    },
    { requiredKeys: ['mode', 'backendRefs', 'matches', 'mirrors'] },
  )
  .map((r) => {
    const filters: unknown[] = [];
    if (r.reqHeaders && Object.keys(r.reqHeaders).length)
      filters.push({ type: 'RequestHeaderModifier', requestHeaderModifier: r.reqHeaders });
    if (r.respHeaders && Object.keys(r.respHeaders).length)
      filters.push({ type: 'ResponseHeaderModifier', responseHeaderModifier: r.respHeaders });
    const prefixOnly = r.matches.length === 1 && (r.matches[0].path?.type ?? 'PathPrefix') === 'PathPrefix';
    if (r.mode === 'redirect' && r.redirect) {
      const { fullPath, ...rd } = r.redirect;
      filters.push({
        type: 'RequestRedirect',
        requestRedirect: {
          ...rd,
          ...(fullPath
            ? {
                path: prefixOnly
                  ? { type: 'ReplacePrefixMatch', replacePrefixMatch: fullPath }
                  : { type: 'ReplaceFullPath', replaceFullPath: fullPath },
              }
            : {}),
        },
      });
      return { ...(r.name ? { name: r.name } : {}), matches: r.matches, filters };
    }
    if (r.mode === 'rewrite' && r.rewrite) {
      const p =
        prefixOnly && r.rewrite.prefix
          ? { type: 'ReplacePrefixMatch', replacePrefixMatch: r.rewrite.prefix }
          : r.rewrite.fullPath
            ? { type: 'ReplaceFullPath', replaceFullPath: r.rewrite.fullPath }
            : undefined;
      filters.push({
        type: 'URLRewrite',
        urlRewrite: {
          ...(r.rewrite.hostname ? { hostname: r.rewrite.hostname } : {}),
          ...(p ? { path: p } : {}),
        },
      });
    }
    for (const m of r.mirrors)
      filters.push({
        type: 'RequestMirror',
        requestMirror: { backendRef: { name: m.name, port: 8080 }, percent: m.percent },
      });
    if (r.cors) filters.push({ type: 'CORS', cors: r.cors });
    const timeouts = r.request
      ? {
          request: r.request,
          ...(r.request !== '0s' && r.backendRequest && r.request === '10s'
            ? { backendRequest: r.backendRequest }
            : {}),
        }
      : undefined;
    return {
      ...(r.name ? { name: r.name } : {}),
      matches: r.matches,
      filters,
      backendRefs: r.backendRefs,
      ...(timeouts ? { timeouts } : {}),
    };
  });

const grpcRule = fc.record({
  matches: fc.array(
    fc.record(
      {
        method: fc.oneof(
          fc
            .record(
              {
                service: fc.constantFrom('pkg.Svc', 'helloworld.Greeter'),
                method: fc.constantFrom('Get', 'SayHello'),
              },
              { requiredKeys: [] },
            )
            .filter((m) => !!(m.service || m.method)),
          fc.record({
            type: fc.constant('RegularExpression'),
            service: fc.constantFrom('pkg\\..*', 'hello.*'),
            method: fc.constantFrom('Get.*', '[A-Z][a-z]+'),
          }),
        ),
        headers: fc.array(stringMatch(headerName), { maxLength: 2 }),
      },
      { requiredKeys: [] },
    ),
    { maxLength: 2 },
  ),
  backendRefs: fc.array(backendRef, { maxLength: 2 }),
});

const world = fc
  .record({
    listeners: fc.uniqueArray(
      fc.record({
        port: fc.integer({ min: 0, max: 2 }),
        hostname: fc.option(fc.constantFrom(...HOSTS), { nil: undefined }),
        https: fc.boolean(),
      }),
      { minLength: 1, maxLength: 4, selector: (l) => `${l.port}/${l.hostname ?? ''}` },
    ),
    services: fc.array(
      fc.record({
        app: fc.constantFrom(undefined, 'kubernetes.io/h2c', 'kubernetes.io/ws', 'http'),
        endpoints: fc.array(fc.integer({ min: 2, max: 250 }), { maxLength: 3 }),
      }),
      { minLength: 4, maxLength: 4 },
    ),
    routes: fc.array(
      fc.record(
        {
          hostnames: fc.uniqueArray(fc.constantFrom(...HOSTS), { maxLength: 2 }),
          section: fc.option(fc.integer({ min: 0, max: 3 }), { nil: undefined }),
          rules: fc.array(httpRule, { minLength: 1, maxLength: 4 }),
        },
        { requiredKeys: ['hostnames', 'rules'] },
      ),
      { minLength: 1, maxLength: 5 },
    ),
    grpcRoutes: fc.array(fc.record({ rules: fc.array(grpcRule, { minLength: 1, maxLength: 3 }) }), {
      maxLength: 2,
    }),
  })
  .map((w) => {
    // one protocol per port (a port is HTTPS if its first listener says so)
    const httpsPort = new Map<number, boolean>();
    for (const l of w.listeners) if (!httpsPort.has(l.port)) httpsPort.set(l.port, l.https);
    const listeners = w.listeners.map((l, i) => {
      const https = httpsPort.get(l.port)!;
      return {
        name: `l${i}`,
        port: 30000 + l.port,
        protocol: https ? 'HTTPS' : 'HTTP',
        ...(l.hostname ? { hostname: l.hostname } : {}),
        ...(https ? { tls: { certificateRefs: [{ name: 'cert' }] } } : {}),
        allowedRoutes: { namespaces: { from: 'All' } },
      };
    });
    const objects: unknown[] = [
      gatewayClass(),
      gateway(listeners),
      {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { namespace: 'default', name: 'cert' },
        data: { 'tls.crt': '__CERT_rsa__', 'tls.key': '__KEY_rsa__' },
      },
    ];
    w.services.forEach((s, i) => {
      objects.push({
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { namespace: 'default', name: `svc-${i}` },
        spec: { ports: [{ name: 'p', port: 8080, ...(s.app ? { appProtocol: s.app } : {}) }] },
      });
      objects.push({
        apiVersion: 'discovery.k8s.io/v1',
        kind: 'EndpointSlice',
        metadata: {
          namespace: 'default',
          name: `svc-${i}-x`,
          labels: { 'kubernetes.io/service-name': `svc-${i}` },
        },
        addressType: 'IPv4',
        ports: [{ name: 'p', port: 3000 + i }],
        endpoints: s.endpoints.map((e) => ({ addresses: [`127.0.${i}.${e}`] })),
      });
    });
    w.routes.forEach((r, i) => {
      const parentRef = {
        name: 'gw',
        ...(r.section !== undefined && r.section < listeners.length
          ? { sectionName: listeners[r.section].name }
          : {}),
      };
      objects.push({
        apiVersion: G,
        kind: 'HTTPRoute',
        metadata: { namespace: 'default', name: `r${i}` },
        spec: { parentRefs: [parentRef], hostnames: r.hostnames, rules: r.rules },
      });
    });
    w.grpcRoutes.forEach((r, i) => {
      objects.push({
        apiVersion: G,
        kind: 'GRPCRoute',
        metadata: { namespace: 'default', name: `g${i}` },
        spec: { parentRefs: [{ name: 'gw' }], rules: r.rules },
      });
    });
    return objects;
  });

const N = Number(process.env.PROPERTY_RUNS ?? 300);

describe('random valid Gateways and routes', () => {
  const samples = fc.sample(world, { numRuns: N, seed: 20260101 });
  const outputs: { name: string; t: Translated }[] = [];

  test(`${N} samples translate without throwing, every route has an Accepted condition, resources encode`, () => {
    for (const [i, objs] of samples.entries()) {
      // the Secret's certificate placeholders are substituted as in the golden inputs
      const objects = JSON.parse(withCerts(JSON.stringify(objs))) as unknown[];
      const t = run(reg, objects);
      outputs.push({ name: `sample ${i}`, t });
      const routes = objects.filter((o) => ['HTTPRoute', 'GRPCRoute'].includes((o as { kind: string }).kind));
      for (const r of routes as { kind: string; metadata: { name: string } }[]) {
        const st = t.result.statuses.find((s) => s.kind === r.kind && s.name === r.metadata.name);
        expect(JSON.stringify(st?.status)).toContain('"type":"Accepted"');
      }
    }
    expect(outputs.filter((o) => o.t.json.length === 1).length).toBe(N);
  });

  (envoyAvailable() ? test : test.skip)(
    'Envoy accepts every output (envoy --mode validate)',
    () => {
      const rejected = validateCases(outputs.map((o) => ({ name: o.name, json: o.t.json })));
      expect(rejected).toEqual([]);
      // the samples exercise the features they should
      const all = JSON.stringify(outputs.map((o) => o.t.json));
      for (const feature of [
        'weighted_clusters',
        'redirect',
        'regex_rewrite',
        'request_mirror_policies',
        'safe_regex',
        'query_parameters',
        'server_names',
        'http2_protocol_options',
        'typed_per_filter_config',
        'retry_policy',
        'direct_response',
      ]) {
        expect(all).toContain(feature);
      }
    },
    120_000,
  );
});
