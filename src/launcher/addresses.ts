/**
 * Addresses of local Envoys: each Gateway signalbox runs an Envoy for binds its listeners on
 * an address of its own in 127.0.0.0/8 (Linux routes all of it to the loopback interface),
 * so Gateways on the same port do not collide.
 *
 * Rules (AddressPool.assign):
 * - a Gateway keeps the address it has while it exists (the pool's, or the one it asked for);
 * - `spec.addresses` of type IPAddress with a value in 127.0.0.0/8 is honoured, in or out of
 *   the pool; an IPAddress without a value asks for one from the pool; any other type is
 *   UnsupportedAddress, an address outside 127.0.0.0/8, more than one address, or one
 *   another Gateway holds is AddressNotUsable;
 * - otherwise the lowest free address of the pool, preferring the one the Gateway's status
 *   already reports (a restarted signalbox gives Kubernetes Gateways their addresses back);
 *   none free is AddressNotAssigned.
 * Gateways are taken in `<namespace>/<name>` order, so the same set of Gateways gets the same
 * addresses from an empty pool.
 */
import { isIPv4 } from 'node:net';
import type { GatewayAddress } from '../gatewayapi/index.js';

/** What a Gateway asks for: its key, spec.addresses, and the address its status reports. */
export interface AddressRequest {
  /** `<namespace>/<name>` */
  key: string;
  requested: { type?: string; value?: string }[];
  /** status.addresses[0] when of type IPAddress */
  previous?: string;
}

export function ipv4ToInt(a: string): number {
  const p = a.split('.').map(Number);
  return ((p[0] << 24) | (p[1] << 16) | (p[2] << 8) | p[3]) >>> 0;
}

export function intToIpv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

const LOOPBACK_FIRST = ipv4ToInt('127.0.0.0');
const LOOPBACK_LAST = ipv4ToInt('127.255.255.255');

export function isLoopbackV4(a: string): boolean {
  if (!isIPv4(a)) return false;
  const n = ipv4ToInt(a);
  return n >= LOOPBACK_FIRST && n <= LOOPBACK_LAST;
}

export interface Cidr {
  text: string;
  /** first and last address handed out (network and broadcast addresses skipped up to /30) */
  first: number;
  last: number;
}

/** An IPv4 CIDR inside 127.0.0.0/8; throws with the reason otherwise. */
export function parseLoopbackCidr(text: string): Cidr {
  const m = /^(\d+\.\d+\.\d+\.\d+)\/(\d{1,2})$/.exec(text.trim());
  if (!m || !isIPv4(m[1])) throw new Error(`"${text}" is not an IPv4 CIDR (like 127.0.10.0/24)`);
  const bits = Number(m[2]);
  if (bits < 8 || bits > 32) throw new Error(`"${text}": the prefix length must be 8 to 32`);
  const mask = (0xffffffff << (32 - bits)) >>> 0;
  const net = (ipv4ToInt(m[1]) & mask) >>> 0;
  const bcast = (net | (~mask >>> 0)) >>> 0;
  if (net < LOOPBACK_FIRST || bcast > LOOPBACK_LAST)
    throw new Error(`"${text}" is not inside 127.0.0.0/8 (local Envoys bind loopback addresses)`);
  const skip = bits <= 30 ? 1 : 0;
  return { text: `${intToIpv4(net)}/${bits}`, first: net + skip, last: bcast - skip };
}

const isObj = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object';

/** The Gateways of `objects` whose GatewayClass names `controllerName`, as address requests. */
export function addressRequests(objects: Iterable<unknown>, controllerName: string): AddressRequest[] {
  const classes = new Set<string>();
  const gateways: Record<string, unknown>[] = [];
  for (const o of objects) {
    if (!isObj(o)) continue;
    if (o.kind === 'GatewayClass') {
      const md = o.metadata;
      const spec = o.spec;
      if (isObj(md) && typeof md.name === 'string' && isObj(spec) && spec.controllerName === controllerName)
        classes.add(md.name);
    } else if (o.kind === 'Gateway') gateways.push(o);
  }
  const out: AddressRequest[] = [];
  for (const g of gateways) {
    const md = g.metadata;
    const spec = g.spec;
    if (!isObj(md) || typeof md.name !== 'string' || !isObj(spec)) continue;
    if (typeof spec.gatewayClassName !== 'string' || !classes.has(spec.gatewayClassName)) continue;
    const requested = (Array.isArray(spec.addresses) ? (spec.addresses as unknown[]) : []).map((a) =>
      isObj(a)
        ? {
            type: typeof a.type === 'string' ? a.type : undefined,
            value: typeof a.value === 'string' ? a.value : undefined,
          }
        : {},
    );
    const st = g.status;
    const first: unknown =
      isObj(st) && Array.isArray(st.addresses) ? (st.addresses as unknown[])[0] : undefined;
    const previous =
      isObj(first) && (first.type ?? 'IPAddress') === 'IPAddress' && typeof first.value === 'string'
        ? first.value
        : undefined;
    const ns = typeof md.namespace === 'string' ? md.namespace : 'default';
    out.push({ key: `${ns}/${md.name}`, requested, ...(previous ? { previous } : {}) });
  }
  return out;
}

