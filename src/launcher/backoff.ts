/**
 * Restart delays of a supervised process: exponential (initial × factor^n, at most max),
 * back to the initial delay once a run lasted `resetAfterMs` (it was healthy, the crash is
 * news). No jitter: one process per Gateway on one host has nobody to stampede with.
 */
export interface BackoffOptions {
  /** first delay (ms, default 500) */
  initialMs?: number;
  /** largest delay (ms, default 30 000) */
  maxMs?: number;
  /** growth per failed run (default 2) */
  factor?: number;
  /** a run at least this long resets the delay to initialMs (ms, default 30 000) */
  resetAfterMs?: number;
}

export class Backoff {
  readonly initialMs: number;
  readonly maxMs: number;
  readonly factor: number;
  readonly resetAfterMs: number;
  /** failed runs in a row (short ones) */
  failures = 0;

  constructor(o: BackoffOptions = {}) {
    this.initialMs = o.initialMs ?? 500;
    this.maxMs = o.maxMs ?? 30_000;
    this.factor = o.factor ?? 2;
    this.resetAfterMs = o.resetAfterMs ?? 30_000;
    if (!(this.initialMs > 0) || !(this.maxMs >= this.initialMs) || !(this.factor >= 1))
      throw new Error('backoff: needs 0 < initialMs <= maxMs and factor >= 1');
  }

  /** The delay before starting again, after a run that lasted `ranMs`. */
  next(ranMs: number): number {
    if (ranMs >= this.resetAfterMs) this.failures = 0;
    const d = Math.min(this.maxMs, this.initialMs * this.factor ** this.failures);
    this.failures++;
    return d;
  }

  reset(): void {
    this.failures = 0;
  }
}
