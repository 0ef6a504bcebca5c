/**
 * RE2 program size (native/re2size, RE2 itself) against Envoy's own verdict: Envoy refuses a
 * safe_regex whose program size exceeds re2.max_program_size.error_level (default 100), and
 * with it the whole RouteConfiguration. The translator refuses exactly those, on their rule.
 *
 * `(?<name>…)` is the one known difference: Debian bookworm's RE2 (2022-06-01) predates that
 * spelling of a named group, Envoy 1.40's RE2 accepts it. Its syntax is judged by re2-wasm
 * (as recent as Envoy's RE2): accepted, as Envoy accepts it; its size is not known here.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MAX_PROGRAM_SIZE, re2Error, re2ProgramSize } from '../../src/gatewayapi/re2.js';
import { protoRegistry } from '../../src/xds/proto.js';
import type { JsonObject } from '../../src/xds/proto.js';
import { staticBootstrap } from '../../src/xds/translate/static.js';
import { TESTDATA, envoyAvailable, envoyValidate, loadObjects, run } from './helpers.js';

const reg = protoRegistry();

// measured with RE2 and checked against Envoy 1.40's "RE2 program size of N" messages
const CASES: [regex: string, size: number][] = [
  ['/(alpha|beta|gamma|delta|epsilon|zeta|eta|theta){1,30}[0-9]{1,30}', 1293],
  ['/x/[0-9]{1,46}', 98],
  ['/x/[0-9]{1,47}', 100], // the limit itself is allowed
  ['a{97}', 101],
  ['/good/[0-9]+', 12],
];

/** An HTTPRoute with one rule per regex (path match) next to a plain rule. */
function withRegexRules(regexes: string[]): unknown[] {
  const objects = loadObjects(join(TESTDATA, 'gateway-basic-http.in.yaml')) as Record<string, unknown>[];
  return [
    ...objects.filter((o) => o.kind !== 'HTTPRoute'),
    {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'HTTPRoute',
      metadata: { namespace: 'default', name: 're', creationTimestamp: '2026-01-01T00:00:00Z' },
      spec: {
        parentRefs: [{ name: 'gw' }],
        rules: [
          ...regexes.map((value) => ({ matches: [{ path: { type: 'RegularExpression', value } }] })),
          { matches: [{ path: { value: '/plain' } }] },
        ],
      },
    },
  ];
}

/** The translated routes of the one Gateway, by name. */
function routeNames(objects: unknown[]): string[] {
  const t = run(reg, objects);
  const vhs = t.json[0].routes.flatMap((r) => r.virtual_hosts as { routes: { name: string }[] }[]);
  return vhs.flatMap((v) => v.routes.map((r) => r.name));
}

describe('RE2 program size', () => {
  test.each(CASES)('%s has program size %d', (regex, size) => {
    expect(re2ProgramSize(regex)).toBe(size);
    const e = re2Error(regex);
    if (size > MAX_PROGRAM_SIZE)
      expect(e).toBe(
        `regular expression too complex for Envoy: RE2 program size ${size} exceeds the limit of 100 (re2.max_program_size.error_level)`,
      );
    else expect(e).toBeUndefined();
  });

  test('invalid expressions get RE2 error text', () => {
    expect(re2ProgramSize('(a')).toBe('missing ): (a');
    expect(re2Error('/(?=x)bad')).toBe('invalid perl operator: (?=');
  });

  test('only the rules over the limit are dropped, with the size in their reason', () => {
    const objects = withRegexRules(CASES.map(([r]) => r));
    const names = routeNames(objects);
    CASES.forEach(([, size], i) =>
      expect(names.includes(`httproute/default/re/rule/${i}/match/0`)).toBe(size <= MAX_PROGRAM_SIZE),
    );
    expect(names).toContain(`httproute/default/re/rule/${CASES.length}/match/0`);
    const status = JSON.stringify(run(reg, objects).result.statuses);
    expect(status).toContain('RE2 program size 1293 exceeds the limit of 100');
    expect(status).toContain('RE2 program size 101 exceeds the limit of 100');
  });
});

/** Envoy's verdict on one safe_regex path match in an otherwise valid configuration. */
function envoyAccepts(regex: string): { ok: boolean; output: string } {
  const json = run(reg, loadObjects(join(TESTDATA, 'gateway-basic-http.in.yaml'))).json;
  const vh = (json[0].routes[0].virtual_hosts as { routes: { match: JsonObject }[] }[])[0];
  vh.routes[0].match = { safe_regex: { regex } };
  return envoyValidate(staticBootstrap(json));
}

(envoyAvailable() ? describe : describe.skip)('Envoy agrees (envoy --mode validate)', () => {
  test.each(CASES)(
    '%s: same size and same verdict as Envoy',
    (regex, size) => {
      const r = envoyAccepts(regex);
      expect(r.ok).toBe(re2Error(regex) === undefined);
      if (!r.ok) expect(r.output).toContain(`RE2 program size of ${size} > max program size of 100`);
    },
    60_000,
  );

  test('named groups written (?<name>…): Envoy accepts, so do we (syntax newer than libre2 has)', () => {
    expect(envoyAccepts('/(?P<name>x)').ok).toBe(true);
    expect(re2Error('/(?P<name>x)')).toBeUndefined();
    expect(envoyAccepts('/(?<name>x)').ok).toBe(true);
    expect(re2ProgramSize('/(?<name>x)')).toBe('invalid perl operator: (?<');
    expect(re2Error('/(?<name>x)')).toBeUndefined();
  }, 60_000);

  test('header values: "%" unescaped is refused by Envoy, the translated golden is accepted', () => {
    const t = run(reg, loadObjects(join(TESTDATA, 'filter-header-percent.in.yaml')));
    expect(envoyValidate(staticBootstrap(t.json))).toMatchObject({ ok: true });
    const text = readFileSync(join(TESTDATA, 'filter-header-percent.out.yaml'), 'utf8');
    expect(text).toContain('value: 100%%');
    const raw = JSON.parse(JSON.stringify(t.json).replaceAll('%%', '%')) as typeof t.json;
    expect(envoyValidate(staticBootstrap(raw)).ok).toBe(false);
  }, 60_000);
});
