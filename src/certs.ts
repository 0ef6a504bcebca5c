/**
 * `signalbox certs`: a private CA for the xDS connection, the ADS server certificate and one
 * client certificate per Gateway (mTLS between Envoy and signalbox).
 *
 * Keys are EC P-256 (what Envoy/BoringSSL and node's TLS both accept), signed ECDSA-SHA256.
 * An existing CA in the output folder (ca.crt + ca.key) is reused, so certificates issued
 * earlier stay valid; otherwise a new CA is made. Files (PEM):
 *
 *   ca.crt, ca.key                         the CA (keep ca.key away from the cluster)
 *   server.crt, server.key                 ADS server: DNS/IP SANs, serverAuth
 *   gateway-<namespace>_<name>.crt/.key    client: URI SAN spiffe://signalbox/gateway/<namespace>/<name>, clientAuth
 *
 * X.509 generation: @peculiar/x509 on node's WebCrypto (it needs the reflect-metadata
 * polyfill, loaded here; the CLI imports this module only for `signalbox certs`).
 */
import 'reflect-metadata';
import { createPrivateKey, webcrypto } from 'node:crypto';
import type { webcrypto as wc } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import { gatewayUri } from './xds/server/identity.js';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
const subtle = webcrypto.subtle;

/** SANs of the server certificate when none are given. */
export const DEFAULT_SERVER_DNS = [
  'localhost',
  'signalbox.signalbox-system.svc',
  'signalbox.signalbox-system.svc.cluster.local',
];
export const DEFAULT_SERVER_IPS = ['127.0.0.1'];

const EC = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const ECDSA_SHA256 = { name: 'ECDSA', hash: 'SHA-256' } as const;

export interface CertsOptions {
  /** output folder (created if missing) */
  out: string;
  /** DNS SANs of the server certificate (default DEFAULT_SERVER_DNS when no dns or ip given) */
  dns?: string[];
  /** IP SANs of the server certificate (default DEFAULT_SERVER_IPS when no dns or ip given) */
  ips?: string[];
  /** issue the server certificate (default true) */
  server?: boolean;
  /** `<namespace>/<gateway-name>` of each client certificate to issue */
  gateways?: string[];
  /** validity of server and client certificates, days (default 365) */
  days?: number;
  /** validity of a new CA, days (default 3650) */
  caDays?: number;
}

export interface IssuedFile {
  cert: string;
  key: string;
}

export interface Issued {
  ca: IssuedFile & { reused: boolean };
  server?: IssuedFile & { dns: string[]; ips: string[] };
  gateways: (IssuedFile & { gateway: string; uri: string })[];
}

/** The file stem of a Gateway's client certificate: gateway-<namespace>_<name>. */
export function gatewayFileStem(group: string): string {
  gatewayUri(group); // validates
  const [ns, name] = group.split('/');
  return `gateway-${ns}_${name}`;
}

interface Ca {
  cert: x509.X509Certificate;
  key: wc.CryptoKey;
  signingAlgorithm: wc.Algorithm | wc.EcdsaParams;
}

const DAY = 24 * 3600 * 1000;

function validity(days: number): { notBefore: Date; notAfter: Date } {
  const now = Date.now();
  // a few minutes back: a peer whose clock is slightly behind still accepts it
  return { notBefore: new Date(now - 5 * 60 * 1000), notAfter: new Date(now + days * DAY) };
}

async function pkcs8Pem(key: wc.CryptoKey): Promise<string> {
  return x509.PemConverter.encode(await subtle.exportKey('pkcs8', key), 'PRIVATE KEY') + '\n';
}

function writeKey(path: string, pem: string): void {
  writeFileSync(path, pem, { mode: 0o600 });
  chmodSync(path, 0o600);
}

/** Load ca.crt + ca.key (EC P-256/P-384 or RSA) from dir. */
async function loadCa(certPath: string, keyPath: string): Promise<Ca> {
  const cert = new x509.X509Certificate(readFileSync(certPath, 'utf8'));
  const ko = createPrivateKey(readFileSync(keyPath));
  const der = ko.export({ type: 'pkcs8', format: 'der' });
  let alg: wc.RsaHashedImportParams | wc.EcKeyImportParams;
  let signingAlgorithm: wc.Algorithm | wc.EcdsaParams;
  if (ko.asymmetricKeyType === 'ec') {
    const curve = ko.asymmetricKeyDetails?.namedCurve;
    const namedCurve = curve === 'prime256v1' ? 'P-256' : curve === 'secp384r1' ? 'P-384' : undefined;
    if (!namedCurve) throw new Error(`${keyPath}: unsupported EC curve ${String(curve)}`);
    alg = { name: 'ECDSA', namedCurve };
    signingAlgorithm = {
      name: 'ECDSA',
      hash: namedCurve === 'P-384' ? 'SHA-384' : 'SHA-256',
    } as wc.EcdsaParams;
  } else if (ko.asymmetricKeyType === 'rsa') {
    alg = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
    signingAlgorithm = { name: 'RSASSA-PKCS1-v1_5' };
  } else {
    throw new Error(`${keyPath}: unsupported key type ${String(ko.asymmetricKeyType)}`);
  }
  const key = await subtle.importKey('pkcs8', der, alg, false, ['sign']);
  // the key must be the certificate's
  const pub = await cert.publicKey.export(alg, ['verify']);
  const probe = new Uint8Array([1, 2, 3]);
  const sig = await subtle.sign(signingAlgorithm, key, probe);
  if (!(await subtle.verify(signingAlgorithm, pub, sig, probe)))
    throw new Error(`${keyPath} is not the key of ${certPath}`);
  return { cert, key, signingAlgorithm };
}

