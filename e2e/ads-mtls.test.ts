/**
 * ADS over mTLS with real stock Envoy and the real CLI: certificates from `signalbox certs`,
 * signalbox `serve --xds-tls-cert/--xds-tls-key/--xds-client-ca`, Envoys bootstrapped by
 * `signalbox bootstrap --tls-*` with the client certificate of Gateway default/a get
 * default/a's configuration (traffic flows; SotW checking the server's IP SAN, delta its DNS
 * SAN through --tls-server-name). An Envoy and a gRPC client holding default/a's certificate
 * but claiming default/b are refused (PERMISSION_DENIED, counted as unauthorized); a
 * plaintext client gets no stream at all.
 */
import * as grpc from '@grpc/grpc-js';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { TypeUrl } from '../src/xds/resource.js';
import { SOTW_PATH } from '../src/xds/server/codec.js';
import { SotwStream, adsCodec } from '../test/harness/adsclient.js';
import { get, startBackend } from './harness/backend.js';
import type { Backend } from './harness/backend.js';
import { Envoy, dumpVersions, freePort, waitFor } from './harness/envoy.js';
import { cla, cluster, listener, route } from './harness/resources.js';
import { CLI, SignalboxProcess } from './harness/signalbox.js';

const cli = (args: string[]) => execFileSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });

