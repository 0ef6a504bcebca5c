/**
 * One protocol test (at least) per rule of ../shared/xds-rules.md, rules 1-14, against the
 * real ADS server over gRPC on 127.0.0.1 with a raw client that sends exactly what each test
 * means to send.
 */
import { startApp } from '../src/app.js';
import type { App } from '../src/app.js';
import { silentLogger } from '../src/log.js';
import { Snapshot } from '../src/xds/cache/snapshot.js';
import { TypeUrl } from '../src/xds/resource.js';
import type { Resource } from '../src/xds/resource.js';
import { cla, cluster, listener, res, route } from '../e2e/harness/resources.js';
import { AdsClient, decoded, names } from './harness/adsclient.js';
import type { SotwStream } from './harness/adsclient.js';

const CDS = TypeUrl.Cluster;
const EDS = TypeUrl.Endpoint;
const LDS = TypeUrl.Listener;
const RDS = TypeUrl.Route;
const GROUP = 'default/gw';
const node = (id = 'n1', cluster = GROUP) => ({ id, cluster });

const C = (n: string, extra = {}) => res(CDS, cluster(n, extra));
const E = (n: string, port = 8080) => res(EDS, cla(n, [{ host: '127.0.0.9', port }]));
const L = (n: string, port: number, rt: string) => res(LDS, listener(n, port, rt));
const R = (n: string, c: string) => res(RDS, route(n, c));

function snap(...r: Resource[]): Snapshot {
  return new Snapshot(r);
}

let app: App;
let client: AdsClient;

beforeEach(async () => {
  app = await startApp({ log: silentLogger(), xdsAddress: '127.0.0.1:0', stepTimeoutMs: 1500 });
  client = new AdsClient(app.xdsPort);
});

afterEach(async () => {
  client.close();
  await app.close();
});

/** Send a request and return the response. */
async function ask(s: SotwStream, req: Parameters<SotwStream['send']>[0]) {
  s.send(req);
  return s.next();
}

function ackOf(r: { version_info: string; nonce: string; type_url: string }, names: string[] = []) {
  return {
    type_url: r.type_url,
    version_info: r.version_info,
    response_nonce: r.nonce,
    resource_names: names,
  };
}

describe('rule 1: node identity is read from the first request and kept', () => {
  test('later requests without a node (or with another) stay on the first node', async () => {
    app.cache.setSnapshot(GROUP, snap(C('a'), E('a')));
    app.cache.setSnapshot('other/gw', snap(C('other')));
    const s = client.sotw();
    const r1 = await ask(s, { node: node('first'), type_url: CDS });
    expect(names(r1)).toEqual(['a']);
    s.send(ackOf(r1));
    // EDS request without node: served from the first node's group
    const r2 = await ask(s, { type_url: EDS, resource_names: ['a'] });
    expect(names(r2)).toEqual(['a']);
    // a request claiming another node changes nothing
    s.send({ ...ackOf(r2, ['a']), node: node('impostor', 'other/gw') });
    expect(await s.quiet()).toBe(true);
    const n = app.cache.ledger.get('first');
    expect(n?.group).toBe(GROUP);
    expect(app.cache.ledger.get('impostor')).toBeUndefined();
    s.cancel();
  });
});

