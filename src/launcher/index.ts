/**
 * Local Envoys (`serve --envoy local`; Envoy Gateway calls it host infrastructure):
 * signalbox runs one stock Envoy per Gateway it serves, in standalone and Kubernetes mode
 * alike, each binding the Gateway's listeners on an address of its own in 127.0.0.0/8
 * (addresses.ts), so two Gateways may use the same port.
 *
 * The providers' pipeline asks `assign` for every Gateway's address before translating
 * (the translator binds the Gateway's listeners there and reports it in status.addresses),
 * and after a translation tells `run` which Gateways have a configuration: each gets an
 * Envoy, started from the bootstrap of src/bootstrap.ts (node id `<namespace>-<name>-local`,
 * node cluster the Gateway's group, probe address the Gateway's address so readiness probes
 * reach its listeners, admin on a free 127.0.0.1 port), restarted with backoff when it
 * exits, its output in signalbox's log; the Envoys of Gateways that went away are stopped
 * (SIGTERM, SIGKILL after a bound), and so are all of them by `close`. An Envoy whose
 * address or Gateway another one still holds (being stopped) starts once that one exited.
 *
 * On Linux, Envoy is started through util-linux `setpriv --pdeathsig TERM` when it is on
 * PATH: if signalbox dies without stopping them (SIGKILL), the kernel stops its Envoys.
 */
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, isAbsolute, join, resolve } from 'node:path';
import { bootstrapYaml } from '../bootstrap.js';
import type { GatewayAddress } from '../gatewayapi/index.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { AddressPool, addressRequests } from './addresses.js';
import { Backoff } from './backoff.js';
import type { BackoffOptions } from './backoff.js';
import { ENVOY_LOG_FORMAT, LocalEnvoy } from './envoy.js';
import type { EnvoyState } from './envoy.js';

export const DEFAULT_LOCAL_ADDRESSES = '127.0.10.0/24';

export interface LauncherOptions {
  log: Logger;
  metrics?: Metrics;
  /** the Envoy binary: a path, or a name looked up on PATH (default `envoy`) */
  envoyPath?: string;
  /** the pool of listener addresses, a CIDR inside 127.0.0.0/8 (default 127.0.10.0/24) */
  addresses?: string;
  /** Envoy's --concurrency (default: Envoy's, one worker per core) */
  concurrency?: number;
  /** Envoy's log level (default warning) */
  envoyLogLevel?: string;
  /** incremental xDS (DELTA_GRPC) instead of state of the world */
  delta?: boolean;
  /** folder for the bootstrap files (default: a new temporary folder, removed by close) */
  workDir?: string;
  backoff?: BackoffOptions;
  /** SIGKILL after SIGTERM was not obeyed for this long (ms, default 5000) */
  stopTimeoutMs?: number;
  /** start Envoy through `setpriv --pdeathsig TERM` when available (Linux; default true) */
  parentDeathSignal?: boolean;
}

