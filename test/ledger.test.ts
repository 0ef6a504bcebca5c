/** The ledger is kept per ADS stream, remembers disconnected streams, but not without bound. */
import { Ledger } from '../src/xds/cache/ledger.js';
import type { DuplicateEvent } from '../src/xds/cache/ledger.js';

const sent = (l: Ledger, stream: number, nonce: string, hash = 'h') =>
  l.recordSent(stream, 't', { version: 'v', nonce, at: 1, resources: [{ name: 'a', hash }], removed: [] });

test('connected streams are always kept; only the oldest disconnected ones are forgotten', () => {
  const l = new Ledger(3);
  const live = l.connect('live', 'default/gw', 'sotw', 'p');
  for (let i = 0; i < 6; i++) {
    const s = l.connect(`gone-${i}`, 'default/gw', 'delta', 'p');
    l.disconnect(s);
  }
  expect(l.all().map((n) => n.id)).toEqual(['gone-3', 'gone-4', 'gone-5', 'live']);
  expect(l.get('live')?.streamId).toBe(live);
  expect(l.get('live')?.connected).toBe(true);
});

test('a reconnecting node starts with nothing ACKed; an old stream closing does not mark the new one gone', () => {
  const l = new Ledger();
  const s1 = l.connect('n', 'default/gw', 'sotw', 'p');
  sent(l, s1, 'x.1.1');
  expect(l.recordAck(s1, 't', 'x.1.1')?.stream).toBe(s1);
  expect(l.ackedHash('n', 't', 'a')).toBe('h');
  const s2 = l.connect('n', 'default/gw', 'sotw', 'p');
  l.disconnect(s1);
  expect(l.get('n')?.streamId).toBe(s2);
  expect(l.get('n')?.connected).toBe(true);
  expect(l.get('n')?.connects).toBe(2);
  // the new stream inherits nothing: its Envoy may be another process altogether
  expect(l.ackedHash('n', 't', 'a')).toBeUndefined();
  // the old stream's history is still there to read
  expect(l.stream(s1)?.types.get('t')?.resources.get('a')?.acked).toBe('h');
  // a nonce of the old stream does not ACK anything on the new one
  expect(l.recordAck(s2, 't', 'x.1.1')).toBeUndefined();
  l.disconnect(s2);
  expect(l.get('n')?.connected).toBe(false);
});

test('two streams with one node id: detected, and each keeps its own ACKs and NACKs', () => {
  const l = new Ledger();
  const dups: DuplicateEvent[] = [];
  l.on('duplicate', (d) => dups.push(d));
  const a = l.connect('copy', 'default/gw', 'sotw', 'peer-a');
  const b = l.connect('copy', 'default/gw', 'sotw', 'peer-b');
  expect(dups.map((d) => [d.node, d.stream.streamId, d.others.map((o) => o.streamId)])).toEqual([
    ['copy', b, [a]],
  ]);
  expect(l.stream(a)?.duplicates).toEqual([b]);
  expect(l.stream(b)?.duplicates).toEqual([a]);
  sent(l, a, 'x.a.1');
  sent(l, b, 'x.b.1');
  l.recordAck(a, 't', 'x.a.1');
  l.recordNack(b, 't', 'x.b.1', 'rejected');
  expect(l.stream(a)?.types.get('t')?.nacked).toBeUndefined();
  expect(l.stream(a)?.types.get('t')?.resources.get('a')).toEqual({ sent: 'h', acked: 'h' });
  expect(l.stream(b)?.types.get('t')?.acked).toBeUndefined();
  expect(l.stream(b)?.types.get('t')?.resources.get('a')).toEqual({
    sent: 'h',
    nacked: 'h',
    error: 'rejected',
  });
  const json = l.toJSON() as { stream: number; duplicateNodeId: boolean }[];
  expect(json.map((j) => [j.stream, j.duplicateNodeId])).toEqual([
    [a, true],
    [b, true],
  ]);
});

test('a NACK is recorded against its candidates (what the response changed), not every resource in it', () => {
  const l = new Ledger();
  const s = l.connect('n', 'default/gw', 'sotw', 'p');
  l.recordSent(s, 't', {
    version: 'v1',
    nonce: '1',
    at: 1,
    resources: [
      { name: 'a', hash: 'a1' },
      { name: 'b', hash: 'b1' },
    ],
    removed: [],
  });
  l.recordAck(s, 't', '1');
  l.recordSent(s, 't', {
    version: 'v2',
    nonce: '2',
    at: 2,
    resources: [
      { name: 'a', hash: 'a1' },
      { name: 'b', hash: 'b2' },
    ],
    removed: [],
  });
  const ev = l.recordNack(s, 't', '2', 'b is bad', ['b']);
  expect(ev?.candidates).toEqual(['b']);
  const t = l.stream(s)?.types.get('t');
  expect(t?.resources.get('a')).toEqual({ sent: 'a1', acked: 'a1' });
  expect(t?.resources.get('b')).toEqual({ sent: 'b2', acked: 'b1', nacked: 'b2', error: 'b is bad' });
  expect(t?.nacked?.candidates).toEqual(['b']);
});