async function newCa(days: number): Promise<{ ca: Ca; keyPem: string }> {
  const keys = await subtle.generateKey(EC, true, ['sign', 'verify']);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    name: 'CN=signalbox xDS CA, O=signalbox',
    keys,
    signingAlgorithm: ECDSA_SHA256,
    ...validity(days),
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return {
    ca: { cert, key: keys.privateKey, signingAlgorithm: ECDSA_SHA256 },
    keyPem: await pkcs8Pem(keys.privateKey),
  };
}

async function leaf(
  ca: Ca,
  subject: string,
  names: x509.JsonGeneralName[],
  usage: x509.ExtendedKeyUsage,
  days: number,
): Promise<{ cert: string; key: string }> {
  const keys = await subtle.generateKey(EC, true, ['sign', 'verify']);
  const cert = await x509.X509CertificateGenerator.create({
    subject,
    issuer: ca.cert.subject,
    publicKey: keys.publicKey,
    signingKey: ca.key,
    signingAlgorithm: ca.signingAlgorithm,
    ...validity(days),
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([usage]),
      new x509.SubjectAlternativeNameExtension(names),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(ca.cert.publicKey),
    ],
  });
  return { cert: cert.toString('pem') + '\n', key: await pkcs8Pem(keys.privateKey) };
}

/** Issue (or reuse) the CA, then the server and client certificates asked for; write PEM files to o.out. */
export async function issueCerts(o: CertsOptions): Promise<Issued> {
  const days = o.days ?? 365;
  const gateways = o.gateways ?? [];
  for (const g of gateways) gatewayUri(g); // fail before writing anything
  let dns = o.dns ?? [];
  let ips = o.ips ?? [];
  for (const ip of ips) if (!isIP(ip)) throw new Error(`"${ip}" is not an IP address`);
  for (const d of dns)
    if (isIP(d) || !/^(\*\.)?[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?$/.test(d))
      throw new Error(`"${d}" is not a DNS name`);
  if (dns.length === 0 && ips.length === 0) {
    dns = DEFAULT_SERVER_DNS;
    ips = DEFAULT_SERVER_IPS;
  }
  mkdirSync(o.out, { recursive: true });
  const caCert = join(o.out, 'ca.crt');
  const caKey = join(o.out, 'ca.key');
  let ca: Ca;
  let reused = false;
  if (existsSync(caCert) && existsSync(caKey)) {
    ca = await loadCa(caCert, caKey);
    reused = true;
  } else if (existsSync(caCert) || existsSync(caKey)) {
    throw new Error(`${o.out} has only one of ca.crt and ca.key: remove it or supply both`);
  } else {
    const made = await newCa(o.caDays ?? 3650);
    ca = made.ca;
    writeKey(caKey, made.keyPem);
    writeFileSync(caCert, made.ca.cert.toString('pem') + '\n');
  }
  const issued: Issued = { ca: { cert: caCert, key: caKey, reused }, gateways: [] };
  if (o.server ?? true) {
    const names: x509.JsonGeneralName[] = [
      ...dns.map((value) => ({ type: 'dns' as const, value })),
      ...ips.map((value) => ({ type: 'ip' as const, value })),
    ];
    const s = await leaf(
      ca,
      `CN=${dns[0] ?? ips[0]}, O=signalbox`,
      names,
      x509.ExtendedKeyUsage.serverAuth,
      days,
    );
    const cert = join(o.out, 'server.crt');
    const key = join(o.out, 'server.key');
    writeKey(key, s.key);
    writeFileSync(cert, s.cert);
    issued.server = { cert, key, dns, ips };
  }
  for (const g of gateways) {
    const uri = gatewayUri(g);
    const c = await leaf(
      ca,
      `CN=${g.replace('/', '.')}, OU=gateway, O=signalbox`,
      [{ type: 'url', value: uri }],
      x509.ExtendedKeyUsage.clientAuth,
      days,
    );
    const stem = gatewayFileStem(g);
    const cert = join(o.out, `${stem}.crt`);
    const key = join(o.out, `${stem}.key`);
    writeKey(key, c.key);
    writeFileSync(cert, c.cert);
    issued.gateways.push({ gateway: g, uri, cert, key });
  }
  return issued;
}