describe('rule 2: nonces', () => {
  test('every response has a fresh nonce; a SotW request with a stale nonce is ignored whole', async () => {
    app.cache.setSnapshot(GROUP, snap(C('a')));
    const s = client.sotw();
    const r1 = await ask(s, { node: node(), type_url: CDS });
    s.send(ackOf(r1));
    app.cache.setSnapshot(GROUP, snap(C('a'), C('b')));
    const r2 = await s.next();
    expect(r2.nonce).not.toBe(r1.nonce);
    // a NACK carrying the older nonce is stale: no NACK recorded, nothing held
    s.send({ ...ackOf(r1), error_detail: { code: 3, message: 'stale complaint' } });
    expect(await s.quiet()).toBe(true);
    const t = app.cache.ledger.get('n1')?.types.get(CDS);
    expect(t?.nacked).toBeUndefined();
    expect(await app.metrics.value('signalbox_xds_stream_errors_total', { reason: 'stale_nonce' })).toBe(1);
    s.send(ackOf(r2));
    await new Promise((r) => setTimeout(r, 100));
    expect(app.cache.ledger.get('n1')?.types.get(CDS)?.acked?.version).toBe(r2.version_info);
    s.cancel();
  });

  test('delta: a stale nonce still applies its subscription changes', async () => {
    app.cache.setSnapshot(GROUP, snap(E('a'), E('b'), E('c')));
    const d = client.delta();
    d.send({ node: node(), type_url: EDS, resource_names_subscribe: ['a'] });
    const r1 = await d.next();
    expect(r1.resources.map((r) => r.name)).toEqual(['a']);
    d.send({ type_url: EDS, response_nonce: r1.nonce });
    d.send({ type_url: EDS, resource_names_subscribe: ['b'], response_nonce: r1.nonce });
    const r2 = await d.next();
    expect(r2.resources.map((r) => r.name)).toEqual(['b']);
    expect(r2.nonce).not.toBe(r1.nonce);
    d.send({ type_url: EDS, response_nonce: r2.nonce });
    // stale nonce (r1), but subscribes 'c': applied
    d.send({ type_url: EDS, resource_names_subscribe: ['c'], response_nonce: r1.nonce });
    const r3 = await d.next();
    expect(r3.resources.map((r) => r.name)).toEqual(['c']);
    d.cancel();
  });
});

describe('rule 3: deterministic versions', () => {
  test('the same resources in another order, in another server, give the same versions', async () => {
    const r = [C('a'), C('b'), E('a'), E('b'), L('l', 10001, 'rt'), R('rt', 'a')];
    app.cache.setSnapshot(GROUP, snap(...r));
    const other = await startApp({ log: silentLogger(), xdsAddress: '127.0.0.1:0' });
    // rebuilt from JSON (fresh encodes) in reverse order
    other.cache.setSnapshot(GROUP, snap(...[...r].reverse().map((x) => res(x.typeUrl, x.json))));
    const c2 = new AdsClient(other.xdsPort);
    try {
      const s1 = client.sotw();
      const s2 = c2.sotw();
      for (const t of [CDS, LDS]) {
        const a = await ask(s1, { node: node(), type_url: t });
        const b = await ask(s2, { node: node(), type_url: t });
        expect(a.version_info).toBe(b.version_info);
        expect(Buffer.concat(a.resources.map((x) => x.value))).toEqual(
          Buffer.concat(b.resources.map((x) => x.value)),
        );
      }
      expect(app.cache.getGroup(GROUP)?.allVersions()).toEqual(other.cache.getGroup(GROUP)?.allVersions());
      s1.cancel();
      s2.cancel();
    } finally {
      c2.close();
      await other.close();
    }
  });

  test('map keys in any insertion order encode to the same bytes', () => {
    const a = res(CDS, cluster('m', { metadata: { filter_metadata: { x: { b: 1, a: 2 }, y: { z: 'q' } } } }));
    const b = res(CDS, cluster('m', { metadata: { filter_metadata: { y: { z: 'q' }, x: { a: 2, b: 1 } } } }));
    expect(Buffer.from(a.bytes)).toEqual(Buffer.from(b.bytes));
    expect(a.hash).toBe(b.hash);
  });
});

describe('rule 4: ACK and NACK are decided by error_detail', () => {
  test('error_detail with the new version is a NACK; no error_detail with an old version is an ACK', async () => {
    app.cache.setSnapshot(GROUP, snap(C('a')));
    const s = client.sotw();
    const r1 = await ask(s, { node: node(), type_url: CDS });
    // ACK that carries an empty version_info (no version comparison): still an ACK
    s.send({ type_url: CDS, version_info: '', response_nonce: r1.nonce });
    await new Promise((r) => setTimeout(r, 100));
    expect(app.cache.ledger.get('n1')?.types.get(CDS)?.acked?.version).toBe(r1.version_info);
    app.cache.setSnapshot(GROUP, snap(C('a'), C('b')));
    const r2 = await s.next();
    // NACK that (wrongly, as some clients do) carries the new version: still a NACK
    s.send({ ...ackOf(r2), error_detail: { code: 3, message: 'cluster b: bad' } });
    await new Promise((r) => setTimeout(r, 100));
    const t = app.cache.ledger.get('n1')?.types.get(CDS);
    expect(t?.nacked?.version).toBe(r2.version_info);
    expect(t?.nacked?.error).toBe('cluster b: bad');
    expect(t?.acked?.version).toBe(r1.version_info);
    s.cancel();
  });
});

