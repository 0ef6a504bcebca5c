/** Continuous requests through Envoy, a new connection per request; counts every failure. */
import { get } from './backend.js';

export interface LoadResult {
  total: number;
  ok: number;
  failed: number;
  failures: string[];
  byBackend: Record<string, number>;
}

export function startLoad(
  url: string,
  concurrency = 2,
): { stop: () => Promise<LoadResult>; live: Readonly<LoadResult> } {
  let running = true;
  const r: LoadResult = { total: 0, ok: 0, failed: 0, failures: [], byBackend: {} };
  const worker = async () => {
    while (running) {
      r.total++;
      try {
        const x = await get(url);
        if (x.status === 200) {
          r.ok++;
          r.byBackend[x.backend] = (r.byBackend[x.backend] ?? 0) + 1;
        } else {
          r.failed++;
          if (r.failures.length < 20) r.failures.push(`HTTP ${x.status}: ${x.body.slice(0, 100)}`);
        }
      } catch (err) {
        r.failed++;
        if (r.failures.length < 20) r.failures.push(String(err));
      }
    }
  };
  const workers = Array.from({ length: concurrency }, () => worker());
  return {
    live: r,
    stop: async () => {
      running = false;
      await Promise.all(workers);
      return r;
    },
  };
}
