/**
 * Standalone folder mode: Gateway API YAML in a folder → defaults and validation as the
 * API server applies them → translator → snapshots; generation bumps; status served at
 * /debug/status; bad files never withdraw what is served.
 */
import { mkdirSync, mkdtempSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { startApp } from '../../src/app.js';
import { silentLogger } from '../../src/log.js';
import {
  crdSchemas,
  extractSchemas,
  gatewayApiModuleDir,
  readStandardCrds,
} from '../../src/provider/file/crdschema.js';
import { FileProvider } from '../../src/provider/file/index.js';
import { admit } from '../../src/provider/file/schema.js';
import { SnapshotCache } from '../../src/xds/cache/cache.js';
import { protoRegistry } from '../../src/xds/proto.js';
import { TypeUrl } from '../../src/xds/resource.js';

const G = 'gateway.networking.k8s.io/v1';
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(what: string, fn: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await sleep(20);
  }
}
const yamlOf = (...docs: unknown[]) => docs.map((d) => stringify(d)).join('---\n');

const gatewayClass = {
  apiVersion: G,
  kind: 'GatewayClass',
  metadata: { name: 'sb' },
  spec: { controllerName: 'signalbox.dev/gateway-controller' },
};
const otherClass = {
  apiVersion: G,
  kind: 'GatewayClass',
  metadata: { name: 'other' },
  spec: { controllerName: 'example.com/other' },
};
const gateway = (port = 8080) => ({
  apiVersion: G,
  kind: 'Gateway',
  metadata: { name: 'gw' },
  spec: { gatewayClassName: 'sb', listeners: [{ name: 'http', protocol: 'HTTP', port }] },
});
const service = (name: string, port: number) => [
  { apiVersion: 'v1', kind: 'Service', metadata: { name }, spec: { ports: [{ name: 'http', port: 80 }] } },
  {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: `${name}-1`, labels: { 'kubernetes.io/service-name': name } },
    addressType: 'IPv4',
    ports: [{ name: 'http', port }],
    endpoints: [{ addresses: ['127.0.0.2'], conditions: { ready: true } }],
  },
];
/** no matches, no weight, no kind/group: all defaulted */
const route = (backend = 'svc-a', extra: Record<string, unknown> = {}) => ({
  apiVersion: G,
  kind: 'HTTPRoute',
  metadata: { name: 'web', ...extra },
  spec: { parentRefs: [{ name: 'gw' }], rules: [{ backendRefs: [{ name: backend, port: 80 }] }] },
});

let dir: string;
let cache: SnapshotCache;
let provider: FileProvider;

function write(file: string, ...docs: unknown[]): void {
  writeFileSync(join(dir, file), yamlOf(...docs));
}
/** replace a file the way editors do: write a temporary file and rename it over */
function replace(file: string, text: string): void {
  writeFileSync(join(dir, `.${file}.tmp`), text);
  renameSync(join(dir, `.${file}.tmp`), join(dir, file));
}
const versions = () => JSON.stringify(cache.getGroup('default/gw')?.allVersions());
const entry = (kind: string, name: string) =>
  provider.status().find((e) => e.kind === kind && e.name === name);
const obj = (kind: string, name: string) =>
  provider.objects().find((o) => o.kind === kind && (o.metadata as { name: string }).name === name) as
    Record<string, Any> | undefined;
const clusters = () => [...(cache.getGroup('default/gw')?.get(TypeUrl.Cluster).keys() ?? [])];
function routeJson(): Any {
  return [...(cache.getGroup('default/gw')?.get(TypeUrl.Route).values() ?? [])][0]?.json;
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'signalbox-config-'));
  write('gateway.yaml', gatewayClass, otherClass, gateway());
  write('services.yaml', ...service('svc-a', 9001), ...service('svc-b', 9002));
  write('route.yaml', route());
  cache = new SnapshotCache();
  provider = new FileProvider({
    dir,
    cache,
    registry: protoRegistry(),
    log: silentLogger(),
    controllerName: 'signalbox.dev/gateway-controller',
    bindAddress: '127.0.0.1',
    debounceMs: 30,
  });
  provider.start();
});

