/**
 * The failure modes of the xDS hardening issue, each against the real ADS server over gRPC
 * on 127.0.0.1 with a raw client: a NACK must not poison later updates, a slow client must
 * not be left on old routes, an unsatisfiable step must keep routes back and say so, SotW
 * names that shrink and grow back are sent again, and the ledger is kept per stream.
 */
import { startApp } from '../src/app.js';
import { PROBE_ADDRESS_KEY, bootstrapConfig } from '../src/bootstrap.js';
import type { App } from '../src/app.js';
import { silentLogger } from '../src/log.js';
import type { RoundEvent } from '../src/xds/cache/ledger.js';
import { Snapshot } from '../src/xds/cache/snapshot.js';
import { TypeUrl } from '../src/xds/resource.js';
import type { Resource } from '../src/xds/resource.js';
import { cla, cluster, listener, res, route } from '../e2e/harness/resources.js';
import { waitFor } from '../e2e/harness/envoy.js';
import { AdsClient, decoded, names } from './harness/adsclient.js';
import type { DeltaStream, SotwStream } from './harness/adsclient.js';

const CDS = TypeUrl.Cluster;
const EDS = TypeUrl.Endpoint;
const LDS = TypeUrl.Listener;
const RDS = TypeUrl.Route;
const GROUP = 'default/gw';
const STEP_MS = 800;
const node = (id = 'n1') => ({ id, cluster: GROUP });
const C = (n: string, extra = {}) => res(CDS, cluster(n, extra));
const E = (n: string) => res(EDS, cla(n, [{ host: '127.0.0.9', port: 8080 }]));
const L = (n: string, rt: string) => res(LDS, listener(n, 10001, rt));
const R = (n: string, c: string) => res(RDS, route(n, c));
const snap = (...r: Resource[]) => new Snapshot(r);

let app: App;
let client: AdsClient;
let rounds: RoundEvent[];

beforeEach(async () => {
  app = await startApp({ log: silentLogger(), xdsAddress: '127.0.0.1:0', stepTimeoutMs: STEP_MS });
  client = new AdsClient(app.xdsPort);
  rounds = [];
  app.cache.ledger.on('round', (ev) => rounds.push(ev));
});

afterEach(async () => {
  client.close();
  await app.close();
});

type SotwRes = Awaited<ReturnType<SotwStream['next']>>;
const ack = (r: SotwRes, resourceNames: string[] = []) => ({
  type_url: r.type_url,
  version_info: r.version_info,
  response_nonce: r.nonce,
  resource_names: resourceNames,
});
const nack = (r: SotwRes, message: string, resourceNames: string[] = []) => ({
  ...ack(r, resourceNames),
  error_detail: { code: 3, message },
});
const dnames = (r: Awaited<ReturnType<DeltaStream['next']>>) => r.resources.map((x) => x.name).sort();
const clusterOf = (r: SotwRes) =>
  (decoded(r)[0].virtual_hosts as { routes: { route: { cluster: string } }[] }[])[0].routes[0].route.cluster;

/** A SotW client that has CDS/EDS/LDS/RDS of blue, all ACKed. Returns the last nonces. */
async function connected(s: SotwStream) {
  app.cache.setSnapshot(GROUP, snap(C('blue'), E('blue'), L('http', 'main'), R('main', 'blue')));
  s.send({ node: node(), type_url: CDS });
  const c = await s.next();
  s.send(ack(c));
  s.send({ type_url: EDS, resource_names: ['blue'] });
  const e = await s.next();
  s.send(ack(e, ['blue']));
  s.send({ type_url: LDS });
  const l = await s.next();
  s.send(ack(l));
  s.send({ type_url: RDS, resource_names: ['main'] });
  const r = await s.next();
  s.send(ack(r, ['main']));
  expect(await s.quiet(200)).toBe(true);
  return { e, r };
}

