/**
 * backendRefs: resolve a reference to a Service port into a cluster (endpoints from
 * EndpointSlices), or say why it cannot be used (the spec's ResolvedRefs reasons).
 */
import { isIP } from 'node:net';
import { show } from './validate.js';
import type { ObjectSet } from './objects.js';
import type { IRCluster, IREndpoint } from './ir.js';
import { refPermitted } from './referencegrant.js';
import { Reason } from './status.js';
import { key } from './types.js';
import type { EndpointSlice } from './types.js';

export interface BackendRefLike {
  group?: string;
  kind?: string;
  name?: string;
  namespace?: string;
  port?: number;
  weight?: number;
}

export type BackendResult = { ok: true; cluster: IRCluster } | { ok: false; reason: string; message: string };

/** One string object per cluster name, so that the many lookups by name hash it once. */
const interned = new Map<string, string>();
function intern(s: string): string {
  const hit = interned.get(s);
  if (hit !== undefined) return hit;
  if (interned.size > 200_000) interned.clear();
  interned.set(s, s);
  return s;
}

const SUPPORTED_APP_PROTOCOLS = new Set(['http', 'kubernetes.io/h2c', 'kubernetes.io/ws', 'grpc']);

export function resolveBackend(
  objs: ObjectSet,
  ref: BackendRefLike,
  from: { kind: string; namespace: string },
  purpose: 'http' | 'grpc',
): BackendResult {
  if (!ref || typeof ref !== 'object')
    return { ok: false, reason: Reason.BackendNotFound, message: 'backendRef is not an object' };
  for (const f of ['group', 'kind', 'name', 'namespace'] as const) {
    if (ref[f] !== undefined && typeof ref[f] !== 'string') {
      return { ok: false, reason: Reason.InvalidKind, message: `backendRef ${f} must be a string` };
    }
  }
  const group = ref.group ?? '';
  const kind = ref.kind ?? 'Service';
  if (group !== '' || kind !== 'Service') {
    return {
      ok: false,
      reason: Reason.InvalidKind,
      message: `backendRef kind ${group ? group + '/' : ''}${kind} is not supported (only core Service)`,
    };
  }
  if (typeof ref.name !== 'string' || ref.name === '') {
    return { ok: false, reason: Reason.BackendNotFound, message: 'backendRef has no name' };
  }
  const ns = typeof ref.namespace === 'string' && ref.namespace ? ref.namespace : from.namespace;
  if (
    !refPermitted(
      objs,
      { group: 'gateway.networking.k8s.io', kind: from.kind, namespace: from.namespace },
      { group: '', kind: 'Service', namespace: ns, name: ref.name },
    )
  ) {
    return {
      ok: false,
      reason: Reason.RefNotPermitted,
      message: `backendRef to Service ${ns}/${ref.name} is not permitted by any ReferenceGrant`,
    };
  }
  if (typeof ref.port !== 'number' || !Number.isInteger(ref.port) || ref.port < 1 || ref.port > 65535) {
    return {
      ok: false,
      reason: Reason.BackendNotFound,
      message: `backendRef to Service ${ns}/${ref.name} needs a port in 1-65535`,
    };
  }
  const svc = objs.services.get(key(ns, ref.name));
  if (!svc)
    return { ok: false, reason: Reason.BackendNotFound, message: `Service ${ns}/${ref.name} not found` };
  if (svc.spec?.type === 'ExternalName') {
    return {
      ok: false,
      reason: Reason.UnsupportedProtocol,
      message: `Service ${ns}/${ref.name} is of type ExternalName, which is not supported`,
    };
  }
  const sp = (Array.isArray(svc.spec?.ports) ? svc.spec.ports : []).find((p) => p && p.port === ref.port);
  if (!sp)
    return {
      ok: false,
      reason: Reason.BackendNotFound,
      message: `Service ${ns}/${ref.name} has no port ${ref.port}`,
    };
  const app = sp.appProtocol;
  if (app !== undefined && !SUPPORTED_APP_PROTOCOLS.has(app)) {
    return {
      ok: false,
      reason: Reason.UnsupportedProtocol,
      message: `Service ${ns}/${ref.name} port ${ref.port} has unsupported appProtocol ${show(app)}`,
    };
  }
  const h2 = purpose === 'grpc' || app === 'kubernetes.io/h2c' || app === 'grpc';
  const name = intern(`${ns}/${ref.name}/${ref.port}${purpose === 'grpc' ? '/grpc' : ''}`);
  return {
    ok: true,
    cluster: {
      name,
      protocol: h2 ? 'h2c' : 'http1',
      endpoints: [], // filled in once per cluster when the Gateway IR is assembled
    },
  };
}