afterEach(() => {
  provider.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('the API server defaults from the CRD schemas are applied', () => {
  const r = obj('HTTPRoute', 'web')!;
  expect(r.metadata.namespace).toBe('default');
  expect(r.spec.parentRefs).toEqual([{ name: 'gw', group: 'gateway.networking.k8s.io', kind: 'Gateway' }]);
  expect(r.spec.rules[0].matches).toEqual([{ path: { type: 'PathPrefix', value: '/' } }]);
  expect(r.spec.rules[0].backendRefs).toEqual([
    { name: 'svc-a', port: 80, group: '', kind: 'Service', weight: 1 },
  ]);
  expect(obj('Gateway', 'gw')!.spec.listeners[0].allowedRoutes).toEqual({ namespaces: { from: 'Same' } });
  expect(obj('Service', 'svc-a')!.spec.ports[0]).toEqual({
    name: 'http',
    port: 80,
    protocol: 'TCP',
    targetPort: 80,
  });
  // and the translation serves it: a catch-all prefix route to svc-a
  expect(clusters()).toEqual(['default/svc-a/80']);
  const rc = routeJson();
  expect(rc.virtual_hosts[0].routes[0].match).toEqual({ prefix: '/' });
  expect(provider.errors()).toEqual([]);
});

test('a route without rules gets the default rule; an empty listener list is refused like the API server does', () => {
  const r = { apiVersion: G, kind: 'HTTPRoute', metadata: { name: 'x' }, spec: {} } as Record<
    string,
    unknown
  >;
  expect(admit(r)).toEqual([]);
  expect((r.spec as { rules: unknown }).rules).toEqual([
    { matches: [{ path: { type: 'PathPrefix', value: '/' } }] },
  ]);
  const g = {
    apiVersion: G,
    kind: 'Gateway',
    metadata: { name: 'g' },
    spec: { gatewayClassName: 'sb', listeners: [] },
  };
  expect(admit(g).join()).toMatch(/spec.listeners: Invalid value: 0: should have at least 1 items/);
  const bad = { apiVersion: G, kind: 'HTTPRoute', metadata: { name: 'Bad_Name' }, spec: {} };
  expect(admit(bad).join()).toMatch(/metadata.name: Invalid value/);
  const unknownKind = { apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w' } };
  expect(admit(unknownKind)).toEqual(['no matches for kind "Widget" in version "example.com/v1"']);
});

test('generation: 1 on create, +1 per spec change, unchanged by metadata-only edits; conditions follow', async () => {
  expect(entry('HTTPRoute', 'web')!.generation).toBe(1);
  const accepted = () =>
    (entry('HTTPRoute', 'web')!.status as Any).parents[0].conditions.find((c: Any) => c.type === 'Accepted');
  expect(accepted()).toMatchObject({ status: 'True', observedGeneration: 1 });

  replace('route.yaml', yamlOf(route('svc-b')));
  await until('svc-b served', () => clusters().includes('default/svc-b/80'));
  expect(clusters()).toEqual(['default/svc-b/80']);
  expect(entry('HTTPRoute', 'web')!.generation).toBe(2);
  expect(accepted()).toMatchObject({ status: 'True', observedGeneration: 2 });

  const before = provider.translations;
  replace('route.yaml', yamlOf(route('svc-b', { labels: { team: 'a' } })));
  await until('label change seen', () => provider.translations > before);
  expect(obj('HTTPRoute', 'web')!.metadata.labels).toEqual({ team: 'a' });
  expect(entry('HTTPRoute', 'web')!.generation).toBe(2);

  // writing the same content again changes nothing
  const n = provider.translations;
  replace('route.yaml', yamlOf(route('svc-b', { labels: { team: 'a' } })));
  provider.reload();
  expect(provider.translations).toBe(n);
  expect(entry('HTTPRoute', 'web')!.generation).toBe(2);
});

test('a file rewritten in place at once with the same size (same inode, same coarse file times) is read again', () => {
  // file times tick in jiffies: two writes within one tick leave size and times alike
  provider.reload();
  expect(clusters()).toEqual(['default/svc-a/80']);
  const text = yamlOf(route('svc-b'));
  expect(text.length).toBe(yamlOf(route('svc-a')).length);
  writeFileSync(join(dir, 'route.yaml'), text);
  provider.reload();
  expect(clusters()).toEqual(['default/svc-b/80']);
  writeFileSync(join(dir, 'route.yaml'), yamlOf(route('svc-a')));
  provider.reload();
  expect(clusters()).toEqual(['default/svc-a/80']);
});

test('status is what would be written: ours only for our GatewayClass, Gateway Programmed with attachedRoutes', () => {
  const gw = entry('Gateway', 'gw')!.status as Any;
  expect(gw.conditions.find((c: { type: string }) => c.type === 'Programmed')).toMatchObject({
    status: 'True',
    observedGeneration: 1,
  });
  expect(gw.listeners[0]).toMatchObject({ name: 'http', attachedRoutes: 1 });
  const cls = entry('GatewayClass', 'sb')!.status as Any;
  expect(cls.conditions.find((c: { type: string }) => c.type === 'Accepted')).toMatchObject({
    status: 'True',
  });
  expect(entry('GatewayClass', 'other')!.status).toBeNull();
  expect(entry('Service', 'svc-a')).toMatchObject({
    kind: 'Service',
    namespace: 'default',
    generation: 1,
    status: null,
  });
  const r = entry('HTTPRoute', 'web')!.status as Any;
  expect(r.parents[0]).toMatchObject({
    parentRef: { name: 'gw', group: 'gateway.networking.k8s.io', kind: 'Gateway' },
    controllerName: 'signalbox.dev/gateway-controller',
  });
  expect(
    r.parents[0].conditions.map((c: { type: string; status: string }) => `${c.type}=${c.status}`).sort(),
  ).toEqual(['Accepted=True', 'ResolvedRefs=True']);
});

test('YAML errors, half-written and invalid objects are reported and never withdraw served config', async () => {
  const served = versions();
  // YAML error
  replace('route.yaml', 'apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: web\n');
  await until('yaml error reported', () => provider.errors().some((e) => e.file === 'route.yaml'));
  expect(provider.errors()[0].error).toMatch(/YAML error/);
  expect(versions()).toBe(served);
  expect(entry('HTTPRoute', 'web')!.generation).toBe(1);
  // an empty file (being written)
  replace('route.yaml', '');
  await until('empty file reported', () => provider.errors().some((e) => /empty file/.test(e.error)));
  expect(versions()).toBe(served);
  // an object the API server would refuse: the stored one stays
  const bad = route('svc-b');
  (bad.spec.rules[0].backendRefs[0] as { port: number }).port = 70000;
  replace('route.yaml', yamlOf(bad));
  await until('invalid object reported', () => provider.errors().some((e) => /70000/.test(e.error)));
  expect(provider.errors()).toEqual([
    expect.objectContaining({
      file: 'route.yaml',
      kind: 'HTTPRoute',
      name: 'web',
      error: expect.stringMatching(/spec.rules\[0\].backendRefs\[0\].port: Invalid value: 70000/),
    }),
  ]);
  expect(versions()).toBe(served);
  expect(clusters()).toEqual(['default/svc-a/80']);
  // an unknown field (kubectl's strict validation)
  replace('route.yaml', yamlOf({ ...route('svc-b'), spec: { ...route('svc-b').spec, hostname: 'x' } }));
  await until('unknown field reported', () =>
    provider.errors().some((e) => /unknown field "hostname"/.test(e.error)),
  );
  expect(clusters()).toEqual(['default/svc-a/80']);
  // fixed: served, error gone
  replace('route.yaml', yamlOf(route('svc-b')));
  await until('fixed', () => clusters().includes('default/svc-b/80'));
  expect(provider.errors()).toEqual([]);
  // a deleted file withdraws its objects
  unlinkSync(join(dir, 'route.yaml'));
  await until('route gone', () => clusters().length === 0);
  expect(entry('HTTPRoute', 'web')).toBeUndefined();
  expect((entry('Gateway', 'gw')!.status as Any).listeners[0].attachedRoutes).toBe(0);
});

test('several documents, List, sub-folders; an object defined twice counts once and is reported', async () => {
  mkdirSync(join(dir, 'team-b'));
  writeFileSync(
    join(dir, 'team-b', 'all.yaml'),
    yamlOf(
      {
        apiVersion: 'v1',
        kind: 'List',
        items: [route('svc-b', { name: 'web-b' }), { ...route('svc-b'), metadata: { name: 'web-b2' } }],
      },
      route('svc-a'),
    ),
  );
  await until('sub-folder read', () => !!entry('HTTPRoute', 'web-b'));
  expect(entry('HTTPRoute', 'web-b2')).toBeDefined();
  expect(provider.errors()).toEqual([
    expect.objectContaining({
      file: 'team-b/all.yaml',
      kind: 'HTTPRoute',
      name: 'web',
      error: 'already defined in route.yaml: ignored here',
    }),
  ]);
  expect(clusters()).toEqual(['default/svc-a/80', 'default/svc-b/80']);
});

test('the CRD schemas used at run time are those of the pinned gateway-api module', () => {
  const fresh = extractSchemas(readStandardCrds(gatewayApiModuleDir(process.cwd())));
  expect(crdSchemas()).toEqual(fresh);
  expect(Object.keys(fresh).sort()).toEqual([
    'GRPCRoute',
    'Gateway',
    'GatewayClass',
    'HTTPRoute',
    'ReferenceGrant',
  ]);
});

test('GET /debug/status and /debug/config-errors of a standalone app', async () => {
  provider.stop();
  const app = await startApp({
    log: silentLogger(),
    xdsAddress: '127.0.0.1:0',
    debugAddress: '127.0.0.1:0',
    configDir: dir,
    listenerAddress: '127.0.0.1',
  });
  try {
    const st = (await (await fetch(`http://127.0.0.1:${app.debugPort}/debug/status`)).json()) as Any[];
    expect(st.map((e) => `${e.kind}/${e.namespace ?? ''}/${e.name}@${e.generation}`)).toEqual([
      'EndpointSlice/default/svc-a-1@1',
      'EndpointSlice/default/svc-b-1@1',
      'Gateway/default/gw@1',
      'GatewayClass//other@1',
      'GatewayClass//sb@1',
      'HTTPRoute/default/web@1',
      'Service/default/svc-a@1',
      'Service/default/svc-b@1',
    ]);
    expect(st.find((e) => e.kind === 'HTTPRoute').status.parents[0].conditions[0]).toMatchObject({
      type: 'Accepted',
      status: 'True',
      observedGeneration: 1,
    });
    const errs = await (await fetch(`http://127.0.0.1:${app.debugPort}/debug/config-errors`)).json();
    expect(errs).toEqual([]);
    expect(app.cache.getGroup('default/gw')).toBeDefined();
  } finally {
    await app.close();
  }
});

test('the example folder of `make run` loads without errors and serves default/gw', () => {
  const c = new SnapshotCache();
  const p = new FileProvider({
    dir: 'e2e/testdata/gateway-folder',
    cache: c,
    registry: protoRegistry(),
    log: silentLogger(),
    controllerName: 'signalbox.dev/gateway-controller',
  });
  p.start();
  p.stop();
  expect(p.errors()).toEqual([]);
  expect([...(c.getGroup('default/gw')?.get(TypeUrl.Listener).keys() ?? [])]).toEqual(['listener-18080']);
  expect([...(c.getGroup('default/gw')?.get(TypeUrl.Cluster).keys() ?? [])]).toEqual(['default/web/80']);
});
