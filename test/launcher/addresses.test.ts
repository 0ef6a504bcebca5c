/** The address pool of local Envoys (src/launcher/addresses.ts). */
import { AddressPool, addressRequests, parseLoopbackCidr } from '../../src/launcher/addresses.js';
import type { AddressRequest } from '../../src/launcher/addresses.js';

const req = (
  key: string,
  requested: AddressRequest['requested'] = [],
  previous?: string,
): AddressRequest => ({
  key,
  requested,
  ...(previous ? { previous } : {}),
});
const addrs = (m: Map<string, unknown>) => Object.fromEntries(m);

describe('parseLoopbackCidr', () => {
  test('a /24 hands out .1 to .254', () => {
    expect(parseLoopbackCidr('127.0.10.0/24')).toEqual({
      text: '127.0.10.0/24',
      first: (127 << 24) + (10 << 8) + 1,
      last: (127 << 24) + (10 << 8) + 254,
    });
  });
  test('host bits are masked; /31 and /32 use every address', () => {
    expect(parseLoopbackCidr('127.0.10.77/24').text).toBe('127.0.10.0/24');
    const p31 = parseLoopbackCidr('127.1.1.0/31');
    expect(p31.last - p31.first).toBe(1);
    const p32 = parseLoopbackCidr('127.1.1.9/32');
    expect(p32.first).toBe(p32.last);
  });
  test.each(['10.0.0.0/24', '127.0.0.0/7', '0.0.0.0/0', '127.0.0.1', 'fe80::/64', '127.0.0.0/33', 'x'])(
    '%s is refused',
    (c) => {
      expect(() => parseLoopbackCidr(c)).toThrow();
    },
  );
});

