#!/usr/bin/env node
/** signalbox command line. */
import { writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { Command, InvalidArgumentError } from 'commander';
import { startApp } from './app.js';
import { bootstrapYaml } from './bootstrap.js';
import { makeLogger } from './log.js';
import { DEFAULT_CONTROLLER_NAME } from './provider/pipeline.js';

/** A number > 0 (commander reports the error with the option's name). */
function positive(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('must be a number greater than 0');
  return n;
}

const program = new Command();
program
  .name('signalbox')
  .description(
    'Gateway API control plane for stock Envoy: routes are Ready only once proved through the data plane',
  );

program
  .command('serve')
  .description('run the control plane: ADS server, debug endpoint and a provider')
  .option('--xds-address <host:port>', 'ADS (gRPC) listen address', '127.0.0.1:18000')
  .option('--debug-address <host:port>', 'debug HTTP endpoint listen address', '127.0.0.1:19001')
  .option('--envoy-dir <dir>', 'serve Envoy resources from this folder: <dir>/<namespace>/<gateway>/*.yaml')
  .option(
    '--config-dir <dir>',
    'standalone mode: translate a watched folder of Gateway API YAML (GatewayClass, Gateway, HTTPRoute, GRPCRoute, ReferenceGrant, Service, EndpointSlice, Secret, Namespace); status at GET /debug/status',
  )
  .option('--kubeconfig <file>', 'Kubernetes mode: watch the API server of this kubeconfig and write status')
  .option(
    '--kubernetes',
    'Kubernetes mode with the default client config: $KUBECONFIG, ~/.kube/config, or in-cluster (service account)',
  )
  .option('--no-leader-elect', 'Kubernetes mode: write status without holding the leader Lease')
  .option(
    '--lease <namespace/name>',
    'Kubernetes mode: the coordination.k8s.io Lease for leader election',
    'default/signalbox-leader',
  )
  .option(
    '--lease-duration <seconds>',
    'Kubernetes mode: Lease duration (another replica takes over after it)',
    '15',
  )
  .option(
    '--identity <id>',
    "Kubernetes mode: this replica's Lease holder identity (default: <hostname>-<pid>)",
  )
  .option(
    '--controller-name <name>',
    'GatewayClasses whose spec.controllerName is this are served',
    DEFAULT_CONTROLLER_NAME,
  )
  .option('--status-qps <n>', 'Kubernetes mode: status writes per second (token bucket)', positive, 20)
  .option(
    '--status-burst <n>',
    'Kubernetes mode: status writes allowed at once before --status-qps applies',
    positive,
    50,
  )
  .option('--listener-address <ip>', 'address the Envoy listeners of Gateways bind', '0.0.0.0')
  .option('--log-level <level>', 'pino log level', 'info')
  .action(
    async (o: {
      xdsAddress: string;
      debugAddress: string;
      envoyDir?: string;
      configDir?: string;
      kubeconfig?: string;
      kubernetes?: boolean;
      leaderElect: boolean;
      lease: string;
      leaseDuration: string;
      identity?: string;
      controllerName: string;
      statusQps: number;
      statusBurst: number;
      listenerAddress: string;
      logLevel: string;
    }) => {
      const log = makeLogger({ level: o.logLevel });
      const app = await startApp({
        log,
        xdsAddress: o.xdsAddress,
        debugAddress: o.debugAddress,
        envoyDir: o.envoyDir,
        configDir: o.configDir,
        kubeconfig: o.kubeconfig,
        kubernetes: o.kubernetes,
        leaderElection:
          (o.kubeconfig || o.kubernetes) && o.leaderElect
            ? {
                namespace: o.lease.split('/')[0],
                name: o.lease.split('/')[1] ?? 'signalbox-leader',
                identity: o.identity ?? `${hostname()}-${process.pid}`,
                leaseDurationSec: Number(o.leaseDuration),
                renewDeadlineMs: (Number(o.leaseDuration) * 1000 * 2) / 3,
                retryPeriodMs: Math.max(200, (Number(o.leaseDuration) * 1000) / 7),
              }
            : undefined,
        controllerName: o.controllerName,
        statusQps: o.statusQps,
        statusBurst: o.statusBurst,
        listenerAddress: o.listenerAddress,
        defaultMetrics: true,
      });
      const stop = (sig: string) => {
        log.info({ sig }, 'shutting down');
        app.close().then(
          () => process.exit(0),
          () => process.exit(1),
        );
      };
      process.on('SIGTERM', () => stop('SIGTERM'));
      process.on('SIGINT', () => stop('SIGINT'));
    },
  );

program
  .command('bootstrap')
  .description('print an Envoy bootstrap that connects to signalbox over ADS')
  .requiredOption('--node-id <id>', 'node.id: unique per Envoy instance')
  .requiredOption('--gateway <namespace/name>', 'node.cluster: the Gateway this Envoy serves')
  .option('--xds-address <host:port>', 'signalbox ADS address', '127.0.0.1:18000')
  .option('--admin-port <port>', 'Envoy admin port (on 127.0.0.1)', '19000')
  .option('--delta', 'use incremental xDS (DELTA_GRPC) instead of state of the world', false)
  .option('-o, --output <file>', 'write to a file instead of stdout')
  .action(
    (o: {
      nodeId: string;
      gateway: string;
      xdsAddress: string;
      adminPort: string;
      delta: boolean;
      output?: string;
    }) => {
      const [host, port] = o.xdsAddress.split(':');
      const y = bootstrapYaml({
        nodeId: o.nodeId,
        group: o.gateway,
        xdsHost: host,
        xdsPort: Number(port),
        adminPort: Number(o.adminPort),
        delta: o.delta,
      });
      if (o.output) writeFileSync(o.output, y);
      else process.stdout.write(y);
    },
  );

program.parseAsync(process.argv).catch((err: unknown) => {
  process.stderr.write(`signalbox: ${(err as Error).message}\n`);
  process.exit(1);
});
