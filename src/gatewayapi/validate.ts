/** Field checks shared by HTTPRoute and GRPCRoute: headers, durations, numbers. */
import type { IRHeaderOps } from './ir.js';

const TOKEN = /^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$/;

export class RuleError extends Error {}

export function checkHeaderName(n: unknown, what: string): string {
  if (typeof n !== 'string' || !TOKEN.test(n) || n.length > 256) {
    throw new RuleError(
      `${what}: header name ${JSON.stringify(n)?.slice(0, 80)} is not a valid HTTP header name`,
    );
  }
  return n.toLowerCase();
}

export function checkHeaderValue(v: unknown, what: string): string {
  if (typeof v !== 'string' || /[\0\r\n]/.test(v) || v.length > 4096) {
    throw new RuleError(
      `${what}: header value must be a string without CR, LF or NUL, at most 4096 characters`,
    );
  }
  return v;
}

const FORBIDDEN_MODIFY = new Set(['host', ':authority', ':path', ':method', ':scheme']);

export function headerOps(m: unknown, what: string): IRHeaderOps | undefined {
  if (m === undefined || m === null) return undefined;
  if (typeof m !== 'object') throw new RuleError(`${what}: must be an object`);
  const o = m as { set?: unknown; add?: unknown; remove?: unknown };
  const pairs = (list: unknown, verb: string) => {
    if (list === undefined) return [];
    if (!Array.isArray(list)) throw new RuleError(`${what}.${verb}: must be a list`);
    const out: { name: string; value: string }[] = [];
    const seen = new Set<string>();
    for (const h of list as { name?: unknown; value?: unknown }[]) {
      const name = checkHeaderName(h?.name, `${what}.${verb}`);
      if (FORBIDDEN_MODIFY.has(name))
        throw new RuleError(`${what}.${verb}: header ${name} cannot be modified`);
      if (seen.has(name)) throw new RuleError(`${what}.${verb}: header ${name} appears twice`);
      seen.add(name);
      out.push({ name, value: checkHeaderValue(h?.value, `${what}.${verb}`) });
    }
    return out;
  };
  const set = pairs(o.set, 'set');
  const add = pairs(o.add, 'add');
  let remove: string[] = [];
  if (o.remove !== undefined) {
    if (!Array.isArray(o.remove)) throw new RuleError(`${what}.remove: must be a list`);
    remove = [...new Set(o.remove.map((n) => checkHeaderName(n, `${what}.remove`)))];
    for (const n of remove)
      if (FORBIDDEN_MODIFY.has(n)) throw new RuleError(`${what}.remove: header ${n} cannot be removed`);
  }
  if (set.length + add.length + remove.length === 0) return undefined;
  return { set, add, remove };
}

/** Gateway API Duration (GEP-2257): 1 to 4 of <digits 1-5><h|m|s|ms>, e.g. "1h30m", "500ms". */
export function parseDuration(d: unknown, what: string): number {
  if (typeof d !== 'string' || !/^([0-9]{1,5}(h|m|s|ms)){1,4}$/.test(d)) {
    throw new RuleError(
      `${what}: ${JSON.stringify(d)?.slice(0, 40)} is not a Gateway API duration (e.g. "10s", "1h30m", "500ms")`,
    );
  }
  let ms = 0;
  for (const m of d.matchAll(/([0-9]+)(h|ms|m|s)/g)) {
    const n = Number(m[1]);
    ms += m[2] === 'h' ? n * 3600_000 : m[2] === 'm' ? n * 60_000 : m[2] === 's' ? n * 1000 : n;
  }
  return ms / 1000;
}

export function isPort(p: unknown): p is number {
  return typeof p === 'number' && Number.isInteger(p) && p >= 1 && p <= 65535;
}

/** An optional list field: [] when absent, a RuleError when present but not a list. */
export function asList<T>(v: T[] | undefined | unknown, what: string): T[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new RuleError(`${what}: must be a list`);
  return v as T[];
}

/** A user value for a message: never throws (objects may carry a "toString" key). */
export function show(v: unknown): string {
  if (typeof v === 'string') return v.slice(0, 80);
  try {
    return (JSON.stringify(v) ?? typeof v).slice(0, 80);
  } catch {
    return typeof v;
  }
}