describe('rule 5: no resend after a NACK until the snapshot changes', () => {
  test.each(['sotw', 'delta'])(
    '%s: the NACK is in the ledger; same content is held; new content is sent',
    async (mode) => {
      app.cache.setSnapshot(GROUP, snap(C('a')));
      if (mode === 'sotw') {
        const s = client.sotw();
        const r1 = await ask(s, { node: node(), type_url: CDS });
        s.send({ ...ackOf(r1), error_detail: { code: 3, message: 'envoy says no' } });
        // the client keeps asking (Envoy re-requests after a NACK): nothing is resent
        s.send({ type_url: CDS, version_info: '', response_nonce: r1.nonce });
        expect(await s.quiet(400)).toBe(true);
        app.cache.setSnapshot(GROUP, snap(C('a'), C('b')));
        const r2 = await s.next();
        expect(names(r2)).toEqual(['a', 'b']);
        s.cancel();
      } else {
        const d = client.delta();
        d.send({ node: node(), type_url: CDS });
        const r1 = await d.next();
        d.send({
          type_url: CDS,
          response_nonce: r1.nonce,
          error_detail: { code: 3, message: 'envoy says no' },
        });
        expect(await d.quiet(400)).toBe(true);
        app.cache.setSnapshot(GROUP, snap(C('a'), C('b')));
        const r2 = await d.next();
        // delta holds per resource: the rejected 'a' (unchanged) is not sent again with 'b'
        expect(r2.resources.map((r) => r.name).sort()).toEqual(['b']);
        d.cancel();
      }
      const t = app.cache.ledger.get('n1')?.types.get(CDS);
      expect(t?.nacked?.error).toBe('envoy says no');
      expect(typeof t?.nacked?.at).toBe('number');
      expect(t?.resources.get('a')?.error).toBe('envoy says no');
      expect(await app.metrics.value('signalbox_xds_nacks_total', { type: 'CDS' })).toBe(1);
    },
  );
});

describe('rule 6: push only when content changed', () => {
  test('setting an equal snapshot (new object, same content) pushes nothing', async () => {
    app.cache.setSnapshot(GROUP, snap(C('a'), E('a')));
    const s = client.sotw();
    const r1 = await ask(s, { node: node(), type_url: CDS });
    s.send(ackOf(r1));
    app.cache.setSnapshot(GROUP, snap(res(CDS, C('a').json), res(EDS, E('a').json)));
    expect(await s.quiet(400)).toBe(true);
    s.cancel();
  });

  test('a burst of requests is answered for the newest subscription', async () => {
    app.cache.setSnapshot(GROUP, snap(E('a'), E('b'), E('c')));
    const s = client.sotw();
    const r1 = await ask(s, { node: node(), type_url: EDS, resource_names: ['a'] });
    // three requests back to back; the last one names a, b, c
    s.send(ackOf(r1, ['a', 'b']));
    s.send(ackOf(r1, ['a', 'c']));
    s.send(ackOf(r1, ['a', 'b', 'c']));
    const got: string[][] = [];
    for (;;) {
      const r = await s.next(500).catch(() => undefined);
      if (!r) break;
      got.push(names(r).sort());
      s.send(ackOf(r, ['a', 'b', 'c']));
    }
    expect(got[got.length - 1]).toEqual(['a', 'b', 'c']);
    expect(got.length).toBeLessThanOrEqual(2);
    s.cancel();
  });
});

describe('rule 7: a type never subscribed by name is wildcard', () => {
  test('CDS/LDS with no names get everything; EDS by name gets only those names', async () => {
    app.cache.setSnapshot(
      GROUP,
      snap(C('a'), C('b'), E('a'), E('b'), L('l1', 10001, 'r'), L('l2', 10002, 'r')),
    );
    const s = client.sotw();
    expect(names(await ask(s, { node: node(), type_url: CDS }))).toEqual(['a', 'b']);
    expect(names(await ask(s, { type_url: LDS }))).toEqual(['l1', 'l2']);
    expect(names(await ask(s, { type_url: EDS, resource_names: ['b'] }))).toEqual(['b']);
    s.cancel();
  });
});

