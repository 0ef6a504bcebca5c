/**
 * Send probes (see probe.ts) through one Envoy and judge the answer. A probe succeeds only
 * when the response proves both that this Envoy applied the probed state (the probe route
 * stamps PROBE_HEADER with the request's value) and that an upstream answered: Envoy's
 * router sets `x-envoy-upstream-service-time` on responses from an upstream (the translator's
 * router filter keeps the default suppress_envoy_headers: false) and never on its own local
 * replies (no healthy upstream, cluster not found, upstream timeout). Any status from the
 * backend counts: a 404 or 500 from the backend still proves it is served.
 */
import { request as httpRequest } from 'node:http';
import type { ClientRequest, IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { RequestOptions as HttpsRequestOptions } from 'node:https';
import { PROBE_HEADER } from './probe.js';
import type { ProbeRequest } from './probe.js';

export const UPSTREAM_TIME_HEADER = 'x-envoy-upstream-service-time';

export interface ProbeTarget {
  address: string;
  port: number;
  /**
   * HTTPS listener: TLS with SNI = servername. The certificate is not verified: the Envoy
   * serves the Gateway's certificate, which need not chain to anything we trust or name the
   * probe Host; the probe proves routing and upstream reachability, not the certificate, and
   * carries nothing secret.
   */
  tls?: { servername: string };
}

export type ProbeOutcome =
  | { ok: true; status: number; latencyMs: number }
  | {
      ok: false;
      /**
       * wrong-hash: the response lacks our PROBE_HEADER value (this Envoy has not applied the
       * state yet, or another route answered: a 404 from no route is wrong-hash too);
       * local-reply: our value is there but no x-envoy-upstream-service-time (Envoy answered
       * itself); connect: no connection or it was reset before a response; timeout: no
       * complete answer in time; protocol: not an HTTP/1.1 (or TLS) answer we can read.
       */
      reason: 'wrong-hash' | 'local-reply' | 'connect' | 'timeout' | 'protocol';
      status?: number;
      detail: string;
    };

const DEFAULT_TIMEOUT_MS = 2000;

const CONNECT_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EHOSTDOWN',
  'ENETDOWN',
  'EADDRNOTAVAIL',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
]);

/** Judge a response's status and headers. */
export function judge(
  req: ProbeRequest,
  status: number,
  headers: IncomingMessage['headers'],
  latencyMs: number,
): ProbeOutcome {
  const got = headers[PROBE_HEADER];
  const value = Array.isArray(got) ? got.join(', ') : got;
  if (value !== req.headerValue) {
    return {
      ok: false,
      reason: 'wrong-hash',
      status,
      detail:
        value === undefined
          ? `status ${status} without ${PROBE_HEADER}`
          : `status ${status} with ${PROBE_HEADER}: ${value.slice(0, 100)}`,
    };
  }
  if (headers[UPSTREAM_TIME_HEADER] === undefined) {
    const details = headers['x-envoy-response-flags'] ?? headers['server'];
    return {
      ok: false,
      reason: 'local-reply',
      status,
      detail: `status ${status} from Envoy itself, not an upstream${details ? ` (${String(details)})` : ''}`,
    };
  }
  return { ok: true, status, latencyMs };
}

function classify(err: unknown): { reason: 'connect' | 'protocol'; detail: string } {
  const e = err as NodeJS.ErrnoException;
  const code = typeof e?.code === 'string' ? e.code : '';
  const detail = `${code ? code + ': ' : ''}${e?.message ?? String(err)}`;
  return { reason: CONNECT_CODES.has(code) ? 'connect' : 'protocol', detail };
}

