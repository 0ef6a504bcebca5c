/**
 * One supervised Envoy process: started with a fresh bootstrap (a free admin port each
 * time), its stdout and stderr logged line by line with the Gateway and its pid, started
 * again with backoff whenever it exits on its own, and stopped with SIGTERM, then SIGKILL
 * after a bound.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';
import type { Logger } from '../log.js';
import type { Backoff } from './backoff.js';

export type EnvoyState = 'starting' | 'running' | 'backoff' | 'stopping' | 'stopped';

/** A free TCP port on 127.0.0.1 (listen on 0, close). */
export function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const p = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(p));
    });
  });
}

/** Envoy's log levels (`--log-format '[%l][%n] %v'`) as pino's. */
const LEVELS: Record<string, 'trace' | 'debug' | 'info' | 'warn' | 'error'> = {
  trace: 'trace',
  debug: 'debug',
  info: 'info',
  warning: 'warn',
  error: 'error',
  critical: 'error',
};

/** The log format Envoy is started with: level and logger name, then the message. */
export const ENVOY_LOG_FORMAT = '[%l][%n] %v';

export interface EnvoyExit {
  code: number | null;
  signal: string | null;
  /** the process could not be started at all (ENOENT, EACCES...) */
  error?: string;
  at: string;
  ranMs: number;
}

export interface LocalEnvoyOptions {
  /** `<namespace>/<name>` */
  gateway: string;
  address: string;
  nodeId: string;
  /** argv[0] and the arguments before Envoy's own (e.g. a setpriv wrapper), then Envoy's */
  command: string;
  args: (bootstrapFile: string) => string[];
  /** the bootstrap, given the admin port picked for this run */
  bootstrap: (adminPort: number) => string;
  bootstrapFile: string;
  backoff: Backoff;
  log: Logger;
  /** SIGKILL after SIGTERM was not obeyed for this long (ms, default 5000) */
  stopTimeoutMs?: number;
  /** every state change */
  onState?: () => void;
  /** it exited on its own and is started again */
  onRestart?: () => void;
  freePort?: () => Promise<number>;
}

/** Lines kept per Envoy for the debug endpoint. */
const RECENT_LINES = 20;

export class LocalEnvoy {
  state: EnvoyState = 'starting';
  pid?: number;
  adminPort?: number;
  startedAt?: string;
  /** processes started */
  starts = 0;
  /** exits on its own that were followed by a new start */
  restarts = 0;
  lastExit?: EnvoyExit;
  /** pids of every process it started (tests check none is left) */
  readonly pids: number[] = [];
  private readonly recent: string[] = [];
  private proc?: ChildProcess;
  private startedMs = 0;
  private timer?: NodeJS.Timeout;
  private killTimer?: NodeJS.Timeout;
  private stopping?: Promise<void>;
  private resolveStopped?: () => void;

  constructor(private readonly o: LocalEnvoyOptions) {}

  get gateway(): string {
    return this.o.gateway;
  }

  get address(): string {
    return this.o.address;
  }

  get nodeId(): string {
    return this.o.nodeId;
  }

  private set(s: EnvoyState): void {
    this.state = s;
    this.o.onState?.();
  }

  /** Start the first process (later ones are started by the supervisor). */
  start(): void {
    void this.launch();
  }

