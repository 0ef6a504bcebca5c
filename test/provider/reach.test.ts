/**
 * The Kubernetes provider translates only what is ours (src/provider/kubernetes/reach.ts):
 * the translator must give exactly the same statuses and Envoy resources from the reached
 * subset as from everything, for every golden case; another controller's objects and what
 * only they reference are left out; and events are judged relevant exactly when they can
 * change what we serve or write.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { computeReach, inReach, relevantEvent } from '../../src/provider/kubernetes/reach.js';
import { DEFAULT_CONTROLLER_NAME } from '../../src/provider/pipeline.js';
import { protoRegistry } from '../../src/xds/proto.js';
import { TESTDATA, golden, loadObjects, run } from '../gatewayapi/helpers.js';

type Obj = Record<string, unknown>;
const G = 'gateway.networking.k8s.io/v1';
const OURS = DEFAULT_CONTROLLER_NAME;
const reg = protoRegistry();

const cls = (name: string, controllerName: string): Obj => ({
  apiVersion: G,
  kind: 'GatewayClass',
  metadata: { name },
  spec: { controllerName },
});
const gw = (name: string, className: string, certs: string[] = []): Obj => ({
  apiVersion: G,
  kind: 'Gateway',
  metadata: { name, namespace: 'default' },
  spec: {
    gatewayClassName: className,
    listeners: [
      { name: 'http', protocol: 'HTTP', port: 80 },
      ...(certs.length
        ? [
            {
              name: 'https',
              protocol: 'HTTPS',
              port: 443,
              tls: { mode: 'Terminate', certificateRefs: certs.map((n) => ({ kind: 'Secret', name: n })) },
            },
          ]
        : []),
    ],
  },
});
const route = (name: string, parents: Obj[], backends: Obj[], mirror?: string, status?: Obj): Obj => ({
  apiVersion: G,
  kind: 'HTTPRoute',
  metadata: { name, namespace: 'default' },
  spec: {
    parentRefs: parents,
    rules: [
      {
        backendRefs: backends,
        ...(mirror
          ? {
              filters: [{ type: 'RequestMirror', requestMirror: { backendRef: { name: mirror, port: 80 } } }],
            }
          : {}),
      },
    ],
  },
  ...(status ? { status } : {}),
});
const svc = (name: string, ns = 'default'): Obj => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace: ns },
  spec: { ports: [{ port: 80 }] },
});
const slice = (name: string, service: string, ns = 'default'): Obj => ({
  apiVersion: 'discovery.k8s.io/v1',
  kind: 'EndpointSlice',
  metadata: { name, namespace: ns, labels: { 'kubernetes.io/service-name': service } },
  addressType: 'IPv4',
  ports: [{ port: 8080 }],
  endpoints: [{ addresses: ['10.0.0.1'] }],
});
const secret = (name: string): Obj => ({
  apiVersion: 'v1',
  kind: 'Secret',
  metadata: { name, namespace: 'default' },
  type: 'kubernetes.io/tls',
  data: {},
});
const names = (objs: Obj[]) =>
  objs
    .map((o) => `${String(o.kind)}/${(o.metadata as { name: string }).name}`)
    .sort()
    .join(' ');

const world = (): Obj[] => [
  cls('sb', OURS),
  cls('other', 'example.com/other-controller'),
  gw('mine', 'sb', ['mine-cert']),
  gw('theirs', 'other', ['their-cert']),
  gw('orphan', 'missing-class'),
  route('a', [{ name: 'mine' }], [{ name: 'svc-a', port: 80 }], 'svc-mirror'),
  route('b', [{ name: 'theirs' }], [{ name: 'svc-b', port: 80 }]),
  route(
    'both',
    [{ name: 'theirs' }, { name: 'mine', sectionName: 'http' }],
    [
      { name: 'svc-both', port: 80 },
      { name: 'svc-x', namespace: 'other-ns', port: 80 },
    ],
  ),
  // detached from us, but still carries our status entry: kept so that entry is removed
  route('stale', [{ name: 'theirs' }], [{ name: 'svc-stale', port: 80 }], undefined, {
    parents: [{ parentRef: { name: 'mine' }, controllerName: OURS, conditions: [] }],
  }),
  route(
    'to-other-kind',
    [{ name: 'mine', kind: 'ListenerSet', group: 'example.com' }],
    [{ name: 'svc-ls', port: 80 }],
  ),
  ...['svc-a', 'svc-mirror', 'svc-b', 'svc-both', 'svc-stale', 'svc-ls', 'unrelated'].map((n) => svc(n)),
  svc('svc-x', 'other-ns'),
  slice('svc-a-1', 'svc-a'),
  slice('svc-b-1', 'svc-b'),
  slice('svc-x-1', 'svc-x', 'other-ns'),
  slice('svc-x-elsewhere', 'svc-x'), // same service name, other namespace
  slice('kube-dns-1', 'kube-dns', 'kube-system'),
  secret('mine-cert'),
  secret('their-cert'),
  secret('token'),
  { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'other-ns' } },
  {
    apiVersion: 'gateway.networking.k8s.io/v1beta1',
    kind: 'ReferenceGrant',
    metadata: { name: 'rg', namespace: 'other-ns' },
    spec: {
      from: [{ group: 'gateway.networking.k8s.io', kind: 'HTTPRoute', namespace: 'default' }],
      to: [{ group: '', kind: 'Service' }],
    },
  },
];

describe('what the Kubernetes provider translates', () => {
  test('our class, its Gateway, the routes attached to it and what they reference; nothing of another controller', () => {
    const all = world();
    const reach = computeReach(all, OURS);
    const kept = all.filter((o) => inReach(o, reach));
    expect(names(kept)).toBe(
      [
        'EndpointSlice/svc-a-1',
        'EndpointSlice/svc-x-1',
        'Gateway/mine',
        'GatewayClass/other',
        'GatewayClass/sb',
        'HTTPRoute/a',
        'HTTPRoute/both',
        'HTTPRoute/stale',
        'Namespace/other-ns',
        'ReferenceGrant/rg',
        'Secret/mine-cert',
        'Service/svc-a',
        'Service/svc-both',
        'Service/svc-mirror',
        'Service/svc-x',
      ].join(' '),
    );
  });

  test('every golden case translates to the same statuses and Envoy resources from the reached subset', () => {
    const cases = readdirSync(TESTDATA).filter((f) => f.endsWith('.in.yaml'));
    expect(cases.length).toBeGreaterThan(60);
    let dropped = 0;
    for (const f of cases) {
      const all = loadObjects(join(TESTDATA, f)) as Obj[];
      const objs = all.filter((o) => o && typeof o === 'object' && !Array.isArray(o));
      const reach = computeReach(objs, OURS);
      const sub = objs.filter((o) => inReach(o, reach));
      dropped += objs.length - sub.length;
      const full = run(reg, objs);
      const part = run(reg, sub);
      // objects the translator set aside as malformed may be left out with the rest
      const strip = (s: string) => s.replace(/\nrejected:[\s\S]*?\nxds:/, '\nxds:');
      expect({ f, out: strip(golden(part)) }).toEqual({ f, out: strip(golden(full)) });
    }
    // the cases do contain objects that are not ours (another class, unreferenced Services, ...)
    expect(dropped).toBeGreaterThan(10);
  });

  describe('events', () => {
    const all = world();
    const reach = computeReach(all, OURS);
    const find = (kind: string, name: string) =>
      all.find((o) => o.kind === kind && (o.metadata as { name: string }).name === name)!;
    const relevant = (o: Obj) => relevantEvent(o, reach, OURS);

    test('on our objects and what they reach: relevant', () => {
      for (const [k, n] of [
        ['Gateway', 'mine'],
        ['HTTPRoute', 'a'],
        ['Service', 'svc-mirror'],
        ['EndpointSlice', 'svc-x-1'],
        ['Secret', 'mine-cert'],
        ['GatewayClass', 'other'],
        ['Namespace', 'other-ns'],
      ])
        expect([k, n, relevant(find(k, n))]).toEqual([k, n, true]);
    });

    test("on another controller's objects and unreferenced ones: ignored", () => {
      for (const [k, n] of [
        ['Gateway', 'theirs'],
        ['Gateway', 'orphan'],
        ['HTTPRoute', 'b'],
        ['Service', 'svc-b'],
        ['Service', 'unrelated'],
        ['EndpointSlice', 'svc-b-1'],
        ['EndpointSlice', 'kube-dns-1'],
        ['EndpointSlice', 'svc-x-elsewhere'],
        ['Secret', 'their-cert'],
        ['Secret', 'token'],
      ])
        expect([k, n, relevant(find(k, n))]).toEqual([k, n, false]);
    });

    test('on objects that become ours, or stop being ours: relevant', () => {
      // another class's Gateway switched to our class
      expect(relevant(gw('theirs', 'sb'))).toBe(true);
      // our Gateway switched to another class (its key is in the reach)
      expect(relevant(gw('mine', 'other'))).toBe(true);
      // a new route naming our Gateway; a route detaching from it
      expect(relevant(route('new', [{ name: 'mine' }], []))).toBe(true);
      expect(relevant(route('a', [{ name: 'theirs' }], []))).toBe(true);
      // a route of theirs in another namespace naming our Gateway explicitly
      const x = route('cross', [{ name: 'mine', namespace: 'default' }], []);
      (x.metadata as Obj).namespace = 'team';
      expect(relevant(x)).toBe(true);
      // a new route naming a same-named Gateway in its own namespace: not ours
      (x.spec as Obj).parentRefs = [{ name: 'mine' }];
      expect(relevant(x)).toBe(false);
    });
  });
});
