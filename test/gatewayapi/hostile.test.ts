/**
 * Hostile input: each malformed object, added to a healthy configuration, gets a clear
 * status reason (or is set aside with one), the translator never throws, and the Envoy
 * output for the healthy route is byte-for-byte what it was without the hostile object.
 */
import { protoRegistry } from '../../src/xds/proto.js';
import { TypeUrl } from '../../src/xds/resource.js';
import type { Translated } from './helpers.js';
import { envoyAvailable, run, validateCases } from './helpers.js';
import { gateway as gatewayObject, gatewayClass } from '../../e2e/harness/gateway-objects.js';

const reg = protoRegistry();
const G = 'gateway.networking.k8s.io/v1';

const base: unknown[] = [
  gatewayClass(),
  gatewayObject([
    { name: 'http', protocol: 'HTTP', port: 18080, allowedRoutes: { namespaces: { from: 'All' } } },
  ]),
  {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { namespace: 'default', name: 'web' },
    spec: { ports: [{ name: 'http', port: 8080 }] },
  },
  {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { namespace: 'default', name: 'web-1', labels: { 'kubernetes.io/service-name': 'web' } },
    addressType: 'IPv4',
    ports: [{ name: 'http', port: 3000 }],
    endpoints: [{ addresses: ['127.0.0.2'] }],
  },
  {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { namespace: 'elsewhere', name: 'far' },
    spec: { ports: [{ port: 8080 }] },
  },
  {
    apiVersion: G,
    kind: 'HTTPRoute',
    metadata: { namespace: 'default', name: 'good', creationTimestamp: '2020-01-01T00:00:00Z' },
    spec: {
      parentRefs: [{ name: 'gw' }],
      hostnames: ['good.example.com'],
      rules: [
        {
          matches: [{ path: { type: 'PathPrefix', value: '/good' } }],
          backendRefs: [{ name: 'web', port: 8080 }],
        },
      ],
    },
  },
];

const route = (name: string, spec: Record<string, unknown>, kind = 'HTTPRoute') => ({
  apiVersion: G,
  kind,
  metadata: { namespace: 'default', name },
  spec: { parentRefs: [{ name: 'gw' }], ...spec },
});
const rule = (r: Record<string, unknown>) =>
  route('bad', { rules: [{ backendRefs: [{ name: 'web', port: 8080 }], ...r }] });
const gateway = (name: string, listeners: unknown[], extra: Record<string, unknown> = {}) => ({
  apiVersion: G,
  kind: 'Gateway',
  metadata: { namespace: 'default', name },
  spec: { gatewayClassName: 'sb', listeners, ...extra },
});

interface Hostile {
  name: string;
  objects: unknown[];
  /** the object whose status must carry the reason; absent: the object is set aside */
  kind?: string;
  objName?: string;
  reason: string;
}

