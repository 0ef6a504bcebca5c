/**
 * The debug endpoint as an operator uses it: nodes with their per-type sent / ACKed /
 * NACKed state, snapshots and their versions, one group's resources with Anys unpacked and
 * private keys redacted, health, readiness and Prometheus metrics.
 */
import { startApp } from '../src/app.js';
import type { App } from '../src/app.js';
import { silentLogger } from '../src/log.js';
import { Snapshot } from '../src/xds/cache/snapshot.js';
import { TypeUrl } from '../src/xds/resource.js';
import { cla, cluster, listener, res } from '../e2e/harness/resources.js';
import { AdsClient } from './harness/adsclient.js';

let app: App;
let client: AdsClient;
const base = () => `http://127.0.0.1:${app.debugPort}`;
const getJson = async <T>(p: string): Promise<T> => (await (await fetch(base() + p)).json()) as T;

beforeAll(async () => {
  app = await startApp({ log: silentLogger(), xdsAddress: '127.0.0.1:0', debugAddress: '127.0.0.1:0' });
  app.cache.setSnapshot(
    'default/gw',
    new Snapshot([
      res(TypeUrl.Listener, listener('http', 10080, 'main')),
      res(TypeUrl.Cluster, cluster('a')),
      res(TypeUrl.Endpoint, cla('a', [{ host: '127.0.0.2', port: 80 }])),
      res(TypeUrl.Secret, {
        name: 'cert',
        tls_certificate: {
          certificate_chain: {
            inline_string: '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n',
          },
          private_key: {
            inline_string: '-----BEGIN PRIVATE KEY-----\nTOPSECRET\n-----END PRIVATE KEY-----\n',
          },
        },
      }),
    ]),
  );
  client = new AdsClient(app.xdsPort);
  const s = client.sotw();
  s.send({ node: { id: 'envoy-7', cluster: 'default/gw' }, type_url: TypeUrl.Cluster });
  const r = await s.next();
  s.send({ type_url: TypeUrl.Cluster, version_info: r.version_info, response_nonce: r.nonce });
  s.send({ type_url: TypeUrl.Listener });
  const l = await s.next();
  s.send({
    type_url: TypeUrl.Listener,
    version_info: '',
    response_nonce: l.nonce,
    error_detail: { code: 3, message: 'Error adding/updating listener(s) http: bad' },
  });
  await new Promise((x) => setTimeout(x, 100));
});

afterAll(async () => {
  client.close();
  await app.close();
});

test('GET /debug/nodes: id, group, mode, and per type sent / acked / nacked with Envoy error text', async () => {
  type T = { version: string; nonce: string; at: string; error?: string };
  const nodes = await getJson<
    {
      id: string;
      group: string;
      mode: string;
      connected: boolean;
      types: Record<string, { sent?: T; acked?: T; nacked?: T }>;
    }[]
  >('/debug/nodes');
  expect(nodes).toHaveLength(1);
  const n = nodes[0];
  expect(n).toMatchObject({ id: 'envoy-7', group: 'default/gw', mode: 'sotw', connected: true });
  expect(n.types.CDS.acked?.version).toBe(app.cache.getGroup('default/gw')?.version(TypeUrl.Cluster));
  expect(n.types.CDS.sent?.nonce).toBe(n.types.CDS.acked?.nonce);
  expect(Date.parse(n.types.CDS.acked?.at ?? '')).toBeGreaterThan(0);
  expect(n.types.LDS.nacked?.error).toBe('Error adding/updating listener(s) http: bad');
  expect(n.types.LDS.acked).toBeUndefined();
});

test('GET /debug/snapshots and /debug/snapshots/<ns>/<gw>: versions, Anys unpacked, private keys redacted', async () => {
  const list =
    await getJson<{ group: string; versions: Record<string, string>; nodes: string[] }[]>('/debug/snapshots');
  expect(list).toEqual([
    { group: 'default/gw', versions: app.cache.getGroup('default/gw')?.allVersions(), nodes: ['envoy-7'] },
  ]);
  const one = await getJson<{
    resources: Record<string, { name: string; resource: Record<string, unknown> }[]>;
  }>('/debug/snapshots/default/gw');
  const hcm = JSON.stringify(one.resources.LDS[0].resource);
  expect(hcm).toContain(
    '"@type":"type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"',
  );
  expect(hcm).toContain('"route_config_name":"main"');
  const secret = JSON.stringify(one.resources.SDS[0].resource);
  expect(secret).toContain('BEGIN CERTIFICATE');
  expect(secret).not.toContain('TOPSECRET');
  expect(secret).toContain('[redacted]');
  expect((await fetch(base() + '/debug/snapshots/nope/none')).status).toBe(404);
});

test('/healthz, /readyz, /metrics', async () => {
  expect((await fetch(base() + '/healthz')).status).toBe(200);
  expect((await fetch(base() + '/readyz')).status).toBe(200);
  const m = await (await fetch(base() + '/metrics')).text();
  expect(m).toMatch(/signalbox_xds_connected_nodes\{mode="sotw"\} 1/);
  expect(m).toMatch(/signalbox_xds_acks_total\{type="CDS"\} 1/);
  expect(m).toMatch(/signalbox_xds_nacks_total\{type="LDS"\} 1/);
  expect(m).toMatch(/signalbox_xds_push_ack_latency_seconds_count\{type="CDS"\} 1/);
  expect((await fetch(base() + '/debug/nodes', { method: 'POST' })).status).toBe(405);
});
