/**
 * Determinism: the same objects in any order give byte-identical Envoy resources, the same
 * versions and the same statuses (every golden case, several random orders each).
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { protoRegistry } from '../../src/xds/proto.js';
import { ALL_TYPES, SHORT } from '../../src/xds/resource.js';
import type { Translated } from './helpers.js';
import { TESTDATA, loadObjects, run } from './helpers.js';

const reg = protoRegistry();
const cases = readdirSync(TESTDATA)
  .filter((f) => f.endsWith('.in.yaml'))
  .sort();

function fingerprint(t: Translated): string {
  const lines: string[] = [JSON.stringify(t.result.statuses), JSON.stringify(t.result.rejected)];
  for (const [group, snap] of [...t.snapshots].sort(([a], [b]) => (a < b ? -1 : 1))) {
    for (const type of ALL_TYPES) {
      lines.push(`${group} ${SHORT[type]} version ${snap.version(type)}`);
      for (const r of snap.get(type).values())
        lines.push(`${group} ${SHORT[type]} ${r.name} ${Buffer.from(r.bytes).toString('base64')}`);
    }
  }
  return lines.join('\n');
}

describe('determinism', () => {
  test.each(cases)('%s: any order of the objects gives the same bytes and versions', (file) => {
    const objects = loadObjects(join(TESTDATA, file));
    const want = fingerprint(run(reg, objects));
    fc.assert(
      fc.property(
        fc.array(fc.double({ noNaN: true }), { minLength: objects.length, maxLength: objects.length }),
        (keys) => {
          const shuffled = objects
            .map((o, i) => ({ o, k: keys[i] }))
            .sort((a, b) => a.k - b.k)
            .map((x) => x.o);
          expect(fingerprint(run(reg, shuffled))).toBe(want);
        },
      ),
      { numRuns: 5, seed: 42 },
    );
  });

  test('reversing the input of a multi-route case changes nothing', () => {
    const objects = loadObjects(join(TESTDATA, 'match-precedence-across-routes.in.yaml'));
    expect(objects.length).toBeGreaterThan(5);
    expect(fingerprint(run(reg, [...objects].reverse()))).toBe(fingerprint(run(reg, objects)));
  });
});
