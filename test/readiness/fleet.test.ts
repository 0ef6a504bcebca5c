/**
 * The fleet's readiness of a route (src/readiness/fleet.ts) from plain objects, no API
 * server: the minimum over every replica with Envoys of the Gateway, the leader's own live
 * state included; a stale replica that had Envoys is unknown (never Ready); hashes must
 * match; a leader without Envoys (NoDataPlane) takes the reference from the others; no
 * Envoy anywhere → NoDataPlane. Also: the report ConfigMap names and what `observe` makes
 * of a report ConfigMap.
 */
import { EventEmitter } from 'node:events';
import type { KubeConfig } from '@kubernetes/client-node';
import {
  MAX_REPORT_BYTES,
  ReplicaReports,
  combineRoute,
  reportJson,
  reportName,
} from '../../src/readiness/fleet.js';
import type { CombineInput, PeerReport } from '../../src/readiness/fleet.js';
import type { Readiness, ReadinessReport, RouteReadiness } from '../../src/readiness/index.js';
import { silentLogger } from '../../src/log.js';

const R = 'httproute/default/web';
const G = 'default/gw';
const HB = 1000;
const NOW = 1_800_000_000_000;

const own = (o: Partial<RouteReadiness> = {}): RouteReadiness => ({
  route: R,
  group: G,
  generation: 2,
  ready: true,
  reason: 'Ready',
  message: 'proved through 1 Envoy(s)',
  phase: 'done',
  hash: 'h2',
  since: '2027-01-15T08:00:00Z',
  nodes: [],
  ...o,
});
type Row = ReadinessReport['routes'][number];
const row = (o: Partial<Row> = {}): Row => ({
  route: R,
  group: G,
  generation: 2,
  ready: true,
  reason: 'Ready',
  message: 'proved through 1 Envoy(s)',
  hash: 'h2',
  ...o,
});
const peer = (
  identity: string,
  o: { envoys?: number; routes?: Row[]; ageMs?: number; seenAgeMs?: number } = {},
): PeerReport => ({
  identity,
  report: { routes: o.routes ?? [row()], envoys: { [G]: o.envoys ?? 1 } },
  renewedAt: NOW - (o.ageMs ?? 100),
  seenAt: NOW - (o.seenAgeMs ?? o.ageMs ?? 100),
});
const combine = (o: Partial<CombineInput>) =>
  combineRoute({
    route: R,
    group: G,
    self: 'a',
    own: own(),
    ownEnvoys: 1,
    peers: [],
    now: NOW,
    heartbeatMs: HB,
    ...o,
  });

