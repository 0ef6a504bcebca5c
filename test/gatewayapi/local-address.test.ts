/**
 * Per-Gateway addresses (`serve --envoy local`): TranslateOptions.gatewayAddresses reaches
 * the Envoy listeners of each Gateway (IRGateway.address → socket_address), its
 * status.addresses and Programmed; a Gateway without an address gets the reason and no
 * configuration. The pipeline asks the LocalDataPlane for the addresses and tells it which
 * Gateways to run.
 */
import { translate } from '../../src/gatewayapi/translator.js';
import type { GatewayAddress } from '../../src/gatewayapi/index.js';
import { silentLogger } from '../../src/log.js';
import { Pipeline } from '../../src/provider/pipeline.js';
import { SnapshotCache } from '../../src/xds/cache/cache.js';
import { protoRegistry } from '../../src/xds/proto.js';
import { TypeUrl } from '../../src/xds/resource.js';
import { gatewayJson } from '../../src/xds/translate/index.js';
import { NOW } from './helpers.js';

const G = 'gateway.networking.k8s.io/v1';
const objects = (extra: Record<string, unknown>[] = []): unknown[] => [
  {
    apiVersion: G,
    kind: 'GatewayClass',
    metadata: { name: 'sb' },
    spec: { controllerName: 'signalbox.dev/gateway-controller' },
  },
  ...['a', 'b', 'c', 'd'].map((name) => ({
    apiVersion: G,
    kind: 'Gateway',
    metadata: { namespace: 'default', name, generation: 1 },
    spec: {
      gatewayClassName: 'sb',
      listeners: [{ name: 'http', protocol: 'HTTP', port: 8080 }],
      ...(name === 'b' ? { addresses: [{ type: 'IPAddress', value: '127.0.99.9' }] } : {}),
      ...(name === 'd' ? { addresses: [{ type: 'Hostname', value: 'gw.example.com' }] } : {}),
    },
  })),
  ...extra,
];
const addresses = new Map<string, GatewayAddress>([
  ['default/a', { address: '127.0.10.1' }],
  ['default/b', { address: '127.0.99.9' }],
  ['default/c', { reason: 'AddressNotUsable', message: '127.0.10.1 is in use by Gateway default/a' }],
  ['default/d', { reason: 'UnsupportedAddress', message: 'address type "Hostname" is not supported' }],
]);

type Cond = { type: string; status: string; reason: string; message: string };
const gwStatus = (r: ReturnType<typeof translate>, name: string) =>
  r.statuses.find((s) => s.kind === 'Gateway' && s.name === name)!.status as {
    addresses?: unknown[];
    conditions: Cond[];
  };
const cond = (r: ReturnType<typeof translate>, name: string, type: string) =>
  gwStatus(r, name).conditions.find((c) => c.type === type)!;

describe('per-Gateway addresses in the translator', () => {
  const r = translate(objects(), { now: NOW, gatewayAddresses: addresses });

  test("each Gateway's listeners bind its own address, on the same port", () => {
    const byGroup = new Map(r.ir.gateways.map((g) => [g.group, g]));
    expect([...byGroup.keys()]).toEqual(['default/a', 'default/b']);
    expect(byGroup.get('default/a')!.address).toBe('127.0.10.1');
    for (const [g, want] of [
      ['default/a', '127.0.10.1'],
      ['default/b', '127.0.99.9'],
    ] as const) {
      // the Gateway's address wins over the bind address given to the Envoy translation
      const j = gatewayJson(byGroup.get(g)!, { bindAddress: '0.0.0.0' });
      expect(j.listeners.map((l) => l.address)).toEqual([
        { socket_address: { address: want, port_value: 8080 } },
      ]);
    }
  });

  test('status.addresses and Programmed name the address', () => {
    expect(gwStatus(r, 'a').addresses).toEqual([{ type: 'IPAddress', value: '127.0.10.1' }]);
    expect(gwStatus(r, 'b').addresses).toEqual([{ type: 'IPAddress', value: '127.0.99.9' }]);
    expect(cond(r, 'a', 'Programmed')).toMatchObject({
      status: 'True',
      reason: 'Programmed',
      message: 'Gateway is programmed: its listeners bind 127.0.10.1',
    });
    // spec.addresses is honoured: accepted
    expect(cond(r, 'b', 'Accepted')).toMatchObject({ status: 'True', reason: 'Accepted' });
  });

  test('AddressNotUsable: Accepted, Programmed=False, no address, no configuration', () => {
    expect(cond(r, 'c', 'Accepted')).toMatchObject({ status: 'True' });
    expect(cond(r, 'c', 'Programmed')).toEqual(
      expect.objectContaining({
        status: 'False',
        reason: 'AddressNotUsable',
        message: '127.0.10.1 is in use by Gateway default/a',
      }),
    );
    expect(gwStatus(r, 'c').addresses).toBeUndefined();
  });

  test('UnsupportedAddress: Accepted=False', () => {
    expect(cond(r, 'd', 'Accepted')).toMatchObject({ status: 'False', reason: 'UnsupportedAddress' });
    expect(cond(r, 'd', 'Programmed')).toMatchObject({ status: 'False' });
  });

  test('a Gateway of ours missing from the map is AddressNotAssigned', () => {
    const r2 = translate(objects(), { now: NOW, gatewayAddresses: new Map() });
    expect(r2.ir.gateways).toEqual([]);
    expect(cond(r2, 'a', 'Programmed')).toMatchObject({ status: 'False', reason: 'AddressNotAssigned' });
  });

  test('without per-Gateway addresses nothing changes: spec.addresses is not supported, the bind address is used', () => {
    const r3 = translate(objects(), { now: NOW });
    expect(cond(r3, 'b', 'Accepted')).toMatchObject({ status: 'False', reason: 'UnsupportedAddress' });
    const a = r3.ir.gateways.find((g) => g.group === 'default/a')!;
    expect(a.address).toBeUndefined();
    expect(gatewayJson(a, { bindAddress: '127.0.0.1' }).listeners[0].address).toEqual({
      socket_address: { address: '127.0.0.1', port_value: 8080 },
    });
  });
});

describe('the pipeline with a LocalDataPlane', () => {
  test('assign before translating; run with the Gateways that have a configuration and an address', () => {
    const calls: { assigned: number; run: Map<string, string>[] } = { assigned: 0, run: [] };
    const cache = new SnapshotCache();
    const p = new Pipeline({
      cache,
      registry: protoRegistry(),
      log: silentLogger(),
      controllerName: 'signalbox.dev/gateway-controller',
      bindAddress: '0.0.0.0',
      local: {
        assign: (objs, controllerName) => {
          calls.assigned++;
          expect(controllerName).toBe('signalbox.dev/gateway-controller');
          expect(objs.length).toBe(5);
          return addresses;
        },
        run: (gws) => void calls.run.push(new Map(gws)),
      },
    });
    const res = p.run(objects())!;
    expect(calls.assigned).toBe(1);
    expect(calls.run).toEqual([
      new Map([
        ['default/a', '127.0.10.1'],
        ['default/b', '127.0.99.9'],
      ]),
    ]);
    const l = [...cache.getGroup('default/b')!.get(TypeUrl.Listener).values()][0].json as {
      address: unknown;
    };
    expect(l.address).toEqual({ socket_address: { address: '127.0.99.9', port_value: 8080 } });
    expect(cache.getGroup('default/c')).toBeUndefined();
    expect((res.statuses.find((s) => s.name === 'a')!.status as { addresses: unknown }).addresses).toEqual([
      { type: 'IPAddress', value: '127.0.10.1' },
    ]);
  });
});
