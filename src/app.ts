/** Wires one signalbox instance: cache, ADS server, debug endpoint, a provider. */
import { readFileSync } from 'node:fs';
import type { Logger } from './log.js';
import { Metrics } from './metrics.js';
import { DebugServer } from './debug/server.js';
import { routesDocument } from './debug/routes.js';
import { HealthServer } from './debug/health.js';
import { EnvoyFolderProvider } from './provider/envoyfolder.js';
import { FileProvider } from './provider/file/index.js';
import { KubernetesProvider } from './provider/kubernetes/index.js';
import { Launcher } from './launcher/index.js';
import type { LauncherOptions } from './launcher/index.js';
import { LeaderElector } from './leader/lease.js';
import type { LeaderOptions } from './leader/lease.js';
import { DEFAULT_CONTROLLER_NAME } from './provider/pipeline.js';
import { ReplicaReports } from './readiness/fleet.js';
import { Readiness } from './readiness/index.js';
import type { ReadinessMode } from './readiness/index.js';
import { SnapshotCache } from './xds/cache/cache.js';
import { protoRegistry } from './xds/proto.js';
import { AdsServer } from './xds/server/ads.js';

export interface AppOptions {
  log: Logger;
  /** host:port for ADS (port 0: any) */
  xdsAddress: string;
  /** host:port for the debug endpoint (port 0: any); empty: none */
  debugAddress?: string;
  /** host:port for /healthz, /readyz and /metrics only (port 0: any); empty: none */
  healthAddress?: string;
  /**
   * ADS over mTLS: PEM files of the server certificate (chain), its key, and the CA that
   * signs client certificates. All three or none (none: plaintext ADS).
   */
  xdsTlsCert?: string;
  xdsTlsKey?: string;
  xdsClientCa?: string;
  /** a folder of Envoy resources to serve (see provider/envoyfolder.ts) */
  envoyDir?: string;
  /** standalone mode: a folder of Gateway API YAML (see provider/file) */
  configDir?: string;
  /** Kubernetes mode: informers and status writes through this kubeconfig */
  kubeconfig?: string;
  /** Kubernetes mode with the default client config ($KUBECONFIG, ~/.kube/config, or in-cluster) */
  kubernetes?: boolean;
  /** Kubernetes mode: only the holder of this Lease writes status (all replicas serve xDS) */
  leaderElection?: LeaderOptions;
  /** GatewayClasses whose controllerName is this are ours */
  controllerName?: string;
  /** Kubernetes mode: status writes per second and burst (default 20, 50) */
  statusQps?: number;
  statusBurst?: number;
  /** address the translated Envoy listeners bind (default 0.0.0.0) */
  listenerAddress?: string;
  /**
   * `serve --envoy local`: signalbox runs one Envoy per Gateway (src/launcher/), each on an
   * address of its own from a 127.0.0.0/8 pool (instead of listenerAddress)
   */
  localEnvoys?: Omit<LauncherOptions, 'log' | 'metrics'>;
  stepTimeoutMs?: number;
  maxRequestsPerSecond?: number;
  defaultMetrics?: boolean;
  /**
   * Ready conditions on routes: `proved` (add + probe → promote → drop, see readiness/),
   * `naive` (one push, Ready at the first ACK of every Envoy), `off` (no Ready condition);
   * default `proved`
   */
  readiness?: ReadinessMode | 'off';
  /** readiness: how long a phase waits for ACKs, and its probes may take (ms) */
  readinessAckTimeoutMs?: number;
  readinessProbeTimeoutMs?: number;
  /** readiness: when a route whose probes failed is proved again (ms) */
  readinessProbeRetryMs?: number;
  /** graceful shutdown: how long `close` lets the status writes under way finish (ms, default 5000) */
  shutdownStatusMs?: number;
  /** readiness: how long an Envoy of a Gateway that disconnected is still expected back (ms) */
  readinessNodeGraceMs?: number;
  /**
   * Kubernetes mode with leader election and readiness: how often each replica renews its
   * readiness report for the leader (ms, default 5000; stale after 3 × this)
   */
  readinessHeartbeatMs?: number;
}

export interface App {
  cache: SnapshotCache;
  ads: AdsServer;
  debug?: DebugServer;
  metrics: Metrics;
  files?: FileProvider;
  kube?: KubernetesProvider;
  leader?: LeaderElector;
  readiness?: Readiness;
  /** Kubernetes mode with leader election and readiness: the replicas' readiness reports */
  fleet?: ReplicaReports;
  /** `localEnvoys`: the Envoys signalbox runs */
  launcher?: Launcher;
  xdsPort: number;
  debugPort: number;
  health?: HealthServer;
  healthPort: number;
  close(): Promise<void>;
}