describe('combineRoute', () => {
  test('only this replica has Envoys: its own state, unchanged', () => {
    expect(combine({ peers: [peer('b', { envoys: 0, routes: [] })] })).toEqual(own());
    expect(combine({ own: own({ ready: false, reason: 'ProbeFailed', message: 'x' }) })).toMatchObject({
      ready: false,
      reason: 'ProbeFailed',
    });
  });

  test('every fresh replica Ready with the same hash: Ready, naming them', () => {
    const r = combine({ peers: [peer('b'), peer('c')] });
    expect(r).toMatchObject({ ready: true, reason: 'Ready', hash: 'h2', generation: 2 });
    expect(r?.message).toMatch(/replica a: .*replica b: .*replica c: /);
  });

  test('a fresh replica not Ready: its reason and a message naming it', () => {
    const r = combine({
      peers: [peer('b', { routes: [row({ ready: false, reason: 'ProbeFailed', message: 'backend 503' })] })],
    });
    expect(r).toMatchObject({ ready: false, reason: 'ProbeFailed' });
    expect(r?.message).toBe('replica b: ProbeFailed backend 503');
  });

  test('the worst reason wins: Nacked > ProbeFailed > NoEndpoints > Proving', () => {
    const p = (id: string, reason: Row['reason']) =>
      peer(id, { routes: [row({ ready: false, reason, message: reason })] });
    expect(combine({ peers: [p('b', 'Proving'), p('c', 'NoEndpoints')] })?.reason).toBe('NoEndpoints');
    // an Envoy away on one replica: worse than proving elsewhere, not as bad as a failure
    expect(combine({ peers: [p('b', 'Proving'), p('c', 'EnvoyDisconnected')] })?.reason).toBe(
      'EnvoyDisconnected',
    );
    expect(combine({ peers: [p('b', 'EnvoyDisconnected'), p('c', 'NoEndpoints')] })?.reason).toBe(
      'NoEndpoints',
    );
    expect(combine({ peers: [p('b', 'ProbeFailed'), p('c', 'Nacked'), p('d', 'Proving')] })).toMatchObject({
      reason: 'Nacked',
      message: 'replica c: Nacked Nacked; replica b: ProbeFailed ProbeFailed; replica d: Proving Proving',
    });
    expect(
      combine({ own: own({ ready: false, reason: 'Proving', message: 'p' }), peers: [p('b', 'ProbeFailed')] })
        ?.reason,
    ).toBe('ProbeFailed');
  });

  test('a stale replica that had Envoys is unknown, never Ready', () => {
    const r = combine({ peers: [peer('b', { ageMs: 3 * HB + 1 })] });
    expect(r).toMatchObject({ ready: false, reason: 'ReplicaUnknown' });
    expect(r?.message).toMatch(/^replica b has not reported since \S+Z .*unknown/);
    // fresh by its own clock, but we have not seen it renewed for 3 heartbeats
    expect(combine({ peers: [peer('b', { ageMs: 10, seenAgeMs: 3 * HB + 1 })] })?.ready).toBe(false);
    // a stale replica without Envoys of this Gateway does not count
    expect(combine({ peers: [peer('b', { ageMs: 10 * HB, envoys: 0 })] })).toEqual(own());
    // within 3 heartbeats: fresh
    expect(combine({ peers: [peer('b', { ageMs: 3 * HB })] })?.ready).toBe(true);
  });

  test('another hash (another state of the route), or no state at all: Proving', () => {
    const r = combine({ peers: [peer('b', { routes: [row({ hash: 'h1', generation: 1 })] })] });
    expect(r).toMatchObject({ ready: false, reason: 'Proving', hash: 'h2', generation: 2 });
    expect(r?.message).toMatch(/replica b: Proving \(at another state of the route, generation 1/);
    expect(combine({ peers: [peer('b', { routes: [] })] })).toMatchObject({
      ready: false,
      reason: 'Proving',
      message: 'replica b: Proving (has not translated the route yet)',
    });
  });

  test('a leader without Envoys (NoDataPlane): the reference comes from the others', () => {
    const nd = own({ ready: false, reason: 'NoDataPlane', message: 'no Envoy', hash: 'h2' });
    // B proved it: Ready although the leader itself has no Envoy
    expect(combine({ own: nd, ownEnvoys: 0, peers: [peer('b')] })).toMatchObject({
      ready: true,
      reason: 'Ready',
      hash: 'h2',
      generation: 2,
    });
    // the others disagree: not Ready, the worst named
    expect(
      combine({
        own: nd,
        ownEnvoys: 0,
        peers: [peer('b'), peer('c', { routes: [row({ hash: 'h1', generation: 1 })] })],
      }),
    ).toMatchObject({ ready: false, reason: 'Proving', hash: 'h2' });
    // the others lag behind the leader's generation: their generation (decorate says Proving)
    expect(
      combine({
        own: nd,
        ownEnvoys: 0,
        peers: [peer('b', { routes: [row({ generation: 1, hash: 'h1' })] })],
      }),
    ).toMatchObject({ ready: false, generation: 2, hash: 'h2' });
    // B stale: unknown
    expect(combine({ own: nd, ownEnvoys: 0, peers: [peer('b', { ageMs: 5 * HB })] })).toMatchObject({
      ready: false,
      reason: 'ReplicaUnknown',
    });
    // the leader has not even got the route: the others' state
    expect(combine({ own: undefined, ownEnvoys: 0, peers: [peer('b')] })).toMatchObject({
      ready: true,
      hash: 'h2',
    });
  });

  test('no replica has an Envoy of the Gateway: NoDataPlane', () => {
    expect(
      combine({
        own: own({ ready: false, reason: 'NoDataPlane' }),
        ownEnvoys: 0,
        peers: [peer('b', { envoys: 0 })],
      }),
    ).toMatchObject({ ready: false, reason: 'NoDataPlane', message: expect.stringMatching(/any replica/) });
    expect(combine({ own: undefined, ownEnvoys: 0, peers: [] })).toBeUndefined();
  });

  test('its own report among the peers is ignored (the live state counts)', () => {
    expect(combine({ peers: [peer('a', { ageMs: 100 * HB })] })).toEqual(own());
  });
});

describe('ReplicaReports', () => {
  test('report names are DNS-1123', () => {
    expect(reportName('replica-a')).toBe('signalbox-readiness-replica-a');
    const odd = reportName('Pod_Name.X@host');
    expect(odd).toMatch(/^signalbox-readiness-pod-name\.x-host-[0-9a-f]{8}$/);
    expect(reportName('x'.repeat(400)).length).toBeLessThanOrEqual(253);
    expect(reportName('-a-')).toMatch(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/);
  });

  test('observe + combine: a peer ConfigMap counts; a stale one turns the route unknown', () => {
    let changes = 0;
    const readiness = Object.assign(new EventEmitter(), {
      changed: () => changes++,
      report: () => ({ routes: [], envoys: {} }),
    }) as unknown as Readiness;
    const kc = { makeApiClient: () => ({}) } as unknown as KubeConfig;
    const f = new ReplicaReports({
      kc,
      readiness,
      log: silentLogger(),
      namespace: 'default',
      identity: 'a',
      heartbeatMs: HB,
      localEnvoys: () => 0,
    });
    const nd = own({ ready: false, reason: 'NoDataPlane' });
    expect(f.combine(R, G, nd)).toMatchObject({ reason: 'NoDataPlane' });
    const cm = (renewedAt: Date) => ({
      metadata: { name: 'signalbox-readiness-b', resourceVersion: '1' },
      data: {
        'report.json': JSON.stringify({ identity: 'b', report: { routes: [row()], envoys: { [G]: 1 } } }),
        identity: 'b',
        renewedAt: renewedAt.toISOString(),
      },
    });
    f.observe(cm(new Date()));
    expect(changes).toBe(1); // the statuses are written again
    const r1 = f.combine(R, G, nd);
    expect(r1).toMatchObject({ ready: true, reason: 'Ready' });
    // lastTransitionTime holds while ready/reason do
    expect(f.combine(R, G, nd)?.since).toBe(r1?.since);
    f.observe(cm(new Date(Date.now() - 4 * HB)));
    expect(f.combine(R, G, nd)).toMatchObject({
      ready: false,
      message: expect.stringMatching(/^replica b has not reported since/),
    });
    // an unparseable report is none
    f.observe({ metadata: { name: 'signalbox-readiness-c' }, data: { 'report.json': '{' } });
    expect((f.toJSON() as { peers: unknown[] }).peers).toHaveLength(1);
  });
});

describe('ReplicaReports with a fake API', () => {
  interface Call {
    op: string;
    name?: string;
    body?: { data?: Record<string, string>; metadata?: { labels?: Record<string, string> } };
    pre?: unknown;
  }
  const until = async (what: string, f: () => boolean) => {
    const end = Date.now() + 5000;
    while (!f()) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  function setup(o: { leader?: boolean; expireMs?: number } = {}) {
    const calls: Call[] = [];
    let exists = false;
    const notFound = () => Object.assign(new Error('not found'), { code: 404 });
    const api = {
      replaceNamespacedConfigMap: async (a: { name: string; body: Call['body'] }) => {
        calls.push({ op: 'replace', name: a.name, body: a.body });
        if (!exists) throw notFound();
        return a.body;
      },
      createNamespacedConfigMap: async (a: { body: Call['body'] }) => {
        calls.push({ op: 'create', body: a.body });
        exists = true;
        return a.body;
      },
      deleteNamespacedConfigMap: async (a: { name: string; body?: { preconditions?: unknown } }) => {
        calls.push({ op: 'delete', name: a.name, pre: a.body?.preconditions });
        return {};
      },
      // the watch of the others' reports never lists here
      listNamespacedConfigMap: () => new Promise(() => undefined),
    };
    let report: ReadinessReport = { routes: [], envoys: {} };
    const readiness = Object.assign(new EventEmitter(), {
      changed: () => undefined,
      report: () => report,
    }) as unknown as Readiness;
    const kc = { makeApiClient: () => api } as unknown as KubeConfig;
    const f = new ReplicaReports({
      kc,
      readiness,
      log: silentLogger(),
      namespace: 'signalbox-system',
      identity: 'pod-1',
      heartbeatMs: 300,
      expireMs: o.expireMs ?? 2000,
      isLeader: () => o.leader ?? false,
    });
    return {
      f,
      calls,
      readiness,
      setReport: (r: ReadinessReport) => (report = r),
    };
  }

  test('create on 404, then replace: the report, labelled; coalesced changes; heartbeats; deleted on stop', async () => {
    const { f, calls, readiness, setReport } = setup();
    f.start();
    await until('created', () => calls.some((c) => c.op === 'create'));
    expect(calls.slice(0, 2).map((c) => c.op)).toEqual(['replace', 'create']);
    const body = calls[1].body!;
    expect(body.metadata?.labels).toEqual({ 'signalbox.dev/readiness-report': 'true' });
    expect(body.data?.identity).toBe('pod-1');
    expect(body.data?.renewedAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(JSON.parse(body.data!['report.json'])).toEqual({
      identity: 'pod-1',
      report: { routes: [], envoys: {} },
    });

    // ten changes at once: one write (at most every ~200 ms)
    const n = calls.length;
    setReport({ routes: [row()], envoys: { [G]: 2 } });
    for (let i = 0; i < 10; i++) readiness.emit('changed');
    await until('the change written', () =>
      calls.slice(n).some((c) => c.body?.data?.['report.json'].includes('"default/gw":2')),
    );
    expect(calls.slice(n).filter((c) => c.op === 'replace').length).toBe(1);
    // no change: still renewed every heartbeat
    const m = calls.length;
    await until('two heartbeats', () => calls.length >= m + 2);
    expect(calls.slice(m).every((c) => c.op === 'replace')).toBe(true);

    await f.stop();
    expect(calls.at(-1)).toMatchObject({ op: 'delete', name: 'signalbox-readiness-pod-1' });
    const k = calls.length;
    await new Promise((r) => setTimeout(r, 400));
    expect(calls.length).toBe(k); // nothing after stop
  });

  test('the leader deletes a report stale beyond expireMs (only that one, if not renewed meanwhile)', async () => {
    const { f, calls } = setup({ leader: true, expireMs: 300 });
    const cm = (id: string, ageMs: number, rv: string) => ({
      metadata: { name: `signalbox-readiness-${id}`, resourceVersion: rv },
      data: {
        'report.json': JSON.stringify({ identity: id, report: { routes: [], envoys: { [G]: 1 } } }),
        identity: id,
        renewedAt: new Date(Date.now() - ageMs).toISOString(),
      },
    });
    f.observe(cm('old', 60_000, '7'));
    f.observe(cm('recent', 100, '8'));
    // only once we too have not seen it renewed for that long (a new leader does not purge at once)
    expect(calls).toEqual([]);
    await new Promise((r) => setTimeout(r, 400));
    f.observe(cm('recent', 100, '9'));
    await until('deleted', () => calls.some((c) => c.op === 'delete'));
    expect(calls.filter((c) => c.op === 'delete')).toEqual([
      { op: 'delete', name: 'signalbox-readiness-old', pre: { resourceVersion: '7' } },
    ]);
    expect((f.toJSON() as { peers: { identity: string }[] }).peers.map((p) => p.identity)).toEqual([
      'recent',
    ]);
    await f.stop();
  });

  test('a report too big for a ConfigMap leaves the messages out', () => {
    const big: ReadinessReport = {
      routes: Array.from({ length: 4000 }, (_, i) =>
        row({ route: `httproute/default/r${i}`, message: 'm'.repeat(300) }),
      ),
      envoys: { [G]: 1 },
    };
    const j = reportJson('a', big);
    expect(Buffer.byteLength(j)).toBeLessThanOrEqual(MAX_REPORT_BYTES);
    expect(JSON.parse(j)).toMatchObject({ truncated: true, report: { envoys: { [G]: 1 } } });
    expect(reportJson('a', { routes: [row()], envoys: {} })).not.toMatch(/truncated/);
  });
});