export class AddressPool {
  readonly cidr: Cidr;
  /** the address each Gateway holds (as of the last assign) */
  private current = new Map<string, string>();

  constructor(cidr: string) {
    this.cidr = parseLoopbackCidr(cidr);
  }

  inPool(a: string): boolean {
    if (!isIPv4(a)) return false;
    const n = ipv4ToInt(a);
    return n >= this.cidr.first && n <= this.cidr.last;
  }

  /** The address each Gateway holds now. */
  holders(): ReadonlyMap<string, string> {
    return this.current;
  }

  /**
   * The address of each requesting Gateway, or why it has none. Gateways not among
   * `requests` lose theirs (another may get it at once: whoever runs the Envoys waits for the
   * old one to let go of it).
   */
  assign(requests: AddressRequest[]): Map<string, GatewayAddress> {
    const reqs = [...requests].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    const out = new Map<string, GatewayAddress>();
    const next = new Map<string, string>();
    const taken = new Map<string, string>();
    const take = (key: string, a: string) => {
      next.set(key, a);
      taken.set(a, key);
      out.set(key, { address: a });
    };
    /** an explicit address per Gateway that asked for one; undefined: one from the pool */
    const wants = new Map<string, string | undefined>();
    for (const r of reqs) {
      const other = r.requested.find((x) => (x.type ?? 'IPAddress') !== 'IPAddress');
      if (other) {
        out.set(r.key, {
          reason: 'UnsupportedAddress',
          message: `address type ${JSON.stringify(other.type)} is not supported: a local Envoy binds an IPAddress`,
        });
        continue;
      }
      const values = r.requested.map((x) => x.value).filter((v): v is string => !!v);
      if (values.length > 1) {
        out.set(r.key, {
          reason: 'AddressNotUsable',
          message: `${values.length} addresses requested: a local Envoy binds one`,
        });
        continue;
      }
      if (values.length === 1 && !isLoopbackV4(values[0])) {
        out.set(r.key, {
          reason: 'AddressNotUsable',
          message: `${values[0]} is not an IPv4 address in 127.0.0.0/8: a local Envoy binds a loopback address of this host`,
        });
        continue;
      }
      wants.set(r.key, values[0]);
    }
    // 1. every Gateway keeps what it has, if it still asks for it
    for (const [key, want] of wants) {
      const cur = this.current.get(key);
      if (cur === undefined || taken.has(cur)) continue;
      if (want !== undefined ? want === cur : this.inPool(cur)) take(key, cur);
    }
    // 2. new explicit requests
    for (const [key, want] of wants) {
      if (want === undefined || next.has(key)) continue;
      const holder = taken.get(want);
      if (holder !== undefined)
        out.set(key, { reason: 'AddressNotUsable', message: `${want} is in use by Gateway ${holder}` });
      else take(key, want);
    }
    // 3. the pool: the address the status reports if free, else the lowest free one
    let cursor = this.cidr.first;
    for (const r of reqs) {
      if (!wants.has(r.key) || wants.get(r.key) !== undefined || next.has(r.key)) continue;
      if (r.previous && this.inPool(r.previous) && !taken.has(r.previous)) {
        take(r.key, r.previous);
        continue;
      }
      while (cursor <= this.cidr.last && taken.has(intToIpv4(cursor))) cursor++;
      if (cursor > this.cidr.last) {
        out.set(r.key, {
          reason: 'AddressNotAssigned',
          message: `no free address left in ${this.cidr.text} (--envoy-local-addresses)`,
        });
        continue;
      }
      take(r.key, intToIpv4(cursor));
    }
    this.current = next;
    return out;
  }
}