describe('a NACK does not poison later updates', () => {
  test('sotw: a rejected cluster the user then removes is not sent again; the NACK names only what changed', async () => {
    app.cache.setSnapshot(GROUP, snap(C('a')));
    const s = client.sotw();
    s.send({ node: node(), type_url: CDS });
    s.send(ack(await s.next()));
    app.cache.setSnapshot(GROUP, snap(C('a'), C('bad')));
    const r2 = await s.next();
    expect(names(r2)).toEqual(['a', 'bad']);
    s.send(nack(r2, 'cluster bad: invalid'));
    await waitFor('round stopped', () => rounds.find((r) => r.outcome === 'stopped'), 3000, 10);
    const t = app.cache.ledger.get('n1')?.types.get(CDS);
    // a was unchanged in that response: only bad is blamed
    expect(t?.nacked?.candidates).toEqual(['bad']);
    expect(t?.resources.get('a')?.nacked).toBeUndefined();
    expect(t?.resources.get('bad')).toMatchObject({
      nacked: expect.any(String),
      error: 'cluster bad: invalid',
    });
    expect(rounds[0]).toMatchObject({
      outcome: 'stopped',
      reason: 'nack',
      step: 1,
      stepName: 'add',
      error: 'cluster bad: invalid',
    });
    // the user removes bad and adds good: "+" is what the client ACKed plus the new snapshot
    app.cache.setSnapshot(GROUP, snap(C('a'), C('good')));
    const r3 = await s.next();
    expect(names(r3)).toEqual(['a', 'good']);
    s.send(ack(r3));
    await waitFor('round applied', () => rounds.find((r) => r.outcome === 'applied'), 3000, 10);
    expect(app.cache.ledger.get('n1')?.types.get(CDS)?.acked?.version).toBe(r3.version_info);
    s.cancel();
  });

  test('delta: the resources of a NACKed response are resent in halves; only the rejected one is held', async () => {
    app.cache.setSnapshot(GROUP, snap(C('a')));
    const d = client.delta();
    d.send({ node: node(), type_url: CDS });
    const r1 = await d.next();
    d.send({ type_url: CDS, response_nonce: r1.nonce });
    app.cache.setSnapshot(GROUP, snap(C('a'), C('b-good'), C('z-bad')));
    const r2 = await d.next();
    expect(dnames(r2)).toEqual(['b-good', 'z-bad']);
    d.send({ type_url: CDS, response_nonce: r2.nonce, error_detail: { code: 3, message: 'z-bad: invalid' } });
    const r3 = await d.next();
    expect(dnames(r3)).toEqual(['b-good']);
    d.send({ type_url: CDS, response_nonce: r3.nonce });
    const r4 = await d.next();
    expect(dnames(r4)).toEqual(['z-bad']);
    d.send({ type_url: CDS, response_nonce: r4.nonce, error_detail: { code: 3, message: 'z-bad: invalid' } });
    expect(await d.quiet(300)).toBe(true); // z-bad is held: never resent at this content
    const t = app.cache.ledger.get('n1')?.types.get(CDS);
    expect(t?.resources.get('b-good')?.acked).toBeDefined();
    expect(t?.resources.get('b-good')?.nacked).toBeUndefined();
    expect(t?.resources.get('z-bad')?.error).toBe('z-bad: invalid');
    expect(t?.nacked?.candidates).toEqual(['z-bad']);
    await waitFor('round stopped', () => rounds.find((r) => r.outcome === 'stopped'), 3000, 10);
    expect(rounds.find((r) => r.outcome === 'stopped')?.waiting?.CDS?.nacked).toEqual(['z-bad']);
    // a later change is sent on its own, without the rejected resource
    app.cache.setSnapshot(GROUP, snap(C('a'), C('b-good'), C('z-bad'), C('c')));
    const r5 = await d.next();
    expect(dnames(r5)).toEqual(['c']);
    d.cancel();
  });
});

