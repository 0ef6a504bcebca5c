/**
 * Probe routes and the prober against a real Envoy. The served RouteConfiguration sends
 * everything to backend-a; the desired one splits the entry over backend-b and `empty` (a
 * cluster whose EDS has no endpoints). Phase 1 serves the old entry plus probe routes cloned
 * from the desired one: a probe proves backend-b through Envoy, normal traffic still gets
 * backend-a, and the failures are told apart (wrong hash, local reply, connect).
 *
 * The listener is the translator's own (src/xds/translate/listener.ts: CORS + router filter
 * with default settings), so the `x-envoy-upstream-service-time` check runs against the
 * filter chain signalbox really ships.
 */
import { request } from 'node:http';
import type { IncomingHttpHeaders } from 'node:http';
import { TypeUrl } from '../src/xds/resource.js';
import type { Resource } from '../src/xds/resource.js';
import type { JsonObject } from '../src/xds/proto.js';
import { Snapshot } from '../src/xds/cache/snapshot.js';
import { envoyListener } from '../src/xds/translate/listener.js';
import { PROBE_HEADER, probeHash, withProbeRoutes } from '../src/readiness/probe.js';
import type { ProbeRequest } from '../src/readiness/probe.js';
import { UPSTREAM_TIME_HEADER, probe, probeUntil } from '../src/readiness/prober.js';
import type { ProbeTarget } from '../src/readiness/prober.js';
import { startBackend } from './harness/backend.js';
import type { Backend } from './harness/backend.js';
import { freePort, waitFor } from './harness/envoy.js';
import { startEnvoyStack } from './harness/stack.js';
import type { EnvoyStack } from './harness/stack.js';
import { cla, cluster, res } from './harness/resources.js';

const ENTRY = 'httproute/default/r/rule/0/match/0';

function rc(action: JsonObject): JsonObject {
  return {
    name: 'main',
    virtual_hosts: [
      { name: '*', domains: ['*'], routes: [{ name: ENTRY, match: { prefix: '/' }, route: action }] },
    ],
    validate_clusters: false,
    ignore_port_in_host_matching: true,
  };
}
const served = rc({ cluster_not_found_response_code: 'INTERNAL_SERVER_ERROR', cluster: 'backend-a' });
const desired = rc({
  cluster_not_found_response_code: 'INTERNAL_SERVER_ERROR',
  weighted_clusters: {
    clusters: [
      { name: 'backend-b', weight: 1 },
      { name: 'empty', weight: 1 },
    ],
  },
});
const HASH = probeHash(desired);
const phase1 = withProbeRoutes(served, [{ name: ENTRY, hash: HASH }], desired);

