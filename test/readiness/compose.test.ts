/**
 * Route-level views of a snapshot (src/readiness/compose.ts) on snapshots of the real
 * translator: route keys of entry names, entries and fingerprints per route, the composed
 * snapshot served while a route change is proved (routes not yet promoted keep their old
 * entries), and endpoint counts. The composed snapshot must be consistent and accepted by
 * `envoy --mode validate`.
 */
import { translate } from '../../src/gatewayapi/translator.js';
import type { JsonObject } from '../../src/xds/proto.js';
import { protoRegistry } from '../../src/xds/proto.js';
import { TypeUrl } from '../../src/xds/resource.js';
import type { Snapshot } from '../../src/xds/cache/snapshot.js';
import { snapshots } from '../../src/xds/translate/index.js';
import type { GatewayJson } from '../../src/xds/translate/index.js';
import { staticBootstrap } from '../../src/xds/translate/static.js';
import {
  clustersOf,
  compose,
  endpointCount,
  entriesByRoute,
  fingerprint,
  routeKeyOf,
} from '../../src/readiness/compose.js';
import { NOW, envoyAvailable, envoyValidate } from '../gatewayapi/helpers.js';

const reg = protoRegistry();
const GROUP = 'default/gw';
const A = 'httproute/default/a';
const B = 'httproute/default/b';
const RC = 'route-18080';
const cl = (svc: string) => `default/${svc}/8080`;

// ---- Gateway API objects

const gatewayClass = {
  apiVersion: 'gateway.networking.k8s.io/v1',
  kind: 'GatewayClass',
  metadata: { name: 'signalbox', generation: 1 },
  spec: { controllerName: 'signalbox.dev/gateway-controller' },
};
const gateway = {
  apiVersion: 'gateway.networking.k8s.io/v1',
  kind: 'Gateway',
  metadata: { namespace: 'default', name: 'gw', generation: 1 },
  spec: {
    gatewayClassName: 'signalbox',
    listeners: [
      { name: 'http', protocol: 'HTTP', port: 18080, allowedRoutes: { namespaces: { from: 'All' } } },
    ],
  },
};

/** A Service on port 8080 and one EndpointSlice with these (ready) addresses. */
function service(name: string, addresses: string[]): unknown[] {
  return [
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { namespace: 'default', name },
      spec: { ports: [{ name: 'http', port: 8080, targetPort: 3000 }] },
    },
    {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { namespace: 'default', name: `${name}-1`, labels: { 'kubernetes.io/service-name': name } },
      addressType: 'IPv4',
      ports: [{ name: 'http', port: 3000 }],
      endpoints: addresses.map((a) => ({ addresses: [a], conditions: { ready: true } })),
    },
  ];
}

interface RouteOpts {
  path: string;
  backend: string;
  hostnames?: string[];
  annotations?: Record<string, string>;
}
function httpRoute(name: string, o: RouteOpts): unknown {
  return {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'HTTPRoute',
    metadata: {
      namespace: 'default',
      name,
      generation: 1,
      creationTimestamp: '2026-01-01T00:00:00Z',
      ...(o.annotations ? { annotations: o.annotations } : {}),
    },
    spec: {
      parentRefs: [{ name: 'gw' }],
      ...(o.hostnames ? { hostnames: o.hostnames } : {}),
      rules: [
        {
          matches: [{ path: { type: 'PathPrefix', value: o.path } }],
          backendRefs: [{ name: o.backend, port: 8080 }],
        },
      ],
    },
  };
}

interface World {
  a?: Partial<RouteOpts>;
  b?: Partial<RouteOpts>;
  /** addresses per Service */
  services?: Record<string, string[]>;
}
const DEFAULT_SERVICES: Record<string, string[]> = {
  'svc-a': ['127.0.0.10'],
  'svc-1': ['127.0.0.11'],
  'svc-2': ['127.0.0.12'],
  unused: ['127.0.0.13'],
};

/** The snapshot of the Gateway: route a (/a → svc-a) and route b (/b → svc-1), as modified. */
function snap(w: World = {}): Snapshot {
  const services = { ...DEFAULT_SERVICES, ...w.services };
  const objects = [
    gatewayClass,
    gateway,
    ...Object.entries(services).flatMap(([n, addrs]) => service(n, addrs)),
    httpRoute('a', { path: '/a', backend: 'svc-a', ...w.a }),
    httpRoute('b', { path: '/b', backend: 'svc-1', ...w.b }),
  ];
  const t = translate(objects, { now: NOW, addresses: ['127.0.0.1'] });
  const s = snapshots(reg, t.ir, { bindAddress: '127.0.0.1' }).get(GROUP);
  expect(s).toBeDefined();
  expect(s!.danglingRefs()).toEqual([]);
  return s!;
}

