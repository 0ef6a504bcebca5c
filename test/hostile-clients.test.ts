/**
 * Hostile ADS clients: unknown type URL, no node, unknown group, a stream reset mid-push, a
 * flood of requests. Each is logged and counted, its stream closed or its request ignored,
 * and a well-behaved client on the same server is unaffected throughout.
 */
import * as grpc from '@grpc/grpc-js';
import { startApp } from '../src/app.js';
import type { App } from '../src/app.js';
import { silentLogger } from '../src/log.js';
import { Snapshot } from '../src/xds/cache/snapshot.js';
import { TypeUrl } from '../src/xds/resource.js';
import { cla, cluster, res } from '../e2e/harness/resources.js';
import { AdsClient, names } from './harness/adsclient.js';
import type { SotwStream } from './harness/adsclient.js';

const GROUP = 'default/gw';
let app: App;
let client: AdsClient;
let good: SotwStream;
let goodVersion = '';

const errors = (reason: string) => app.metrics.value('signalbox_xds_stream_errors_total', { reason });

beforeEach(async () => {
  app = await startApp({ log: silentLogger(), xdsAddress: '127.0.0.1:0', maxRequestsPerSecond: 200 });
  app.cache.setSnapshot(
    GROUP,
    new Snapshot([
      res(TypeUrl.Cluster, cluster('a')),
      res(TypeUrl.Endpoint, cla('a', [{ host: '127.0.0.9', port: 1 }])),
    ]),
  );
  client = new AdsClient(app.xdsPort);
  good = client.sotw();
  good.send({ node: { id: 'good', cluster: GROUP }, type_url: TypeUrl.Cluster });
  const r = await good.next();
  goodVersion = r.version_info;
  good.send({ type_url: TypeUrl.Cluster, version_info: r.version_info, response_nonce: r.nonce });
});

afterEach(async () => {
  good.cancel();
  client.close();
  await app.close();
});

/** The good client still gets pushes and its ACKs are recorded. */
async function goodStillServed(): Promise<void> {
  app.cache.setSnapshot(
    GROUP,
    new Snapshot([
      res(TypeUrl.Cluster, cluster('a')),
      res(TypeUrl.Cluster, cluster('b')),
      res(TypeUrl.Endpoint, cla('a', [{ host: '127.0.0.9', port: 1 }])),
    ]),
  );
  const r = await good.next();
  expect(names(r)).toEqual(['a', 'b']);
  expect(r.version_info).not.toBe(goodVersion);
  good.send({ type_url: TypeUrl.Cluster, version_info: r.version_info, response_nonce: r.nonce });
  await new Promise((x) => setTimeout(x, 50));
  expect(app.cache.ledger.get('good')?.types.get(TypeUrl.Cluster)?.acked?.version).toBe(r.version_info);
  expect(app.cache.ledger.get('good')?.connected).toBe(true);
}

test('unknown type URL: ignored and counted, the stream stays usable', async () => {
  const s = client.sotw();
  s.send({ node: { id: 'odd', cluster: GROUP }, type_url: 'type.googleapis.com/no.such.Type' });
  expect(await s.quiet(300)).toBe(true);
  expect(await errors('unknown_type')).toBe(1);
  s.send({ type_url: TypeUrl.Cluster });
  expect(names(await s.next())).toEqual(['a']);
  s.cancel();
  await goodStillServed();
});

test('no node on the first request: the stream is closed with INVALID_ARGUMENT and counted', async () => {
  const s = client.sotw();
  s.send({ type_url: TypeUrl.Cluster });
  const end = await s.closedWith();
  expect(end.code).toBe(grpc.status.INVALID_ARGUMENT);
  expect(end.details).toMatch(/node\.id/);
  const d = client.delta();
  d.send({ node: { id: 'x' }, type_url: TypeUrl.Cluster });
  const dend = await d.closedWith();
  expect(dend.code).toBe(grpc.status.INVALID_ARGUMENT);
  expect(dend.details).toMatch(/node\.cluster/);
  expect(await errors('no_node')).toBe(2);
  await goodStillServed();
});

test('unknown group: counted, served an empty configuration, others unaffected', async () => {
  const s = client.sotw();
  s.send({ node: { id: 'stray', cluster: 'nobody/nothing' }, type_url: TypeUrl.Cluster });
  const r = await s.next();
  expect(r.resources).toEqual([]);
  expect(await errors('unknown_group')).toBe(1);
  await goodStillServed();
  s.cancel();
});

test('stream reset mid-push: the node is marked disconnected, the gauge drops, others unaffected', async () => {
  const s = client.sotw();
  s.send({ node: { id: 'flaky', cluster: GROUP }, type_url: TypeUrl.Cluster });
  await s.next(); // a response is now in flight, never ACKed
  expect(await app.metrics.value('signalbox_xds_connected_nodes', { mode: 'sotw' })).toBe(2);
  s.cancel();
  for (let i = 0; i < 50 && app.cache.ledger.get('flaky')?.connected; i++)
    await new Promise((x) => setTimeout(x, 20));
  expect(app.cache.ledger.get('flaky')?.connected).toBe(false);
  expect(await app.metrics.value('signalbox_xds_connected_nodes', { mode: 'sotw' })).toBe(1);
  await goodStillServed();
});

test('flood of requests: the stream is closed with RESOURCE_EXHAUSTED and counted', async () => {
  const s = client.sotw();
  s.send({ node: { id: 'flood', cluster: GROUP }, type_url: TypeUrl.Cluster });
  for (let i = 0; i < 1000; i++) s.send({ type_url: TypeUrl.Cluster, response_nonce: 'junk' });
  const end = await s.closedWith();
  expect(end.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
  expect(await errors('flood')).toBe(1);
  expect(app.cache.ledger.get('flood')?.connected).toBe(false);
  await goodStillServed();
});
