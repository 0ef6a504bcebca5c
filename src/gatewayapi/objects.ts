/**
 * The input set: objects indexed by kind and `<namespace>/<name>`. Anything that is not a
 * well-formed object of a known kind is set aside with a reason (it never throws).
 */
import type {
  EndpointSlice,
  Gateway,
  GatewayClass,
  GRPCRoute,
  HTTPRoute,
  KObject,
  Namespace,
  ReferenceGrant,
  Secret,
  Service,
} from './types.js';
import { GATEWAY_GROUP, key } from './types.js';

export interface Rejected {
  kind: string;
  namespace?: string;
  name?: string;
  reason: string;
}

const NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

type Classified =
  { reject: Rejected } | { kind: string; group: string; ns: string; name: string; obj: KObject; k: string };

/** Per input object (treated as immutable): its kind, group, key and normalised form. */
const classified = new WeakMap<object, Classified>();

function classify(raw: object): Classified {
  const hit = classified.get(raw);
  if (hit) return hit;
  const c = classifyNew(raw as KObject);
  classified.set(raw, c);
  return c;
}

function classifyNew(o: KObject): Classified {
  const kind = typeof o.kind === 'string' ? o.kind : 'unknown';
  const md = o.metadata;
  const name = md && typeof md === 'object' ? md.name : undefined;
  const nsRaw = md && typeof md === 'object' ? md.namespace : undefined;
  if (typeof name !== 'string' || name.length > 253 || !NAME.test(name)) {
    return {
      reject: {
        kind,
        name: typeof name === 'string' ? name.slice(0, 80) : undefined,
        reason: 'metadata.name missing or invalid',
      },
    };
  }
  const group =
    typeof o.apiVersion === 'string' && o.apiVersion.includes('/') ? o.apiVersion.split('/')[0] : '';
  const cluster = kind === 'GatewayClass' || kind === 'Namespace';
  const ns = cluster ? '' : typeof nsRaw === 'string' && nsRaw ? nsRaw : 'default';
  if (!cluster && !NAME.test(ns)) return { reject: { kind, name, reason: 'metadata.namespace invalid' } };
  // keep the caller's object when it is already normalised (callers' caches key on identity)
  const normal = cluster ? md?.namespace === undefined : md?.namespace === ns;
  const obj = normal ? o : { ...o, metadata: { ...md, name, namespace: cluster ? undefined : ns } };
  return { kind, group, ns, name, obj, k: key(ns, name) };
}

export class ObjectSet {
  readonly gatewayClasses = new Map<string, GatewayClass>();
  readonly gateways = new Map<string, Gateway>();
  readonly httpRoutes = new Map<string, HTTPRoute>();
  readonly grpcRoutes = new Map<string, GRPCRoute>();
  readonly referenceGrants = new Map<string, ReferenceGrant>();
  readonly services = new Map<string, Service>();
  readonly endpointSlicesByService = new Map<string, EndpointSlice[]>();
  readonly secrets = new Map<string, Secret>();
  readonly namespaces = new Map<string, Namespace>();
  readonly rejected: Rejected[] = [];

  constructor(objects: Iterable<unknown>) {
    const slices: EndpointSlice[] = [];
    for (const raw of objects) {
      if (!raw || typeof raw !== 'object' || Array.isArray(raw)) {
        this.rejected.push({ kind: 'unknown', reason: 'not an object' });
        continue;
      }
      const c = classify(raw);
      if ('reject' in c) {
        this.rejected.push(c.reject);
        continue;
      }
      const { kind, group, ns, name, obj, k } = c;
      const needsSpec = (): boolean => {
        if (!obj.spec || typeof obj.spec !== 'object' || Array.isArray(obj.spec)) {
          this.rejected.push({
            kind,
            namespace: ns || undefined,
            name,
            reason: 'spec missing or not an object',
          });
          return false;
        }
        return true;
      };
      const gw = group === GATEWAY_GROUP;
      switch (kind) {
        case 'GatewayClass':
          if (gw && needsSpec()) this.gatewayClasses.set(name, obj as unknown as GatewayClass);
          break;
        case 'Gateway':
          if (gw && needsSpec()) this.gateways.set(k, obj as unknown as Gateway);
          break;
        case 'HTTPRoute':
          if (gw && needsSpec()) this.httpRoutes.set(k, obj as unknown as HTTPRoute);
          break;
        case 'GRPCRoute':
          if (gw && needsSpec()) this.grpcRoutes.set(k, obj as unknown as GRPCRoute);
          break;
        case 'ReferenceGrant':
          if (gw && needsSpec()) this.referenceGrants.set(k, obj as unknown as ReferenceGrant);
          break;
        case 'Service':
          if (group === '') this.services.set(k, obj as unknown as Service);
          break;
        case 'EndpointSlice':
          if (group === 'discovery.k8s.io') slices.push(obj as unknown as EndpointSlice);
          break;
        case 'Secret':
          if (group === '') this.secrets.set(k, obj as unknown as Secret);
          break;
        case 'Namespace':
          if (group === '') this.namespaces.set(name, obj as unknown as Namespace);
          break;
        default:
          this.rejected.push({ kind, namespace: ns || undefined, name, reason: `unsupported kind ${kind}` });
      }
    }
    slices.sort((a, b) =>
      a.metadata.name! < b.metadata.name! ? -1 : a.metadata.name! > b.metadata.name! ? 1 : 0,
    );
    for (const s of slices) {
      const svc = s.metadata.labels?.['kubernetes.io/service-name'];
      if (typeof svc !== 'string') continue;
      const k = key(s.metadata.namespace, svc);
      const list = this.endpointSlicesByService.get(k) ?? [];
      list.push(s);
      this.endpointSlicesByService.set(k, list);
    }
  }

  namespaceLabels(ns: string): Record<string, string> {
    const n = this.namespaces.get(ns);
    const labels = { ...(n?.metadata.labels ?? {}) };
    // the API server sets this label on every namespace
    labels['kubernetes.io/metadata.name'] = ns;
    return labels;
  }
}

/** Sorted keys of a map, for deterministic iteration. */
export function sortedValues<T>(m: Map<string, T>): T[] {
  return [...m.keys()].sort().map((k) => m.get(k)!);
}

/** Spec order of routes: oldest creationTimestamp first, then `<namespace>/<name>`. */
export function routeOrder(
  a: { metadata: { creationTimestamp?: string; namespace?: string; name?: string } },
  b: { metadata: { creationTimestamp?: string; namespace?: string; name?: string } },
): number {
  const ta = Date.parse(a.metadata.creationTimestamp ?? '') || 0;
  const tb = Date.parse(b.metadata.creationTimestamp ?? '') || 0;
  if (ta !== tb) return ta - tb;
  const ka = key(a.metadata.namespace, a.metadata.name);
  const kb = key(b.metadata.namespace, b.metadata.name);
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}