describe('rule 8: growing name sets', () => {
  test('newly named resources are sent although the snapshot did not change', async () => {
    app.cache.setSnapshot(GROUP, snap(E('a'), E('b')));
    const s = client.sotw();
    const r1 = await ask(s, { node: node(), type_url: EDS, resource_names: ['a'] });
    expect(names(r1)).toEqual(['a']);
    const r2 = await ask(s, ackOf(r1, ['a', 'b']));
    expect(names(r2)).toEqual(['a', 'b']);
    s.cancel();
  });

  test('delta: newly subscribed names are sent', async () => {
    app.cache.setSnapshot(GROUP, snap(E('a'), E('b')));
    const d = client.delta();
    d.send({ node: node(), type_url: EDS, resource_names_subscribe: ['a'] });
    const r1 = await d.next();
    d.send({ type_url: EDS, response_nonce: r1.nonce, resource_names_subscribe: ['b'] });
    const r2 = await d.next();
    expect(r2.resources.map((r) => r.name)).toEqual(['b']);
    d.cancel();
  });
});

describe('rule 9: names that do not exist yet', () => {
  test('sotw: remembered, and pushed when they appear', async () => {
    app.cache.setSnapshot(GROUP, snap(E('a')));
    const s = client.sotw();
    const r1 = await ask(s, { node: node(), type_url: EDS, resource_names: ['a', 'later'] });
    expect(names(r1)).toEqual(['a']);
    s.send(ackOf(r1, ['a', 'later']));
    app.cache.setSnapshot(GROUP, snap(E('a'), E('later')));
    const r2 = await s.next();
    expect(names(r2)).toEqual(['a', 'later']);
    s.cancel();
  });

  test('delta: reported in removed_resources, subscription kept, pushed when it appears', async () => {
    app.cache.setSnapshot(GROUP, snap(E('a')));
    const d = client.delta();
    d.send({ node: node(), type_url: EDS, resource_names_subscribe: ['a', 'later'] });
    const r1 = await d.next();
    expect(r1.resources.map((r) => r.name)).toEqual(['a']);
    expect(r1.removed_resources).toEqual(['later']);
    d.send({ type_url: EDS, response_nonce: r1.nonce });
    expect(await d.quiet(300)).toBe(true); // reported once, not again
    app.cache.setSnapshot(GROUP, snap(E('a'), E('later')));
    const r2 = await d.next();
    expect(r2.resources.map((r) => r.name)).toEqual(['later']);
    expect(r2.removed_resources).toEqual([]);
    d.cancel();
  });
});

describe('rule 10: the first wildcard request is answered even when there is nothing', () => {
  test('sotw and delta, for a group with no snapshot', async () => {
    const s = client.sotw();
    const r = await ask(s, { node: node('lonely', 'nobody/here'), type_url: CDS });
    expect(r.resources).toEqual([]);
    expect(r.version_info).not.toBe('');
    const d = client.delta();
    d.send({ node: node('lonely-d', 'nobody/here'), type_url: LDS });
    const dr = await d.next();
    expect(dr.resources).toEqual([]);
    expect(await app.metrics.value('signalbox_xds_stream_errors_total', { reason: 'unknown_group' })).toBe(2);
    s.cancel();
    d.cancel();
  });
});

describe('rule 11: never the same name twice in one response', () => {
  test('a client naming a resource twice gets it once; a snapshot cannot hold a name twice', async () => {
    app.cache.setSnapshot(GROUP, snap(E('a')));
    const s = client.sotw();
    const r = await ask(s, { node: node(), type_url: EDS, resource_names: ['a', 'a', 'a'] });
    expect(names(r)).toEqual(['a']);
    expect(() => snap(C('dup'), C('dup'))).toThrow(/duplicate CDS resource name "dup"/);
    s.cancel();
  });
});

describe('rule 12: deletion', () => {
  test('sotw CDS always carries the full set: a removed cluster is missing from the next response', async () => {
    app.cache.setSnapshot(GROUP, snap(C('a'), C('b')));
    const s = client.sotw();
    const r1 = await ask(s, { node: node(), type_url: CDS });
    s.send(ackOf(r1));
    app.cache.setSnapshot(GROUP, snap(C('b')));
    const r2 = await s.next();
    expect(names(r2)).toEqual(['b']);
    s.cancel();
  });

  test('delta CDS removal uses removed_resources', async () => {
    app.cache.setSnapshot(GROUP, snap(C('a'), C('b')));
    const d = client.delta();
    d.send({ node: node(), type_url: CDS });
    const r1 = await d.next();
    d.send({ type_url: CDS, response_nonce: r1.nonce });
    app.cache.setSnapshot(GROUP, snap(C('b')));
    const r2 = await d.next();
    expect(r2.resources).toEqual([]);
    expect(r2.removed_resources).toEqual(['a']);
    d.cancel();
  });
});

