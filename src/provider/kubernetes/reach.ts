/**
 * What of the watched world is ours: GatewayClasses whose controllerName is ours, their
 * Gateways, the routes whose parentRefs name those Gateways (or whose status still carries
 * our entries, so they can be cleaned up), and the Services, EndpointSlices and Secrets those
 * reach. Everything else is never translated and its events never schedule a translation,
 * so another controller's objects (or a busy cluster's EndpointSlices) cost one map lookup.
 *
 * GatewayClasses, Namespaces (allowedRoutes selectors) and ReferenceGrants are few and
 * always count. An event is also relevant when its object was ours at the last translation
 * (a Gateway moved to another class, a route detached, a Service deleted): whatever makes
 * the reach grow comes through an event that is itself relevant, and the translation it
 * schedules reads the informers' full stores, so nothing is missed by judging the other
 * events against a reach that is a few milliseconds old. Pure: no I/O.
 */

const GW = 'gateway.networking.k8s.io';

type Obj = Record<string, unknown>;

export interface Reach {
  /** our GatewayClass names */
  classes: Set<string>;
  /** `<namespace>/<name>` of Gateways of our classes */
  gateways: Set<string>;
  /** `<Kind>/<namespace>/<name>` of routes attached to our Gateways or carrying our status */
  routes: Set<string>;
  /** `<namespace>/<name>` of Services our routes reference */
  services: Set<string>;
  /** `<namespace>/<name>` of Secrets our Gateways reference */
  secrets: Set<string>;
}

export const emptyReach = (): Reach => ({
  classes: new Set(),
  gateways: new Set(),
  routes: new Set(),
  services: new Set(),
  secrets: new Set(),
});

const ROUTE_KINDS = new Set(['HTTPRoute', 'GRPCRoute', 'TLSRoute', 'TCPRoute', 'UDPRoute']);
const ALWAYS = new Set(['GatewayClass', 'Namespace', 'ReferenceGrant']);

const isObj = (x: unknown): x is Obj => !!x && typeof x === 'object' && !Array.isArray(x);
const str = (x: unknown): string | undefined => (typeof x === 'string' ? x : undefined);

function meta(o: Obj): { ns: string; name: string } {
  const md = isObj(o.metadata) ? o.metadata : {};
  return { ns: str(md.namespace) || 'default', name: str(md.name) ?? '' };
}

/** `<namespace>/<name>` of the Gateways a route's parentRefs name. */
function parentGateways(route: Obj, ns: string): string[] {
  const spec = isObj(route.spec) ? route.spec : {};
  const refs = Array.isArray(spec.parentRefs) ? spec.parentRefs : [];
  const out: string[] = [];
  for (const r of refs) {
    if (!isObj(r)) continue;
    if ((str(r.group) ?? GW) !== GW || (str(r.kind) ?? 'Gateway') !== 'Gateway') continue;
    const name = str(r.name);
    if (name) out.push(`${str(r.namespace) || ns}/${name}`);
  }
  return out;
}

function carriesOurStatus(route: Obj, controllerName: string): boolean {
  const parents = isObj(route.status) ? route.status.parents : undefined;
  return Array.isArray(parents) && parents.some((p) => isObj(p) && p.controllerName === controllerName);
}

/** Every `backendRef` / `backendRefs[]` in a route's spec (rules, mirrors, nested filters). */
function walkRefs(x: unknown, onRef: (r: Obj) => void, depth = 0): void {
  if (depth > 12) return;
  if (Array.isArray(x)) {
    for (const v of x) walkRefs(v, onRef, depth + 1);
    return;
  }
  if (!isObj(x)) return;
  for (const [k, v] of Object.entries(x)) {
    if (k === 'backendRefs' && Array.isArray(v)) for (const r of v) if (isObj(r)) onRef(r);
    if (k === 'backendRef' && isObj(v)) onRef(v);
    walkRefs(v, onRef, depth + 1);
  }
}