const hostile: Hostile[] = [
  {
    name: 'invalid RE2 path (lookahead)',
    objects: [rule({ matches: [{ path: { type: 'RegularExpression', value: '/a(?=b)' } }] })],
    kind: 'HTTPRoute',
    reason: 'UnsupportedValue',
  },
  {
    name: 'invalid RE2 header (unclosed group)',
    objects: [rule({ matches: [{ headers: [{ name: 'x', type: 'RegularExpression', value: '(' }] }] })],
    kind: 'HTTPRoute',
    reason: 'UnsupportedValue',
  },
  {
    name: 'invalid RE2 query (backreference)',
    objects: [
      rule({ matches: [{ queryParams: [{ name: 'q', type: 'RegularExpression', value: '(a)\\1' }] }] }),
    ],
    kind: 'HTTPRoute',
    reason: 'UnsupportedValue',
  },
  {
    name: 'huge path value (200,000 characters)',
    objects: [rule({ matches: [{ path: { type: 'PathPrefix', value: '/' + 'a'.repeat(200_000) } }] })],
    kind: 'HTTPRoute',
    reason: 'UnsupportedValue',
  },
  {
    name: 'huge regex',
    objects: [rule({ matches: [{ path: { type: 'RegularExpression', value: '/(a|b)'.repeat(50_000) } }] })],
    kind: 'HTTPRoute',
    reason: 'UnsupportedValue',
  },
  {
    name: '10,000 matches in one rule',
    objects: [rule({ matches: Array.from({ length: 10_000 }, (_, i) => ({ path: { value: `/m${i}` } })) })],
    kind: 'HTTPRoute',
    reason: 'UnsupportedValue',
  },
  {
    name: '1,000 rules',
    objects: [
      route('bad', {
        rules: Array.from({ length: 1000 }, () => ({ backendRefs: [{ name: 'web', port: 8080 }] })),
      }),
    ],
    kind: 'HTTPRoute',
    reason: 'UnsupportedValue',
  },
  {
    name: 'negative weight',
    objects: [route('bad', { rules: [{ backendRefs: [{ name: 'web', port: 8080, weight: -5 }] }] })],
    kind: 'HTTPRoute',
    reason: 'UnsupportedValue',
  },
  {
    name: 'huge weight',
    objects: [route('bad', { rules: [{ backendRefs: [{ name: 'web', port: 8080, weight: 1e15 }] }] })],
    kind: 'HTTPRoute',
    reason: 'UnsupportedValue',
  },
  {
    name: 'backendRef of unknown kind',
    objects: [
      route('bad', { rules: [{ backendRefs: [{ group: 'example.com', kind: 'Lambda', name: 'f' }] }] }),
    ],
    kind: 'HTTPRoute',
    reason: 'InvalidKind',
  },
  {
    name: 'self-reference: backendRef to the route itself',
    objects: [
      route('bad', {
        rules: [{ backendRefs: [{ group: 'gateway.networking.k8s.io', kind: 'HTTPRoute', name: 'bad' }] }],
      }),
    ],
    kind: 'HTTPRoute',
    reason: 'InvalidKind',
  },
  {
    name: 'cross-namespace backendRef without a grant',
    objects: [
      route('bad', { rules: [{ backendRefs: [{ name: 'far', namespace: 'elsewhere', port: 8080 }] }] }),
    ],
    kind: 'HTTPRoute',
    reason: 'RefNotPermitted',
  },
  {
    name: 'backendRef to a missing Service',
    objects: [route('bad', { rules: [{ backendRefs: [{ name: 'ghost', port: 8080 }] }] })],
    kind: 'HTTPRoute',
    reason: 'BackendNotFound',
  },
  {
    name: 'backendRef port 0',
    objects: [route('bad', { rules: [{ backendRefs: [{ name: 'web', port: 0 }] }] })],
    kind: 'HTTPRoute',
    reason: 'BackendNotFound',
  },
  {
    name: 'parentRef sectionName that does not exist',
    objects: [{ ...route('bad', {}), spec: { parentRefs: [{ name: 'gw', sectionName: 'nope' }] } }],
    kind: 'HTTPRoute',
    reason: 'NoMatchingParent',
  },
  {
    name: 'route hostname that is an IP',
    objects: [route('bad', { hostnames: ['192.168.0.1'] })],
    kind: 'HTTPRoute',
    reason: 'UnsupportedValue',
  },
  {
    name: 'route hostname with invalid characters',
    objects: [route('bad', { hostnames: ['foo_bar..com'] })],
    kind: 'HTTPRoute',
    reason: 'UnsupportedValue',
  },
  {
    name: 'rules is not a list',
    objects: [route('bad', { rules: 'everything' })],
    kind: 'HTTPRoute',
    reason: 'UnsupportedValue',
  },
  {
    name: 'a null match',
    objects: [rule({ matches: [null] })],
    kind: 'HTTPRoute',
    reason: 'UnsupportedValue',
  },
  {
    name: 'unknown filter type',
    objects: [rule({ filters: [{ type: 'Teleport' }] })],
    kind: 'HTTPRoute',
    reason: 'UnsupportedValue',
  },
  {
    name: 'redirect status 418',
    objects: [
      route('bad', {
        rules: [{ filters: [{ type: 'RequestRedirect', requestRedirect: { statusCode: 418 } }] }],
      }),
    ],
    kind: 'HTTPRoute',
    reason: 'UnsupportedValue',
  },
  {
    name: 'redirect port 70000',
    objects: [
      route('bad', { rules: [{ filters: [{ type: 'RequestRedirect', requestRedirect: { port: 70000 } }] }] }),
    ],
    kind: 'HTTPRoute',
    reason: 'UnsupportedValue',
  },
  {
    name: 'mirror percent 150',
    objects: [
      rule({
        filters: [
          { type: 'RequestMirror', requestMirror: { backendRef: { name: 'web', port: 8080 }, percent: 150 } },
        ],
      }),
    ],
    kind: 'HTTPRoute',
    reason: 'UnsupportedValue',
  },
  {
    name: 'header modifier setting Host',
    objects: [
      rule({
        filters: [
          { type: 'RequestHeaderModifier', requestHeaderModifier: { set: [{ name: 'Host', value: 'x' }] } },
        ],
      }),
    ],
    kind: 'HTTPRoute',
    reason: 'UnsupportedValue',
  },
  {
    name: 'header value with CRLF injection',
    objects: [
      rule({
        filters: [
          {
            type: 'ResponseHeaderModifier',
            responseHeaderModifier: { add: [{ name: 'x', value: 'a\r\nSet-Cookie: evil' }] },
          },
        ],
      }),
    ],
    kind: 'HTTPRoute',
    reason: 'UnsupportedValue',
  },
  {
    name: 'malformed timeout',
    objects: [rule({ timeouts: { request: 'forever' } })],
    kind: 'HTTPRoute',
    reason: 'UnsupportedValue',
  },
  {
    name: 'CORS maxAge negative',
    objects: [rule({ filters: [{ type: 'CORS', cors: { allowOrigins: ['*'], maxAge: -1 } }] })],
    kind: 'HTTPRoute',
    reason: 'UnsupportedValue',
  },
  {
    name: 'path with encoded slash',
    objects: [rule({ matches: [{ path: { value: '/a%2Fb' } }] })],
    kind: 'HTTPRoute',
    reason: 'UnsupportedValue',
  },
  {
    name: 'GRPCRoute with invalid RE2 service',
    objects: [
      route(
        'bad',
        {
          rules: [
            {
              matches: [{ method: { type: 'RegularExpression', service: '[' } }],
              backendRefs: [{ name: 'web', port: 8080 }],
            },
          ],
        },
        'GRPCRoute',
      ),
    ],
    kind: 'GRPCRoute',
    reason: 'UnsupportedValue',
  },
  {
    name: 'GRPCRoute method match with neither service nor method',
    objects: [
      route(
        'bad',
        { rules: [{ matches: [{ method: {} }], backendRefs: [{ name: 'web', port: 8080 }] }] },
        'GRPCRoute',
      ),
    ],
    kind: 'GRPCRoute',
    reason: 'UnsupportedValue',
  },
  {
    name: 'conflicting listeners (same port and hostname)',
    objects: [
      gateway('bad', [
        { name: 'a', protocol: 'HTTP', port: 18080 },
        { name: 'b', protocol: 'HTTP', port: 18080 },
      ]),
    ],
    kind: 'Gateway',
    reason: 'HostnameConflict',
  },
  {
    name: 'listener port 0',
    objects: [gateway('bad', [{ name: 'a', protocol: 'HTTP', port: 0 }])],
    kind: 'Gateway',
    reason: 'PortUnavailable',
  },
  {
    name: 'listener protocol TCP',
    objects: [gateway('bad', [{ name: 'a', protocol: 'TCP', port: 9000 }])],
    kind: 'Gateway',
    reason: 'UnsupportedProtocol',
  },
  {
    name: 'listener hostname with a bare wildcard',
    objects: [gateway('bad', [{ name: 'a', protocol: 'HTTP', port: 9000, hostname: '*foo' }])],
    kind: 'Gateway',
    reason: 'Invalid',
  },
  {
    name: 'listener selector with an unknown operator',
    objects: [
      gateway('bad', [
        {
          name: 'a',
          protocol: 'HTTP',
          port: 9000,
          allowedRoutes: {
            namespaces: {
              from: 'Selector',
              selector: { matchExpressions: [{ key: 'k', operator: 'Near' }] },
            },
          },
        },
      ]),
    ],
    kind: 'Gateway',
    reason: 'Invalid',
  },
  {
    name: 'certificate in another namespace without a grant',
    objects: [
      gateway('bad', [
        {
          name: 'a',
          protocol: 'HTTPS',
          port: 9443,
          tls: { certificateRefs: [{ name: 'c', namespace: 'vault' }] },
        },
      ]),
    ],
    kind: 'Gateway',
    reason: 'RefNotPermitted',
  },
  {
    name: 'duplicate listener names',
    objects: [
      gateway('bad', [
        { name: 'a', protocol: 'HTTP', port: 9000 },
        { name: 'a', protocol: 'HTTP', port: 9001 },
      ]),
    ],
    kind: 'Gateway',
    reason: 'Invalid',
  },
  {
    name: 'GatewayClass of ours with parametersRef',
    objects: [
      {
        apiVersion: G,
        kind: 'GatewayClass',
        metadata: { name: 'bad' },
        spec: {
          controllerName: 'signalbox.dev/gateway-controller',
          parametersRef: { group: 'x', kind: 'Y', name: 'z' },
        },
      },
    ],
    kind: 'GatewayClass',
    reason: 'InvalidParameters',
  },
  {
    name: 'Service with an unknown appProtocol',
    objects: [
      {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { namespace: 'default', name: 'odd' },
        spec: { ports: [{ port: 80, appProtocol: 'smtp' }] },
      },
      route('bad', { rules: [{ backendRefs: [{ name: 'odd', port: 80 }] }] }),
    ],
    kind: 'HTTPRoute',
    reason: 'UnsupportedProtocol',
  },
  {
    name: 'object without a name',
    objects: [{ apiVersion: G, kind: 'HTTPRoute', metadata: {}, spec: {} }],
    reason: 'metadata.name',
  },
  {
    name: 'object of an unknown kind',
    objects: [{ apiVersion: 'example.com/v1', kind: 'Frobnicator', metadata: { name: 'f' } }],
    reason: 'unsupported kind',
  },
  {
    name: 'route whose spec is a string',
    objects: [
      { apiVersion: G, kind: 'HTTPRoute', metadata: { name: 'bad', namespace: 'default' }, spec: 'gimme' },
    ],
    reason: 'spec',
  },
  { name: 'not an object at all', objects: [42], reason: 'not an object' },
];