describe('ADS over mTLS with real Envoy', () => {
  let dir: string;
  let certs: string;
  let backend: Backend;
  let sb: SignalboxProcess;
  let xdsPort: number;
  let healthPort: number;
  let portA: number;
  const envoys: Envoy[] = [];
  const clients: grpc.Client[] = [];

  const unauthorized = async () => {
    const txt = await (await fetch(`http://127.0.0.1:${sb.debugPort}/metrics`)).text();
    const m = /^signalbox_xds_stream_errors_total\{reason="unauthorized"\} (\d+)$/m.exec(txt);
    return m ? Number(m[1]) : 0;
  };
  const tlsBootstrap =
    (nodeId: string, gateway: string, extra: string[] = []) =>
    (adminPort: number) =>
      cli([
        'bootstrap',
        '--node-id',
        nodeId,
        '--gateway',
        gateway,
        '--xds-address',
        `127.0.0.1:${xdsPort}`,
        '--admin-port',
        String(adminPort),
        '--tls-cert',
        join(certs, 'gateway-default_a.crt'),
        '--tls-key',
        join(certs, 'gateway-default_a.key'),
        '--tls-ca',
        join(certs, 'ca.crt'),
        ...extra,
      ]);
  const grpcStream = (creds: grpc.ChannelCredentials) => {
    const c = new grpc.Client(`127.0.0.1:${xdsPort}`, creds);
    clients.push(c);
    const codec = adsCodec();
    return new SotwStream(c.makeBidiStreamRequest(SOTW_PATH, codec.encodeRequest, codec.decodeResponse));
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'signalbox-mtls-e2e-'));
    certs = join(dir, 'certs');
    // certificates are made here, for this run only (never committed)
    const out = cli(['certs', '--out', certs, '--gateway', 'default/a']);
    expect(out).toContain('new CA');
    expect(cli(['certs', '--out', certs, '--gateway', 'default/b', '--no-server'])).toContain('reused CA');

    backend = await startBackend('backend-a', '127.0.0.2');
    portA = await freePort();
    const portB = await freePort();
    const envoyDir = join(dir, 'envoy');
    for (const [group, port] of [
      ['default/a', portA],
      ['default/b', portB],
    ] as const) {
      mkdirSync(join(envoyDir, group), { recursive: true });
      const docs = [
        { '@type': TypeUrl.Listener, ...listener('http', port, 'main') },
        { '@type': TypeUrl.Route, ...route('main', 'backend-a') },
        { '@type': TypeUrl.Cluster, ...cluster('backend-a') },
        { '@type': TypeUrl.Endpoint, ...cla('backend-a', [{ host: backend.host, port: backend.port }]) },
      ];
      writeFileSync(join(envoyDir, group, 'all.yaml'), docs.map((d) => stringify(d)).join('---\n'));
    }
    xdsPort = await freePort();
    healthPort = await freePort();
    sb = await SignalboxProcess.start(
      [
        '--envoy-dir',
        envoyDir,
        '--xds-address',
        `127.0.0.1:${xdsPort}`,
        '--health-address',
        `127.0.0.1:${healthPort}`,
        '--xds-tls-cert',
        join(certs, 'server.crt'),
        '--xds-tls-key',
        join(certs, 'server.key'),
        '--xds-client-ca',
        join(certs, 'ca.crt'),
        '--log-level',
        'warn',
      ],
      await freePort(),
    );
  });

  afterAll(async () => {
    for (const c of clients) c.close();
    for (const e of envoys) await e.stop();
    await sb?.kill();
    await backend?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test.each([
    ['sotw, server checked by its IP SAN', 'envoy-a-sotw', []],
    [
      'delta, server checked by its DNS SAN',
      'envoy-a-delta',
      ['--delta', '--tls-server-name', 'signalbox.signalbox-system.svc'],
    ],
  ])('Envoy with the certificate of default/a gets its configuration (%s)', async (_what, nodeId, extra) => {
    const boot = tlsBootstrap(nodeId, 'default/a', extra)(0);
    expect(boot).toContain('envoy.transport_sockets.tls');
    const envoy = await Envoy.start({
      nodeId,
      group: 'default/a',
      xdsPort,
      bootstrap: tlsBootstrap(nodeId, 'default/a', extra),
    });
    envoys.push(envoy);
    // this Envoy holds the listener (not another one sharing the port)
    await waitFor(
      "default/a's listener in this Envoy's config_dump",
      async () => dumpVersions(await envoy.configDump()).listeners.http,
      60_000,
    );
    await waitFor(
      'a 200 through the listener of default/a',
      async () => (await get(`http://127.0.0.1:${portA}/`)).status === 200,
      60_000,
    );
    const node = await waitFor('the node connected in the ledger', async () =>
      (await sb.json<{ id: string; connected: boolean }[]>('/debug/nodes')).find(
        (n) => n.id === nodeId && n.connected,
      ),
    );
    expect(node.connected).toBe(true);
    // the stream really is TLS: Envoy's xDS cluster counts a handshake
    const stats = await envoy.stats('cluster.signalbox_xds.ssl.handshake');
    expect(stats.get('cluster.signalbox_xds.ssl.handshake')).toBeGreaterThanOrEqual(1);
    await envoy.stop();
  });

  test('Envoy with the certificate of default/a claiming default/b is refused and gets nothing', async () => {
    const before = await unauthorized();
    const envoy = await Envoy.start({
      nodeId: 'envoy-claims-b',
      group: 'default/b',
      xdsPort,
      bootstrap: tlsBootstrap('envoy-claims-b', 'default/b'),
    });
    envoys.push(envoy);
    await waitFor('the refusal counted', async () => (await unauthorized()) > before, 60_000);
    const dump = JSON.stringify(await envoy.configDump());
    expect(dump).not.toContain('dynamic_listeners');
    expect(sb.logs).toMatch(/unauthorized/);
    const nodes = await sb.json<{ id: string }[]>('/debug/nodes');
    expect(nodes.map((n) => n.id)).not.toContain('envoy-claims-b');
    await envoy.stop();
  });

  test('a gRPC client with the certificate of default/a claiming default/b: PERMISSION_DENIED, counted', async () => {
    const before = await unauthorized();
    const s = grpcStream(
      grpc.credentials.createSsl(
        readFileSync(join(certs, 'ca.crt')),
        readFileSync(join(certs, 'gateway-default_a.key')),
        readFileSync(join(certs, 'gateway-default_a.crt')),
      ),
    );
    s.send({ node: { id: 'grpc-claims-b', cluster: 'default/b' }, type_url: TypeUrl.Cluster });
    const end = await s.closedWith(20_000);
    expect(end.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(end.details).toMatch(/default\/b.*certificate.*default\/a/);
    expect(s.received).toEqual([]);
    await waitFor('the counter moved', async () => (await unauthorized()) === before + 1);
  });

  test('a plaintext client gets no stream', async () => {
    const s = grpcStream(grpc.credentials.createInsecure());
    s.send({ node: { id: 'grpc-plaintext', cluster: 'default/a' }, type_url: TypeUrl.Cluster });
    const end = await s.closedWith(20_000);
    expect(end.code).toBe(grpc.status.UNAVAILABLE);
    expect(s.received).toEqual([]);
    const nodes = await sb.json<{ id: string }[]>('/debug/nodes');
    expect(nodes.map((n) => n.id)).not.toContain('grpc-plaintext');
  });

  test('the health port serves probes and metrics but no configuration', async () => {
    expect((await fetch(`http://127.0.0.1:${healthPort}/readyz`)).status).toBe(200);
    expect((await fetch(`http://127.0.0.1:${healthPort}/healthz`)).status).toBe(200);
    expect(await (await fetch(`http://127.0.0.1:${healthPort}/metrics`)).text()).toContain(
      'signalbox_xds_stream_errors_total',
    );
    expect((await fetch(`http://127.0.0.1:${healthPort}/debug/nodes`)).status).toBe(404);
  });
});