/** Every certificate reference in a Gateway's spec (listener TLS, backend client certificate). */
function walkCertRefs(x: unknown, onRef: (r: Obj) => void, depth = 0): void {
  if (depth > 12) return;
  if (Array.isArray(x)) {
    for (const v of x) walkCertRefs(v, onRef, depth + 1);
    return;
  }
  if (!isObj(x)) return;
  for (const [k, v] of Object.entries(x)) {
    if (/[cC]ertificateRefs$/.test(k) && Array.isArray(v)) for (const r of v) if (isObj(r)) onRef(r);
    if (/[cC]ertificateRef$/.test(k) && isObj(v)) onRef(v);
    walkCertRefs(v, onRef, depth + 1);
  }
}

const coreRef = (r: Obj, kind: string): boolean =>
  (str(r.group) ?? '') === '' && (str(r.kind) ?? kind) === kind && !!str(r.name);

/** The reach of a set of objects (kind-tagged, as the informers normalise them). */
export function computeReach(objects: Iterable<Obj>, controllerName: string): Reach {
  const reach = emptyReach();
  const gateways: Obj[] = [];
  const routes: Obj[] = [];
  for (const o of objects) {
    if (o.kind === 'GatewayClass') {
      const spec = isObj(o.spec) ? o.spec : {};
      if (spec.controllerName === controllerName) reach.classes.add(meta(o).name);
    } else if (o.kind === 'Gateway') gateways.push(o);
    else if (typeof o.kind === 'string' && ROUTE_KINDS.has(o.kind)) routes.push(o);
  }
  for (const g of gateways) {
    const spec = isObj(g.spec) ? g.spec : {};
    const cls = str(spec.gatewayClassName);
    if (!cls || !reach.classes.has(cls)) continue;
    const { ns, name } = meta(g);
    reach.gateways.add(`${ns}/${name}`);
    walkCertRefs(spec, (r) => {
      if (coreRef(r, 'Secret')) reach.secrets.add(`${str(r.namespace) || ns}/${str(r.name)}`);
    });
  }
  for (const r of routes) {
    const { ns, name } = meta(r);
    const attached = parentGateways(r, ns).some((g) => reach.gateways.has(g));
    if (!attached && !carriesOurStatus(r, controllerName)) continue;
    reach.routes.add(`${String(r.kind)}/${ns}/${name}`);
    if (!attached) continue;
    walkRefs(r.spec, (b) => {
      if (coreRef(b, 'Service')) reach.services.add(`${str(b.namespace) || ns}/${str(b.name)}`);
    });
  }
  return reach;
}

/** Is this object ours under `reach` (the input of a translation)? */
export function inReach(o: Obj, reach: Reach): boolean {
  const kind = str(o.kind) ?? '';
  if (ALWAYS.has(kind)) return true;
  const { ns, name } = meta(o);
  switch (kind) {
    case 'Gateway':
      return reach.gateways.has(`${ns}/${name}`);
    case 'Service':
      return reach.services.has(`${ns}/${name}`);
    case 'Secret':
      return reach.secrets.has(`${ns}/${name}`);
    case 'EndpointSlice': {
      const md = isObj(o.metadata) ? o.metadata : {};
      const labels = isObj(md.labels) ? md.labels : {};
      const svc = str(labels['kubernetes.io/service-name']);
      return !!svc && reach.services.has(`${ns}/${svc}`);
    }
    default:
      return ROUTE_KINDS.has(kind) && reach.routes.has(`${kind}/${ns}/${name}`);
  }
}

/**
 * Should an event on `o` schedule a translation? Yes when the object is ours now (judged
 * against `reach`, the last translation's) or may have become ours: a Gateway naming one of
 * our classes, a route naming one of our Gateways or carrying our status.
 */
export function relevantEvent(o: Obj, reach: Reach, controllerName: string): boolean {
  if (inReach(o, reach)) return true;
  const kind = str(o.kind) ?? '';
  if (kind === 'Gateway') {
    const spec = isObj(o.spec) ? o.spec : {};
    const cls = str(spec.gatewayClassName);
    return !!cls && reach.classes.has(cls);
  }
  if (ROUTE_KINDS.has(kind)) {
    const { ns } = meta(o);
    return parentGateways(o, ns).some((g) => reach.gateways.has(g)) || carriesOurStatus(o, controllerName);
  }
  return false;
}