/**
 * A client that behaves like Envoy: wildcard CDS and LDS, EDS for its clusters, RDS for its
 * listeners' route names, ACKing every response. It records the order of what it received
 * and, for each RDS response, whether every cluster it names was already ACKed and warmed
 * (CDS + EDS) at that moment.
 */
class EnvoyLike {
  log: string[] = [];
  clusters = new Set<string>();
  warm = new Set<string>();
  violations: string[] = [];
  constructor(private readonly s: SotwStream) {}

  async run(stopAfterQuietMs = 400): Promise<void> {
    for (;;) {
      const r = await this.s.next(stopAfterQuietMs).catch(() => undefined);
      if (!r) return;
      const objs = decoded(r);
      const short =
        { [CDS]: 'CDS', [EDS]: 'EDS', [LDS]: 'LDS', [RDS]: 'RDS' }[r.type_url as string] ?? r.type_url;
      this.log.push(`${short}:${names(r).sort().join(',')}`);
      if (r.type_url === CDS) {
        this.clusters = new Set(names(r));
        for (const w of [...this.warm]) if (!this.clusters.has(w)) this.warm.delete(w);
        this.s.send(ackOf(r));
        this.s.send({
          type_url: EDS,
          resource_names: [...this.clusters].sort(),
          version_info: '',
          response_nonce: this.lastEds ?? '',
        });
      } else if (r.type_url === EDS) {
        this.lastEds = r.nonce;
        for (const n of names(r)) this.warm.add(n);
        this.s.send(ackOf(r, [...this.clusters].sort()));
      } else if (r.type_url === LDS) {
        this.s.send(ackOf(r));
        const rts = objs.map(() => 'main');
        this.s.send({
          type_url: RDS,
          resource_names: [...new Set(rts)],
          version_info: '',
          response_nonce: this.lastRds ?? '',
        });
      } else if (r.type_url === RDS) {
        this.lastRds = r.nonce;
        for (const o of objs) {
          const vh = (o.virtual_hosts as { routes: { route: { cluster: string } }[] }[])[0];
          for (const rt of vh.routes) {
            if (!this.warm.has(rt.route.cluster))
              this.violations.push(`route ${String(o.name)} -> ${rt.route.cluster} before it was warm`);
          }
        }
        this.s.send(ackOf(r, ['main']));
      }
    }
  }
  lastEds?: string;
  lastRds?: string;
}

describe('rules 13 and 14: make-before-break ordering', () => {
  test('CDS (old+new) → EDS (new) → RDS (switch) → CDS (old removed); no route names a cluster not yet warm', async () => {
    app.cache.setSnapshot(GROUP, snap(C('blue'), E('blue'), L('http', 10001, 'main'), R('main', 'blue')));
    const s = client.sotw();
    s.send({ node: node(), type_url: CDS });
    const env = new EnvoyLike(s);
    await env.run();
    s.send({ type_url: LDS });
    await env.run();
    expect(env.log).toEqual(['CDS:blue', 'EDS:blue', 'LDS:http', 'RDS:main']);
    env.log = [];
    // one change: add green, switch the route to green, drop blue
    app.cache.setSnapshot(GROUP, snap(C('green'), E('green'), L('http', 10001, 'main'), R('main', 'green')));
    await env.run();
    // after CDS drops blue the client narrows EDS to green, which it already holds: SotW
    // EDS has no deletion, so nothing more is sent (xds-rules 12)
    expect(env.log).toEqual(['CDS:blue,green', 'EDS:blue,green', 'RDS:main', 'CDS:green']);
    expect(env.violations).toEqual([]);
    s.cancel();
  });

  test('a changed cluster gets a fresh ClusterLoadAssignment even when its endpoints did not change', async () => {
    app.cache.setSnapshot(GROUP, snap(C('a'), E('a')));
    const s = client.sotw();
    s.send({ node: node(), type_url: CDS });
    const env = new EnvoyLike(s);
    await env.run();
    env.log = [];
    app.cache.setSnapshot(GROUP, snap(C('a', { connect_timeout: '2s' }), E('a')));
    await env.run();
    expect(env.log).toEqual(['CDS:a', 'EDS:a']);
    s.cancel();
  });
});
