/**
 * Metrics: every name follows Prometheus' conventions (prefix, base units, _total on
 * counters only; promtool itself checks a live scrape in e2e/provider/envoy-fleet.test.ts),
 * the operator metrics exist, and the new ones count what they say: streams out of sync
 * (a push not ACKed yet, a NACK), event→push latency, translation duration and route
 * parent statuses by condition.
 */
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startApp } from '../src/app.js';
import type { App } from '../src/app.js';
import { silentLogger } from '../src/log.js';
import { Snapshot } from '../src/xds/cache/snapshot.js';
import { TypeUrl } from '../src/xds/resource.js';
import { cluster, res } from '../e2e/harness/resources.js';
import { OPERATOR_METRICS, samples } from '../e2e/harness/metrics.js';
import { AdsClient } from './harness/adsclient.js';

const CDS = TypeUrl.Cluster;
const GROUP = 'default/gw';

describe('metric names', () => {
  let app: App;
  afterAll(() => app?.close());

  test('prefix, base units, _total on counters only, help on every metric', async () => {
    app = await startApp({ log: silentLogger(), xdsAddress: '127.0.0.1:0', defaultMetrics: true });
    const all = await app.metrics.registry.getMetricsAsJSON();
    expect(all.length).toBeGreaterThan(30);
    const bad: string[] = [];
    for (const m of all) {
      const why = (s: string) => bad.push(`${m.name} (${String(m.type)}): ${s}`);
      if (!/^signalbox_[a-z][a-z0-9_]*[a-z0-9]$/.test(m.name)) why('not signalbox_ snake_case');
      if (/__/.test(m.name)) why('double underscore');
      if (String(m.type) === 'counter' && !m.name.endsWith('_total')) why('a counter ends in _total');
      if (String(m.type) !== 'counter' && m.name.endsWith('_total')) why('only counters end in _total');
      if (
        (String(m.type) === 'histogram' || String(m.type) === 'summary') &&
        !/_(seconds|bytes)$/.test(m.name)
      )
        why('a histogram measures a base unit: _seconds or _bytes');
      if (
        /_(milli|micro|nano)?(ms|us|ns|millis|milliseconds|microseconds|minutes|hours|kilobytes|megabytes)(_|$)/.test(
          m.name,
        )
      )
        why('not a base unit (seconds, bytes)');
      if (!m.help || m.help.length < 10) why('no help');
      for (const v of m.values ?? [])
        for (const l of Object.keys(v.labels ?? {}))
          if (!/^[a-z_][a-z0-9_]*$/.test(l)) why(`label ${l} not snake_case`);
    }
    expect(bad).toEqual([]);
    const names = new Set(all.map((m) => m.name));
    for (const [what, name] of Object.entries(OPERATOR_METRICS))
      expect([what, names.has(name)]).toEqual([what, true]);
  });
});

describe('streams out of sync and event→push latency', () => {
  let app: App;
  let client: AdsClient;
  beforeEach(async () => {
    app = await startApp({ log: silentLogger(), xdsAddress: '127.0.0.1:0', readiness: 'off' });
    client = new AdsClient(app.xdsPort);
  });
  afterEach(async () => {
    client.close();
    await app.close();
  });
  const outOfSync = () => app.metrics.value('signalbox_xds_nodes_out_of_sync');
  const until = async (what: string, fn: () => boolean | Promise<boolean>) => {
    const end = Date.now() + 5000;
    while (!(await fn())) {
      if (Date.now() > end) throw new Error(`timed out: ${what}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  };

  test('a stream is out of sync while a push is not ACKed and after a NACK, in sync once it ACKs', async () => {
    app.cache.setSnapshot(GROUP, new Snapshot([res(CDS, cluster('a'))]));
    expect(await outOfSync()).toBe(0); // no stream yet
    const s = client.sotw();
    s.send({ node: { id: 'n1', cluster: GROUP }, type_url: CDS });
    const r1 = await s.next();
    expect(await outOfSync()).toBe(1);
    s.send({ type_url: CDS, version_info: r1.version_info, response_nonce: r1.nonce });
    await until('ACK recorded', () => app.cache.ledger.get('n1')?.types.get(CDS)?.acked?.nonce === r1.nonce);
    expect(await outOfSync()).toBe(0);

    // a change whose first event was 200 ms ago: its first push observes event→push
    app.cache.noteChange(GROUP, Date.now() - 200);
    app.cache.setSnapshot(GROUP, new Snapshot([res(CDS, cluster('a')), res(CDS, cluster('b'))]));
    const r2 = await s.next();
    const m = samples(await app.metrics.registry.metrics());
    expect(m.get('signalbox_event_push_latency_seconds_count')).toBe(1);
    expect(m.get('signalbox_event_push_latency_seconds_sum')).toBeGreaterThanOrEqual(0.2);
    expect(await outOfSync()).toBe(1);
    s.send({
      type_url: CDS,
      version_info: r1.version_info,
      response_nonce: r2.nonce,
      error_detail: { code: 3, message: 'cluster b: bad' },
    });
    await until(
      'NACK recorded',
      () => app.cache.ledger.get('n1')?.types.get(CDS)?.nacked?.nonce === r2.nonce,
    );
    expect(await outOfSync()).toBe(1);
    // the snapshot goes back to what the stream holds: in sync again
    app.cache.setSnapshot(GROUP, new Snapshot([res(CDS, cluster('a'))]));
    const r3 = await s.next();
    s.send({ type_url: CDS, version_info: r3.version_info, response_nonce: r3.nonce });
    await until('ACK recorded', () => app.cache.ledger.get('n1')?.types.get(CDS)?.acked?.nonce === r3.nonce);
    expect(await outOfSync()).toBe(0);
    // only the first push of a change is observed; a change with no Envoy connected is not
    expect(
      samples(await app.metrics.registry.metrics()).get('signalbox_event_push_latency_seconds_count'),
    ).toBe(1);
    s.cancel();
    await until('stream closed', () => app.cache.streamsOf(GROUP).length === 0);
    expect(await outOfSync()).toBe(0);
    app.cache.noteChange(GROUP, Date.now());
    app.cache.setSnapshot(GROUP, new Snapshot([res(CDS, cluster('c'))]));
    expect(
      samples(await app.metrics.registry.metrics()).get('signalbox_event_push_latency_seconds_count'),
    ).toBe(1);
  });
});

describe('translation metrics (standalone folder)', () => {
  let app: App;
  let dir: string;
  afterAll(async () => {
    await app?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('translation duration is observed; route parent statuses are counted by condition', async () => {
    dir = mkdtempSync(join(tmpdir(), 'signalbox-metrics-'));
    cpSync('e2e/testdata/gateway-folder', dir, { recursive: true });
    app = await startApp({
      log: silentLogger(),
      xdsAddress: '127.0.0.1:0',
      configDir: dir,
      listenerAddress: '127.0.0.1',
    });
    const m = samples(await app.metrics.registry.metrics());
    expect(m.get('signalbox_translation_duration_seconds_count')).toBeGreaterThanOrEqual(1);
    expect(m.get('signalbox_route_conditions{type="Accepted",status="True"}')).toBe(1);
    expect(m.get('signalbox_route_conditions{type="ResolvedRefs",status="True"}')).toBe(1);
    expect(m.get('signalbox_route_conditions{type="Accepted",status="False"}')).toBe(0);
  });
});