// ---- views of a snapshot

const rcJson = (s: Snapshot, name = RC): JsonObject => {
  const r = s.get(TypeUrl.Route).get(name);
  expect(r).toBeDefined();
  return r!.json;
};
const vhostsOf = (rc: JsonObject) => rc.virtual_hosts as JsonObject[];
const routesOf = (vh: JsonObject) => vh.routes as JsonObject[];
const vhost = (s: Snapshot, name: string): JsonObject | undefined =>
  vhostsOf(rcJson(s)).find((v) => v.name === name);
/** [virtual host, entry names] of the RouteConfiguration. */
const layout = (s: Snapshot): [string, string[]][] =>
  vhostsOf(rcJson(s)).map((v) => [String(v.name), routesOf(v).map((e) => String(e.name))]);
const entryOf = (s: Snapshot, vh: string, name: string): JsonObject | undefined =>
  routesOf(vhost(s, vh)!).find((e) => e.name === name);
const names = (s: Snapshot, t: TypeUrl) => [...s.get(t).keys()];
const fpOf = (s: Snapshot, k: string): string => {
  const refs = entriesByRoute(s).get(k);
  expect(refs).toBeDefined();
  return fingerprint(s, refs!);
};

/** The snapshot as GatewayJson (for staticBootstrap). */
function asJson(s: Snapshot): GatewayJson {
  const j = (t: TypeUrl) => [...s.get(t).values()].map((r) => r.json);
  return {
    group: GROUP,
    listeners: j(TypeUrl.Listener),
    routes: j(TypeUrl.Route),
    clusters: j(TypeUrl.Cluster),
    endpoints: j(TypeUrl.Endpoint),
    secrets: j(TypeUrl.Secret),
  };
}

/** Every domain that appears in more than one virtual host of a RouteConfiguration. */
function duplicateDomains(s: Snapshot): string[] {
  const out: string[] = [];
  for (const rc of s.get(TypeUrl.Route).values()) {
    const seen = new Map<string, string>();
    for (const vh of vhostsOf(rc.json))
      for (const d of vh.domains as string[]) {
        const prev = seen.get(d.toLowerCase());
        if (prev !== undefined) out.push(`${rc.name}: ${d} in ${prev} and ${String(vh.name)}`);
        else seen.set(d.toLowerCase(), String(vh.name));
      }
  }
  return out;
}

const E_A = `${A}/rule/0/match/0`;
const E_B = `${B}/rule/0/match/0`;

describe('routeKeyOf', () => {
  test('entry names of the translator give their route key', () => {
    expect(routeKeyOf('httproute/default/r/rule/0/match/0')).toBe('httproute/default/r');
    expect(routeKeyOf('httproute/ns-1/my-route/rule/3/match/12')).toBe('httproute/ns-1/my-route');
    expect(routeKeyOf('grpcroute/default/g/rule/0/match/0')).toBe('grpcroute/default/g');
  });

  test('probe routes and other names have no route key', () => {
    expect(routeKeyOf('httproute/default/r/rule/0/match/0/probe/0')).toBeUndefined();
    expect(routeKeyOf('httproute/default/r/rule/0/match/0/probe/12')).toBeUndefined();
    for (const n of [
      'signalbox/not-found',
      'httproute/default/r',
      'httproute/default/r/',
      'tlsroute/default/r/rule/0/match/0',
      'httproute//r/rule/0/match/0',
      '',
      undefined,
      null,
      7,
      { name: 'httproute/default/r/rule/0/match/0' },
    ])
      expect(routeKeyOf(n)).toBeUndefined();
  });

  test('every entry of a translated snapshot maps to its HTTPRoute', () => {
    const s = snap();
    const keys = vhostsOf(rcJson(s)).flatMap((v) => routesOf(v).map((e) => routeKeyOf(e.name)));
    expect(new Set(keys)).toEqual(new Set([A, B]));
  });
});

