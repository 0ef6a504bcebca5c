/**
 * The Kubernetes provider's initial lists against a fake API server: while one kind's list
 * fails (403 as RBAC answers, then 500), nothing is translated or served, `start()` has not
 * resolved, readiness is false and /debug/kubernetes names the kind and the error; the
 * list is retried with backoff and the first snapshot, once every kind has listed, has the
 * Secret in it (never a partial world).
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startApp } from '../../src/app.js';
import { silentLogger } from '../../src/log.js';
import { Metrics } from '../../src/metrics.js';
import { KubernetesProvider } from '../../src/provider/kubernetes/index.js';
import { DEFAULT_CONTROLLER_NAME } from '../../src/provider/pipeline.js';
import { SnapshotCache } from '../../src/xds/cache/cache.js';
import { protoRegistry } from '../../src/xds/proto.js';
import { TypeUrl } from '../../src/xds/resource.js';
import { G, gatewayClassItem, objectMeta, startFakeKube } from '../harness/fake-kube.js';
import type { FakeKube } from '../harness/fake-kube.js';

const certs = join(dirname(fileURLToPath(import.meta.url)), '../gatewayapi/testdata/certs');
const b64 = (f: string) => readFileSync(join(certs, f)).toString('base64');

const meta = (name: string, rv: number, ns: string | undefined = 'default') =>
  objectMeta(name, { generation: 1, resourceVersion: String(rv), namespace: ns });

/** List path → items (every kind the provider lists; the others are empty). */
const ITEMS: Record<string, unknown[]> = {
  '/apis/gateway.networking.k8s.io/v1/gatewayclasses': [gatewayClassItem(meta('sb', 1, undefined))],
  '/apis/gateway.networking.k8s.io/v1/gateways': [
    {
      apiVersion: G,
      kind: 'Gateway',
      metadata: meta('gw', 2),
      spec: {
        gatewayClassName: 'sb',
        listeners: [
          {
            name: 'https',
            protocol: 'HTTPS',
            port: 8443,
            hostname: 'www.example.com',
            tls: { mode: 'Terminate', certificateRefs: [{ kind: 'Secret', name: 'cert' }] },
          },
        ],
      },
    },
  ],
  '/api/v1/secrets': [
    {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: meta('cert', 3),
      type: 'kubernetes.io/tls',
      data: { 'tls.crt': b64('rsa.crt'), 'tls.key': b64('rsa.key') },
    },
  ],
};

const FORBIDDEN = {
  kind: 'Status',
  apiVersion: 'v1',
  metadata: {},
  status: 'Failure',
  message:
    'secrets is forbidden: User "system:serviceaccount:signalbox:signalbox" cannot list resource "secrets" in API group "" at the cluster scope',
  reason: 'Forbidden',
  details: { kind: 'secrets' },
  code: 403,
};

let fake: FakeKube;
let kubeconfig: string;
/** answers the Secrets list gives before it succeeds */
let secretAnswers: number[];
/** Secrets list requests answered so far, and when the successful one was answered */
let secretLists: number;
let secretListedAt: number;

beforeEach(async () => {
  secretAnswers = [];
  secretLists = 0;
  secretListedAt = 0;
  fake = await startFakeKube({
    items: ITEMS,
    // status writes
    patched: { apiVersion: G, kind: 'Gateway', metadata: { resourceVersion: '99' } },
    list: (url, send) => {
      if (url.pathname !== '/api/v1/secrets') return false;
      secretLists++;
      const code = secretAnswers.shift();
      if (code === 403) {
        send(403, FORBIDDEN);
        return true;
      }
      if (code !== undefined) {
        send(code, {
          kind: 'Status',
          apiVersion: 'v1',
          status: 'Failure',
          message: 'etcd unavailable',
          code,
        });
        return true;
      }
      secretListedAt = Date.now();
      return false;
    },
    tmpPrefix: 'sb-k8s-sync-',
  });
  kubeconfig = fake.kubeconfig;
});

afterEach(async () => {
  await fake.close();
});

