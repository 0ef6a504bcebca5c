/**
 * Probe routes on RouteConfigurations emitted by the real translator (golden inputs): first
 * in their virtual host, one per weighted cluster, inputs untouched, deterministic, encodable,
 * and accepted by `envoy --mode validate`.
 */
import { join } from 'node:path';
import type { Json, JsonObject } from '../../src/xds/proto.js';
import { protoRegistry } from '../../src/xds/proto.js';
import { TypeUrl, makeResource } from '../../src/xds/resource.js';
import {
  CATCH_ALL_PROBE_HOST,
  PROBE_HEADER,
  isProbeRoute,
  probeHash,
  withProbeRoutes,
  withoutProbeRoutes,
} from '../../src/readiness/probe.js';
import { TESTDATA, envoyAvailable, loadObjects, run, validateCases } from '../gatewayapi/helpers.js';
import type { GatewayJson } from '../../src/xds/translate/index.js';

const reg = protoRegistry();
const ENTRY = 'httproute/default/r/rule/0/match/0';
const HASH = 'a1b2c3d4e5f60718';

function translated(name: string): GatewayJson {
  const t = run(reg, loadObjects(join(TESTDATA, `${name}.in.yaml`)));
  expect(t.json).toHaveLength(1);
  return t.json[0];
}
function rcOf(name: string, rcName?: string): JsonObject {
  const g = translated(name);
  const rc = rcName ? g.routes.find((r) => r.name === rcName) : g.routes[0];
  expect(rc).toBeDefined();
  return rc!;
}
const vhosts = (rc: JsonObject) => rc.virtual_hosts as JsonObject[];
const routes = (vh: JsonObject) => vh.routes as JsonObject[];
const copy = (v: Json): Json => JSON.parse(JSON.stringify(v)) as Json;

