/**
 * A second, independent xDS client: the proxyless gRPC client of @grpc/grpc-js-xds.
 *
 * It reads its bootstrap (GRPC_XDS_BOOTSTRAP_CONFIG) at first use, opens one SotW ADS stream
 * to signalbox and subscribes by name: LDS for the target's name (an API listener), then the
 * RDS, CDS and EDS resources it references. A real call through the xds:/// channel must
 * reach the local gRPC server, and signalbox's ledger must show that node ACKed each type
 * at the version it was sent.
 */
import * as grpc from '@grpc/grpc-js';
import * as grpcXds from '@grpc/grpc-js-xds';
import { startApp } from '../src/app.js';
import type { App } from '../src/app.js';
import { silentLogger } from '../src/log.js';
import { Snapshot } from '../src/xds/cache/snapshot.js';
import { TypeUrl } from '../src/xds/resource.js';
import { waitFor } from './harness/envoy.js';
import { grpcResources, say, startEchoServer } from './harness/grpc.js';
import type { EchoServer } from './harness/grpc.js';

const NODE_ID = 'grpc-js-xds-1';
const GROUP = 'default/grpc-gw';

describe('@grpc/grpc-js-xds as an xDS client of signalbox', () => {
  let app: App;
  let a: EchoServer;
  let b: EchoServer;
  let client: grpc.Client | undefined;

  beforeAll(async () => {
    a = await startEchoServer('echo-a', '127.0.0.3');
    b = await startEchoServer('echo-b', '127.0.0.4');
    app = await startApp({ log: silentLogger(), xdsAddress: '127.0.0.1:0' });
    app.cache.setSnapshot(GROUP, new Snapshot(grpcResources('echo', [a])));
    // read by grpc-js-xds when the first xds: channel is created
    process.env.GRPC_XDS_BOOTSTRAP_CONFIG = JSON.stringify({
      xds_servers: [
        {
          server_uri: `127.0.0.1:${app.xdsPort}`,
          channel_creds: [{ type: 'insecure' }],
          server_features: ['xds_v3'],
        },
      ],
      node: { id: NODE_ID, cluster: GROUP, locality: {} },
    });
    grpcXds.register();
  });

  afterAll(async () => {
    client?.close();
    await app?.close();
    await a?.close();
    await b?.close();
  });

  test('a call through xds:///echo reaches the gRPC server signalbox points it at', async () => {
    client = new grpc.Client('xds:///echo', grpc.credentials.createInsecure());
    const reply = await waitFor('a reply through the xds channel', () => say(client as grpc.Client, 'hello'));
    expect(reply).toBe('echo-a: hello');
    expect(a.calls).toBeGreaterThan(0);
  });

  test('the grpc-js-xds node ACKed LDS, RDS, CDS and EDS at the versions sent', () => {
    const node = app.cache.ledger.get(NODE_ID);
    expect(node?.group).toBe(GROUP);
    expect(node?.mode).toBe('sotw');
    expect(node?.connected).toBe(true);
    const snap = app.cache.getGroup(GROUP) as Snapshot;
    for (const t of [TypeUrl.Listener, TypeUrl.Route, TypeUrl.Cluster, TypeUrl.Endpoint]) {
      const tl = node?.types.get(t);
      expect(tl?.acked?.version).toBeTruthy();
      expect(tl?.acked?.version).toBe(tl?.sent?.version);
      expect(tl?.nacked).toBeUndefined();
      for (const [name, r] of snap.get(t)) expect(tl?.resources.get(name)?.acked).toBe(r.hash);
    }
  });

  test('a changed endpoint is pushed, ACKed, and the next calls reach the new server', async () => {
    const next = new Snapshot(grpcResources('echo', [b]));
    app.cache.setSnapshot(GROUP, next);
    const cla = next.get(TypeUrl.Endpoint).get('echo-cluster');
    const outcome = await app.cache.waitForAck(
      NODE_ID,
      TypeUrl.Endpoint,
      'echo-cluster',
      cla?.hash ?? '',
      20_000,
    );
    expect(outcome.outcome).toBe('acked');
    const reply = await waitFor('a reply from echo-b', async () => {
      const r = await say(client as grpc.Client, 'again');
      return r.startsWith('echo-b') ? r : undefined;
    });
    expect(reply).toBe('echo-b: again');
  });
});