function goodOutput(t: Translated): string {
  const snap = t.snapshots.get('default/gw')!;
  const parts: string[] = [];
  for (const r of snap.get(TypeUrl.Route).values()) {
    for (const vh of (r.json.virtual_hosts as { domains: string[]; routes: { name: string }[] }[]) ?? []) {
      for (const x of vh.routes)
        if (x.name.startsWith('httproute/default/good/')) parts.push(JSON.stringify([vh.domains, x]));
    }
  }
  for (const t2 of [TypeUrl.Cluster, TypeUrl.Endpoint, TypeUrl.Listener]) {
    for (const r of snap.get(t2).values()) parts.push(`${r.name}:${r.hash}`);
  }
  const st = t.result.statuses.find((s) => s.kind === 'HTTPRoute' && s.name === 'good');
  parts.push(JSON.stringify(st));
  return parts.join('\n');
}

describe('hostile input', () => {
  const baseline = goodOutput(run(reg, base));

  test('there are at least 30 hostile cases', () => {
    expect(hostile.length).toBeGreaterThanOrEqual(30);
  });

  test('the baseline serves the good route', () => {
    expect(baseline).toContain('httproute/default/good/rule/0/match/0');
  });

  const outputs: { name: string; json: Translated['json'] }[] = [];

  test.each(hostile.map((h) => [h.name, h] as const))('%s', (_n, h) => {
    let t: Translated | undefined;
    expect(() => (t = run(reg, [...base, ...h.objects]))).not.toThrow();
    const out = t!;
    outputs.push({ name: h.name, json: out.json });
    if (h.kind) {
      const st = out.result.statuses.find((s) => s.kind === h.kind && s.name === (h.objName ?? 'bad'));
      expect(st).toBeDefined();
      type C = { type: string; status: string; reason: string; message: string };
      const conds: C[] = [];
      const collect = (v: unknown) => {
        if (Array.isArray(v)) v.forEach(collect);
        else if (v && typeof v === 'object') {
          const o = v as Record<string, unknown>;
          if (typeof o.type === 'string' && typeof o.reason === 'string' && typeof o.status === 'string')
            conds.push(o as unknown as C);
          Object.values(o).forEach(collect);
        }
      };
      collect(st!.status);
      const hit = conds.find(
        (c) =>
          c.reason === h.reason &&
          (c.status === 'False' || c.type === 'PartiallyInvalid' || c.type === 'Conflicted'),
      );
      expect(hit).toBeDefined();
      expect(hit!.message.length).toBeGreaterThan(0);
      expect(hit!.message.length).toBeLessThanOrEqual(2100);
    } else {
      expect(out.result.rejected.some((r) => r.reason.includes(h.reason))).toBe(true);
    }
    expect(goodOutput(out)).toBe(baseline);
  });

  (envoyAvailable() ? test : test.skip)(
    'Envoy accepts the output of every hostile case',
    () => {
      expect(outputs.length).toBe(hostile.length);
      expect(validateCases(outputs)).toEqual([]);
    },
    120_000,
  );
});