async function until(what: string, fn: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('a Secrets list that fails (403, 403, 500) keeps the provider unsynced and untranslated until it succeeds; the first snapshot has the Secret', async () => {
  secretAnswers = [403, 403, 500];
  const cache = new SnapshotCache();
  const metrics = new Metrics();
  const snapshotsAt: { at: number; secrets: string[] }[] = [];
  cache.on('snapshot', (g: string) =>
    snapshotsAt.push({ at: Date.now(), secrets: [...(cache.getGroup(g)?.get(TypeUrl.Secret).keys() ?? [])] }),
  );
  const kube = new KubernetesProvider({
    kubeconfig,
    cache,
    registry: protoRegistry(),
    metrics,
    log: silentLogger(),
    controllerName: DEFAULT_CONTROLLER_NAME,
    quietMs: 5,
    maxDelayMs: 20,
    backoffMs: 30,
    maxBackoffMs: 200,
  });
  let startedAt = 0;
  const started = kube.start().then(() => (startedAt = Date.now()));
  try {
    await until('two Secrets lists refused', () => secretLists >= 2);
    // every other kind has listed by now, the Secrets not: nothing translated, not synced
    expect(kube.synced).toBe(false);
    expect(startedAt).toBe(0);
    expect(kube.translations).toBe(0);
    expect(cache.getGroup('default/gw')).toBeUndefined();
    expect(kube.notSynced()).toEqual([
      {
        kind: 'Secret',
        failures: expect.any(Number) as number,
        lastError: expect.stringContaining('HTTP 403: secrets is forbidden') as string,
      },
    ]);
    expect(await metrics.value('signalbox_kubernetes_informer_synced', { kind: 'Secret' })).toBe(0);
    expect(await metrics.value('signalbox_kubernetes_informer_synced', { kind: 'Gateway' })).toBe(1);

    await started;
    expect(secretLists).toBe(4);
    expect(kube.synced).toBe(true);
    expect(kube.notSynced()).toEqual([]);
    expect(startedAt).toBeGreaterThanOrEqual(secretListedAt);
    expect(await metrics.value('signalbox_kubernetes_list_failures_total', { kind: 'Secret' })).toBe(3);
    expect(await metrics.value('signalbox_kubernetes_informer_synced', { kind: 'Secret' })).toBe(1);
    // retries after a failed initial list are not relists
    expect(kube.relists.Secret).toBeUndefined();

    await until('a snapshot for the Gateway', () => cache.getGroup('default/gw') !== undefined);
    // every snapshot came after the Secrets had listed, and the first one already serves the certificate
    expect(snapshotsAt.length).toBeGreaterThan(0);
    for (const s of snapshotsAt) expect(s.at).toBeGreaterThanOrEqual(secretListedAt);
    expect(snapshotsAt[0].secrets).toEqual(['default/cert']);
    expect([...cache.getGroup('default/gw')!.get(TypeUrl.Listener).keys()]).toEqual(['listener-8443']);
  } finally {
    await kube.stop();
  }
});

test('stopped before every kind listed: start() rejects, no translation ran', async () => {
  secretAnswers = Array<number>(1000).fill(403);
  const kube = new KubernetesProvider({
    kubeconfig,
    cache: new SnapshotCache(),
    registry: protoRegistry(),
    log: silentLogger(),
    controllerName: DEFAULT_CONTROLLER_NAME,
    backoffMs: 20,
  });
  const started = kube.start();
  await until('a Secrets list refused', () => secretLists >= 1);
  await kube.stop();
  await expect(started).rejects.toThrow('stopped before every informer had listed');
  expect(kube.translations).toBe(0);
});

test('serve: /readyz says not ready and /debug/kubernetes names the kind not listed while its list is forbidden; ADS listens only after', async () => {
  // two refusals: the default backoff retries after 1 s, then 2 s
  secretAnswers = [403, 403];
  // a free port for the debug endpoint (startApp returns only once ready)
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', () => r()));
  const debugPort = (probe.address() as { port: number }).port;
  await new Promise((r) => probe.close(r));
  const get = async (p: string) => {
    try {
      const r = await fetch(`http://127.0.0.1:${debugPort}${p}`);
      return { code: r.status, body: await r.text() };
    } catch {
      return { code: 0, body: '' };
    }
  };
  let app: Awaited<ReturnType<typeof startApp>> | undefined;
  const starting = startApp({
    log: silentLogger(),
    xdsAddress: '127.0.0.1:0',
    debugAddress: `127.0.0.1:${debugPort}`,
    kubeconfig,
  }).then((a) => (app = a));
  try {
    await until('the debug endpoint answers', async () => (await get('/readyz')).code !== 0);
    // while the Secrets list is refused: not ready, and which kind and why is visible
    const ready = await get('/readyz');
    expect(ready.code).toBe(503);
    type Dbg = { synced: boolean; notSynced: { kind: string; lastError?: string }[]; translations: number };
    let dbg: Dbg | undefined;
    await until('only the Secrets not listed', async () => {
      dbg = JSON.parse((await get('/debug/kubernetes')).body) as Dbg;
      return dbg.notSynced.length === 1 && dbg.notSynced[0].lastError !== undefined;
    });
    dbg = dbg!;
    expect(dbg.notSynced[0].lastError).toContain('HTTP 403: secrets is forbidden');
    expect((await get('/readyz')).code).toBe(503);
    expect(dbg.synced).toBe(false);
    expect(dbg.notSynced.map((n) => n.kind)).toEqual(['Secret']);
    expect(dbg.translations).toBe(0);
    expect(app).toBeUndefined();
    // RBAC fixed: ready, ADS serving, the Gateway translated
    await starting;
    expect((await get('/readyz')).code).toBe(200);
    expect(app!.xdsPort).toBeGreaterThan(0);
    await until('a snapshot for the Gateway', () => app!.cache.getGroup('default/gw') !== undefined);
    expect([...app!.cache.getGroup('default/gw')!.get(TypeUrl.Secret).keys()]).toEqual(['default/cert']);
  } finally {
    await starting.catch(() => undefined);
    await app?.close();
  }
});
