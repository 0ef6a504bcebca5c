/**
 * Per-Gateway isolation in the pipeline shared by the providers: a Gateway whose Envoy
 * resources the encoder rejects keeps its last good snapshot (the same object stays in the
 * cache), is logged with its group, counted in signalbox_translation_failures_total and
 * gets Programmed=False (reason Invalid, the error in the message); the other Gateways'
 * snapshots change in the same run. No realistic input is known to make the encoder throw
 * (the translator validates what it hands on), so the encoder is wrapped to throw a
 * ProtoError, as it does for a value it cannot encode, for one route's resources.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { stringify } from 'yaml';
import type { ObjectStatus } from '../../src/gatewayapi/index.js';
import { silentLogger } from '../../src/log.js';
import { Metrics } from '../../src/metrics.js';
import { FileProvider } from '../../src/provider/file/index.js';
import { DEFAULT_CONTROLLER_NAME, Pipeline } from '../../src/provider/pipeline.js';
import { SnapshotCache } from '../../src/xds/cache/cache.js';
import { ProtoError, protoRegistry } from '../../src/xds/proto.js';
import type { ProtoRegistry } from '../../src/xds/proto.js';
import { TypeUrl } from '../../src/xds/resource.js';

const G = 'gateway.networking.k8s.io/v1';
type J = Record<string, unknown>;

/** The real registry, except that encoding anything whose path contains `failOn` throws. */
function failingRegistry(): { reg: ProtoRegistry; failOn: { value?: string } } {
  const real = protoRegistry();
  const failOn: { value?: string } = {};
  const reg = new Proxy(real, {
    get(target, prop) {
      if (prop === 'encode')
        return (typeName: string, json: unknown, path?: string) => {
          if (failOn.value && String(path).includes(failOn.value))
            throw new ProtoError(`${path}: value out of range for ${typeName}`);
          return target.encode(typeName, json, path);
        };
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  return { reg, failOn };
}

const md = (name: string, extra: J = {}) => ({ namespace: 'default', name, generation: 1, ...extra });
const gatewayClass = {
  apiVersion: G,
  kind: 'GatewayClass',
  metadata: { name: 'sb', generation: 1 },
  spec: { controllerName: DEFAULT_CONTROLLER_NAME },
};
const gateway = (name: string, port: number) => ({
  apiVersion: G,
  kind: 'Gateway',
  metadata: md(name),
  spec: { gatewayClassName: 'sb', listeners: [{ name: 'http', protocol: 'HTTP', port }] },
});
const route = (name: string, gw: string, path: string) => ({
  apiVersion: G,
  kind: 'HTTPRoute',
  metadata: md(name),
  spec: {
    parentRefs: [{ name: gw }],
    rules: [
      {
        matches: [{ path: { type: 'PathPrefix', value: path } }],
        backendRefs: [{ name: 'svc', port: 80 }],
      },
    ],
  },
});
const backend = [
  {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { namespace: 'default', name: 'svc' },
    spec: { ports: [{ name: 'http', port: 80 }] },
  },
  {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { namespace: 'default', name: 'svc-1', labels: { 'kubernetes.io/service-name': 'svc' } },
    addressType: 'IPv4',
    ports: [{ name: 'http', port: 3000 }],
    endpoints: [{ addresses: ['127.0.0.1'] }],
  },
];

const routeNames = (cache: SnapshotCache, group: string): string[] =>
  [...(cache.getGroup(group)?.get(TypeUrl.Route).values() ?? [])].flatMap((rc) =>
    ((rc.json.virtual_hosts as { routes: { name: string }[] }[] | undefined) ?? []).flatMap((vh) =>
      vh.routes.map((r) => r.name),
    ),
  );

function programmed(statuses: ObjectStatus[], name: string): J | undefined {
  const st = statuses.find((s) => s.kind === 'Gateway' && s.name === name);
  return (st?.status.conditions as J[] | undefined)?.find((c) => c.type === 'Programmed');
}

function capture(): { log: pino.Logger; lines: J[] } {
  const lines: J[] = [];
  const log = pino({ level: 'info' }, { write: (s: string) => lines.push(JSON.parse(s) as J) });
  return { log, lines };
}

test('a Gateway that fails to encode keeps its last good snapshot and reports it; the other Gateway updates in the same run', async () => {
  const { reg, failOn } = failingRegistry();
  const cache = new SnapshotCache();
  const metrics = new Metrics();
  const { log, lines } = capture();
  const p = new Pipeline({ cache, registry: reg, log, metrics, controllerName: DEFAULT_CONTROLLER_NAME });
  const base = [gatewayClass, gateway('gw-a', 8080), gateway('gw-b', 8081), ...backend];

  const r1 = p.run([...base, route('a1', 'gw-a', '/a1'), route('b1', 'gw-b', '/b1')])!;
  expect(r1.failures).toEqual([]);
  const a1 = cache.getGroup('default/gw-a')!;
  const b1 = cache.getGroup('default/gw-b')!;
  expect(routeNames(cache, 'default/gw-a')).toEqual(['httproute/default/a1/rule/0/match/0']);
  expect(programmed(r1.statuses, 'gw-a')).toMatchObject({ status: 'True', reason: 'Programmed' });

  // both Gateways get a new route; gw-a's cannot be encoded
  failOn.value = 'httproute/default/a2/';
  const objs2 = [
    ...base,
    route('a1', 'gw-a', '/a1'),
    route('a2', 'gw-a', '/a2'),
    route('b1', 'gw-b', '/b1'),
    route('b2', 'gw-b', '/b2'),
  ];
  const r2 = p.run(objs2, '2026-02-02T00:00:00Z')!;
  expect(r2).toBeDefined();
  // gw-a: the very snapshot served before; gw-b: a new one with the new route
  expect(cache.getGroup('default/gw-a')).toBe(a1);
  expect(cache.getGroup('default/gw-b')).not.toBe(b1);
  expect(routeNames(cache, 'default/gw-b')).toEqual([
    'httproute/default/b1/rule/0/match/0',
    'httproute/default/b2/rule/0/match/0',
  ]);
  expect(r2.changed).toEqual(['default/gw-b']);
  expect(r2.failures).toEqual([
    {
      group: 'default/gw-a',
      error: expect.stringContaining('value out of range') as string,
      since: '2026-02-02T00:00:00Z',
      keptSnapshot: true,
    },
  ]);
  expect(p.failures().map((f) => f.group)).toEqual(['default/gw-a']);

  // status: gw-a is not programmed and says why; gw-b is
  const pa = programmed(r2.statuses, 'gw-a')!;
  expect(pa).toMatchObject({
    status: 'False',
    reason: 'Invalid',
    observedGeneration: 1,
    lastTransitionTime: '2026-02-02T00:00:00Z',
  });
  expect(pa.message).toContain('could not be built');
  expect(pa.message).toContain('httproute/default/a2/rule/0/match/0');
  expect(pa.message).toContain('last good configuration stays served');
  expect(programmed(r2.statuses, 'gw-b')).toMatchObject({ status: 'True', reason: 'Programmed' });
  // the routes' own status is the translator's (they are accepted)
  expect(JSON.stringify(r2.statuses.find((s) => s.name === 'a2')?.status)).toContain('"reason":"Accepted"');

  // logged with the group, counted per Gateway
  const err = lines.find((l) => l.level === 50 && l.group === 'default/gw-a');
  expect(err?.msg).toContain('last good snapshot stays served');
  expect((err?.err as J | undefined)?.message).toContain('value out of range');
  expect(await metrics.value('signalbox_translation_failures_total', { gateway: 'default/gw-a' })).toBe(1);
  expect(await metrics.value('signalbox_translation_failures_total', { gateway: 'default/gw-b' })).toBe(0);

  // still failing on the next run: the Programmed transition time is the first failure's
  const withStatus = objs2.map((o) =>
    o.kind === 'Gateway' && o.metadata.name === 'gw-a'
      ? { ...o, status: r2.statuses.find((s) => s.name === 'gw-a')!.status }
      : o,
  );
  const r3 = p.run(withStatus, '2026-02-02T00:01:00Z')!;
  expect(cache.getGroup('default/gw-a')).toBe(a1);
  expect(r3.failures[0].since).toBe('2026-02-02T00:00:00Z');
  expect(programmed(r3.statuses, 'gw-a')?.lastTransitionTime).toBe('2026-02-02T00:00:00Z');

  // the encoder accepts it again: gw-a gets its new snapshot and is programmed
  failOn.value = undefined;
  const r4 = p.run(objs2)!;
  expect(r4.failures).toEqual([]);
  expect(p.failures()).toEqual([]);
  expect(r4.changed).toEqual(['default/gw-a']);
  expect(routeNames(cache, 'default/gw-a')).toEqual([
    'httproute/default/a1/rule/0/match/0',
    'httproute/default/a2/rule/0/match/0',
  ]);
  expect(programmed(r4.statuses, 'gw-a')).toMatchObject({ status: 'True', reason: 'Programmed' });
});

test('a new Gateway that fails on its first encode has no snapshot and says so; it is not cleared as gone', () => {
  const { reg, failOn } = failingRegistry();
  const cache = new SnapshotCache();
  const p = new Pipeline({
    cache,
    registry: reg,
    log: silentLogger(),
    controllerName: DEFAULT_CONTROLLER_NAME,
  });
  failOn.value = 'httproute/default/a1/';
  const objs = [gatewayClass, gateway('gw-a', 8080), gateway('gw-b', 8081), ...backend];
  const r = p.run([...objs, route('a1', 'gw-a', '/a1'), route('b1', 'gw-b', '/b1')])!;
  expect(cache.getGroup('default/gw-a')).toBeUndefined();
  expect(cache.getGroup('default/gw-b')).toBeDefined();
  expect(r.failures).toMatchObject([{ group: 'default/gw-a', keptSnapshot: false }]);
  expect(programmed(r.statuses, 'gw-a')?.message).toContain('nothing is served for it yet');
  // deleting the failing Gateway forgets its failure
  const r2 = p.run([gatewayClass, gateway('gw-b', 8081), ...backend, route('b1', 'gw-b', '/b1')])!;
  expect(r2.failures).toEqual([]);
  expect(p.failures()).toEqual([]);
});

test('a translation that throws as a whole changes nothing served and is counted as gateway="*"', async () => {
  const cache = new SnapshotCache();
  const metrics = new Metrics();
  const p = new Pipeline({
    cache,
    registry: protoRegistry(),
    log: silentLogger(),
    metrics,
    controllerName: DEFAULT_CONTROLLER_NAME,
  });
  p.run([gatewayClass, gateway('gw-a', 8080), ...backend, route('a1', 'gw-a', '/a1')]);
  const a1 = cache.getGroup('default/gw-a');
  // an object list the translator cannot iterate
  expect(p.run(null as unknown as unknown[])).toBeUndefined();
  expect(cache.getGroup('default/gw-a')).toBe(a1);
  expect(await metrics.value('signalbox_translation_failures_total', { gateway: '*' })).toBe(1);
});

test('standalone folder: a Gateway that fails to encode keeps its snapshot, /debug/status shows Programmed=False, the other updates', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sb-iso-'));
  try {
    const { reg, failOn } = failingRegistry();
    const cache = new SnapshotCache();
    const write = (...docs: unknown[]) =>
      writeFileSync(join(dir, 'all.yaml'), docs.map((d) => stringify(d)).join('---\n'));
    const strip = (o: J) => ({ ...o, metadata: { ...(o.metadata as J), generation: undefined } });
    const base = [gatewayClass, gateway('gw-a', 8080), gateway('gw-b', 8081), ...backend].map(strip);
    write(...base, strip(route('a1', 'gw-a', '/a1')), strip(route('b1', 'gw-b', '/b1')));
    const files = new FileProvider({
      dir,
      cache,
      registry: reg,
      log: silentLogger(),
      controllerName: DEFAULT_CONTROLLER_NAME,
    });
    files.start();
    const a1 = cache.getGroup('default/gw-a');
    expect(a1).toBeDefined();
    failOn.value = 'httproute/default/a2/';
    write(
      ...base,
      strip(route('a1', 'gw-a', '/a1')),
      strip(route('a2', 'gw-a', '/a2')),
      strip(route('b1', 'gw-b', '/b1')),
      strip(route('b2', 'gw-b', '/b2')),
    );
    files.reload();
    files.stop();
    expect(cache.getGroup('default/gw-a')).toBe(a1);
    expect(routeNames(cache, 'default/gw-b')).toContain('httproute/default/b2/rule/0/match/0');
    const st = files.status().find((s) => s.kind === 'Gateway' && s.name === 'gw-a')!;
    const cond = (st.status?.conditions as J[]).find((c) => c.type === 'Programmed');
    expect(cond).toMatchObject({ status: 'False', reason: 'Invalid' });
    expect(files.gatewayFailures().map((f) => f.group)).toEqual(['default/gw-a']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a Gateway that cannot be translated (a route attached to it throws) keeps its last good snapshot; the other updates', async () => {
  const cache = new SnapshotCache();
  const metrics = new Metrics();
  const p = new Pipeline({
    cache,
    registry: protoRegistry(),
    log: silentLogger(),
    metrics,
    controllerName: DEFAULT_CONTROLLER_NAME,
  });
  const base = [gatewayClass, gateway('gw-a', 8080), gateway('gw-b', 8081), ...backend];
  p.run([...base, route('a1', 'gw-a', '/a1'), route('b1', 'gw-b', '/b1')]);
  const a1 = cache.getGroup('default/gw-a')!;
  // a value nobody foresaw: reading the route's hostnames throws inside the translator (a
  // non-enumerable getter, so only route attachment meets it, as it would a translator bug)
  const broken = route('a1', 'gw-a', '/a2');
  Object.defineProperty(broken.spec, 'hostnames', {
    enumerable: false,
    get() {
      throw new TypeError('surprise');
    },
  });
  const r2 = p.run([...base, broken, route('b1', 'gw-b', '/b2')])!;
  expect(r2.failures.map((f) => [f.group, f.keptSnapshot])).toEqual([['default/gw-a', true]]);
  expect(r2.failures[0].error).toMatch(/HTTPRoute default\/a1: TypeError: surprise/);
  expect(cache.getGroup('default/gw-a')).toBe(a1); // still served as before: /a1
  expect(routeNames(cache, 'default/gw-a').join()).toContain('a1');
  expect(routeNames(cache, 'default/gw-b').length).toBeGreaterThan(0);
  expect(r2.changed).toEqual(['default/gw-b']);
  expect(programmed(r2.statuses, 'gw-a')).toMatchObject({ status: 'False', reason: 'Invalid' });
  expect(programmed(r2.statuses, 'gw-b')).toMatchObject({ status: 'True' });
  expect(await metrics.value('signalbox_translation_failures_total', { gateway: 'default/gw-a' })).toBe(1);
});