describe('a slow client is not left on old routes', () => {
  test('a late ACK resumes the round: the stalled step is reported, then the route is switched', async () => {
    const s = client.sotw();
    const last = await connected(s);
    app.cache.setSnapshot(GROUP, snap(C('green'), E('green'), L('http', 'main'), R('main', 'green')));
    const c = await s.next();
    expect(names(c)).toEqual(['blue', 'green']);
    // Envoy warms green (EDS) but is slow to ACK the CDS update
    s.send({
      type_url: EDS,
      resource_names: ['blue', 'green'],
      version_info: '',
      response_nonce: last.e.nonce,
    });
    const e = await s.next();
    expect(names(e)).toEqual(['blue', 'green']);
    s.send(ack(e, ['blue', 'green']));
    const stalled = await waitFor(
      'stalled step reported',
      () => rounds.find((r) => r.reason === 'timeout'),
      5000,
      20,
    );
    expect(stalled).toMatchObject({ outcome: 'stopped', step: 1, stepName: 'add' });
    expect(stalled.waiting?.CDS?.pending).toBe(c.nonce);
    expect(app.cache.ledger.get('n1')?.round?.stalled?.reason).toBe('timeout');
    expect(s.received).toEqual([]); // no route was published meanwhile
    s.send(ack(c)); // the late ACK
    const r = await s.next();
    expect(r.type_url).toBe(RDS);
    expect(clusterOf(r)).toBe('green');
    s.send(ack(r, ['main']));
    const c2 = await s.next();
    expect(names(c2)).toEqual(['green']);
    s.send(ack(c2));
    const applied = await waitFor(
      'round applied',
      () => rounds.find((x) => x.outcome === 'applied'),
      3000,
      10,
    );
    expect(applied.round).toBe(stalled.round); // the same round, resumed
    s.cancel();
  });

  test('a step that cannot be satisfied keeps the routes back and says so in the ledger', async () => {
    const s = client.sotw();
    const last = await connected(s);
    app.cache.setSnapshot(GROUP, snap(C('green'), E('green'), L('http', 'main'), R('main', 'green')));
    const c = await s.next();
    s.send(ack(c)); // ACKs the clusters but never asks for green's endpoints
    const stalled = await waitFor(
      'stalled step reported',
      () => rounds.find((r) => r.reason === 'timeout'),
      5000,
      20,
    );
    expect(stalled.waiting?.EDS?.missing).toContain('green');
    expect(stalled.waiting?.EDS?.pending).toBeUndefined();
    // the route to green is not published: Envoy would answer 503 NC (xds-rules 14)
    expect(await s.quiet(STEP_MS)).toBe(true);
    const dbg = app.cache.ledger.toJSON() as { round?: { stalled?: { waiting?: unknown } } }[];
    expect(JSON.stringify(dbg[0].round?.stalled?.waiting)).toContain('green');
    // once the client subscribes, the round goes on
    s.send({
      type_url: EDS,
      resource_names: ['blue', 'green'],
      version_info: '',
      response_nonce: last.e.nonce,
    });
    const e = await s.next();
    s.send(ack(e, ['blue', 'green']));
    const r = await s.next();
    expect(r.type_url).toBe(RDS);
    expect(clusterOf(r)).toBe('green');
    s.cancel();
  });
});

test('a stalled round gives way to a newer snapshot (superseded), which is then applied', async () => {
  const s = client.sotw();
  await connected(s);
  app.cache.setSnapshot(GROUP, snap(C('green'), E('green'), L('http', 'main'), R('main', 'green')));
  s.send(ack(await s.next())); // never asks for green's endpoints: the step stalls
  await waitFor('stalled', () => rounds.find((r) => r.reason === 'timeout'), 5000, 20);
  // the user goes back to blue: the stalled round is replaced, the new one removes green
  app.cache.setSnapshot(GROUP, snap(C('blue'), E('blue'), L('http', 'main'), R('main', 'blue')));
  const c = await s.next();
  expect(c.type_url).toBe(CDS);
  expect(names(c)).toEqual(['blue']);
  s.send(ack(c));
  const applied = await waitFor('applied', () => rounds.find((r) => r.outcome === 'applied'), 3000, 10);
  const superseded = rounds.find((r) => r.outcome === 'superseded');
  expect(superseded?.round).toBe(applied.round - 1);
  expect(superseded?.step).toBe(1);
  s.cancel();
});

test('rule 8: SotW names that shrink and grow back are sent again', async () => {
  app.cache.setSnapshot(GROUP, snap(R('a', 'x'), R('b', 'x')));
  const s = client.sotw();
  s.send({ node: node(), type_url: RDS, resource_names: ['a', 'b'] });
  const r1 = await s.next();
  expect(names(r1)).toEqual(['a', 'b']);
  s.send(ack(r1, ['a', 'b']));
  // the listener of b goes: Envoy drops b and narrows its subscription
  s.send(ack(r1, ['a']));
  expect(await s.quiet(200)).toBe(true);
  // the listener comes back with the same route name: Envoy has no b any more
  s.send(ack(r1, ['a', 'b']));
  const r2 = await s.next();
  expect(names(r2)).toEqual(['a', 'b']);
  s.cancel();
});