export function splitHostPort(a: string): [string, number] {
  const i = a.lastIndexOf(':');
  if (i < 0) throw new Error(`address "${a}" is not host:port`);
  const port = Number(a.slice(i + 1));
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`address "${a}" has a bad port`);
  return [a.slice(0, i).replace(/^\[|\]$/g, ''), port];
}

export async function startApp(o: AppOptions): Promise<App> {
  const tlsFiles = [o.xdsTlsCert, o.xdsTlsKey, o.xdsClientCa];
  if (tlsFiles.some(Boolean) && !tlsFiles.every(Boolean))
    throw new Error('ADS over TLS needs all of the server certificate, its key and the client CA');
  // read before anything starts: a missing file fails at once
  const tls =
    o.xdsTlsCert && o.xdsTlsKey && o.xdsClientCa
      ? {
          cert: readFileSync(o.xdsTlsCert),
          key: readFileSync(o.xdsTlsKey),
          clientCa: readFileSync(o.xdsClientCa),
        }
      : undefined;
  if (o.localEnvoys) {
    if (tls) throw new Error('--envoy local needs plaintext ADS: local Envoys have no client certificates');
    if (!o.configDir === !(o.kubeconfig || o.kubernetes))
      throw new Error('--envoy local needs one provider of Gateways: --config-dir or Kubernetes mode');
  }
  const registry = protoRegistry();
  const metrics = new Metrics({ defaultMetrics: o.defaultMetrics });
  const launcher = o.localEnvoys
    ? new Launcher({ ...o.localEnvoys, log: o.log.child({ component: 'launcher' }), metrics })
    : undefined;
  const cache = new SnapshotCache(metrics);
  let ready = false;
  const readiness =
    (o.readiness ?? 'proved') !== 'off'
      ? new Readiness({
          cache,
          registry,
          log: o.log.child({ component: 'readiness' }),
          mode: o.readiness === 'naive' ? 'naive' : 'proved',
          controllerName: o.controllerName ?? DEFAULT_CONTROLLER_NAME,
          ackTimeoutMs: o.readinessAckTimeoutMs,
          probeTimeoutMs: o.readinessProbeTimeoutMs,
          probeRetryMs: o.readinessProbeRetryMs,
          nodeGraceMs: o.readinessNodeGraceMs,
          metrics: metrics.registry,
        })
      : undefined;
  let folder: EnvoyFolderProvider | undefined;
  if (o.envoyDir) {
    folder = new EnvoyFolderProvider(o.envoyDir, cache, registry, o.log.child({ provider: 'envoy-folder' }));
    folder.start(); // loads synchronously before ADS listens: a restart serves the same config at once
  }
  let files: FileProvider | undefined;
  if (o.configDir) {
    files = new FileProvider({
      dir: o.configDir,
      cache,
      registry,
      log: o.log.child({ provider: 'file' }),
      controllerName: o.controllerName ?? DEFAULT_CONTROLLER_NAME,
      bindAddress: o.listenerAddress,
      metrics,
      readiness,
      local: launcher,
    });
    files.start(); // synchronous too
  }
  let kube: KubernetesProvider | undefined;
  let leader: LeaderElector | undefined;
  let kubeSynced: Promise<void> | undefined;
  let fleet: ReplicaReports | undefined;
  if (o.kubeconfig || o.kubernetes) {
    kube = new KubernetesProvider({
      kubeconfig: o.kubeconfig,
      cache,
      registry,
      metrics,
      log: o.log.child({ provider: 'kubernetes' }),
      controllerName: o.controllerName ?? DEFAULT_CONTROLLER_NAME,
      bindAddress: o.listenerAddress,
      statusQps: o.statusQps,
      statusBurst: o.statusBurst,
      writeStatus: o.leaderElection ? () => leader?.isLeader ?? false : undefined,
      readiness,
      local: launcher,
    });
    if (o.leaderElection) {
      leader = new LeaderElector(kube.kc, o.leaderElection, o.log.child({ component: 'leader' }));
      const k = kube;
      leader.on('leading', () => k.resync());
      leader.start();
      // every replica proves through its own Envoys; the leader's Ready is the fleet's minimum
      if (readiness) {
        const l = leader;
        fleet = new ReplicaReports({
          kc: kube.kc,
          readiness,
          log: o.log.child({ component: 'readiness-fleet' }),
          namespace: o.leaderElection.namespace,
          identity: o.leaderElection.identity,
          heartbeatMs: o.readinessHeartbeatMs,
          localEnvoys: (g) => cache.streamsOf(g).length,
          isLeader: () => l.isLeader,
        });
        readiness.fleet = fleet;
      }
    }
    kubeSynced = kube.start(); // awaited below, before ADS listens
  }
  let debug: DebugServer | undefined;
  let debugPort = 0;
  if (o.debugAddress) {
    debug = new DebugServer({
      cache,
      metrics,
      log: o.log,
      ready: () => ready,
      extra: {
        ...(readiness ? { readiness: () => readiness.toJSON() } : {}),
        ...(files || kube
          ? { routes: () => routesDocument(files?.status() ?? kube?.routeStatuses() ?? [], readiness) }
          : {}),
        ...(fleet ? { 'readiness-fleet': () => fleet.toJSON() } : {}),
        ...(folder ? { 'folder-errors': () => folder.errors() } : {}),
        ...(launcher ? { envoys: () => launcher.toJSON() } : {}),
        ...(files
          ? {
              status: () => files.status(),
              'config-errors': () => files.errors(),
              'gateway-failures': () => files.gatewayFailures(),
            }
          : {}),
        ...(kube
          ? {
              kubernetes: () => ({
                synced: kube.synced,
                notSynced: kube.notSynced(),
                listFailures: kube.listFailures,
                gatewayFailures: kube.gatewayFailures(),
                translations: kube.translations,
                informerRestarts: kube.informerRestarts,
                statusPending: kube.status.pendingCount,
                statusInFlightSkips: kube.status.inFlightSkips,
                httpsAgents: kube.kc.agentsMade,
                events: kube.events,
                relists: kube.relists,
                gone410: kube.gone,
                reach: kube.reachSizes(),
                statusWrites: kube.status.writes,
                statusSkipped: kube.status.skipped,
                statusFailures: kube.status.failures,
                statusConflicts: kube.status.conflicts,
                leader: leader
                  ? { identity: leader.identity, leading: leader.isLeader, acquisitions: leader.acquisitions }
                  : null,
              }),
            }
          : {}),
      },
    });
    const [h, p] = splitHostPort(o.debugAddress);
    debugPort = await debug.listen(h, p);
  }
  let health: HealthServer | undefined;
  let healthPort = 0;
  if (o.healthAddress) {
    health = new HealthServer({ metrics, log: o.log, ready: () => ready });
    const [h, p] = splitHostPort(o.healthAddress);
    healthPort = await health.listen(h, p);
  }
  // every informer has listed once before ADS listens (a group without a snapshot would be
  // served an empty configuration); meanwhile /readyz says not ready and
  // /debug/kubernetes names the kinds not listed yet
  if (kubeSynced) await kubeSynced;
  fleet?.start();
  ready = true;
  const ads = new AdsServer({
    cache,
    metrics,
    log: o.log.child({ component: 'ads' }),
    registry,
    stepTimeoutMs: o.stepTimeoutMs,
    maxRequestsPerSecond: o.maxRequestsPerSecond,
    tls,
  });
  const xdsPort = await ads.listen(o.xdsAddress);
  launcher?.start({ host: splitHostPort(o.xdsAddress)[0], port: xdsPort });
  o.log.info({ xdsPort, xdsTls: !!tls, debugPort, healthPort }, 'signalbox serving');
  return {
    cache,
    ads,
    debug,
    metrics,
    files,
    kube,
    leader,
    readiness,
    fleet,
    launcher,
    xdsPort,
    debugPort,
    health,
    healthPort,
    async close() {
      // graceful: no new ADS streams (Envoys connecting go to another replica), no new
      // translation, the status writes under way go out, then the readiness report and the
      // Lease are released, the local Envoys stopped, and the streams closed
      ads.stopAccepting();
      folder?.stop();
      files?.stop();
      await kube?.quiesce(o.shutdownStatusMs ?? 5000);
      await fleet?.stop(); // its report goes before the Lease (and the KubeConfig) do
      await leader?.stop();
      await kube?.stop();
      await launcher?.close(); // before ADS goes: the Envoys stop without losing their server
      readiness?.close();
      await debug?.close();
      await health?.close();
      await ads.close();
    },
  };
}
