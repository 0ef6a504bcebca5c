/**
 * `signalbox certs`: a CA, a server certificate with the SANs asked for (default: localhost,
 * 127.0.0.1 and the in-cluster Service names), per-Gateway client certificates whose URI SAN
 * the ADS server maps back to the Gateway; every certificate chains to the CA, and an
 * existing CA is reused.
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_SERVER_DNS, issueCerts } from '../src/certs.js';
import { groupsFromSubjectAltName, parseSubjectAltName } from '../src/xds/server/identity.js';

const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'signalbox-certs-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const cert = (f: string) => new X509Certificate(readFileSync(join(dir, f)));
const keyOf = (f: string) => createPrivateKey(readFileSync(join(dir, f)));

test('CA, server and client certificates: SANs, usages, keys, and the chain verifies', async () => {
  const r = await issueCerts({ out: dir, gateways: ['default/gw', 'team-a/edge.v2'] });
  expect(r.ca.reused).toBe(false);
  const ca = cert('ca.crt');
  expect(ca.ca).toBe(true);
  expect(ca.checkIssued(ca)).toBe(true);
  expect(ca.verify(ca.publicKey)).toBe(true);
  expect(ca.checkPrivateKey(keyOf('ca.key'))).toBe(true);

  const server = cert('server.crt');
  expect(server.ca).toBe(false);
  expect(server.checkIssued(ca)).toBe(true);
  expect(server.verify(ca.publicKey)).toBe(true);
  expect(server.checkPrivateKey(keyOf('server.key'))).toBe(true);
  expect(keyOf('server.key').asymmetricKeyType).toBe('ec');
  expect(keyOf('server.key').asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
  expect(server.keyUsage).toEqual([SERVER_AUTH]);
  const san = parseSubjectAltName(server.subjectAltName);
  expect(san).toEqual([
    ...DEFAULT_SERVER_DNS.map((value) => ({ type: 'DNS', value })),
    { type: 'IP Address', value: '127.0.0.1' },
  ]);
  expect(DEFAULT_SERVER_DNS).toEqual(expect.arrayContaining(['localhost', 'signalbox.signalbox-system.svc']));
  expect(server.checkHost('signalbox.signalbox-system.svc')).toBe('signalbox.signalbox-system.svc');
  expect(server.checkIP('127.0.0.1')).toBe('127.0.0.1');
  expect(server.checkHost('example.com')).toBeUndefined();

  for (const [g, file] of [
    ['default/gw', 'gateway-default_gw'],
    ['team-a/edge.v2', 'gateway-team-a_edge.v2'],
  ]) {
    const c = cert(`${file}.crt`);
    expect(c.ca).toBe(false);
    expect(c.checkIssued(ca)).toBe(true);
    expect(c.verify(ca.publicKey)).toBe(true);
    expect(c.checkPrivateKey(keyOf(`${file}.key`))).toBe(true);
    expect(c.keyUsage).toEqual([CLIENT_AUTH]);
    expect(c.subjectAltName).toBe(`URI:spiffe://signalbox/gateway/${g}`);
    // what the ADS server reads from the peer certificate
    expect([...groupsFromSubjectAltName(c.subjectAltName)]).toEqual([g]);
    expect(c.checkIssued(server)).toBe(false);
  }
  // keys are readable by their owner only
  for (const f of ['ca.key', 'server.key', 'gateway-default_gw.key'])
    expect(statSync(join(dir, f)).mode & 0o777).toBe(0o600);
  expect(r.gateways.map((g) => g.uri)).toEqual([
    'spiffe://signalbox/gateway/default/gw',
    'spiffe://signalbox/gateway/team-a/edge.v2',
  ]);
});

test('an existing CA is reused: certificates issued later chain to the same CA', async () => {
  await issueCerts({ out: dir, gateways: ['default/a'] });
  const caPem = readFileSync(join(dir, 'ca.crt'), 'utf8');
  const serverPem = readFileSync(join(dir, 'server.crt'), 'utf8');
  const r = await issueCerts({ out: dir, gateways: ['default/b'], server: false });
  expect(r.ca.reused).toBe(true);
  expect(r.server).toBeUndefined();
  expect(readFileSync(join(dir, 'ca.crt'), 'utf8')).toBe(caPem);
  expect(readFileSync(join(dir, 'server.crt'), 'utf8')).toBe(serverPem);
  const ca = cert('ca.crt');
  for (const f of ['gateway-default_a.crt', 'gateway-default_b.crt']) {
    expect(cert(f).checkIssued(ca)).toBe(true);
    expect(cert(f).verify(ca.publicKey)).toBe(true);
  }
});

test('server SANs from flags replace the defaults', async () => {
  await issueCerts({ out: dir, dns: ['xds.example.internal'], ips: ['127.0.0.7', '::1'] });
  const s = cert('server.crt');
  expect(parseSubjectAltName(s.subjectAltName)).toEqual([
    { type: 'DNS', value: 'xds.example.internal' },
    { type: 'IP Address', value: '127.0.0.7' },
    { type: 'IP Address', value: '0:0:0:0:0:0:0:1' },
  ]);
  expect(s.checkHost('localhost')).toBeUndefined();
});

test('bad input fails before anything is written', async () => {
  await expect(issueCerts({ out: dir, gateways: ['no-slash'] })).rejects.toThrow(/namespace/);
  await expect(issueCerts({ out: dir, gateways: ['a/b/c'] })).rejects.toThrow(/namespace/);
  await expect(issueCerts({ out: dir, ips: ['not-an-ip'] })).rejects.toThrow(/IP/);
  expect(() => statSync(join(dir, 'ca.crt'))).toThrow();
});

test('groupsFromSubjectAltName ignores other SANs and malformed gateway URIs', () => {
  expect([
    ...groupsFromSubjectAltName(
      'DNS:x, URI:spiffe://signalbox/gateway/ns/gw, URI:spiffe://other/gateway/ns/b, URI:spiffe://signalbox/gateway/a/b/c, URI:"spiffe://signalbox/gateway/q/r,s"',
    ),
  ]).toEqual(['ns/gw']);
  expect(groupsFromSubjectAltName(undefined).size).toBe(0);
});
