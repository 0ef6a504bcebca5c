/**
 * The incremental path (per-route RouteCache + EnvoyCache, RouteConfiguration assembled
 * from per-route encodings) must give exactly the resources of a full translation: same
 * bytes, versions and references, for every golden case and after changes.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { RouteCache, translate } from '../../src/gatewayapi/translator.js';
import { protoRegistry } from '../../src/xds/proto.js';
import type { JsonObject } from '../../src/xds/proto.js';
import { ALL_TYPES, TypeUrl, makeResource } from '../../src/xds/resource.js';
import type { Snapshot } from '../../src/xds/cache/snapshot.js';
import { EnvoyCache, routeConfigurationFromJson, snapshots } from '../../src/xds/translate/index.js';
import { NOW, TESTDATA, loadObjects } from './helpers.js';

const reg = protoRegistry();
const cases = readdirSync(TESTDATA)
  .filter((f) => f.endsWith('.in.yaml'))
  .sort();

function dump(snaps: Map<string, Snapshot>): string {
  const out: string[] = [];
  for (const [g, s] of snaps) {
    for (const t of ALL_TYPES) {
      out.push(`${g} ${t} ${s.version(t)}`);
      for (const r of s.get(t).values())
        out.push(`${r.name} ${r.hash} ${JSON.stringify(r.deps)} ${JSON.stringify(r.json)}`);
    }
  }
  return out.join('\n');
}

const full = (objects: unknown[]) =>
  dump(snapshots(reg, translate(objects, { now: NOW }).ir, { bindAddress: '127.0.0.1' }));

describe('incremental translation equals full translation', () => {
  test.each(cases)('%s', (file) => {
    const objects = loadObjects(join(TESTDATA, file));
    const rc = new RouteCache();
    const ec = new EnvoyCache();
    const cached = () =>
      dump(
        snapshots(reg, translate(objects, { now: NOW, cache: rc }).ir, {
          bindAddress: '127.0.0.1',
          cache: ec,
        }),
      );
    const want = full(objects);
    expect(cached()).toBe(want);
    // second time round everything comes from the caches
    const misses = ec.misses + rc.misses;
    expect(cached()).toBe(want);
    expect(ec.misses + rc.misses).toBe(misses);
  });

  test('a changed route, a changed Service and changed endpoints show up with warm caches', () => {
    const objects = loadObjects(join(TESTDATA, 'backend-weights.in.yaml')) as Record<string, any>[]; // eslint-disable-line @typescript-eslint/no-explicit-any
    const rc = new RouteCache();
    const ec = new EnvoyCache();
    const cached = (objs: unknown[]) =>
      dump(
        snapshots(reg, translate(objs, { now: NOW, cache: rc }).ir, { bindAddress: '127.0.0.1', cache: ec }),
      );
    expect(cached(objects)).toBe(full(objects));
    const route = objects.findIndex((o) => o.kind === 'HTTPRoute');
    const changed = objects.map((o, i) =>
      i === route
        ? { ...o, spec: { ...o.spec, rules: [{ backendRefs: [{ name: 'web-b', port: 8080 }] }] } }
        : o,
    );
    expect(cached(changed)).toBe(full(changed));
    const slice = objects.findIndex((o) => o.kind === 'EndpointSlice' && o.metadata.name === 'web-b-1');
    const moved = changed.map((o, i) =>
      i === slice ? { ...o, endpoints: [{ addresses: ['127.0.0.99'] }] } : o,
    );
    expect(cached(moved)).toBe(full(moved));
    expect(full(moved)).not.toBe(full(changed));
    const svc = objects.findIndex((o) => o.kind === 'Service' && o.metadata.name === 'web-b');
    const renamedPort = moved.map((o, i) =>
      i === svc ? { ...o, spec: { ports: [{ name: 'http', port: 9090 }] } } : o,
    );
    expect(cached(renamedPort)).toBe(full(renamedPort));
    expect(full(renamedPort)).toContain('"direct_response":{"status":500}');
  });
});

describe('a RouteConfiguration from its JSON (readiness: routes kept old, probe routes added)', () => {
  test.each(cases)('%s: the bytes, hash and deps of encoding it whole', (file) => {
    const objects = loadObjects(join(TESTDATA, file));
    const snaps = snapshots(reg, translate(objects, { now: NOW, cache: new RouteCache() }).ir, {
      bindAddress: '127.0.0.1',
      cache: new EnvoyCache(),
    });
    for (const s of snaps.values())
      for (const r of s.get(TypeUrl.Route).values()) {
        const whole = makeResource(reg, TypeUrl.Route, r.json);
        expect(Buffer.from(r.bytes).equals(Buffer.from(whole.bytes))).toBe(true);
        const again = routeConfigurationFromJson(reg, r.json);
        expect(again.hash).toBe(whole.hash);
        expect(new Set(again.deps.clusters)).toEqual(new Set(whole.deps.clusters));
        // a virtual host changed (a probe route in front), the others reused as encoded
        const vhs = (r.json.virtual_hosts as JsonObject[] | undefined) ?? [];
        if (vhs.length === 0) continue;
        const first = vhs[0];
        const probe = { name: 'probe', match: { path: '/p' }, route: { cluster: 'probe-cluster' } };
        const changed = {
          ...r.json,
          virtual_hosts: [
            { ...first, routes: [probe, ...((first.routes as JsonObject[]) ?? [])] },
            ...vhs.slice(1),
          ],
        };
        const want = makeResource(reg, TypeUrl.Route, changed);
        const got = routeConfigurationFromJson(reg, changed);
        expect(got.hash).toBe(want.hash);
        expect(new Set(got.deps.clusters)).toEqual(new Set(want.deps.clusters));
        expect(got.deps.clusters).toContain('probe-cluster');
      }
  });
});
