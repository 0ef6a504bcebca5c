/**
 * Fuzz (fast-check): golden inputs with one field somewhere replaced by an arbitrary JSON
 * value (wrong types, huge numbers, nulls, nested junk). The translator must not throw, the
 * resources must encode, and Envoy must accept every output.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { protoRegistry } from '../../src/xds/proto.js';
import { TESTDATA, envoyAvailable, loadObjects, run, validateCases } from './helpers.js';
import type { Translated } from './helpers.js';

const reg = protoRegistry();
const inputs = readdirSync(TESTDATA)
  .filter((f) => f.endsWith('.in.yaml'))
  .sort()
  .map((f) => loadObjects(join(TESTDATA, f)));

type J = null | boolean | number | string | J[] | { [k: string]: J };

/** Every path to a value inside an object (keys and indices). */
function paths(
  v: J,
  prefix: (string | number)[] = [],
  out: (string | number)[][] = [],
): (string | number)[][] {
  if (Array.isArray(v)) v.forEach((x, i) => paths(x, [...prefix, i], out));
  else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) paths(x, [...prefix, k], out);
  if (prefix.length) out.push(prefix);
  return out;
}

function replaced(obj: J, path: (string | number)[], value: J): J {
  const copy = JSON.parse(JSON.stringify(obj)) as J;
  let cur = copy as Record<string | number, J>;
  for (const p of path.slice(0, -1)) cur = cur[p] as Record<string | number, J>;
  cur[path[path.length - 1]] = value;
  return copy;
}

const N = Number(process.env.FUZZ_RUNS ?? 1000);
const mutation = fc.record({
  input: fc.nat(),
  object: fc.nat(),
  path: fc.nat(),
  value: fc.oneof(
    fc.jsonValue({ maxDepth: 2 }),
    fc.constantFrom<J>(-1, 0, 65536, 2 ** 53, 1e300, '', ' ', '*', '/', '..', '\u0000', 'x'.repeat(5000), {
      toString: null,
      valueOf: null,
    }),
  ),
});

describe('fuzzed golden inputs', () => {
  const outputs: { name: string; json: Translated['json'] }[] = [];

  test(`${N} single-field mutations: no exception, resources encode`, () => {
    const samples = fc.sample(mutation, { numRuns: N, seed: Number(process.env.FUZZ_SEED ?? 7) });
    for (const [i, m] of samples.entries()) {
      const objects = inputs[m.input % inputs.length] as J[];
      const oi = m.object % objects.length;
      const ps = paths(objects[oi]);
      const path = ps[m.path % ps.length];
      const mutated = objects.map((o, k) => (k === oi ? replaced(o, path, m.value as J) : o));
      let t: Translated | undefined;
      expect(() => (t = run(reg, mutated))).not.toThrow();
      // every malformed value is foreseen: a reason, not the translator's safety net
      const said = JSON.stringify([t!.result.statuses, t!.result.rejected]);
      if (said.includes('internal error'))
        throw new Error(
          `${path.join('.')} = ${JSON.stringify(m.value)}: ${said.slice(said.indexOf('internal error') - 200, said.indexOf('internal error') + 200)}`,
        );
      outputs.push({
        name: `mutation ${i}: ${path.join('.')} = ${JSON.stringify(m.value)?.slice(0, 60)}`,
        json: t!.json,
      });
    }
  });

  (envoyAvailable() ? test : test.skip)(
    'Envoy accepts every output',
    () => {
      expect(validateCases(outputs)).toEqual([]);
    },
    180_000,
  );
});