describe('entriesByRoute and fingerprint', () => {
  test('entries of each route, with their RouteConfiguration and virtual host', () => {
    const s = snap();
    const by = entriesByRoute(s);
    expect([...by.keys()].sort()).toEqual([A, B]);
    expect(by.get(A)!.map((r) => [r.rc, r.vh, r.entry.name])).toEqual([[RC, '*', E_A]]);
    expect(by.get(B)!.map((r) => [r.rc, r.vh, r.entry.name])).toEqual([[RC, '*', E_B]]);
    expect(clustersOf(by.get(A)![0].entry)).toEqual([cl('svc-a')]);
    expect(clustersOf(by.get(B)![0].entry)).toEqual([cl('svc-1')]);
  });

  test('deterministic: the same input gives the same fingerprints, A and B differ', () => {
    const s1 = snap();
    const s2 = snap();
    expect(fpOf(s2, A)).toBe(fpOf(s1, A));
    expect(fpOf(s2, B)).toBe(fpOf(s1, B));
    expect(fpOf(s1, A)).not.toBe(fpOf(s1, B));
    expect(fpOf(s1, A)).toMatch(/^[0-9a-f]{16}$/);
  });

  test("changing B's backend changes B's fingerprint, not A's", () => {
    const before = snap();
    const after = snap({ b: { backend: 'svc-2' } });
    expect(fpOf(after, B)).not.toBe(fpOf(before, B));
    expect(fpOf(after, A)).toBe(fpOf(before, A));
  });

  test("changing only the endpoints of B's Service changes B's fingerprint, not A's", () => {
    const before = snap();
    const after = snap({ services: { 'svc-1': ['127.0.0.21', '127.0.0.22'] } });
    // the route entries themselves are the same: only the endpoints differ
    expect(entriesByRoute(after).get(B)).toEqual(entriesByRoute(before).get(B));
    expect(fpOf(after, B)).not.toBe(fpOf(before, B));
    expect(fpOf(after, A)).toBe(fpOf(before, A));
  });

  test('an unrelated edit (another Service, an annotation) leaves both', () => {
    const before = snap();
    const after = snap({
      services: { unused: ['127.0.0.99'], extra: ['127.0.0.98'] },
      b: { annotations: { note: 'edited' } },
    });
    expect(fpOf(after, A)).toBe(fpOf(before, A));
    expect(fpOf(after, B)).toBe(fpOf(before, B));
  });
});

