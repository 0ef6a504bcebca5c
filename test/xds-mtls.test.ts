/**
 * ADS over mTLS (in process): a client is served only the Gateway its certificate names; a
 * node claiming another Gateway is closed with PERMISSION_DENIED, logged and counted
 * (reason "unauthorized"); plaintext clients, clients without a certificate and clients
 * whose certificate another CA signed never get a stream.
 */
import * as grpc from '@grpc/grpc-js';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { startApp } from '../src/app.js';
import type { App } from '../src/app.js';
import { issueCerts } from '../src/certs.js';
import { Snapshot } from '../src/xds/cache/snapshot.js';
import { TypeUrl } from '../src/xds/resource.js';
import { SOTW_PATH } from '../src/xds/server/codec.js';
import { cluster, res } from '../e2e/harness/resources.js';
import { SotwStream, adsCodec, names } from './harness/adsclient.js';

let dir: string;
let other: string;
let app: App;
const logs: { level: number; msg: string; reason?: string }[] = [];
const clients: grpc.Client[] = [];
const pem = (d: string, f: string) => readFileSync(join(d, f));

function stream(creds: grpc.ChannelCredentials): SotwStream {
  const c = new grpc.Client(`127.0.0.1:${app.xdsPort}`, creds);
  clients.push(c);
  const codec = adsCodec();
  return new SotwStream(c.makeBidiStreamRequest(SOTW_PATH, codec.encodeRequest, codec.decodeResponse));
}
const asGateway = (d: string, stem: string) =>
  grpc.credentials.createSsl(pem(dir, 'ca.crt'), pem(d, `${stem}.key`), pem(d, `${stem}.crt`));
const errors = (reason: string) => app.metrics.value('signalbox_xds_stream_errors_total', { reason });

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'signalbox-mtls-'));
  other = mkdtempSync(join(tmpdir(), 'signalbox-mtls-other-'));
  await issueCerts({ out: dir, gateways: ['default/a', 'default/b'] });
  await issueCerts({ out: other, gateways: ['default/a'], server: false }); // another CA
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n')) if (line) logs.push(JSON.parse(line));
      cb();
    },
  });
  app = await startApp({
    log: pino({ level: 'info' }, sink),
    xdsAddress: '127.0.0.1:0',
    xdsTlsCert: join(dir, 'server.crt'),
    xdsTlsKey: join(dir, 'server.key'),
    xdsClientCa: join(dir, 'ca.crt'),
  });
  app.cache.setSnapshot('default/a', new Snapshot([res(TypeUrl.Cluster, cluster('a-backend'))]));
  app.cache.setSnapshot('default/b', new Snapshot([res(TypeUrl.Cluster, cluster('b-backend'))]));
});

afterAll(async () => {
  for (const c of clients) c.close();
  await app?.close();
  rmSync(dir, { recursive: true, force: true });
  rmSync(other, { recursive: true, force: true });
});

test("a client certificate for default/a is served default/a's configuration", async () => {
  const s = stream(asGateway(dir, 'gateway-default_a'));
  s.send({ node: { id: 'envoy-a', cluster: 'default/a' }, type_url: TypeUrl.Cluster });
  expect(names(await s.next(10_000))).toEqual(['a-backend']);
  expect(app.cache.ledger.get('envoy-a')?.connected).toBe(true);
  s.cancel();
});

test('the same certificate claiming default/b: PERMISSION_DENIED, logged and counted', async () => {
  const before = await errors('unauthorized');
  const s = stream(asGateway(dir, 'gateway-default_a'));
  s.send({ node: { id: 'envoy-sneaky', cluster: 'default/b' }, type_url: TypeUrl.Cluster });
  const end = await s.closedWith(10_000);
  expect(end.code).toBe(grpc.status.PERMISSION_DENIED);
  // names the Gateway claimed and the ones the certificate allows
  expect(end.details).toMatch(/default\/b.*certificate.*default\/a/);
  expect(s.received).toEqual([]);
  expect(await errors('unauthorized')).toBe(before + 1);
  expect(app.cache.ledger.get('envoy-sneaky')).toBeUndefined();
  expect(logs.some((l) => l.level === 40 && l.reason === 'unauthorized' && /default\/b/.test(l.msg))).toBe(
    true,
  );
});

test.each([
  ['plaintext', () => grpc.credentials.createInsecure()],
  ['TLS without a client certificate', () => grpc.credentials.createSsl(pem(dir, 'ca.crt'))],
  ['a client certificate of another CA', () => asGateway(other, 'gateway-default_a')],
])('%s: no stream, nothing served', async (_what, creds) => {
  const s = stream(creds());
  s.send({ node: { id: 'envoy-intruder', cluster: 'default/a' }, type_url: TypeUrl.Cluster });
  const end = await s.closedWith(10_000);
  expect(end.code).toBe(grpc.status.UNAVAILABLE);
  expect(s.received).toEqual([]);
  expect(app.cache.ledger.get('envoy-intruder')).toBeUndefined();
});