/** One GET on a fresh connection, with its headers. */
function rawGet(
  port: number,
  path: string,
  headers: Record<string, string>,
): Promise<{ status: number; headers: IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path, agent: false, headers: { connection: 'close', ...headers } },
      (r) => {
        let body = '';
        r.on('data', (c: Buffer) => (body += c.toString()));
        r.on('end', () => resolve({ status: r.statusCode ?? 0, headers: r.headers, body }));
        r.on('error', reject);
      },
    );
    req.setTimeout(5000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

describe('readiness probes through Envoy', () => {
  let s: EnvoyStack;
  let a: Backend;
  let b: Backend;
  let target: ProbeTarget;
  let toB: ProbeRequest;
  let toEmpty: ProbeRequest;

  const snapshot = (port: number, routeJson: JsonObject): Snapshot => {
    const r: Resource[] = [
      res(
        TypeUrl.Listener,
        envoyListener(
          {
            port,
            protocol: 'HTTP',
            tables: [
              { name: 'main', listeners: ['http'], serverNames: [], certificates: [], virtualHosts: [] },
            ],
          },
          '127.0.0.1',
        ),
      ),
      res(TypeUrl.Route, routeJson),
      res(TypeUrl.Cluster, cluster('empty')),
      res(TypeUrl.Endpoint, cla('empty', [])),
    ];
    for (const x of [a, b]) {
      r.push(res(TypeUrl.Cluster, cluster(x.name)));
      r.push(res(TypeUrl.Endpoint, cla(x.name, [{ host: x.host, port: x.port }])));
    }
    return new Snapshot(r);
  };

  beforeAll(async () => {
    a = await startBackend('backend-a', '127.0.0.2');
    b = await startBackend('backend-b', '127.0.0.3');
    s = await startEnvoyStack({
      nodeId: 'envoy-readiness-probe',
      delta: false,
      snapshot: (port) => snapshot(port, phase1.json),
    });
    target = { address: '127.0.0.1', port: s.port };
    expect(phase1.skipped).toEqual([]);
    [toB, toEmpty] = phase1.probes;
    expect([toB.cluster, toEmpty.cluster]).toEqual(['backend-b', 'empty']);
  });

  afterAll(async () => {
    await s?.close();
    await a?.close();
    await b?.close();
  });

  test('a probe is ok, and the backend that answered it is the new one (backend-b)', async () => {
    const o = await probe(target, toB);
    expect(o).toEqual({ ok: true, status: 200, latencyMs: expect.any(Number) as number });
    const r = await rawGet(s.port, toB.path, { host: toB.host, [PROBE_HEADER]: toB.headerValue });
    expect((JSON.parse(r.body) as { backend: string }).backend).toBe('backend-b');
    expect(r.headers[PROBE_HEADER]).toBe(toB.headerValue);
    // Envoy 1.40 with the translator's router defaults stamps upstream responses
    expect(r.headers[UPSTREAM_TIME_HEADER]).toMatch(/^\d+$/);
  });

  test('normal traffic does not see the probe route: backend-a, without the probe header', async () => {
    for (const path of ['/', toB.path]) {
      const r = await rawGet(s.port, path, { host: toB.host });
      expect((JSON.parse(r.body) as { backend: string }).backend).toBe('backend-a');
      expect(r.headers[PROBE_HEADER]).toBeUndefined();
      expect(r.headers[UPSTREAM_TIME_HEADER]).toMatch(/^\d+$/);
    }
  });

  test('a probe with another hash is wrong-hash (the main route answered)', async () => {
    const wrong = { ...toB, headerValue: `${'0'.repeat(16)}.0` };
    const o = await probe(target, wrong);
    expect(o).toMatchObject({ ok: false, reason: 'wrong-hash', status: 200 });
    const u = await probeUntil(target, wrong, { timeoutMs: 400, backoffMs: [20, 50] });
    expect(u).toMatchObject({ ok: false, reason: 'wrong-hash' });
    expect(u.attempts).toBeGreaterThan(1);
  });

  test('a probe route to a cluster without endpoints is a local reply (503, no upstream time)', async () => {
    const o = await probe(target, toEmpty);
    expect(o).toMatchObject({ ok: false, reason: 'local-reply', status: 503 });
    const r = await rawGet(s.port, toEmpty.path, { host: toEmpty.host, [PROBE_HEADER]: toEmpty.headerValue });
    expect(r.headers[PROBE_HEADER]).toBe(toEmpty.headerValue);
    expect(r.headers[UPSTREAM_TIME_HEADER]).toBeUndefined();
    expect(r.body).toMatch(/no healthy upstream/);
  });

  test('a port nobody listens on is connect', async () => {
    const o = await probe({ address: '127.0.0.1', port: await freePort() }, toB);
    expect(o).toMatchObject({ ok: false, reason: 'connect' });
  });

  test('probeUntil waits for this Envoy to apply the state (wrong-hash, then ok)', async () => {
    // back to the served state without probe routes: the probe is wrong-hash
    s.app.cache.setSnapshot('default/gw', snapshot(s.port, served));
    await waitFor('probe routes gone', async () => {
      const o = await probe(target, toB);
      return !o.ok && o.reason === 'wrong-hash';
    });
    const pending = probeUntil(target, toB, { timeoutMs: 20_000, backoffMs: [20, 200] });
    s.app.cache.setSnapshot('default/gw', snapshot(s.port, phase1.json));
    const o = await pending;
    expect(o).toMatchObject({ ok: true, status: 200 });
    expect(o.attempts).toBeGreaterThanOrEqual(1);
  });

  test('probeUntil returns at once when aborted', async () => {
    const ac = new AbortController();
    const wrong = { ...toB, headerValue: 'ffff.0' };
    const pending = probeUntil(target, wrong, { timeoutMs: 20_000, signal: ac.signal, backoffMs: [20, 50] });
    await new Promise((r) => setImmediate(r)); // the first attempt is under way
    ac.abort();
    const t0 = Date.now();
    const o = await pending;
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(o.ok).toBe(false);
  });
});