describe('compose', () => {
  test('keep empty: desired itself', () => {
    const old = snap();
    const desired = snap({ b: { backend: 'svc-2' } });
    expect(compose(reg, desired, old, new Map())).toBe(desired);
    expect(compose(reg, desired, undefined, new Map())).toBe(desired);
  });

  test("B kept 'old': B's old entries at B's place, A's desired ones, svc-1's cluster and endpoints from old", () => {
    const old = snap();
    const desired = snap({ b: { backend: 'svc-2' }, a: { path: '/a2' } });
    expect(names(desired, TypeUrl.Cluster)).not.toContain(cl('svc-1'));
    const s = compose(reg, desired, old, new Map([[B, 'old']]));

    expect(s.danglingRefs()).toEqual([]);
    // the same layout as desired: B's entry where desired has it
    expect(layout(s)).toEqual(layout(desired));
    expect(entryOf(s, '*', E_B)).toEqual(entryOf(old, '*', E_B));
    expect(clustersOf(entryOf(s, '*', E_B)!)).toEqual([cl('svc-1')]);
    expect(entryOf(s, '*', E_A)).toEqual(entryOf(desired, '*', E_A));
    expect(entryOf(s, '*', E_A)!.match).not.toEqual(entryOf(old, '*', E_A)!.match); // /a2, not /a

    // clusters: desired's plus svc-1's (from old), with its endpoints
    expect(new Set(names(s, TypeUrl.Cluster))).toEqual(
      new Set([...names(desired, TypeUrl.Cluster), cl('svc-1')]),
    );
    expect(s.get(TypeUrl.Cluster).get(cl('svc-1'))).toBe(old.get(TypeUrl.Cluster).get(cl('svc-1')));
    expect(s.get(TypeUrl.Endpoint).get(cl('svc-1'))).toBe(old.get(TypeUrl.Endpoint).get(cl('svc-1')));
    expect(endpointCount(s, cl('svc-1'))).toBe(1);
    for (const c of names(desired, TypeUrl.Cluster))
      expect(s.get(TypeUrl.Cluster).get(c)).toBe(desired.get(TypeUrl.Cluster).get(c));
    for (const e of names(desired, TypeUrl.Endpoint))
      expect(s.get(TypeUrl.Endpoint).get(e)).toBe(desired.get(TypeUrl.Endpoint).get(e));
    // listeners and the rest from desired
    expect([...s.get(TypeUrl.Listener).values()]).toEqual([...desired.get(TypeUrl.Listener).values()]);

    // what the readiness layer sees: B served as in old, A as desired
    expect(fpOf(s, B)).toBe(fpOf(old, B));
    expect(fpOf(s, A)).toBe(fpOf(desired, A));
    // the inputs are untouched
    expect(entryOf(desired, '*', E_B)).toEqual(
      entryOf(snap({ b: { backend: 'svc-2' }, a: { path: '/a2' } }), '*', E_B),
    );
  });

  // An EndpointSlice change is proved before main traffic gets it: a kept route keeps its
  // cluster's old endpoints (same cluster name in desired), unless a route served as desired
  // needs the new ones (one cluster has one state; the promoted route wins).
  test("endpoints of B's Service changed, B kept 'old': B is served with its old endpoints", () => {
    const old = snap();
    const desired = snap({ services: { 'svc-1': ['127.0.0.21'] } });
    expect(fpOf(desired, B)).not.toBe(fpOf(old, B));
    const s = compose(reg, desired, old, new Map([[B, 'old']]));
    expect(fpOf(s, B)).toBe(fpOf(old, B));
    expect(s.danglingRefs()).toEqual([]);
    // served as desired (not kept): the new endpoints
    expect(fpOf(compose(reg, desired, old, new Map()), B)).toBe(fpOf(desired, B));
  });

  test("B kept 'none' (a new route): B's entries absent, everything else as desired", () => {
    const old = snap();
    const desired = snap({ b: { backend: 'svc-2' } });
    const s = compose(reg, desired, old, new Map([[B, 'none']]));
    expect(s.danglingRefs()).toEqual([]);
    expect(layout(s)).toEqual([['*', [E_A]]]);
    expect(entriesByRoute(s).has(B)).toBe(false);
    expect(entryOf(s, '*', E_A)).toEqual(entryOf(desired, '*', E_A));
    expect(names(s, TypeUrl.Cluster)).toEqual(names(desired, TypeUrl.Cluster));
    expect(names(s, TypeUrl.Endpoint)).toEqual(names(desired, TypeUrl.Endpoint));
    expect(names(s, TypeUrl.Listener)).toEqual(names(desired, TypeUrl.Listener));
    expect(fpOf(s, A)).toBe(fpOf(desired, A));

    // also without any old snapshot (the first one)
    const first = compose(reg, desired, undefined, new Map([[B, 'none']]));
    expect(layout(first)).toEqual([['*', [E_A]]]);
    expect(first.danglingRefs()).toEqual([]);
  });

  test("B kept 'old' without an old snapshot: B is left out", () => {
    const desired = snap({ b: { backend: 'svc-2' } });
    const s = compose(reg, desired, undefined, new Map([[B, 'old']]));
    expect(layout(s)).toEqual([['*', [E_A]]]);
    expect(s.danglingRefs()).toEqual([]);
  });

  test("B's hostname changed, kept 'old': its old virtual host holds only B's old entries, no duplicate domains", () => {
    const old = snap({ b: { hostnames: ['b.example.com'] } });
    const desired = snap({ b: { hostnames: ['c.example.com'], backend: 'svc-2' } });
    expect(layout(old).map(([v]) => v)).toEqual(['*', 'b.example.com']);
    expect(layout(desired).map(([v]) => v)).toEqual(['*', 'c.example.com']);
    const s = compose(reg, desired, old, new Map([[B, 'old']]));

    expect(s.danglingRefs()).toEqual([]);
    expect(duplicateDomains(s)).toEqual([]);
    const byVh = new Map(layout(s));
    // B's old virtual host, with B's old entries and no other route's old ones
    expect(byVh.get('b.example.com')!.filter((n) => n !== E_A)).toEqual([E_B]);
    if (byVh.get('b.example.com')!.includes(E_A))
      expect(entryOf(s, 'b.example.com', E_A)).toEqual(entryOf(desired, '*', E_A));
    expect(vhost(s, 'b.example.com')!.domains).toEqual(['b.example.com']);
    expect(entryOf(s, 'b.example.com', E_B)).toEqual(entryOf(old, 'b.example.com', E_B));
    // B's new place does not serve B yet; A is as desired everywhere
    expect(byVh.get('c.example.com')).toEqual(
      new Map(layout(desired)).get('c.example.com')!.filter((n) => n !== E_B),
    );
    expect(byVh.get('*')).toEqual([E_A]);
    expect(
      entriesByRoute(s)
        .get(B)!
        .map((r) => r.vh),
    ).toEqual(['b.example.com']);
    expect(names(s, TypeUrl.Cluster)).toContain(cl('svc-1'));
    expect(fpOf(s, B)).toBe(fpOf(old, B));
  });

  // The old virtual host comes back for B; in old, b.example.com requests for /a reached A (lent
  // from the wider '*' domain), in desired they fall to '*' and reach A: so the composed
  // b.example.com virtual host carries, after B's old entries, what '*' serves (A's entries),
  // and A, which is not changing, keeps answering on b.example.com during the transition.
  test("B's hostname changed, kept 'old': A still serves requests for B's old hostname", () => {
    const old = snap({ b: { hostnames: ['b.example.com'] } });
    const desired = snap({ b: { hostnames: ['c.example.com'], backend: 'svc-2' } });
    expect(new Map(layout(old)).get('b.example.com')).toContain(E_A);
    const s = compose(reg, desired, old, new Map([[B, 'old']]));
    expect(new Map(layout(s)).get('b.example.com')).toContain(E_A);
  });

  test("B's hostname changed to one another route serves: B's old entries stay in the shared virtual host", () => {
    // old: b on b.example.com; desired: b on c.example.com, a now on b.example.com
    const old = snap({ b: { hostnames: ['b.example.com'] } });
    const desired = snap({ a: { hostnames: ['b.example.com'] }, b: { hostnames: ['c.example.com'] } });
    const s = compose(reg, desired, old, new Map([[B, 'old']]));
    expect(s.danglingRefs()).toEqual([]);
    expect(duplicateDomains(s)).toEqual([]);
    const byVh = new Map(layout(s));
    expect(byVh.get('b.example.com')).toEqual(expect.arrayContaining([E_A, E_B]));
    expect(byVh.get('c.example.com') ?? []).not.toContain(E_B);
    expect(entryOf(s, 'b.example.com', E_B)).toEqual(entryOf(old, 'b.example.com', E_B));
  });

  (envoyAvailable() ? test : test.skip)(
    'Envoy accepts the composed snapshots (envoy --mode validate)',
    () => {
      const old = snap();
      const oldHost = snap({ b: { hostnames: ['b.example.com'] } });
      const cases: [string, Snapshot][] = [
        ['old', compose(reg, snap({ b: { backend: 'svc-2' } }), old, new Map([[B, 'old']]))],
        ['none', compose(reg, snap({ b: { backend: 'svc-2' } }), old, new Map([[B, 'none']]))],
        [
          'hostname',
          compose(
            reg,
            snap({ b: { hostnames: ['c.example.com'], backend: 'svc-2' } }),
            oldHost,
            new Map([[B, 'old']]),
          ),
        ],
        [
          'shared-host',
          compose(
            reg,
            snap({ a: { hostnames: ['b.example.com'] }, b: { hostnames: ['c.example.com'] } }),
            oldHost,
            new Map([[B, 'old']]),
          ),
        ],
      ];
      for (const [name, s] of cases) {
        const r = envoyValidate(staticBootstrap([asJson(s)]));
        expect({ name, ok: r.ok, output: r.ok ? '' : r.output.slice(-3000) }).toEqual({
          name,
          ok: true,
          output: '',
        });
      }
      // the check can fail: the same RouteConfiguration with a domain in two virtual hosts is refused
      const bad = asJson(cases[2][1]);
      const rc = bad.routes.find((r) => r.name === RC)!;
      bad.routes = [
        { ...rc, virtual_hosts: [...vhostsOf(rc), { name: 'dup', domains: ['b.example.com'], routes: [] }] },
      ];
      const r = envoyValidate(staticBootstrap([bad]));
      expect(r.ok).toBe(false);
      expect(r.output).toMatch(/b\.example\.com/);
    },
    120_000,
  );
});

describe('endpointCount', () => {
  test('a Service with 0, 1 and 2 endpoints; an unknown cluster has 0', () => {
    const count = (addrs: string[]) => endpointCount(snap({ services: { 'svc-1': addrs } }), cl('svc-1'));
    expect(count([])).toBe(0);
    expect(count(['127.0.0.11'])).toBe(1);
    expect(count(['127.0.0.11', '127.0.0.12'])).toBe(2);
    expect(endpointCount(snap(), 'default/nope/8080')).toBe(0);
  });

  test('counts the cluster asked for only; a Service no route uses has no cluster', () => {
    const s = snap({ services: { 'svc-1': ['127.0.0.11', '127.0.0.12'] } });
    expect(endpointCount(s, cl('svc-a'))).toBe(1);
    expect(s.get(TypeUrl.Cluster).has(cl('svc-2'))).toBe(false);
    expect(endpointCount(s, cl('svc-2'))).toBe(0);
  });
});