describe('the ledger is kept per stream', () => {
  test('two Envoys with one node id: detected, counted, and neither corrupts the other', async () => {
    app.cache.setSnapshot(GROUP, snap(C('a')));
    const s1 = client.sotw();
    s1.send({ node: node('copy'), type_url: CDS });
    const r1 = await s1.next();
    const s2 = client.sotw();
    s2.send({ node: node('copy'), type_url: CDS });
    const r2 = await s2.next();
    expect(r1.nonce).not.toBe(r2.nonce); // nonces are unique across streams
    s1.send(ack(r1));
    s2.send(nack(r2, 'this one says no'));
    // a nonce of the other stream is stale on this one
    s2.send(ack(r1));
    await waitFor('both answered', () => {
      const [a, b] = app.cache.ledger.streamsOf('copy');
      return a?.types.get(CDS)?.acked && b?.types.get(CDS)?.nacked;
    });
    const [a, b] = app.cache.ledger.streamsOf('copy');
    expect(a.types.get(CDS)?.nacked).toBeUndefined();
    expect(b.types.get(CDS)?.acked).toBeUndefined();
    expect(a.duplicates).toEqual([b.streamId]);
    expect(await app.metrics.value('signalbox_xds_duplicate_node_ids_total', { mode: 'sotw' })).toBe(1);
    expect(await app.metrics.value('signalbox_xds_stream_errors_total', { reason: 'stale_nonce' })).toBe(1);
    // readiness sees each stream: the group is not ACKed while one of them NACKed
    const hash = app.cache.getGroup(GROUP)?.get(CDS).get('a')?.hash as string;
    const outs = await app.cache.waitForGroupAck(GROUP, CDS, 'a', hash, 200);
    expect(outs.map((o) => o.outcome).sort()).toEqual(['acked', 'timeout']);
    const dbg = app.cache.ledger.toJSON() as { id: string; duplicateNodeId: boolean }[];
    expect(dbg.filter((n) => n.id === 'copy').map((n) => n.duplicateNodeId)).toEqual([true, true]);
    s1.cancel();
    s2.cancel();
  });

  test('a reconnecting stream inherits no ACKs: a wait for ACK resolves from the new stream only', async () => {
    app.cache.setSnapshot(GROUP, snap(C('a')));
    const hash = app.cache.getGroup(GROUP)?.get(CDS).get('a')?.hash as string;
    const s1 = client.sotw();
    s1.send({ node: node('re'), type_url: CDS });
    s1.send(ack(await s1.next()));
    expect((await app.cache.waitForAck('re', CDS, 'a', hash, 1000)).outcome).toBe('acked');
    s1.cancel();
    await waitFor('first stream gone', () => !app.cache.ledger.get('re')?.connected);
    const s2 = client.sotw();
    s2.send({ node: node('re'), type_url: CDS });
    const r = await s2.next();
    await waitFor('second stream', () => app.cache.ledger.get('re')?.connected);
    expect(app.cache.ledger.ackedHash('re', CDS, 'a')).toBeUndefined();
    const wait = app.cache.waitForAck('re', CDS, 'a', hash, 3000);
    let settled = false;
    void wait.then(() => (settled = true));
    expect(await s2.quiet(100)).toBe(true);
    expect(settled).toBe(false);
    s2.send(ack(r));
    expect((await wait).outcome).toBe('acked');
    s2.cancel();
  });
});

test('the probe address an Envoy names in its node metadata (signalbox bootstrap --probe-address) is kept on its stream', async () => {
  const boot = bootstrapConfig({
    nodeId: 'p',
    group: GROUP,
    xdsPort: 1,
    adminPort: 2,
    probeAddress: '10.1.2.3',
  });
  expect((boot.node as { metadata: unknown }).metadata).toEqual({ [PROBE_ADDRESS_KEY]: '10.1.2.3' });
  app.cache.setSnapshot(GROUP, snap(C('a')));
  const s = client.sotw();
  s.send({
    node: { ...node('p'), metadata: { fields: { [PROBE_ADDRESS_KEY]: { stringValue: '10.1.2.3' } } } },
    type_url: CDS,
  });
  await s.next();
  expect(app.cache.ledger.get('p')?.probeAddress).toBe('10.1.2.3');
  expect((app.cache.ledger.toJSON() as { probeAddress?: string }[])[0].probeAddress).toBe('10.1.2.3');
  s.cancel();
});
