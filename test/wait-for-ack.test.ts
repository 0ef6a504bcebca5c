/**
 * The API the readiness layer builds on: resolve when a node has ACKed a version of type T
 * that contains resource R (at a given content hash), or report the NACK with Envoy's text.
 */
import { startApp } from '../src/app.js';
import type { App } from '../src/app.js';
import { silentLogger } from '../src/log.js';
import { Snapshot } from '../src/xds/cache/snapshot.js';
import { TypeUrl } from '../src/xds/resource.js';
import { cluster, res } from '../e2e/harness/resources.js';
import { AdsClient } from './harness/adsclient.js';

let app: App;
let client: AdsClient;

beforeEach(async () => {
  app = await startApp({ log: silentLogger(), xdsAddress: '127.0.0.1:0' });
  client = new AdsClient(app.xdsPort);
});
afterEach(async () => {
  client.close();
  await app.close();
});

test('acked: resolves once every node of the group ACKed the resource at that hash', async () => {
  const v1 = new Snapshot([res(TypeUrl.Cluster, cluster('a'))]);
  app.cache.setSnapshot('default/gw', v1);
  const streams = ['e1', 'e2'].map((id) => {
    const s = client.sotw();
    s.send({ node: { id, cluster: 'default/gw' }, type_url: TypeUrl.Cluster });
    return s;
  });
  const first = await Promise.all(streams.map((s) => s.next()));
  for (const [i, s] of streams.entries()) {
    s.send({
      type_url: TypeUrl.Cluster,
      version_info: first[i].version_info,
      response_nonce: first[i].nonce,
    });
  }
  const v2 = new Snapshot([res(TypeUrl.Cluster, cluster('a', { connect_timeout: '3s' }))]);
  const h2 = v2.get(TypeUrl.Cluster).get('a')?.hash as string;
  await new Promise((r) => setTimeout(r, 50));
  app.cache.setSnapshot('default/gw', v2);
  let settled = false;
  const all = app.cache.waitForGroupAck('default/gw', TypeUrl.Cluster, 'a', h2, 5000).then((x) => {
    settled = true;
    return x;
  });
  const second = await Promise.all(streams.map((s) => s.next()));
  streams[0].send({
    type_url: TypeUrl.Cluster,
    version_info: second[0].version_info,
    response_nonce: second[0].nonce,
  });
  await new Promise((r) => setTimeout(r, 100));
  expect(settled).toBe(false); // e2 has not ACKed yet
  streams[1].send({
    type_url: TypeUrl.Cluster,
    version_info: second[1].version_info,
    response_nonce: second[1].nonce,
  });
  const out = await all;
  expect(out.map((o) => [o.node, o.outcome])).toEqual([
    ['e1', 'acked'],
    ['e2', 'acked'],
  ]);
  // already ACKed: resolves at once
  expect((await app.cache.waitForAck('e1', TypeUrl.Cluster, 'a', h2, 10)).outcome).toBe('acked');
  for (const s of streams) s.cancel();
});

test('nacked: reports the NACK with the error text; timeout and disconnect are reported too', async () => {
  const v1 = new Snapshot([res(TypeUrl.Cluster, cluster('a'))]);
  const h1 = v1.get(TypeUrl.Cluster).get('a')?.hash as string;
  app.cache.setSnapshot('default/gw', v1);
  const s = client.sotw();
  s.send({ node: { id: 'e1', cluster: 'default/gw' }, type_url: TypeUrl.Cluster });
  const r = await s.next();
  const wait = app.cache.waitForAck('e1', TypeUrl.Cluster, 'a', h1, 5000);
  s.send({
    type_url: TypeUrl.Cluster,
    version_info: '',
    response_nonce: r.nonce,
    error_detail: { code: 3, message: 'cluster a: nope' },
  });
  expect(await wait).toMatchObject({
    node: 'e1',
    outcome: 'nacked',
    version: r.version_info,
    error: 'cluster a: nope',
  });
  expect((await app.cache.waitForAck('e1', TypeUrl.Cluster, 'a', 'other-hash', 50)).outcome).toBe('timeout');
  const gone = app.cache.waitForAck('e1', TypeUrl.Cluster, 'a', 'other-hash', 5000);
  s.cancel();
  expect((await gone).outcome).toBe('disconnected');
});
