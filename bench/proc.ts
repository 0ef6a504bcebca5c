/** What the benchmarks read about the signalbox process they run, and small shared helpers. */
import { readFileSync } from 'node:fs';
import { createConnection } from 'node:net';

const CLK_TCK = 100; // Linux USER_HZ

export interface ProcUsage {
  /** utime + stime, seconds */
  cpuS: number;
  rssMiB: number;
  /** peak RSS (VmHWM) */
  hwmMiB: number;
}

/** CPU time and memory of a process, from /proc/<pid>/stat and /proc/<pid>/status. */
export function procUsage(pid: number): ProcUsage {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields after "(comm)": state is f[0], utime is field 14 → f[11], stime f[12]
  const cpuS = (Number(f[11]) + Number(f[12])) / CLK_TCK;
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0);
  return { cpuS, rssMiB: kb('VmRSS') / 1024, hwmMiB: kb('VmHWM') / 1024 };
}

/** Nearest-rank percentile of an ascending list (NaN when empty). */
export function pct(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

/** Wait until something listens on 127.0.0.1:port; `gone()` true stops the wait early. */
export async function waitPort(
  port: number,
  timeoutMs: number,
  gone: () => boolean = () => false,
): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((r) => {
      const c = createConnection({ host: '127.0.0.1', port }, () => {
        c.destroy();
        r(true);
      });
      c.on('error', () => r(false));
    });
    if (ok) return;
    if (gone()) throw new Error('signalbox exited before listening');
    if (Date.now() > end) throw new Error(`signalbox did not listen on ${port} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
