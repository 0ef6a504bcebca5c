/** signalbox as a real child process (dist/src/cli.js), for restart tests. */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { freePort, waitFor } from './envoy.js';

export const CLI = resolve('dist/src/cli.js');

export class SignalboxProcess {
  logs = '';
  exited = false;
  private constructor(
    readonly proc: ChildProcess,
    readonly debugPort: number,
  ) {}

  /** `env`: the process's environment (default: this one's) */
  static async start(args: string[], debugPort: number, env?: NodeJS.ProcessEnv): Promise<SignalboxProcess> {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run 'make build' first`);
    const proc = spawn(
      process.execPath,
      [CLI, 'serve', '--debug-address', `127.0.0.1:${debugPort}`, ...args],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: env ?? process.env,
      },
    );
    const s = new SignalboxProcess(proc, debugPort);
    const keep = (b: Buffer) => {
      s.logs += b.toString();
      if (s.logs.length > 200_000) s.logs = s.logs.slice(-100_000);
    };
    proc.stdout?.on('data', keep);
    proc.stderr?.on('data', keep);
    proc.on('exit', () => (s.exited = true));
    await waitFor('signalbox /readyz', async () => {
      if (s.exited) throw new Error('signalbox exited: ' + s.logs.slice(-2000));
      return (await fetch(`http://127.0.0.1:${debugPort}/readyz`)).ok;
    });
    return s;
  }

  async json<T>(path: string): Promise<T> {
    return (await (await fetch(`http://127.0.0.1:${this.debugPort}${path}`)).json()) as T;
  }

  /** Kill at once, as a crash would. */
  async kill(): Promise<void> {
    if (this.exited) return;
    const done = new Promise<void>((r) => this.proc.once('exit', () => r()));
    this.proc.kill('SIGKILL');
    await done;
  }
}

/** A replica of a Kubernetes-mode signalbox process: its identity and ports. */
export interface Replica {
  id: string;
  sb: SignalboxProcess;
  xdsPort: number;
  debugPort: number;
}

/**
 * A replica process in Kubernetes mode with leader election on a 3 s Lease (free ports,
 * listeners on 127.0.0.1, warn logs); `extra` adds flags.
 */
export async function startReplica(kubeconfig: string, id: string, extra: string[] = []): Promise<Replica> {
  const xdsPort = await freePort();
  const debugPort = await freePort();
  const sb = await SignalboxProcess.start(
    [
      '--kubeconfig',
      kubeconfig,
      '--xds-address',
      `127.0.0.1:${xdsPort}`,
      '--listener-address',
      '127.0.0.1',
      '--lease-duration',
      '3',
      '--identity',
      id,
      '--log-level',
      'warn',
      ...extra,
    ],
    debugPort,
  );
  return { id, sb, xdsPort, debugPort };
}