/** One probe; with `signal`, an abort ends it as a timeout. Never throws. */
function probeOnce(
  target: ProbeTarget,
  req: ProbeRequest,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<ProbeOutcome> {
  return new Promise<ProbeOutcome>((resolve) => {
    const start = performance.now();
    let done = false;
    let headersOutcome: ProbeOutcome | undefined;
    let cr: ClientRequest | undefined;
    const finish = (o: ProbeOutcome) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      cr?.destroy();
      resolve(o);
    };
    const giveUp = (detail: string) =>
      // a response whose headers came in but whose body did not end is judged on its headers
      finish(headersOutcome ?? { ok: false, reason: 'timeout', detail });
    const timer = setTimeout(() => giveUp(`no answer within ${timeoutMs} ms`), timeoutMs);
    const onAbort = () => giveUp('aborted');
    if (signal?.aborted) return giveUp('aborted');
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const common = {
        host: target.address,
        port: target.port,
        method: 'GET',
        path: req.path,
        agent: false as const,
        headers: { host: req.host, [PROBE_HEADER]: req.headerValue, connection: 'close', accept: '*/*' },
      };
      const onResponse = (res: IncomingMessage) => {
        headersOutcome = judge(req, res.statusCode ?? 0, res.headers, performance.now() - start);
        res.on('error', () => finish(headersOutcome!));
        res.on('end', () => finish(headersOutcome!));
        res.on('close', () => finish(headersOutcome!));
        res.resume(); // read and discard the body
      };
      if (target.tls) {
        const tls: HttpsRequestOptions & { ALPNProtocols: string[] } = {
          ...common,
          servername: target.tls.servername,
          // see ProbeTarget.tls: the Gateway's certificate is not what a probe proves
          rejectUnauthorized: false,
          ALPNProtocols: ['http/1.1'],
        };
        cr = httpsRequest(tls, onResponse);
      } else cr = httpRequest(common, onResponse);
      cr.on('error', (err) => {
        if (headersOutcome) return finish(headersOutcome);
        const c = classify(err);
        finish({ ok: false, reason: c.reason, detail: c.detail });
      });
      cr.end();
    } catch (err) {
      // invalid header value, port out of range...
      finish({ ok: false, reason: 'protocol', detail: (err as Error)?.message ?? String(err) });
    }
  });
}

/**
 * One HTTP/1.1 GET through `target`: Host = req.host, path = req.path, PROBE_HEADER =
 * req.headerValue, on a fresh connection; the body is read and discarded. Never throws.
 */
export async function probe(
  target: ProbeTarget,
  req: ProbeRequest,
  timeoutMs = DEFAULT_TIMEOUT_MS,
): Promise<ProbeOutcome> {
  return probeOnce(target, req, timeoutMs);
}

export interface ProbeUntilOptions {
  /** overall budget */
  timeoutMs: number;
  signal?: AbortSignal;
  /** delay between attempts: doubling from min, capped at max, jittered down by up to half (default [50, 1000]) */
  backoffMs?: [number, number];
  /** budget of one attempt (default 2000, and never past the overall budget) */
  attemptTimeoutMs?: number;
}

/** a retry starts only with at least this long (or the attempt budget, if less) left */
const MIN_ATTEMPT_MS = 100;

const RETRIED = new Set(['wrong-hash', 'local-reply', 'connect', 'timeout']);

/**
 * Probe until ok, retrying wrong-hash, local-reply, connect and timeout failures with backoff
 * (xds rule 18: a wrong hash, a 404 or a 503 means "not yet"); a protocol failure ends it.
 * Returns the first ok, or the last failure once the budget is spent (no retry starts with
 * less than 100 ms left) or `signal` aborts. At least one attempt is made unless `signal` is
 * already aborted. Never throws.
 */
export async function probeUntil(
  target: ProbeTarget,
  req: ProbeRequest,
  opts: ProbeUntilOptions,
): Promise<ProbeOutcome & { attempts: number }> {
  const end = performance.now() + Math.max(0, opts.timeoutMs);
  const [min, max] = opts.backoffMs ?? [50, 1000];
  const perAttempt = opts.attemptTimeoutMs ?? DEFAULT_TIMEOUT_MS;
  const minAttempt = Math.min(perAttempt, MIN_ATTEMPT_MS);
  let attempts = 0;
  let last: ProbeOutcome = { ok: false, reason: 'timeout', detail: 'aborted before the first attempt' };
  for (;;) {
    if (opts.signal?.aborted) return { ...last, attempts };
    const left = end - performance.now();
    if (attempts > 0 && left <= 0) return { ...last, attempts };
    attempts++;
    last = await probeOnce(target, req, Math.max(1, Math.min(perAttempt, left)), opts.signal);
    if (last.ok || !RETRIED.has(last.reason)) return { ...last, attempts };
    const base = Math.min(max, min * 2 ** Math.min(attempts - 1, 30));
    const delay = base / 2 + Math.random() * (base / 2);
    // no retry squeezed into the last moments: its timeout would hide a more telling failure
    if (end - performance.now() - delay < minAttempt) return { ...last, attempts };
    if (!(await sleep(delay, opts.signal))) return { ...last, attempts };
  }
}

/** Resolves true after `ms`, false as soon as `signal` aborts. */
function sleep(ms: number, signal?: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve(false);
    const onAbort = () => {
      clearTimeout(t);
      resolve(false);
    };
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
