/** Runs a real stock Envoy (.tools/bin/envoy) for e2e tests and benchmarks. */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { bootstrapConfig } from '../../src/bootstrap.js';

export const ENVOY_BIN = resolve(process.env.ENVOY_BIN ?? '.tools/bin/envoy');

export function requireEnvoy(): void {
  if (!existsSync(ENVOY_BIN)) throw new Error(`${ENVOY_BIN} is missing: run 'make tools' first`);
}

export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, host, () => {
      const a = s.address();
      const p = typeof a === 'object' && a ? a.port : 0;
      s.close(() => res(p));
    });
  });
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Whether a process of ours with this pid is still running (signal 0). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 20_000,
  everyMs = 100,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await sleep(everyMs);
  }
}

export interface EnvoyOptions {
  nodeId: string;
  group: string;
  xdsPort: number;
  delta?: boolean;
  /** the address Envoy dials for ADS (default 127.0.0.1) */
  xdsHost?: string;
  /**
   * run Envoy inside this network namespace (`ip netns exec`, see netns.ts); its admin then
   * binds the namespace's address `ip` (default bootstrap), where the test reaches it
   */
  netns?: { name: string; ip: string };
  /** the bootstrap YAML to run, given the admin port picked (default: bootstrapYaml of the above) */
  bootstrap?: (adminPort: number) => string;
}

/** The default bootstrap of `o`, its admin on `adminHost`. */
function defaultBootstrap(o: EnvoyOptions, adminHost: string, adminPort: number): string {
  const cfg = bootstrapConfig({
    nodeId: o.nodeId,
    group: o.group,
    xdsHost: o.xdsHost,
    xdsPort: o.xdsPort,
    adminPort,
    delta: o.delta,
  }) as { admin: { address: { socket_address: { address: string } } } };
  cfg.admin.address.socket_address.address = adminHost;
  return stringify(cfg);
}

export class Envoy {
  logs = '';
  exited = false;
  private constructor(
    readonly proc: ChildProcess,
    readonly adminPort: number,
    readonly dir: string,
    /** where admin listens (127.0.0.1, or the address of the namespace Envoy runs in) */
    readonly adminHost = '127.0.0.1',
  ) {}

  static async start(o: EnvoyOptions): Promise<Envoy> {
    requireEnvoy();
    const dir = mkdtempSync(join(tmpdir(), 'signalbox-envoy-'));
    // a namespace has ports of its own: any port is free there
    const adminPort = await freePort();
    const adminHost = o.netns?.ip ?? '127.0.0.1';
    const cfg = join(dir, 'bootstrap.yaml');
    writeFileSync(cfg, o.bootstrap ? o.bootstrap(adminPort) : defaultBootstrap(o, adminHost, adminPort));
    const argv = [
      '-c',
      cfg,
      '--disable-hot-restart',
      '--concurrency',
      '1',
      '-l',
      process.env.ENVOY_LOG_LEVEL ?? 'warning',
      '--drain-time-s',
      '1',
    ];
    // `ip netns exec` execs Envoy: the child is Envoy itself (signals reach it)
    const proc = o.netns
      ? spawn('ip', ['netns', 'exec', o.netns.name, ENVOY_BIN, ...argv], {
          stdio: ['ignore', 'pipe', 'pipe'],
        })
      : spawn(ENVOY_BIN, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    const e = new Envoy(proc, adminPort, dir, adminHost);
    const keep = (b: Buffer) => {
      e.logs += b.toString();
      if (e.logs.length > 200_000) e.logs = e.logs.slice(-100_000);
    };
    proc.stdout?.on('data', keep);
    proc.stderr?.on('data', keep);
    proc.on('exit', () => (e.exited = true));
    await waitFor('envoy admin', async () => {
      if (e.exited) throw new Error('envoy exited: ' + e.logs.slice(-2000));
      const r = await fetch(`http://${adminHost}:${adminPort}/server_info`);
      return r.ok;
    }).catch((err: unknown) => {
      proc.kill('SIGKILL'); // not left running when it never came up
      throw err;
    });
    return e;
  }

  async admin(path: string): Promise<string> {
    const r = await fetch(`http://${this.adminHost}:${this.adminPort}${path}`);
    return r.text();
  }

  async configDump(query = ''): Promise<{ configs: Record<string, unknown>[] }> {
    return JSON.parse(await this.admin(`/config_dump${query}`)) as { configs: Record<string, unknown>[] };
  }

  /** Counter/gauge values from /stats (text). */
  async stats(filter?: string): Promise<Map<string, number>> {
    const txt = await this.admin(`/stats${filter ? `?filter=${encodeURIComponent(filter)}` : ''}`);
    const m = new Map<string, number>();
    for (const line of txt.split('\n')) {
      const i = line.lastIndexOf(': ');
      if (i > 0) {
        const v = Number(line.slice(i + 2));
        if (!Number.isNaN(v)) m.set(line.slice(0, i), v);
      }
    }
    return m;
  }

  async stop(): Promise<void> {
    if (this.exited) return;
    const done = new Promise<void>((r) => this.proc.once('exit', () => r()));
    this.proc.kill('SIGTERM');
    const t = setTimeout(() => this.proc.kill('SIGKILL'), 3000);
    await done;
    clearTimeout(t);
  }
}

/** Versions per xDS type from a config_dump, as Envoy reports them. */
export function dumpVersions(dump: { configs: Record<string, unknown>[] }): {
  clusters: Record<string, string>;
  listeners: Record<string, string>;
  routes: Record<string, string>;
  endpoints: Record<string, string>;
} {
  const out = { clusters: {}, listeners: {}, routes: {}, endpoints: {} } as Record<
    string,
    Record<string, string>
  >;
  for (const c of dump.configs) {
    const t = String(c['@type']);
    if (t.endsWith('ClustersConfigDump')) {
      for (const d of (c.dynamic_active_clusters as { version_info: string; cluster: { name: string } }[]) ??
        []) {
        out.clusters[d.cluster.name] = d.version_info;
      }
    } else if (t.endsWith('ListenersConfigDump')) {
      for (const d of (c.dynamic_listeners as { name: string; active_state?: { version_info: string } }[]) ??
        []) {
        if (d.active_state) out.listeners[d.name] = d.active_state.version_info;
      }
    } else if (t.endsWith('RoutesConfigDump')) {
      for (const d of (c.dynamic_route_configs as {
        version_info: string;
        route_config: { name: string };
      }[]) ?? []) {
        out.routes[d.route_config.name] = d.version_info;
      }
    } else if (t.endsWith('EndpointsConfigDump')) {
      // Envoy reports no version for EDS here: record the endpoint addresses instead
      type Ep = { endpoint: { address: { socket_address: { address: string; port_value: number } } } };
      for (const d of (c.dynamic_endpoint_configs as {
        endpoint_config: { cluster_name: string; endpoints?: { lb_endpoints?: Ep[] }[] };
      }[]) ?? []) {
        out.endpoints[d.endpoint_config.cluster_name] = (d.endpoint_config.endpoints ?? [])
          .flatMap((l) => l.lb_endpoints ?? [])
          .map(
            (e) =>
              `${e.endpoint.address.socket_address.address}:${e.endpoint.address.socket_address.port_value}`,
          )
          .sort()
          .join(',');
      }
    }
  }
  return out as ReturnType<typeof dumpVersions>;
}
