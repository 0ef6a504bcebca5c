/**
 * Continuous requests through Envoy, a new connection per request; counts every failure.
 * `concurrency` workers each send one request at a time; with `ratePerWorker` (requests
 * per second) each paces its requests start to start (a slow answer delays the next one,
 * it never piles up more than one request per worker), otherwise each sends the next at once.
 */
import { get } from './backend.js';

export interface LoadResult {
  total: number;
  ok: number;
  /** non-2xx answers and requests that got no answer (connection error, timeout) */
  failed: number;
  non2xx: number;
  errors: number;
  /** the first 20 failures, each with its time (ISO) */
  failures: string[];
  byBackend: Record<string, number>;
}

export interface LoadOptions {
  /** requests per second of each worker (default: as fast as answers come) */
  ratePerWorker?: number;
}

export function startLoad(
  url: string,
  concurrency = 2,
  o: LoadOptions = {},
): { stop: () => Promise<LoadResult>; live: Readonly<LoadResult> } {
  let running = true;
  const r: LoadResult = { total: 0, ok: 0, failed: 0, non2xx: 0, errors: 0, failures: [], byBackend: {} };
  const interval = o.ratePerWorker ? 1000 / o.ratePerWorker : 0;
  // stop() ends the pauses between requests at once
  let wake: (() => void)[] = [];
  const pause = (ms: number) =>
    new Promise<void>((res) => {
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        wake = wake.filter((w) => w !== done);
        res();
      }
      wake.push(done);
    });
  const worker = async (n: number) => {
    // spread the workers' first requests over one interval
    if (interval > 0) await pause((interval * n) / concurrency);
    while (running) {
      const start = Date.now();
      r.total++;
      try {
        const x = await get(url);
        if (x.status >= 200 && x.status < 300) {
          r.ok++;
          r.byBackend[x.backend] = (r.byBackend[x.backend] ?? 0) + 1;
        } else {
          r.failed++;
          r.non2xx++;
          if (r.failures.length < 20)
            r.failures.push(`${new Date(start).toISOString()} HTTP ${x.status}: ${x.body.slice(0, 100)}`);
        }
      } catch (err) {
        r.failed++;
        r.errors++;
        if (r.failures.length < 20) r.failures.push(`${new Date(start).toISOString()} ${String(err)}`);
      }
      const left = interval - (Date.now() - start);
      if (running && left > 0) await pause(left);
    }
  };
  const workers = Array.from({ length: concurrency }, (_, n) => worker(n));
  return {
    live: r,
    stop: async () => {
      running = false;
      for (const w of [...wake]) w();
      await Promise.all(workers);
      return r;
    },
  };
}
