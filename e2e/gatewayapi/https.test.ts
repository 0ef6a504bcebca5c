/**
 * HTTPS listeners through a real Envoy fed over ADS (certificates delivered by SDS): a
 * filter chain per SNI hostname with its own certificate, a listener with an RSA and an
 * ECDSA certificate (Envoy picks by what the client accepts), a certificate Secret in
 * another namespace allowed by a ReferenceGrant.
 */
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import type { PeerCertificate, TLSSocket } from 'node:tls';
import { startApp } from '../../src/app.js';
import type { App } from '../../src/app.js';
import { translate } from '../../src/gatewayapi/translator.js';
import { silentLogger } from '../../src/log.js';
import { protoRegistry } from '../../src/xds/proto.js';
import { snapshots } from '../../src/xds/translate/index.js';
import { Envoy, freePort, waitFor } from '../harness/envoy.js';
import { echoBackend } from './servers.js';
import type { TestBackend } from './servers.js';
import { gateway, gatewayClass } from '../harness/gateway-objects.js';

const G = 'gateway.networking.k8s.io/v1';
const certs = 'test/gatewayapi/testdata/certs';
const b64 = (f: string) => readFileSync(`${certs}/${f}`).toString('base64');
const secret = (ns: string, name: string, c: string) => ({
  apiVersion: 'v1',
  kind: 'Secret',
  metadata: { namespace: ns, name },
  type: 'kubernetes.io/tls',
  data: { 'tls.crt': b64(`${c}.crt`), 'tls.key': b64(`${c}.key`) },
});

interface TlsReply {
  status: number;
  backend: string;
  cert: PeerCertificate;
}

function get(port: number, servername: string, sigalgs?: string): Promise<TlsReply> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path: '/',
        servername,
        headers: { host: servername, connection: 'close' },
        rejectUnauthorized: false,
        agent: false,
        ...(sigalgs ? { sigalgs, maxVersion: 'TLSv1.3' as const } : {}),
      },
      (res) => {
        const cert = (res.socket as TLSSocket).getPeerCertificate();
        res.resume();
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, backend: String(res.headers['x-backend'] ?? ''), cert }),
        );
      },
    );
    req.setTimeout(5000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

describe('HTTPS listeners through Envoy', () => {
  let app: App;
  let envoy: Envoy;
  let a: TestBackend;
  let bk: TestBackend;
  let sni: number;
  let dual: number;

  beforeAll(async () => {
    a = await echoBackend('tls-a', '127.0.0.2');
    bk = await echoBackend('tls-b', '127.0.0.3');
    sni = await freePort();
    dual = await freePort();
    const svc = (name: string, be: TestBackend) => [
      {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { namespace: 'default', name },
        spec: { ports: [{ name: 'p', port: 80 }] },
      },
      {
        apiVersion: 'discovery.k8s.io/v1',
        kind: 'EndpointSlice',
        metadata: { namespace: 'default', name: `${name}-1`, labels: { 'kubernetes.io/service-name': name } },
        addressType: 'IPv4',
        ports: [{ name: 'p', port: be.port }],
        endpoints: [{ addresses: [be.host] }],
      },
    ];
    const objects = [
      gatewayClass(),
      gateway([
        {
          name: 'example',
          protocol: 'HTTPS',
          port: sni,
          hostname: '*.example.com',
          tls: { certificateRefs: [{ name: 'example' }] },
        },
        {
          name: 'other',
          protocol: 'HTTPS',
          port: sni,
          hostname: 'other.org',
          tls: { certificateRefs: [{ name: 'other', namespace: 'certs' }] },
        },
        {
          name: 'dual',
          protocol: 'HTTPS',
          port: dual,
          tls: { certificateRefs: [{ name: 'example' }, { name: 'ec' }] },
        },
      ]),
      secret('default', 'example', 'rsa'),
      secret('default', 'ec', 'ec'),
      secret('certs', 'other', 'other'),
      {
        apiVersion: G,
        kind: 'ReferenceGrant',
        metadata: { namespace: 'certs', name: 'gw-certs' },
        spec: {
          from: [{ group: 'gateway.networking.k8s.io', kind: 'Gateway', namespace: 'default' }],
          to: [{ group: '', kind: 'Secret' }],
        },
      },
      ...svc('svc-a', a),
      ...svc('svc-b', bk),
      {
        apiVersion: G,
        kind: 'HTTPRoute',
        metadata: { namespace: 'default', name: 'example' },
        spec: {
          parentRefs: [
            { name: 'gw', sectionName: 'example' },
            { name: 'gw', sectionName: 'dual' },
          ],
          rules: [{ backendRefs: [{ name: 'svc-a', port: 80 }] }],
        },
      },
      {
        apiVersion: G,
        kind: 'HTTPRoute',
        metadata: { namespace: 'default', name: 'other' },
        spec: {
          parentRefs: [{ name: 'gw', sectionName: 'other' }],
          rules: [{ backendRefs: [{ name: 'svc-b', port: 80 }] }],
        },
      },
    ];
    const result = translate(objects, { now: '2026-01-01T00:00:00Z' });
    const gw = result.statuses.find((s) => s.kind === 'Gateway')!;
    expect(JSON.stringify(gw.status)).not.toContain('"status":"False","reason":"RefNotPermitted"');
    app = await startApp({ log: silentLogger(), xdsAddress: '127.0.0.1:0' });
    app.cache.setSnapshot(
      'default/gw',
      snapshots(protoRegistry(), result.ir, { bindAddress: '127.0.0.1' }).get('default/gw')!,
    );
    envoy = await Envoy.start({ nodeId: 'gwapi-https-1', group: 'default/gw', xdsPort: app.xdsPort });
    await waitFor(
      'HTTPS through Envoy',
      async () => (await get(sni, 'www.example.com')).status === 200,
      30_000,
    );
  }, 60_000);

  afterAll(async () => {
    await envoy?.stop();
    await app?.close();
    await a?.close();
    await bk?.close();
  });

  test('SNI picks the listener: its certificate and its routes', async () => {
    const ex = await get(sni, 'www.example.com');
    expect(ex.cert.subject.CN).toBe('example.com');
    expect(ex.backend).toBe('tls-a');
    const other = await get(sni, 'other.org');
    expect(other.cert.subject.CN).toBe('other.org'); // Secret from another namespace, granted
    expect(other.backend).toBe('tls-b');
  });

  test('an SNI name no listener serves is refused', async () => {
    await expect(get(sni, 'nobody.test')).rejects.toThrow();
  });

  test('a listener with RSA and ECDSA certificates serves the one the client can verify', async () => {
    const ec = await get(dual, 'www.example.com', 'ecdsa_secp256r1_sha256');
    expect(ec.cert.asn1Curve ?? ec.cert.nistCurve).toBeTruthy();
    expect(ec.backend).toBe('tls-a');
    const rsa = await get(dual, 'www.example.com', 'rsa_pss_rsae_sha256:rsa_pkcs1_sha256');
    expect(rsa.cert.modulus).toBeTruthy();
    expect(rsa.cert.asn1Curve).toBeUndefined();
  });
});