describe('AddressPool.assign', () => {
  test('lowest free addresses in key order; the same set gets the same addresses', () => {
    const a = new AddressPool('127.0.10.0/24');
    const b = new AddressPool('127.0.10.0/24');
    const got = a.assign([req('ns/b'), req('ns/a'), req('default/z')]);
    expect(addrs(got)).toEqual({
      'default/z': { address: '127.0.10.1' },
      'ns/a': { address: '127.0.10.2' },
      'ns/b': { address: '127.0.10.3' },
    });
    expect(addrs(b.assign([req('ns/a'), req('default/z'), req('ns/b')]))).toEqual(addrs(got));
  });

  test('a Gateway keeps its address when others come and go; a freed address is reused', () => {
    const p = new AddressPool('127.0.10.0/24');
    p.assign([req('d/b'), req('d/c')]); // b .1, c .2
    // a sorts first but b and c keep theirs
    expect(addrs(p.assign([req('d/a'), req('d/b'), req('d/c')]))).toEqual({
      'd/a': { address: '127.0.10.3' },
      'd/b': { address: '127.0.10.1' },
      'd/c': { address: '127.0.10.2' },
    });
    // b goes: its address is free for the next newcomer, the others stay
    expect(addrs(p.assign([req('d/a'), req('d/c'), req('d/e')]))).toEqual({
      'd/a': { address: '127.0.10.3' },
      'd/c': { address: '127.0.10.2' },
      'd/e': { address: '127.0.10.1' },
    });
    expect(Object.fromEntries(p.holders())).toEqual({
      'd/a': '127.0.10.3',
      'd/c': '127.0.10.2',
      'd/e': '127.0.10.1',
    });
  });

  test('spec.addresses IPAddress in 127/8 is honoured, in the pool or not; a value-less IPAddress gets one from the pool', () => {
    const p = new AddressPool('127.0.10.0/24');
    expect(
      addrs(
        p.assign([
          req('d/a', [{ type: 'IPAddress', value: '127.0.10.1' }]),
          req('d/b', [{ value: '127.42.0.7' }]), // type defaults to IPAddress
          req('d/c', [{ type: 'IPAddress' }]),
          req('d/d'),
        ]),
      ),
    ).toEqual({
      'd/a': { address: '127.0.10.1' },
      'd/b': { address: '127.42.0.7' },
      'd/c': { address: '127.0.10.2' },
      'd/d': { address: '127.0.10.3' },
    });
  });

  test('what cannot be honoured gets the reason Gateway API defines', () => {
    const p = new AddressPool('127.0.10.0/24');
    const got = p.assign([
      req('d/host', [{ type: 'Hostname', value: 'gw.example.com' }]),
      req('d/named', [{ type: 'example.com/Named', value: 'x' }]),
      req('d/public', [{ type: 'IPAddress', value: '10.1.2.3' }]),
      req('d/v6', [{ type: 'IPAddress', value: '::1' }]),
      req('d/garbage', [{ type: 'IPAddress', value: '127.0.0.300' }]),
      req('d/two', [
        { type: 'IPAddress', value: '127.0.10.8' },
        { type: 'IPAddress', value: '127.0.10.9' },
      ]),
    ]);
    expect(got.get('d/host')).toMatchObject({ reason: 'UnsupportedAddress' });
    expect(got.get('d/named')).toMatchObject({ reason: 'UnsupportedAddress' });
    expect(got.get('d/public')).toMatchObject({
      reason: 'AddressNotUsable',
      message: expect.stringMatching(/10\.1\.2\.3 is not/),
    });
    expect(got.get('d/v6')).toMatchObject({ reason: 'AddressNotUsable' });
    expect(got.get('d/garbage')).toMatchObject({ reason: 'AddressNotUsable' });
    expect(got.get('d/two')).toMatchObject({
      reason: 'AddressNotUsable',
      message: expect.stringMatching(/2 addresses/),
    });
    expect(p.holders().size).toBe(0);
  });

  test('an address another Gateway holds is AddressNotUsable, whoever asks later; a newcomer asking for a taken one does not move the holder', () => {
    const p = new AddressPool('127.0.10.0/24');
    p.assign([req('d/z')]); // z: .1 from the pool
    const got = p.assign([
      req('d/a', [{ value: '127.0.10.1' }]),
      req('d/z'),
      req('d/m', [{ value: '127.9.9.9' }]),
      req('d/n', [{ value: '127.9.9.9' }]),
    ]);
    expect(got.get('d/z')).toEqual({ address: '127.0.10.1' });
    expect(got.get('d/a')).toEqual({
      reason: 'AddressNotUsable',
      message: '127.0.10.1 is in use by Gateway d/z',
    });
    // two newcomers asking for the same address: the first in key order has it
    expect(got.get('d/m')).toEqual({ address: '127.9.9.9' });
    expect(got.get('d/n')).toMatchObject({
      reason: 'AddressNotUsable',
      message: expect.stringMatching(/d\/m/),
    });
    // once z is gone, a gets it
    expect(p.assign([req('d/a', [{ value: '127.0.10.1' }])]).get('d/a')).toEqual({ address: '127.0.10.1' });
  });

  test('dropping spec.addresses moves a Gateway from its requested address outside the pool into the pool', () => {
    const p = new AddressPool('127.0.10.0/24');
    p.assign([req('d/a', [{ value: '127.50.0.1' }])]);
    expect(p.assign([req('d/a')]).get('d/a')).toEqual({ address: '127.0.10.1' });
    // and asking for another address moves it there
    expect(p.assign([req('d/a', [{ value: '127.0.10.200' }])]).get('d/a')).toEqual({
      address: '127.0.10.200',
    });
  });

  test('the address a Gateway status reports is preferred when free (a restart gives it back)', () => {
    const p = new AddressPool('127.0.10.0/24');
    const got = p.assign([
      req('d/a', [], '127.0.10.9'),
      req('d/b', [], '127.0.10.9'),
      req('d/c', [], '10.0.0.1'),
    ]);
    expect(addrs(got)).toEqual({
      'd/a': { address: '127.0.10.9' },
      'd/b': { address: '127.0.10.1' }, // .9 is a's
      'd/c': { address: '127.0.10.2' }, // not in the pool: ignored
    });
  });

  test('an exhausted pool is AddressNotAssigned; a freed address goes to the waiting Gateway', () => {
    const p = new AddressPool('127.0.10.0/31'); // two addresses
    const got = p.assign([req('d/a'), req('d/b'), req('d/c')]);
    expect(got.get('d/a')).toEqual({ address: '127.0.10.0' });
    expect(got.get('d/b')).toEqual({ address: '127.0.10.1' });
    expect(got.get('d/c')).toEqual({
      reason: 'AddressNotAssigned',
      message: 'no free address left in 127.0.10.0/31 (--envoy-local-addresses)',
    });
    expect(p.assign([req('d/b'), req('d/c')]).get('d/c')).toEqual({ address: '127.0.10.0' });
  });

  test('a pool shrunk under a Gateway (a restart with another --envoy-local-addresses) moves it', () => {
    const p = new AddressPool('127.0.10.0/24');
    expect(p.assign([req('d/a', [], '127.0.99.1')]).get('d/a')).toEqual({ address: '127.0.10.1' });
  });
});

describe('addressRequests', () => {
  const G = 'gateway.networking.k8s.io/v1';
  test('only Gateways of our GatewayClasses, with spec.addresses and the status address', () => {
    const objects = [
      { apiVersion: G, kind: 'GatewayClass', metadata: { name: 'ours' }, spec: { controllerName: 'me' } },
      { apiVersion: G, kind: 'GatewayClass', metadata: { name: 'theirs' }, spec: { controllerName: 'you' } },
      {
        apiVersion: G,
        kind: 'Gateway',
        metadata: { namespace: 'n', name: 'a' },
        spec: { gatewayClassName: 'ours', addresses: [{ type: 'IPAddress', value: '127.0.0.5' }, 'junk'] },
        status: { addresses: [{ type: 'IPAddress', value: '127.0.10.4' }] },
      },
      { apiVersion: G, kind: 'Gateway', metadata: { name: 'b' }, spec: { gatewayClassName: 'ours' } },
      {
        apiVersion: G,
        kind: 'Gateway',
        metadata: { namespace: 'n', name: 'c' },
        spec: { gatewayClassName: 'theirs' },
      },
      { apiVersion: G, kind: 'Gateway', metadata: { namespace: 'n', name: 'd' } },
      null,
      'x',
    ];
    expect(addressRequests(objects, 'me')).toEqual([
      { key: 'n/a', requested: [{ type: 'IPAddress', value: '127.0.0.5' }, {}], previous: '127.0.10.4' },
      { key: 'default/b', requested: [] },
    ]);
  });
});