/**
 * Endpoints of a Service port from its EndpointSlices: ready endpoints; when none is
 * ready, the serving (terminating) ones, as kube-proxy does. Sorted and deduplicated.
 */
interface SliceEndpoint {
  address: string;
  port: number;
  ready: boolean;
}

/** Parsed endpoints of one EndpointSlice for one port name (cached by slice object). */
const parsed = new WeakMap<object, Map<string, SliceEndpoint[]>>();

function sliceEndpoints(
  s: EndpointSlice,
  portName: string | undefined,
  targetPort: number | string | undefined,
): SliceEndpoint[] {
  const pk = `${show(portName ?? '')}\0${show(targetPort)}`;
  let byPort = parsed.get(s);
  const hit = byPort?.get(pk);
  if (hit) return hit;
  const out: SliceEndpoint[] = [];
  if (!s.addressType || s.addressType === 'IPv4' || s.addressType === 'IPv6') {
    const ports = Array.isArray(s.ports) ? s.ports : [];
    let port: number | undefined;
    const p = ports.find((x) => x && (x.name ?? '') === (portName ?? ''));
    if (p && typeof p.port === 'number') port = p.port;
    else if (ports.length === 0 && typeof targetPort === 'number') port = targetPort;
    if (port && port >= 1 && port <= 65535) {
      for (const e of Array.isArray(s.endpoints) ? s.endpoints : []) {
        if (!e || !Array.isArray(e.addresses)) continue;
        const c = e.conditions ?? {};
        const ready = c.ready !== false; // nil means ready
        const serving = c.serving ?? ready;
        if (!ready && !serving) continue;
        for (const a of e.addresses) {
          if (typeof a !== 'string' || isIP(a) === 0) continue; // Envoy takes IP addresses only
          out.push({ address: a, port, ready });
        }
      }
    }
  }
  if (!byPort) parsed.set(s, (byPort = new Map()));
  byPort.set(pk, out);
  return out;
}

/**
 * Endpoints of a Service port from its EndpointSlices: ready endpoints; when none is
 * ready, the serving (terminating) ones, as kube-proxy does. Sorted and deduplicated.
 */
export function endpointsOf(
  objs: ObjectSet,
  ns: string,
  svc: string,
  portName: string | undefined,
  targetPort: number | string | undefined,
): IREndpoint[] {
  const slices = objs.endpointSlicesByService.get(key(ns, svc)) ?? [];
  // the same slice objects as last time → the same endpoints (callers pass unchanged objects)
  const pk = `${show(portName ?? '')}\0${show(targetPort)}`;
  const memo = slices.length ? merged.get(slices[0])?.get(pk) : undefined;
  if (memo && memo.slices.length === slices.length && memo.slices.every((x, i) => x === slices[i]))
    return memo.result;
  const seen = new Map<string, IREndpoint>();
  for (const s of slices) {
    for (const e of sliceEndpoints(s, portName, targetPort)) {
      const k = `${e.address}:${e.port}`;
      const prev = seen.get(k);
      if (!prev || (!prev.ready && e.ready)) seen.set(k, { ...e });
    }
  }
  const all = [...seen.values()];
  const ready = all.filter((e) => e.ready);
  const use = ready.length > 0 ? ready : all;
  const result = use.sort((a, b) =>
    a.address === b.address ? a.port - b.port : a.address < b.address ? -1 : 1,
  );
  if (slices.length) {
    let m = merged.get(slices[0]);
    if (!m) merged.set(slices[0], (m = new Map()));
    m.set(pk, { slices: [...slices], result });
  }
  return result;
}

/** Endpoints of a Service port by its first EndpointSlice object (and the slice list they came from). */
const merged = new WeakMap<object, Map<string, { slices: EndpointSlice[]; result: IREndpoint[] }>>();
