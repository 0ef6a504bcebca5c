#!/usr/bin/env node
/** signalbox command line. */
import { writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { Command, InvalidArgumentError, Option } from 'commander';
import { startApp } from './app.js';
import { bootstrapYaml } from './bootstrap.js';
import { registerOperatorCommands } from './cli/commands.js';
import { runDemo } from './demo/index.js';
import { DEFAULT_LOCAL_ADDRESSES } from './launcher/index.js';
import { LOG_FORMATS, makeLogger } from './log.js';
import type { LogFormat } from './log.js';
import { DEFAULT_CONTROLLER_NAME } from './provider/pipeline.js';

/** A number > 0 (commander reports the error with the option's name). */
function positive(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('must be a number greater than 0');
  return n;
}

/** A number ≥ 0. */
function nonNegative(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError('must be a number, 0 or more');
  return n;
}

/** Repeatable option: collect every value. */
function collect(v: string, prev: string[]): string[] {
  return [...prev, v];
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
  .option(
    '--health-address <host:port>',
    'serve only /healthz, /readyz and /metrics here (for probes and scraping; no config data), e.g. 0.0.0.0:8081',
  )
  .option(
    '--xds-tls-cert <file>',
    'ADS over mTLS: PEM server certificate (with --xds-tls-key and --xds-client-ca; see `signalbox certs`)',
  )
  .option('--xds-tls-key <file>', 'ADS over mTLS: PEM key of --xds-tls-cert')
  .option(
    '--xds-client-ca <file>',
    'ADS over mTLS: PEM CA that signs client certificates; a client is served only the Gateways its certificate names',
  )
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
  .addOption(
    new Option(
      '--envoy <mode>',
      'who runs the Envoys: external (they connect with a `signalbox bootstrap`), local (signalbox launches and supervises one Envoy per Gateway on this host, each listening on its own address from --envoy-local-addresses, shown in status.addresses and GET /debug/envoys)',
    )
      .choices(['external', 'local'])
      .default('external'),
  )
  .option('--envoy-path <file>', '--envoy local: the Envoy binary (a path, or a name on PATH)', 'envoy')
  .option(
    '--envoy-local-addresses <cidr>',
    "--envoy local: pool of listener addresses inside 127.0.0.0/8, one per Gateway (a Gateway's spec.addresses IPAddress in 127.0.0.0/8 is honoured)",
    DEFAULT_LOCAL_ADDRESSES,
  )
  .option(
    '--envoy-concurrency <n>',
    "--envoy local: each Envoy's worker threads (default: Envoy's, one per core)",
    positive,
  )
  .option(
    '--envoy-log-level <level>',
    "--envoy local: Envoy's log level (its lines go to this log)",
    'warning',
  )
  .addOption(
    new Option(
      '--readiness <mode>',
      'Ready condition on routes: proved (add + probe, promote, drop: proved through every Envoy), naive (Ready at the first ACK of every Envoy), off',
    )
      .choices(['proved', 'naive', 'off'])
      .default('proved'),
  )
  .option('--probe-timeout <seconds>', 'readiness: how long the probes of a phase may take', positive, 30)
  .option(
    '--probe-retry <seconds>',
    'readiness: when a route whose probes failed is proved again (its backend may have come up)',
    positive,
    30,
  )
  .option(
    '--shutdown-timeout <seconds>',
    'on SIGTERM/SIGINT: how long the status writes under way may take before the Lease is released',
    nonNegative,
    5,
  )
  .option(
    '--node-grace <seconds>',
    'readiness: how long an Envoy of a Gateway that disconnected is still expected back; a route changed meanwhile is EnvoyDisconnected (not Ready) until it is proved on that Envoy, or the grace ends (0: only the Envoys connected count)',
    nonNegative,
    60,
  )
  .option(
    '--readiness-heartbeat <seconds>',
    "Kubernetes mode with readiness: how often each replica renews its readiness report (ConfigMap in the Lease's namespace) for the leader; stale after 3 heartbeats",
    positive,
    5,
  )
  .option('--log-level <level>', 'pino log level', 'info')
  .addOption(
    new Option(
      '--log-format <format>',
      'logs: json (pino JSON lines), pretty (one readable line per event), auto (pretty on a terminal, else json)',
    )
      .choices(LOG_FORMATS)
      .default('auto'),
  )
  .action(
    async (o: {
      readiness: 'proved' | 'naive' | 'off';
      probeTimeout: number;
      probeRetry: number;
      nodeGrace: number;
      shutdownTimeout: number;
      readinessHeartbeat: number;
      xdsAddress: string;
      debugAddress: string;
      healthAddress?: string;
      xdsTlsCert?: string;
      xdsTlsKey?: string;
      xdsClientCa?: string;
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
      envoy: 'external' | 'local';
      envoyPath: string;
      envoyLocalAddresses: string;
      envoyConcurrency?: number;
      envoyLogLevel: string;
      logLevel: string;
      logFormat: LogFormat;
    }) => {
      const log = makeLogger({ level: o.logLevel, format: o.logFormat });
      const app = await startApp({
        log,
        xdsAddress: o.xdsAddress,
        debugAddress: o.debugAddress,
        healthAddress: o.healthAddress,
        xdsTlsCert: o.xdsTlsCert,
        xdsTlsKey: o.xdsTlsKey,
        xdsClientCa: o.xdsClientCa,
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
        localEnvoys:
          o.envoy === 'local'
            ? {
                envoyPath: o.envoyPath,
                addresses: o.envoyLocalAddresses,
                concurrency: o.envoyConcurrency,
                envoyLogLevel: o.envoyLogLevel,
              }
            : undefined,
        readiness: o.readiness,
        readinessProbeTimeoutMs: o.probeTimeout * 1000,
        readinessProbeRetryMs: o.probeRetry * 1000,
        readinessNodeGraceMs: o.nodeGrace * 1000,
        shutdownStatusMs: o.shutdownTimeout * 1000,
        readinessHeartbeatMs: o.readinessHeartbeat * 1000,
        defaultMetrics: true,
      });
      let stopping = false;
      const stop = (sig: string) => {
        if (stopping) return;
        stopping = true;
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
  .command('demo')
  .description(
    'standalone signalbox on a folder (default examples/) with one local stock Envoy per Gateway and an echo server for every loopback endpoint of its EndpointSlices; prints each Gateway, each route state and curl lines to try, then every route state change (what `make run` starts)',
  )
  .option('--config-dir <dir>', 'folder of Gateway API YAML', 'examples')
  .option('--envoy-path <file>', 'the Envoy binary (a path, or a name on PATH)', 'envoy')
  .option('--xds-address <host:port>', 'ADS listen address (port 0: any)', '127.0.0.1:0')
  .option('--debug-address <host:port>', 'debug HTTP endpoint listen address (port 0: any)', '127.0.0.1:0')
  .option('--log-level <level>', 'log level (the summary is printed whatever it is)', 'warn')
  .addOption(
    new Option('--log-format <format>', 'logs: json, pretty, auto (pretty on a terminal)')
      .choices(LOG_FORMATS)
      .default('auto'),
  )
  .action(
    async (o: {
      configDir: string;
      envoyPath: string;
      xdsAddress: string;
      debugAddress: string;
      logLevel: string;
      logFormat: LogFormat;
    }) => {
      // logs on stderr: stdout is the summary
      const log = makeLogger({ level: o.logLevel, format: o.logFormat, destination: process.stderr });
      const demo = await runDemo({
        configDir: o.configDir,
        log,
        envoyPath: o.envoyPath,
        xdsAddress: o.xdsAddress,
        debugAddress: o.debugAddress,
      });
      let stopping = false;
      const stop = (sig: string) => {
        if (stopping) return;
        stopping = true;
        process.stdout.write(`\n${sig}: stopping the Envoys and backends\n`);
        demo.close().then(
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
  .option(
    '--tls-cert <file>',
    "mTLS to signalbox: this Gateway's client certificate (PEM), as a path Envoy reads (with --tls-key and --tls-ca)",
  )
  .option('--tls-key <file>', 'mTLS to signalbox: the key of --tls-cert, as a path Envoy reads')
  .option(
    '--tls-ca <file>',
    "mTLS to signalbox: the CA of signalbox's server certificate, as a path Envoy reads",
  )
  .option(
    '--tls-server-name <name>',
    "mTLS to signalbox: name the server certificate must carry (SNI and SAN check; default: --xds-address's host)",
  )
  .option(
    '--probe-address <address>',
    "where signalbox's readiness prober reaches this Envoy's listeners (default: the peer address of its ADS stream)",
  )
  .option('-o, --output <file>', 'write to a file instead of stdout')
  .action(
    (o: {
      probeAddress?: string;
      nodeId: string;
      gateway: string;
      xdsAddress: string;
      adminPort: string;
      delta: boolean;
      tlsCert?: string;
      tlsKey?: string;
      tlsCa?: string;
      tlsServerName?: string;
      output?: string;
    }) => {
      const tlsFlags = [o.tlsCert, o.tlsKey, o.tlsCa];
      if (tlsFlags.some(Boolean) && !tlsFlags.every(Boolean))
        throw new InvalidArgumentError('--tls-cert, --tls-key and --tls-ca go together');
      if (o.tlsServerName && !o.tlsCert) throw new InvalidArgumentError('--tls-server-name needs --tls-cert');
      const i = o.xdsAddress.lastIndexOf(':');
      const host = o.xdsAddress.slice(0, i).replace(/^\[|\]$/g, '');
      const port = o.xdsAddress.slice(i + 1);
      const y = bootstrapYaml({
        nodeId: o.nodeId,
        group: o.gateway,
        xdsHost: host,
        xdsPort: Number(port),
        adminPort: Number(o.adminPort),
        delta: o.delta,
        probeAddress: o.probeAddress,
        tls:
          o.tlsCert && o.tlsKey && o.tlsCa
            ? { cert: o.tlsCert, key: o.tlsKey, ca: o.tlsCa, serverName: o.tlsServerName }
            : undefined,
      });
      if (o.output) writeFileSync(o.output, y);
      else process.stdout.write(y);
    },
  );

program
  .command('certs')
  .description(
    'issue PEM files for mTLS between Envoy and signalbox: a CA (reused if --out has one), the ADS server certificate and per-Gateway client certificates',
  )
  .requiredOption(
    '--out <dir>',
    'write ca.crt/ca.key, server.crt/server.key, gateway-<namespace>_<name>.crt/.key here',
  )
  .option(
    '--gateway <namespace/name>',
    'issue a client certificate for this Gateway (URI SAN spiffe://signalbox/gateway/<namespace>/<name>); repeatable',
    collect,
    [],
  )
  .option(
    '--dns <name>',
    'DNS SAN of the server certificate; repeatable (default, with no --dns/--ip: localhost, signalbox.signalbox-system.svc, signalbox.signalbox-system.svc.cluster.local, 127.0.0.1)',
    collect,
    [],
  )
  .option('--ip <address>', 'IP SAN of the server certificate; repeatable', collect, [])
  .option('--no-server', 'do not issue the server certificate (only the CA and client certificates)')
  .option('--days <n>', 'validity of server and client certificates (days)', positive, 365)
  .option('--ca-days <n>', 'validity of a new CA (days)', positive, 3650)
  .action(
    async (o: {
      out: string;
      gateway: string[];
      dns: string[];
      ip: string[];
      server: boolean;
      days: number;
      caDays: number;
    }) => {
      // loaded here only: the X.509 library (and its reflect-metadata polyfill) stays out of `serve`
      const { issueCerts } = await import('./certs.js');
      const r = await issueCerts({
        out: o.out,
        gateways: o.gateway,
        dns: o.dns,
        ips: o.ip,
        server: o.server,
        days: o.days,
        caDays: o.caDays,
      });
      const lines = [`${r.ca.reused ? 'reused' : 'new'} CA: ${r.ca.cert} ${r.ca.key}`];
      if (r.server)
        lines.push(
          `server: ${r.server.cert} ${r.server.key} (${[...r.server.dns, ...r.server.ips].join(', ')})`,
        );
      for (const g of r.gateways) lines.push(`gateway ${g.gateway}: ${g.cert} ${g.key} (${g.uri})`);
      process.stdout.write(lines.join('\n') + '\n');
    },
  );

registerOperatorCommands(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  process.stderr.write(`signalbox: ${(err as Error).message}\n`);
  process.exit(1);
});
