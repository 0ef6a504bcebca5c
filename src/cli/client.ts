/** The operator commands' view of a running signalbox: GETs on its debug endpoint. */
import { CliError, UnreachableError } from './output.js';

/** The default `--server`: `serve`'s default --debug-address. */
export const DEFAULT_SERVER = 'http://127.0.0.1:19001';

export class DebugClient {
  readonly base: string;

  constructor(
    server: string,
    private readonly timeoutMs = 10_000,
  ) {
    const s = /^[a-z][a-z0-9+.-]*:\/\//i.test(server) ? server : `http://${server}`;
    try {
      new URL(s);
    } catch {
      throw new CliError(`--server "${server}" is not a URL (e.g. ${DEFAULT_SERVER})`);
    }
    this.base = s.replace(/\/+$/, '');
  }

  /** GET `path` as JSON; undefined on 404 when `optional`. */
  async get<T>(path: string, optional: true, timeoutMs?: number): Promise<T | undefined>;
  async get<T>(path: string, optional?: false, timeoutMs?: number): Promise<T>;
  async get<T>(path: string, optional = false, timeoutMs = this.timeoutMs): Promise<T | undefined> {
    const url = this.base + path;
    let res: Response;
    try {
      res = await fetch(url, { signal: AbortSignal.timeout(Math.max(1, timeoutMs)) });
    } catch (err) {
      const e = err as Error & { cause?: { code?: string; message?: string } };
      const why =
        e.name === 'TimeoutError'
          ? `no answer in ${timeoutMs / 1000} s`
          : (e.cause?.code ?? e.cause?.message ?? e.message);
      throw new UnreachableError(
        `cannot reach signalbox at ${this.base} (${why}): is it running, and is --server its --debug-address?`,
      );
    }
    if (res.status === 404 && optional) {
      await res.body?.cancel();
      return undefined;
    }
    const text = await res.text();
    if (!res.ok) {
      let msg = text.trim();
      try {
        msg = String((JSON.parse(text) as { error?: unknown }).error ?? msg);
      } catch {
        /* not JSON: the text as it is */
      }
      throw new CliError(`GET ${url}: ${res.status} ${msg}`);
    }
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new CliError(`GET ${url}: the answer is not JSON (is --server a signalbox debug address?)`);
    }
  }
}
