/** The ledger remembers disconnected nodes for the debug endpoint, but not without bound. */
import { Ledger } from '../src/xds/cache/ledger.js';

test('connected nodes are always kept; only the oldest disconnected ones are forgotten', () => {
  const l = new Ledger(3);
  const live = l.connect('live', 'default/gw', 'sotw', 'p');
  for (let i = 0; i < 6; i++) {
    const s = l.connect(`gone-${i}`, 'default/gw', 'delta', 'p');
    l.disconnect(`gone-${i}`, s);
  }
  expect(l.all().map((n) => n.id)).toEqual(['gone-3', 'gone-4', 'gone-5', 'live']);
  expect(l.get('live')?.streamId).toBe(live);
  expect(l.get('live')?.connected).toBe(true);
});

test('a reconnecting node keeps its history; an old stream closing does not mark the new one gone', () => {
  const l = new Ledger();
  const s1 = l.connect('n', 'default/gw', 'sotw', 'p');
  l.recordSent('n', 't', {
    version: 'v1',
    nonce: '1',
    at: 1,
    resources: [{ name: 'a', hash: 'h' }],
    removed: [],
  });
  l.recordAck('n', 't', '1');
  const s2 = l.connect('n', 'default/gw', 'sotw', 'p');
  l.disconnect('n', s1);
  expect(l.get('n')?.connected).toBe(true);
  expect(l.get('n')?.connects).toBe(2);
  expect(l.ackedHash('n', 't', 'a')).toBe('h');
  l.disconnect('n', s2);
  expect(l.get('n')?.connected).toBe(false);
});
