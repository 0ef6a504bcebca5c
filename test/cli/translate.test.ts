/** `signalbox translate`'s offline pipeline: the file provider's admission and translation, in order, errors named by their input. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readInputs, translateOffline, translateTable } from '../../src/cli/translate.js';
import { DEFAULT_CONTROLLER_NAME } from '../../src/provider/pipeline.js';

const DIR = 'e2e/testdata/gateway-folder';

test('a folder of Gateway API YAML: the Gateway’s resources and every object’s status', () => {
  const inputs = readInputs([DIR], () => '');
  expect(inputs.map((i) => i.source)).toEqual([
    `${DIR}/backend.yaml`,
    `${DIR}/gateway.yaml`,
    `${DIR}/route.yaml`,
  ]);
  const out = translateOffline(inputs, { controllerName: DEFAULT_CONTROLLER_NAME });
  expect(out.errors).toEqual([]);
  expect(out.gateways.map((g) => g.group)).toEqual(['default/gw']);
  const gw = out.gateways[0];
  expect(gw.resources.LDS?.map((r) => r.name)).toEqual(['listener-18080']);
  expect(gw.resources.CDS?.map((r) => r.name)).toEqual(['default/web/80']);
  const route = out.objects.find((o) => o.kind === 'HTTPRoute')!;
  expect(route.generation).toBe(1);
  const conds = (route.status as { parents: { conditions: { type: string; status: string }[] }[] }).parents[0]
    .conditions;
  expect(conds.map((c) => `${c.type}=${c.status}`)).toEqual(['Accepted=True', 'ResolvedRefs=True']);
  const text = translateTable(out);
  expect(text).toMatch(/default\/gw\s+LDS\s+listener-18080/);
  expect(text).toMatch(/HTTPRoute\s+default\s+web\s+1\s+gw: Accepted=True ResolvedRefs=True/);
});

test('stdin and files in the order given; a rejected document is named by its input and left out', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'signalbox-translate-test-'));
  try {
    const bad = join(tmp, 'bad route.yaml');
    writeFileSync(
      bad,
      'apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: broken}\nspec: {rules: [{backendRefs: [{name: web, port: 99999}]}]}\n',
    );
    const gateway = `${DIR}/gateway.yaml`;
    const inputs = readInputs(['-', bad, gateway], () => 'not: [valid');
    expect(inputs.map((i) => i.source)).toEqual(['-', bad, gateway]);
    const out = translateOffline(inputs, { controllerName: DEFAULT_CONTROLLER_NAME });
    expect(out.errors.map((e) => e.file)).toEqual(['-', bad]);
    expect(out.errors[1]).toMatchObject({ kind: 'HTTPRoute', name: 'broken' });
    expect(out.objects.map((o) => o.kind)).toEqual(['Gateway', 'GatewayClass']);
    expect(translateTable(out)).toContain(`error: ${bad} HTTPRoute default/broken:`);
    expect(() => readInputs([join(tmp, 'nope.yaml')], () => '')).toThrow(/no such file/);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
