/**
 * The status writer against a fake API server: merge-patch of the status subresource with
 * the field manager; nothing written when the object already has that status (whatever
 * the key order); never over conditions of a newer generation (xds-rules 19); a failed
 * write is retried, a 404 is dropped.
 */
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import { KubeConfig } from '@kubernetes/client-node';
import type { ObjectStatus } from '../../src/gatewayapi/index.js';
import { silentLogger } from '../../src/log.js';
import { StatusWriter, sameStatus } from '../../src/status/index.js';

interface Req {
  method: string;
  url: string;
  contentType: string;
  body: unknown;
}

let server: Server;
let reqs: Req[];
let answers: number[];
let kc: KubeConfig;
let rv: number;
let delayMs: number;

beforeEach(async () => {
  reqs = [];
  answers = [];
  rv = 100;
  delayMs = 0;
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      reqs.push({
        method: req.method ?? '',
        url: req.url ?? '',
        contentType: String(req.headers['content-type']),
        body: JSON.parse(body || 'null'),
      });
      const code = answers.shift() ?? 200;
      setTimeout(() => {
        res.writeHead(code, { 'content-type': 'application/json' });
        res.end(
          code === 200
            ? `{"apiVersion":"gateway.networking.k8s.io/v1","kind":"Gateway","metadata":{"resourceVersion":"${++rv}"}}`
            : '{"kind":"Status","code":' + code + '}',
        );
      }, delayMs);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
    users: [{ name: 'u' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
});

afterEach(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

const cond = (gen: number) => ({
  type: 'Accepted',
  status: 'True',
  reason: 'Accepted',
  message: 'ok',
  observedGeneration: gen,
  lastTransitionTime: '2026-01-01T00:00:00Z',
});
const ours = (gen: number): ObjectStatus => ({
  apiVersion: 'gateway.networking.k8s.io/v1',
  kind: 'Gateway',
  namespace: 'default',
  name: 'gw',
  status: { conditions: [cond(gen)] },
});
const current = (generation: number, status?: unknown) =>
  new Map([
    [
      'Gateway/default/gw',
      {
        apiVersion: 'gateway.networking.k8s.io/v1',
        kind: 'Gateway',
        metadata: { namespace: 'default', name: 'gw', generation },
        ...(status ? { status } : {}),
      } as Record<string, unknown>,
    ],
  ]);
/** ours(gen) with another reason */
const withReason = (reason: string, gen = 2): ObjectStatus => {
  const st = ours(gen);
  (st.status.conditions as Record<string, unknown>[])[0].reason = reason;
  return st;
};
/** the informer's copy of the Gateway at a resourceVersion (with a status) */
const copyAt = (rv: string, status?: unknown) => {
  const c = current(2, status);
  (c.get('Gateway/default/gw')!.metadata as Record<string, unknown>).resourceVersion = rv;
  return c;
};
async function until(what: string, fn: () => boolean): Promise<void> {
  const end = Date.now() + 5000;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('a changed status is merge-patched on the status subresource with the field manager', async () => {
  const w = new StatusWriter(kc, silentLogger());
  w.enqueue([ours(2)], current(2, { conditions: [cond(1)] }));
  await until('one write', () => w.writes === 1);
  expect(reqs).toEqual([
    {
      method: 'PATCH',
      url: '/apis/gateway.networking.k8s.io/v1/namespaces/default/gateways/gw/status?fieldManager=signalbox',
      contentType: 'application/merge-patch+json',
      body: { status: { conditions: [cond(2)] } },
    },
  ]);
  w.close();
});

test('a cluster-scoped GatewayClass is patched at its cluster path', async () => {
  const w = new StatusWriter(kc, silentLogger());
  const st: ObjectStatus = {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'GatewayClass',
    name: 'sb',
    status: { conditions: [cond(1)] },
  };
  w.enqueue(
    [st],
    new Map([['GatewayClass//sb', { kind: 'GatewayClass', metadata: { name: 'sb', generation: 1 } }]]),
  );
  await until('one write', () => w.writes === 1);
  expect(reqs[0].url).toBe(
    '/apis/gateway.networking.k8s.io/v1/gatewayclasses/sb/status?fieldManager=signalbox',
  );
  w.close();
});

test('no write when the object already has that status, in any key order, with fields of others', async () => {
  const w = new StatusWriter(kc, silentLogger());
  const sorted = Object.fromEntries(Object.entries(cond(2)).sort(([a], [b]) => (a < b ? -1 : 1)));
  w.enqueue([ours(2)], current(2, { conditions: [sorted], addresses: [{ value: '10.0.0.1' }] }));
  await new Promise((r) => setTimeout(r, 100));
  expect(reqs).toEqual([]);
  expect(w.skipped).toBe(1);
  expect(sameStatus({ a: [1, { x: 1, y: 2 }] }, { a: [1, { y: 2, x: 1 }], b: 3 })).toBe(true);
  expect(sameStatus({ a: [1, 2] }, { a: [2, 1] })).toBe(false);
  w.close();
});

test('rule 19: never overwrite conditions that describe a newer generation than the one translated', async () => {
  const w = new StatusWriter(kc, silentLogger());
  // we translated generation 2, the object's status already speaks of generation 3
  w.enqueue([ours(2)], current(2, { conditions: [cond(3)] }));
  await new Promise((r) => setTimeout(r, 100));
  expect(reqs).toEqual([]);
  w.close();
});

test('a failed write is retried; a 404 (object deleted) is not', async () => {
  const w = new StatusWriter(kc, silentLogger());
  answers = [500];
  w.enqueue([ours(2)], current(2));
  await until('written after a retry', () => w.writes === 1);
  expect(reqs.length).toBe(2);
  expect(w.failures).toBe(1);
  answers = [404];
  w.enqueue([ours(3)], current(3));
  await until('404 seen', () => w.failures === 2);
  await new Promise((r) => setTimeout(r, 600));
  expect(reqs.length).toBe(3);
  w.close();
});

test('retry on conflict: the resourceVersion translated is a precondition; a 409 asks for a new translation, the stale status is not retried', async () => {
  const w = new StatusWriter(kc, silentLogger());
  let resyncs = 0;
  w.onConflict = () => resyncs++;
  const obj = copyAt('7');
  answers = [409];
  w.enqueue([ours(2)], obj);
  await until('conflict seen', () => w.conflicts === 1);
  expect(reqs[0].body).toEqual({ metadata: { resourceVersion: '7' }, status: { conditions: [cond(2)] } });
  expect(resyncs).toBe(1);
  await new Promise((r) => setTimeout(r, 600));
  expect(reqs.length).toBe(1);
  expect(w.writes).toBe(0);
  w.close();
});

const route = (i: number): ObjectStatus => ({
  apiVersion: 'gateway.networking.k8s.io/v1',
  kind: 'HTTPRoute',
  namespace: 'default',
  name: `r${i}`,
  status: { parents: [{ controllerName: 'x', conditions: [cond(1)] }] },
});

test('Gateways are written before routes queued earlier (attachedRoutes is not held back by a burst)', async () => {
  // one token per 250 ms: the Gateway is queued long before the second (a loaded machine too)
  const w = new StatusWriter(kc, silentLogger(), 4, 1);
  const cur = current(2);
  for (let i = 0; i < 5; i++)
    cur.set(`HTTPRoute/default/r${i}`, { kind: 'HTTPRoute', metadata: { name: `r${i}`, generation: 1 } });
  w.enqueue([0, 1, 2, 3, 4].map(route), cur);
  await until('first route written', () => w.writes === 1);
  w.enqueue([ours(2)], cur);
  await until('six writes', () => w.writes === 6);
  const order = reqs.map((r) => r.url.split('/')[7]);
  // the first route went out with the one token there was; the Gateway queued after it
  // and after the other four routes comes next
  expect(order).toEqual(['r0', 'gw', 'r1', 'r2', 'r3', 'r4']);
  w.close();
});

test('our own write is not repeated from an informer copy that predates it, and its watch event is recognised', async () => {
  const w = new StatusWriter(kc, silentLogger());
  const before = copyAt('7');
  w.enqueue([ours(2)], before);
  await until('written', () => w.writes === 1);
  expect(w.ownWrite('Gateway/default/gw', '101')).toBe(true);
  expect(w.ownWrite('Gateway/default/gw', '7')).toBe(false);
  // a translation before the watch event arrived: same status, a later lastTransitionTime
  const later = ours(2);
  (later.status.conditions as Record<string, unknown>[])[0].lastTransitionTime = '2026-01-01T00:00:09Z';
  w.enqueue([later], before);
  await new Promise((r) => setTimeout(r, 100));
  expect(reqs.length).toBe(1);
  expect(w.inFlightSkips).toBe(1);
  // a different status from the same old copy is written on top of our own write: the copy
  // differs from the object at 101 only by the status we wrote there
  const other = withReason('Other');
  w.enqueue([other], before);
  await until('second write', () => w.writes === 2);
  expect(reqs[1].body).toMatchObject({ metadata: { resourceVersion: '101' } });
  // the informer caught up with the first write only: still our chain, on top of the second
  const third = withReason('Third');
  const at101 = copyAt('101', ours(2).status);
  w.enqueue([third], at101);
  await until('third write', () => w.writes === 3);
  expect(reqs[2].body).toMatchObject({ metadata: { resourceVersion: '102' } });
  // someone else wrote the object (a resourceVersion not of our writes): its own is the precondition
  const fourth = withReason('Fourth');
  const theirs = copyAt('555', third.status);
  w.enqueue([fourth], theirs);
  await until('fourth write', () => w.writes === 4);
  expect(reqs[3].body).toMatchObject({ metadata: { resourceVersion: '555' } });
  // once deleted, the object's history is forgotten
  w.forget('Gateway/default/gw');
  expect(w.ownWrite('Gateway/default/gw', '104')).toBe(false);
  w.close();
});

test("a watch event that arrives before our write's response is held until the response names its resourceVersion", async () => {
  const w = new StatusWriter(kc, silentLogger());
  delayMs = 200;
  w.enqueue([ours(2)], current(2));
  await until('write sent', () => reqs.length === 1);
  const calls: string[] = [];
  // the watch brings two versions while the response is on its way: ours (101) and another
  expect(w.ownWrite('Gateway/default/gw', '101', () => calls.push('101'))).toBe(true);
  expect(w.ownWrite('Gateway/default/gw', '555', () => calls.push('555'))).toBe(true);
  // another object is not being written: not ours
  expect(w.ownWrite('Gateway/default/other', '101', () => calls.push('other'))).toBe(false);
  await until('written', () => w.writes === 1);
  expect(calls).toEqual(['555']);
  // a failed write: every event held meanwhile is someone else's
  answers = [500];
  w.enqueue([ours(3)], current(3));
  await until('second write sent', () => reqs.length === 2);
  expect(w.ownWrite('Gateway/default/gw', '777', () => calls.push('777'))).toBe(true);
  await until('failed', () => w.failures === 1);
  expect(calls).toEqual(['555', '777']);
  w.close();
});

test('a status queued while our previous write is in flight is written on top of that write (its precondition is chosen at write time)', async () => {
  const w = new StatusWriter(kc, silentLogger());
  delayMs = 150;
  const copy = copyAt('7');
  w.enqueue([ours(2)], copy);
  await until('first write sent', () => reqs.length === 1);
  // a translation from the same informer copy while the write is on its way
  const next = withReason('Next');
  w.enqueue([next], copy);
  await until('two writes', () => w.writes === 2);
  expect(reqs[0].body).toMatchObject({ metadata: { resourceVersion: '7' } });
  expect(reqs[1].body).toMatchObject({ metadata: { resourceVersion: '101' } });
  expect(w.conflicts).toBe(0);
  w.close();
});

test('a Gateway is written at most once per interval: its newest status waits, routes go first', async () => {
  const w = new StatusWriter(kc, silentLogger(), 100, 100, 300);
  const cur = current(2);
  cur.set('HTTPRoute/default/r0', { kind: 'HTTPRoute', metadata: { name: 'r0', generation: 1 } });
  w.enqueue([ours(2)], cur);
  await until('Gateway written', () => w.writes === 1);
  // two newer Gateway statuses in a row (each route changes its attachedRoutes, its summary)
  for (const reason of ['Second', 'Third']) {
    const g = ours(2);
    (g.status.conditions as Record<string, unknown>[])[0].reason = reason;
    w.enqueue([g], cur);
  }
  w.enqueue([route(0)], cur);
  await until('route and Gateway written', () => w.writes === 3);
  expect(reqs.map((r) => r.url.split('/')[7])).toEqual(['gw', 'r0', 'gw']);
  // the newest Gateway status only, once the interval was over
  expect((reqs[2].body as { status: { conditions: { reason: string }[] } }).status.conditions[0].reason).toBe(
    'Third',
  );
  w.close();
});

test('a status equal to an informer copy older than our own later write is written (the object has our later one)', async () => {
  const w = new StatusWriter(kc, silentLogger(), 100, 100, 0);
  const c0 = copyAt('7');
  const ready = ours(2);
  w.enqueue([ready], c0);
  await until('first write', () => w.writes === 1);
  // a route edit: the Gateway goes back to Proving, written on top of our first write
  const proving = withReason('Proving');
  w.enqueue([proving], c0);
  await until('second write', () => w.writes === 2);
  // the informer now brings our first write (rv 101, status `ready`); the route turns Ready
  // again: the same status as that copy, but the object has `proving` since 102
  const c101 = copyAt('101', ready.status);
  const readyAgain = ours(2);
  w.enqueue([readyAgain], c101);
  await until('third write', () => w.writes === 3);
  expect(reqs[2].body).toEqual({ metadata: { resourceVersion: '102' }, status: readyAgain.status });
  w.close();
});
