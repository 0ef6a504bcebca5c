/**
 * `signalbox routes` and `signalbox wait` logic over GET /debug/routes, the output helpers,
 * and the document the debug endpoint builds from the statuses and readiness.
 */
import { readFileSync } from 'node:fs';
import { routesDocument } from '../../src/debug/routes.js';
import type { RoutesDocument } from '../../src/debug/routes.js';
import { parseRouteTarget, routesTable, waitVerdict } from '../../src/cli/routes.js';
import { DEFAULT_SERVER } from '../../src/cli/client.js';
import { CliError, parseDuration, render, table } from '../../src/cli/output.js';
import { parseType } from '../../src/cli/commands.js';
import type { Condition } from '../../src/gatewayapi/index.js';

const c = (
  type: string,
  status: string,
  reason: string,
  message = '',
  observedGeneration = 1,
): Condition => ({
  type,
  status: status as Condition['status'],
  reason,
  message,
  observedGeneration,
  lastTransitionTime: '2026-01-01T00:00:00Z',
});

function doc(conditions: Condition[], generation = 1, readiness = 'proved'): RoutesDocument {
  return {
    readiness,
    routes: [
      {
        kind: 'HTTPRoute',
        namespace: 'default',
        name: 'web',
        generation,
        parents: [
          {
            gateway: 'default/gw',
            sectionName: 'http',
            controllerName: 'signalbox.dev/gateway-controller',
            conditions,
            readiness: {
              generation,
              ready: false,
              reason: 'ProbeFailed',
              message: 'envoy-1: 503',
              phase: 'done',
              hash: 'h',
              since: '2026-01-01T00:00:00Z',
              nodes: [],
            },
          },
        ],
      },
    ],
  };
}

const accepted = [c('Accepted', 'True', 'Accepted'), c('ResolvedRefs', 'True', 'ResolvedRefs')];

test('wait: Ready at the current generation only', () => {
  const t = parseRouteTarget('route/default/web');
  expect(
    waitVerdict(doc([...accepted, c('Ready', 'True', 'Ready', 'proved through 1 Envoy(s)')]), t),
  ).toMatchObject({ route: 'httproute/default/web', ready: true, generation: 1, reason: 'Ready' });
  // Ready for generation 1, the route is at 2: not yet
  expect(waitVerdict(doc([...accepted, c('Ready', 'True', 'Ready', '', 1)], 2), t)).toMatchObject({
    ready: false,
    reason: 'Proving',
    message: 'default/gw: Ready is for generation 1, the route is at 2',
  });
  expect(
    waitVerdict(doc([...accepted, c('Ready', 'False', 'NoEndpoints', 'no backend has a ready endpoint')]), t),
  ).toMatchObject({
    ready: false,
    reason: 'NoEndpoints',
    message: 'default/gw: no backend has a ready endpoint',
  });
  // not Accepted: no Ready condition, the Accepted condition says why
  expect(
    waitVerdict(doc([c('Accepted', 'False', 'NotAllowedByListeners', 'no listener allows it')]), t),
  ).toMatchObject({
    ready: false,
    reason: 'NotAllowedByListeners',
    message: 'default/gw: Accepted=False: no listener allows it',
  });
  expect(waitVerdict(doc(accepted), parseRouteTarget('route/default/nope'))).toMatchObject({
    ready: false,
    reason: 'NotFound',
  });
  expect(waitVerdict(doc(accepted), parseRouteTarget('grpcroute/default/web'))).toMatchObject({
    reason: 'NotFound',
  });
  expect(waitVerdict(doc(accepted, 1, 'off'), t)).toMatchObject({ fatal: true, reason: 'ReadinessOff' });
  const two = doc(accepted);
  two.routes.push({ ...two.routes[0], kind: 'GRPCRoute' });
  expect(waitVerdict(two, t)).toMatchObject({ fatal: true, reason: 'Ambiguous' });
  expect(waitVerdict(two, parseRouteTarget('route/default/web', 'GRPCRoute')).route).toBe(
    'grpcroute/default/web',
  );
});