describe('withProbeRoutes', () => {
  test('weighted clusters: one probe route per cluster, first in the virtual host, the original last', () => {
    const rc = rcOf('backend-weights');
    const before = copy(rc);
    const { json, probes, skipped } = withProbeRoutes(rc, [{ name: ENTRY, hash: HASH }]);
    expect(rc).toEqual(before); // input unchanged
    expect(skipped).toEqual([]);
    const vh = vhosts(json)[0];
    expect(routes(vh).map((r) => r.name)).toEqual([`${ENTRY}/probe/0`, `${ENTRY}/probe/1`, ENTRY]);
    expect(routes(vh)[2]).toEqual(routes(vhosts(rc)[0])[0]); // the original entry is untouched
    const p0 = routes(vh)[0];
    expect(p0.match).toEqual({
      path: `/.well-known/signalbox-probe/${HASH}.0`,
      headers: [{ name: PROBE_HEADER, string_match: { exact: `${HASH}.0` } }],
    });
    expect(p0.route).toEqual({
      cluster_not_found_response_code: 'INTERNAL_SERVER_ERROR',
      cluster: 'default/web-a/8080',
    });
    expect(p0.response_headers_to_add).toEqual([
      { header: { key: PROBE_HEADER, value: `${HASH}.0` }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' },
    ]);
    expect((routes(vh)[1].route as JsonObject).cluster).toBe('default/web-b/8080');
    expect(isProbeRoute(p0)).toBe(true);
    expect(isProbeRoute(routes(vh)[2])).toBe(false);
    expect(probes).toEqual([
      {
        host: CATCH_ALL_PROBE_HOST,
        path: `/.well-known/signalbox-probe/${HASH}.0`,
        headerValue: `${HASH}.0`,
        cluster: 'default/web-a/8080',
        routeEntry: ENTRY,
        virtualHost: '*',
      },
      {
        host: CATCH_ALL_PROBE_HOST,
        path: `/.well-known/signalbox-probe/${HASH}.1`,
        headerValue: `${HASH}.1`,
        cluster: 'default/web-b/8080',
        routeEntry: ENTRY,
        virtualHost: '*',
      },
    ]);
    // everything else of the RouteConfiguration is kept
    expect({ ...json, virtual_hosts: null }).toEqual({ ...rc, virtual_hosts: null });
    // encodes
    const r = makeResource(reg, TypeUrl.Route, json);
    expect(r.name).toBe(rc.name);
    expect(r.deps.clusters).toEqual(expect.arrayContaining(['default/web-a/8080', 'default/web-b/8080']));
  });

  test('deterministic, idempotent, and withoutProbeRoutes undoes it', () => {
    const rc = rcOf('backend-weights');
    const a = withProbeRoutes(rc, [{ name: ENTRY, hash: HASH }]);
    const b = withProbeRoutes(rc, [{ name: ENTRY, hash: HASH }]);
    expect(JSON.stringify(b)).toBe(JSON.stringify(a));
    expect(makeResource(reg, TypeUrl.Route, a.json).hash).toBe(makeResource(reg, TypeUrl.Route, b.json).hash);
    // applied to its own output (same entries), the probe routes are replaced, not doubled
    const again = withProbeRoutes(a.json, [{ name: ENTRY, hash: HASH }]);
    expect(again.json).toEqual(a.json);
    const newer = withProbeRoutes(a.json, [{ name: ENTRY, hash: 'ff' }]);
    expect(routes(vhosts(newer.json)[0]).map((r) => (r.match as JsonObject).path ?? r.name)).toEqual([
      '/.well-known/signalbox-probe/ff.0',
      '/.well-known/signalbox-probe/ff.1',
      ENTRY,
    ]);
    expect(withoutProbeRoutes(a.json)).toEqual(rc);
    // a state with fewer clusters: no stale probe route of the entry is left behind
    const single = copy(rc) as JsonObject;
    (routes(vhosts(single)[0])[0].route as JsonObject).weighted_clusters = {
      clusters: [{ name: 'default/web-c/8080', weight: 1 }],
    };
    const fewer = withProbeRoutes(a.json, [{ name: ENTRY, hash: 'cc' }], single);
    expect(routes(vhosts(fewer.json)[0]).map((r) => r.name)).toEqual([`${ENTRY}/probe/0`, ENTRY]);
    expect(fewer.probes.map((p) => p.cluster)).toEqual(['default/web-c/8080']);
  });

  test('per-cluster header mutations move to the probe route (cluster ones first, probe header last)', () => {
    const rc = rcOf('filter-backend-level');
    const { json } = withProbeRoutes(rc, [{ name: ENTRY, hash: HASH }]);
    const [p0, p1] = routes(vhosts(json)[0]);
    expect(p0.request_headers_to_add).toEqual([
      { header: { key: 'x-backend-choice', value: 'a' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' },
    ]);
    expect((p0.response_headers_to_add as JsonObject[]).map((h) => (h.header as JsonObject).key)).toEqual([
      PROBE_HEADER,
    ]);
    expect((p1.response_headers_to_add as JsonObject[]).map((h) => (h.header as JsonObject).key)).toEqual([
      'x-from',
      PROBE_HEADER,
    ]);
    expect(p1.route).not.toHaveProperty('weighted_clusters');
    makeResource(reg, TypeUrl.Route, json);
  });

  test('the rest of the action is kept: rewrites, timeouts, retries', () => {
    const rc = rcOf('filter-url-rewrite');
    const entries = vhosts(rc).flatMap((vh) => routes(vh).map((r) => ({ name: String(r.name), hash: HASH })));
    const { json, probes } = withProbeRoutes(rc, entries);
    expect(probes.length).toBeGreaterThan(0);
    for (const vh of vhosts(json)) {
      const originals = new Map(
        routes(vh)
          .filter((r) => !isProbeRoute(r))
          .map((r) => [r.name, r]),
      );
      for (const p of routes(vh).filter(isProbeRoute)) {
        const orig = originals.get(String(p.name).replace(/\/probe\/\d+$/, ''))!;
        const { cluster: _c, weighted_clusters: _w, ...rest } = orig.route as JsonObject;
        expect(p.route).toMatchObject(rest);
      }
    }
    makeResource(reg, TypeUrl.Route, json);
  });

  test('hosts: wildcard domains get a concrete name that Envoy selects for that virtual host', () => {
    // *.bar.example.com next to foo.bar.example.com; *.example.com on another port
    const g = translated('hostname-intersection');
    const byName = new Map(g.routes.map((r) => [String(r.name), r]));
    const a = withProbeRoutes(byName.get('route-18081')!, [{ name: ENTRY, hash: HASH }]);
    expect(a.probes.map((p) => [p.virtualHost, p.host])).toEqual([
      ['*.bar.example.com', 'probe.bar.example.com'],
      ['foo.bar.example.com', 'foo.bar.example.com'],
    ]);
    const b = withProbeRoutes(byName.get('route-18082')!, [{ name: ENTRY, hash: HASH }]);
    expect(b.probes.map((p) => [p.virtualHost, p.host])).toEqual([
      ['*.example.com', 'probe.example.com'],
      ['foo.bar.example.com', 'foo.bar.example.com'],
      ['other.org', 'other.org'],
    ]);
  });

  test('a wildcard whose probe name is taken by an exact domain is skipped, not mis-probed', () => {
    const rc: JsonObject = {
      name: 'r',
      ignore_port_in_host_matching: true,
      virtual_hosts: [
        {
          name: 'w',
          domains: ['*.example.com'],
          routes: [{ name: 'e', match: { prefix: '/' }, route: { cluster: 'c' } }],
        },
        { name: 'x', domains: ['probe.example.com'], routes: [] },
      ],
    };
    const { probes, skipped } = withProbeRoutes(rc, [{ name: 'e', hash: 'ab' }]);
    expect(probes).toEqual([]);
    expect(skipped).toEqual([{ name: 'e', virtualHost: 'w', reason: 'no-probe-host' }]);
  });

  test('ports: stripped from the Host when the RouteConfiguration ignores ports, kept otherwise', () => {
    const vh = {
      name: 'v',
      domains: ['api.example.com:8080'],
      routes: [{ name: 'e', match: { prefix: '/' }, route: { cluster: 'c' } }],
    };
    const keep = withProbeRoutes({ name: 'r', virtual_hosts: [vh] }, [{ name: 'e', hash: 'ab' }]);
    expect(keep.probes.map((p) => p.host)).toEqual(['api.example.com:8080']);
    const ignore = withProbeRoutes(
      {
        name: 'r',
        ignore_port_in_host_matching: true,
        virtual_hosts: [{ ...vh, domains: ['api.example.com', '*'] }],
      },
      [{ name: 'e', hash: 'ab' }],
    );
    expect(ignore.probes.map((p) => p.host)).toEqual(['api.example.com']);
  });

  test('phase 1: entries cloned from the desired RouteConfiguration, a new virtual host added with only probes', () => {
    const desired = rcOf('listener-wildcard-hostname');
    // the served one does not have foo.example.com yet, and a.b.example.com points elsewhere
    const served = copy(desired) as JsonObject;
    served.virtual_hosts = vhosts(served).filter((v) => v.name !== 'foo.example.com');
    const ab = vhosts(served).find((v) => v.name === 'a.b.example.com')!;
    (routes(ab)[0].route as JsonObject).cluster = 'default/old/8080';
    const servedBefore = copy(served);
    const desiredBefore = copy(desired);

    const { json, probes, skipped } = withProbeRoutes(served, [{ name: ENTRY, hash: HASH }], desired);
    expect(served).toEqual(servedBefore);
    expect(desired).toEqual(desiredBefore);
    expect(skipped).toEqual([]);
    const out = new Map(vhosts(json).map((v) => [String(v.name), v]));
    // the served entry stays, the probe points at the desired cluster
    expect(routes(out.get('a.b.example.com')!).map((r) => [r.name, (r.route as JsonObject).cluster])).toEqual(
      [
        [`${ENTRY}/probe/0`, 'default/web-a/8080'],
        [ENTRY, 'default/old/8080'],
      ],
    );
    // the new virtual host: only the probe route
    expect(vhosts(json).map((v) => v.name)).toEqual(['*.example.com', 'a.b.example.com', 'foo.example.com']);
    expect(out.get('foo.example.com')).toEqual({
      name: 'foo.example.com',
      domains: ['foo.example.com'],
      routes: [expect.objectContaining({ name: `${ENTRY}/probe/0` })],
    });
    expect(probes.map((p) => [p.virtualHost, p.host, p.cluster])).toEqual([
      ['a.b.example.com', 'a.b.example.com', 'default/web-a/8080'],
      ['foo.example.com', 'foo.example.com', 'default/web-a/8080'],
    ]);
    makeResource(reg, TypeUrl.Route, json);
    // phase 3 on that: the added virtual host goes away again
    expect(withoutProbeRoutes(json)).toEqual(served);
  });

  test('a new virtual host whose domains are all served already puts its probes in the serving one', () => {
    const desired: JsonObject = {
      name: 'r',
      virtual_hosts: [
        {
          name: 'new',
          domains: ['a.example.com'],
          routes: [{ name: 'e', match: { prefix: '/' }, route: { cluster: 'c2' } }],
        },
      ],
    };
    const served: JsonObject = {
      name: 'r',
      virtual_hosts: [
        {
          name: 'old',
          domains: ['a.example.com'],
          routes: [{ name: 'e', match: { prefix: '/' }, route: { cluster: 'c1' } }],
        },
      ],
    };
    const { json, probes } = withProbeRoutes(served, [{ name: 'e', hash: 'ab' }], desired);
    expect(vhosts(json).map((v) => [v.name, routes(v).map((r) => r.name)])).toEqual([
      ['old', ['e/probe/0', 'e']],
    ]);
    expect(probes.map((p) => [p.virtualHost, p.host, p.cluster])).toEqual([['old', 'a.example.com', 'c2']]);
  });

  test('redirects, direct responses, invalid backends and unknown entries are skipped and reported', () => {
    const rc = rcOf('filter-redirect');
    const names = routes(vhosts(rc)[0]).map((r) => String(r.name));
    const { json, probes, skipped } = withProbeRoutes(rc, [
      ...names.map((name) => ({ name, hash: HASH })),
      { name: 'nope', hash: HASH },
    ]);
    expect(probes).toEqual([]);
    expect(json).toEqual(rc);
    expect(skipped).toEqual([
      ...names.map((name) => ({ name, virtualHost: '*', reason: 'redirect' })),
      { name: 'nope', reason: 'not-found' },
    ]);
    const hand: JsonObject = {
      name: 'r',
      virtual_hosts: [
        {
          name: 'v',
          domains: ['*'],
          routes: [
            { name: 'd', match: { prefix: '/d' }, direct_response: { status: 500 } },
            {
              name: 'i',
              match: { prefix: '/' },
              route: {
                weighted_clusters: { clusters: [{ name: 'signalbox/invalid-backend-ref', weight: 1 }] },
              },
            },
            {
              name: 'half',
              match: { safe_regex: { regex: '^/h.*' } },
              route: {
                weighted_clusters: {
                  clusters: [
                    { name: 'signalbox/invalid-backend-ref', weight: 1 },
                    { name: 'good', weight: 1 },
                  ],
                },
              },
            },
          ],
        },
      ],
    };
    const h = withProbeRoutes(
      hand,
      ['d', 'i', 'half'].map((name) => ({ name, hash: 'ab' })),
    );
    expect(h.skipped).toEqual([
      { name: 'd', virtualHost: 'v', reason: 'direct_response' },
      { name: 'i', virtualHost: 'v', reason: 'no-upstream' },
    ]);
    // the index is the cluster's position in weighted_clusters; a regex original still gets an exact probe path
    expect(h.probes.map((p) => [p.routeEntry, p.cluster, p.headerValue, p.path])).toEqual([
      ['half', 'good', 'ab.1', '/.well-known/signalbox-probe/ab.1'],
    ]);
  });

  test('bad hashes and conflicting duplicates are refused', () => {
    const rc = rcOf('backend-weights');
    expect(() => withProbeRoutes(rc, [{ name: ENTRY, hash: 'not hex' }])).toThrow(/hex/);
    expect(() => withProbeRoutes(rc, [{ name: ENTRY, hash: 'A1' }])).toThrow(/hex/);
    expect(() =>
      withProbeRoutes(rc, [
        { name: ENTRY, hash: 'aa' },
        { name: ENTRY, hash: 'bb' },
      ]),
    ).toThrow(/twice/);
  });

  test('probeHash: short hex, independent of key order', () => {
    const h = probeHash({ b: 1, a: [1, { y: 2, x: 'z' }] });
    expect(h).toMatch(/^[0-9a-f]{16}$/);
    expect(probeHash({ a: [1, { x: 'z', y: 2 }], b: 1 })).toBe(h);
    expect(probeHash({ a: [1, { x: 'z', y: 3 }], b: 1 })).not.toBe(h);
  });
});

(envoyAvailable() ? describe : describe.skip)('Envoy accepts RouteConfigurations with probe routes', () => {
  test('envoy --mode validate', () => {
    const cases = [
      'backend-weights',
      'filter-backend-level',
      'filter-url-rewrite',
      'hostname-intersection',
      'filter-cors',
    ].map((name) => {
      const g = translated(name);
      const routesWithProbes = g.routes.map((rc) => {
        const entries = vhosts(rc).flatMap((vh) =>
          routes(vh).map((r) => ({ name: String(r.name), hash: HASH })),
        );
        return withProbeRoutes(rc, entries).json;
      });
      expect(routesWithProbes.some((rc) => vhosts(rc).some((vh) => routes(vh).some(isProbeRoute)))).toBe(
        true,
      );
      return { name, json: [{ ...g, routes: routesWithProbes }] };
    });
    expect(validateCases(cases)).toEqual([]);
  }, 60_000);
});
