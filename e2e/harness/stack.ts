/** signalbox in-process + one real Envoy of group default/gw, for the ADS e2e tests. */
import { startApp } from '../../src/app.js';
import type { App } from '../../src/app.js';
import { makeLogger, silentLogger } from '../../src/log.js';
import type { Snapshot } from '../../src/xds/cache/snapshot.js';
import { get } from './backend.js';
import { Envoy, freePort, waitFor } from './envoy.js';

export interface EnvoyStack {
  app: App;
  envoy: Envoy;
  /** the port of the Envoy listener the snapshot defines */
  port: number;
  close(): Promise<void>;
}

/** Start signalbox with `snapshot(listenerPort)` for default/gw, then an Envoy; wait for a 200. */
export async function startEnvoyStack(o: {
  nodeId: string;
  delta: boolean;
  snapshot: (listenerPort: number) => Snapshot;
}): Promise<EnvoyStack> {
  const port = await freePort();
  const app = await startApp({
    log: process.env.STACK_LOG ? makeLogger({ level: process.env.STACK_LOG }) : silentLogger(),
    xdsAddress: '127.0.0.1:0',
  });
  app.cache.setSnapshot('default/gw', o.snapshot(port));
  const envoy = await Envoy.start({
    nodeId: o.nodeId,
    group: 'default/gw',
    xdsPort: app.xdsPort,
    delta: o.delta,
  });
  await waitFor('first 200', async () => (await get(`http://127.0.0.1:${port}/`)).status === 200);
  return {
    app,
    envoy,
    port,
    close: async () => {
      await envoy.stop();
      await app.close();
    },
  };
}