test('route targets, types, durations', () => {
  expect(parseRouteTarget('httproute/ns/a')).toEqual({ kind: 'HTTPRoute', namespace: 'ns', name: 'a' });
  expect(parseRouteTarget('route/ns/a', 'grpcroute')).toEqual({
    kind: 'GRPCRoute',
    namespace: 'ns',
    name: 'a',
  });
  expect(() => parseRouteTarget('route/a')).toThrow(CliError);
  expect(() => parseRouteTarget('httproute/ns/a', 'GRPCRoute')).toThrow(/different kinds/);
  expect(parseType('route')).toBe('RDS');
  expect(parseType('cds')).toBe('CDS');
  expect(() => parseType('xds')).toThrow(CliError);
  expect(parseDuration('60s')).toBe(60_000);
  expect(parseDuration('500ms')).toBe(500);
  expect(parseDuration('2m')).toBe(120_000);
  expect(parseDuration('1.5')).toBe(1500);
  expect(() => parseDuration('soon')).toThrow(CliError);
});

test('routes table: one row per parent, the reason and message that explain the state', () => {
  const text = routesTable(
    doc([...accepted, c('Ready', 'False', 'ProbeFailed', 'envoy-1: 503\n from backend')]),
  );
  const [head, row] = text.trimEnd().split('\n');
  expect(head.split(/\s+/)).toEqual([
    'ROUTE',
    'GEN',
    'PARENT',
    'ACCEPTED',
    'RESOLVEDREFS',
    'READY',
    'PHASE',
    'REASON',
    'MESSAGE',
  ]);
  expect(row.split(/\s{2,}/)).toEqual([
    'httproute/default/web',
    '1',
    'default/gw/http',
    'True',
    'True',
    'False',
    'done',
    'ProbeFailed',
    'envoy-1: 503 from backend',
  ]);
  const notAccepted = routesTable(doc([c('Accepted', 'False', 'NoMatchingParent', 'no such listener')]));
  expect(notAccepted).toMatch(/False\s+-\s+-\s+done\s+NoMatchingParent\s+no such listener/);
  expect(routesTable({ readiness: 'off', routes: [] })).toBe(
    'readiness off: routes have no Ready condition\nno HTTPRoute or GRPCRoute\n',
  );
});

test('the debug endpoint’s routes document: routes only, sorted, each parent with its Gateway', () => {
  const d = routesDocument([
    { kind: 'Gateway', namespace: 'default', name: 'gw', generation: 1, status: {} },
    {
      kind: 'HTTPRoute',
      namespace: 'b',
      name: 'r',
      generation: 3,
      status: {
        parents: [
          {
            parentRef: { name: 'gw', namespace: 'default', sectionName: 'http' },
            controllerName: 'x',
            conditions: [c('Accepted', 'True', 'Accepted')],
          },
        ],
      },
    },
    { kind: 'GRPCRoute', namespace: 'a', name: 'g', generation: 1, status: null },
  ]);
  expect(d.readiness).toBe('off');
  expect(d.routes.map((r) => `${r.kind}/${r.namespace}/${r.name}`)).toEqual([
    'GRPCRoute/a/g',
    'HTTPRoute/b/r',
  ]);
  expect(d.routes[1].parents).toEqual([
    {
      gateway: 'default/gw',
      sectionName: 'http',
      controllerName: 'x',
      conditions: [c('Accepted', 'True', 'Accepted')],
    },
  ]);
  expect(d.routes[0].parents).toEqual([]);
});

test('output: aligned columns, JSON and YAML; the default --server is serve’s default --debug-address', () => {
  expect(
    table(
      ['A', 'LONGER'],
      [
        ['xx', ''],
        ['y', 'z'],
      ],
    ),
  ).toBe('A   LONGER\nxx  -\ny   z\n');
  expect(render('json', { a: 1 }, () => 'no')).toBe('{\n  "a": 1\n}\n');
  expect(render('yaml', { a: [1] }, () => 'no')).toBe('a:\n  - 1\n');
  expect(render('table', { a: 1 }, () => 'human')).toBe('human');
  const cli = readFileSync('src/cli.ts', 'utf8');
  const m = /'--debug-address <host:port>',\s*'[^']*',\s*'([^']+)'/.exec(cli);
  expect(m).not.toBeNull();
  expect(DEFAULT_SERVER).toBe(`http://${m![1]}`);
});