  private async launch(): Promise<void> {
    this.timer = undefined;
    if (this.stopping) return;
    this.set('starting');
    let adminPort: number;
    try {
      adminPort = await (this.o.freePort ?? freeLoopbackPort)();
      writeFileSync(this.o.bootstrapFile, this.o.bootstrap(adminPort));
    } catch (err) {
      this.ended({ code: null, signal: null, error: String(err) });
      return;
    }
    if (this.stopping) {
      this.finishStop();
      return;
    }
    this.adminPort = adminPort;
    const args = this.o.args(this.o.bootstrapFile);
    let p: ChildProcess;
    try {
      p = spawn(this.o.command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (err) {
      this.ended({ code: null, signal: null, error: String(err) });
      return;
    }
    this.proc = p;
    this.starts++;
    this.startedMs = Date.now();
    this.startedAt = new Date(this.startedMs).toISOString();
    let done = false;
    const end = (e: Omit<EnvoyExit, 'at' | 'ranMs'>) => {
      if (done) return;
      done = true;
      if (this.proc === p) this.proc = undefined;
      this.ended(e);
    };
    p.on('error', (err: Error) => {
      // no pid: it never ran; otherwise (a failed kill) it is logged and the exit awaited
      if (p.pid === undefined) end({ code: null, signal: null, error: err.message });
      else this.o.log.warn({ envoyPid: p.pid, err: err.message }, 'local Envoy process error');
    });
    p.on('exit', (code, signal) => end({ code, signal }));
    if (p.pid === undefined) return; // the error event follows
    this.pid = p.pid;
    this.pids.push(p.pid);
    const log = this.o.log.child({ envoyPid: p.pid });
    for (const [stream, s] of [
      ['stdout', p.stdout],
      ['stderr', p.stderr],
    ] as const) {
      if (!s) continue;
      let level: (typeof LEVELS)[string] = 'info';
      createInterface({ input: s, crlfDelay: Infinity }).on('line', (line: string) => {
        this.recent.push(line);
        if (this.recent.length > RECENT_LINES) this.recent.shift();
        const m = /^\[(\w+)\]\[([^\]]*)\] ?(.*)$/.exec(line);
        if (m && LEVELS[m[1]]) {
          level = LEVELS[m[1]];
          log[level]({ stream, envoyLogger: m[2] }, m[3]);
        } else log[level]({ stream }, line); // a continuation line (or not Envoy's format)
      });
    }
    this.o.log.info(
      { envoyPid: p.pid, address: this.o.address, adminPort, nodeId: this.o.nodeId, start: this.starts },
      'local Envoy started',
    );
    this.set('running');
  }

  private ended(e: Omit<EnvoyExit, 'at' | 'ranMs'>): void {
    const ranMs = this.startedMs ? Date.now() - this.startedMs : 0;
    this.startedMs = 0;
    this.lastExit = { ...e, at: new Date().toISOString(), ranMs };
    this.pid = undefined;
    clearTimeout(this.killTimer);
    if (this.stopping) {
      this.o.log.info({ ...e, ranMs }, 'local Envoy stopped');
      this.finishStop();
      return;
    }
    const delay = this.o.backoff.next(ranMs);
    this.restarts++;
    this.o.onRestart?.();
    this.o.log.warn(
      { ...e, ranMs, retryInMs: delay, restarts: this.restarts, lastLines: this.recent.slice(-5) },
      'local Envoy exited: starting it again after backoff',
    );
    this.set('backoff');
    this.timer = setTimeout(() => void this.launch(), delay);
  }

  private finishStop(): void {
    this.set('stopped');
    this.resolveStopped?.();
  }

  /** SIGTERM, then SIGKILL after stopTimeoutMs; resolves once the process is gone. */
  stop(): Promise<void> {
    if (this.stopping) return this.stopping;
    this.stopping = new Promise<void>((r) => (this.resolveStopped = r));
    clearTimeout(this.timer);
    const p = this.proc;
    if (p && p.exitCode === null && p.signalCode === null) {
      this.set('stopping');
      p.kill('SIGTERM');
      this.killTimer = setTimeout(() => {
        this.o.log.warn({ envoyPid: p.pid }, 'local Envoy did not stop on SIGTERM: SIGKILL');
        p.kill('SIGKILL');
      }, this.o.stopTimeoutMs ?? 5000);
    } else if (this.state === 'starting') {
      // a launch in progress (picking the admin port): it sees `stopping` and ends there
      this.set('stopping');
    } else this.finishStop(); // in backoff: nothing runs
    return this.stopping;
  }

  toJSON(): Record<string, unknown> {
    return {
      gateway: this.o.gateway,
      address: this.o.address,
      nodeId: this.o.nodeId,
      state: this.state,
      pid: this.pid ?? null,
      adminPort: this.adminPort ?? null,
      startedAt: this.startedAt ?? null,
      starts: this.starts,
      restarts: this.restarts,
      backoffFailures: this.o.backoff.failures,
      lastExit: this.lastExit ?? null,
      recentLog: [...this.recent],
    };
  }
}