/** An executable file: a path as it is, or a name searched on PATH. */
export function findExecutable(name: string, path = process.env.PATH ?? ''): string | undefined {
  const ok = (p: string) => {
    try {
      accessSync(p, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  };
  if (name.includes('/')) {
    const p = isAbsolute(name) ? name : resolve(name);
    return ok(p) ? p : undefined;
  }
  for (const d of path.split(delimiter)) {
    if (!d) continue;
    const p = join(d, name);
    if (ok(p)) return p;
  }
  return undefined;
}

/** Node id of a Gateway's local Envoy. */
export function localNodeId(gateway: string): string {
  const [ns, name] = gateway.split('/');
  return `${ns}-${name}-local`;
}

const GAUGE_STATES: EnvoyState[] = ['starting', 'running', 'backoff', 'stopping'];

export class Launcher {
  readonly pool: AddressPool;
  readonly envoyPath: string;
  /** argv prefix that makes the kernel stop Envoy when signalbox dies (empty: none) */
  private readonly wrapper: string[];
  private readonly workDir: string;
  private readonly ownWorkDir: boolean;
  /** the current Envoy of each Gateway */
  private readonly envoys = new Map<string, LocalEnvoy>();
  /** Envoys being stopped (their address and Gateway are not given to a new one before they exit) */
  private readonly stopping = new Set<LocalEnvoy>();
  /** every Envoy ever started (for pids) */
  private readonly all: LocalEnvoy[] = [];
  private wanted = new Map<string, string>();
  private xds?: { host: string; port: number };
  private closed = false;

  constructor(private readonly o: LauncherOptions) {
    const bin = findExecutable(o.envoyPath ?? 'envoy');
    if (!bin)
      throw new Error(
        `--envoy local: Envoy binary ${JSON.stringify(o.envoyPath ?? 'envoy')} not found or not executable (give --envoy-path)`,
      );
    this.envoyPath = bin;
    this.pool = new AddressPool(o.addresses ?? DEFAULT_LOCAL_ADDRESSES);
    const setpriv =
      process.platform === 'linux' && o.parentDeathSignal !== false ? findExecutable('setpriv') : undefined;
    this.wrapper = setpriv ? [setpriv, '--pdeathsig', 'TERM', '--'] : [];
    this.ownWorkDir = !o.workDir;
    this.workDir = o.workDir ?? mkdtempSync(join(tmpdir(), 'signalbox-envoys-'));
    this.updateGauge();
  }

  /** The address of each of our Gateways among `objects` (before translating them). */
  assign(objects: unknown[], controllerName: string): ReadonlyMap<string, GatewayAddress> {
    return this.pool.assign(addressRequests(objects, controllerName));
  }

  /** After a translation: an Envoy for each of these Gateways (group → address), none for others. */
  run(gateways: ReadonlyMap<string, string>): void {
    this.wanted = new Map(gateways);
    this.reconcile();
  }

  /** ADS listens: Envoys may start (they dial `host:port`; a wildcard host means 127.0.0.1). */
  start(xds: { host: string; port: number }): void {
    const host = ['', '0.0.0.0', '::', '[::]'].includes(xds.host) ? '127.0.0.1' : xds.host;
    this.xds = { host, port: xds.port };
    this.o.log.info(
      {
        envoy: this.envoyPath,
        addresses: this.pool.cidr.text,
        xds: `${host}:${xds.port}`,
        parentDeathSignal: this.wrapper.length > 0,
      },
      'local Envoys: starting one per Gateway',
    );
    this.reconcile();
  }

  private reconcile(): void {
    if (this.closed) return;
    for (const [g, e] of this.envoys) if (this.wanted.get(g) !== e.address) this.retire(e);
    if (this.xds) {
      const busy = new Set<string>();
      for (const e of this.stopping) busy.add(e.address).add(`gw:${e.gateway}`);
      for (const [g, address] of this.wanted) {
        if (this.envoys.has(g) || busy.has(address) || busy.has(`gw:${g}`)) continue;
        const e = this.make(g, address, this.xds);
        this.envoys.set(g, e);
        this.all.push(e);
        e.start();
      }
    }
    this.updateGauge();
  }

  private make(gateway: string, address: string, xds: { host: string; port: number }): LocalEnvoy {
    const nodeId = localNodeId(gateway);
    const envoyArgs = (file: string) => [
      '-c',
      file,
      '--disable-hot-restart',
      '--log-format',
      ENVOY_LOG_FORMAT,
      '-l',
      this.o.envoyLogLevel ?? 'warning',
      ...(this.o.concurrency ? ['--concurrency', String(this.o.concurrency)] : []),
    ];
    const [wrapper, ...wrapperArgs] = this.wrapper;
    return new LocalEnvoy({
      gateway,
      address,
      nodeId,
      command: wrapper ?? this.envoyPath,
      args: (f) => (wrapper ? [...wrapperArgs, this.envoyPath, ...envoyArgs(f)] : envoyArgs(f)),
      bootstrap: (adminPort) =>
        bootstrapYaml({
          nodeId,
          group: gateway,
          xdsHost: xds.host,
          xdsPort: xds.port,
          adminPort,
          delta: this.o.delta,
          probeAddress: address,
        }),
      bootstrapFile: join(this.workDir, `${gateway.replace('/', '_')}.yaml`),
      backoff: new Backoff(this.o.backoff),
      log: this.o.log.child({ gateway }),
      stopTimeoutMs: this.o.stopTimeoutMs,
      onState: () => this.updateGauge(),
      onRestart: () => this.o.metrics?.localEnvoyRestarts.inc({ gateway }),
    });
  }

  private retire(e: LocalEnvoy): void {
    this.envoys.delete(e.gateway);
    this.stopping.add(e);
    this.o.log.info({ gateway: e.gateway, address: e.address }, 'stopping the local Envoy of a Gateway');
    void e.stop().then(() => {
      this.stopping.delete(e);
      this.reconcile();
    });
  }

  private updateGauge(): void {
    const g = this.o.metrics?.localEnvoys;
    if (!g) return;
    const n = new Map<EnvoyState, number>(GAUGE_STATES.map((s) => [s, 0]));
    for (const e of [...this.envoys.values(), ...this.stopping])
      if (n.has(e.state)) n.set(e.state, n.get(e.state)! + 1);
    for (const [state, v] of n) g.set({ state }, v);
  }

  /** Pids of every Envoy process started (for tests: none must be left after close). */
  pids(): number[] {
    return this.all.flatMap((e) => e.pids);
  }

  /** The current Envoy of a Gateway. */
  envoyOf(gateway: string): LocalEnvoy | undefined {
    return this.envoys.get(gateway);
  }

  /** Stop every Envoy (SIGTERM, SIGKILL after the bound); nothing starts afterwards. */
  async close(): Promise<void> {
    this.closed = true;
    for (const e of this.envoys.values()) this.stopping.add(e);
    this.envoys.clear();
    await Promise.all([...this.stopping].map((e) => e.stop()));
    this.stopping.clear();
    this.updateGauge();
    if (this.ownWorkDir) rmSync(this.workDir, { recursive: true, force: true });
  }

  /** GET /debug/envoys */
  toJSON(): Record<string, unknown> {
    const list = [...this.envoys.values(), ...this.stopping].sort((a, b) =>
      a.gateway < b.gateway ? -1 : a.gateway > b.gateway ? 1 : 0,
    );
    return {
      envoy: this.envoyPath,
      addresses: this.pool.cidr.text,
      xds: this.xds ? `${this.xds.host}:${this.xds.port}` : null,
      parentDeathSignal: this.wrapper.length > 0,
      assigned: Object.fromEntries(this.pool.holders()),
      waiting: [...this.wanted.keys()].filter((g) => !this.envoys.has(g)).sort(),
      envoys: list.map((e) => e.toJSON()),
    };
  }
}
