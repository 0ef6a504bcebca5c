/**
 * Listeners: protocol, port, hostname, allowedRoutes (namespaces, kinds), TLS certificates,
 * conflicts between listeners of one Gateway, and each listener's status.
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { hostnameError } from './hostname.js';
import type { ObjectSet } from './objects.js';
import { refPermitted } from './referencegrant.js';
import { Cond, Conditions, Reason } from './status.js';
import type { Condition } from './status.js';
import type { Gateway, Listener, Secret } from './types.js';
import { GATEWAY_GROUP, key } from './types.js';
import type { IRSecret } from './ir.js';
import { isPort, show } from './validate.js';

export type RouteKind = 'HTTPRoute' | 'GRPCRoute';
const ROUTE_KINDS: RouteKind[] = ['HTTPRoute', 'GRPCRoute'];

export interface ListenerState {
  name: string;
  index: number;
  port: number;
  protocol: 'HTTP' | 'HTTPS';
  hostname?: string;
  /** usable for routing: accepted, not conflicted, programmable */
  ready: boolean;
  accepted: boolean;
  supportedKinds: RouteKind[];
  allowsNamespace(ns: string): boolean;
  certificates: IRSecret[];
  attachedRoutes: number;
  conds: Conditions;
  /** set when the listener cannot be programmed */
  programmedError?: string;
  conflict?: { reason: string; message: string };
  refsError?: { reason: string; message: string };
  acceptError?: { reason: string; message: string };
}

type Selector = {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key?: string; operator?: string; values?: string[] }[];
};

/** Kubernetes label selector semantics; throws on a malformed selector. */
export function selectorMatcher(sel: Selector | undefined): (labels: Record<string, string>) => boolean {
  if (!sel || typeof sel !== 'object')
    throw new Error('namespaces.selector is required when from is Selector');
  const ml = sel.matchLabels ?? {};
  if (typeof ml !== 'object') throw new Error('matchLabels must be a map');
  const exprs = sel.matchExpressions ?? [];
  if (!Array.isArray(exprs)) throw new Error('matchExpressions must be a list');
  for (const e of exprs) {
    if (!e || typeof e.key !== 'string') throw new Error('matchExpressions entry without key');
    if (!['In', 'NotIn', 'Exists', 'DoesNotExist'].includes(show(e.operator)))
      throw new Error(`matchExpressions operator ${show(e.operator)} is not valid`);
    if (
      (e.operator === 'In' || e.operator === 'NotIn') &&
      (!Array.isArray(e.values) || e.values.length === 0)
    ) {
      throw new Error(`matchExpressions ${e.operator} needs values`);
    }
  }
  return (labels) => {
    for (const [k, v] of Object.entries(ml)) if (labels[k] !== v) return false;
    for (const e of exprs) {
      const has = Object.prototype.hasOwnProperty.call(labels, e.key!);
      switch (e.operator) {
        case 'In':
          if (!has || !e.values!.includes(labels[e.key!])) return false;
          break;
        case 'NotIn':
          if (has && e.values!.includes(labels[e.key!])) return false;
          break;
        case 'Exists':
          if (!has) return false;
          break;
        case 'DoesNotExist':
          if (has) return false;
          break;
      }
    }
    return true;
  };
}

function decode(v: string | undefined): string | undefined {
  if (typeof v !== 'string') return undefined;
  try {
    return Buffer.from(v, 'base64').toString('utf8');
  } catch {
    return undefined;
  }
}

/** A Secret usable as a serving certificate: kubernetes.io/tls-shaped data with a matching PEM pair. */
export function tlsSecret(
  s: Secret,
): { ok: true; certPem: string; keyPem: string } | { ok: false; message: string } {
  const cert = s.stringData?.['tls.crt'] ?? decode(s.data?.['tls.crt']);
  const keyPem = s.stringData?.['tls.key'] ?? decode(s.data?.['tls.key']);
  if (!cert || !keyPem)
    return {
      ok: false,
      message: `Secret ${key(s.metadata.namespace, s.metadata.name)} has no tls.crt and tls.key`,
    };
  try {
    const x = new X509Certificate(cert);
    const k = createPrivateKey(keyPem);
    if (!x.checkPrivateKey(k))
      return {
        ok: false,
        message: `Secret ${key(s.metadata.namespace, s.metadata.name)}: tls.key does not match tls.crt`,
      };
  } catch (err) {
    return {
      ok: false,
      message: `Secret ${key(s.metadata.namespace, s.metadata.name)}: invalid PEM (${(err as Error).message.slice(0, 100)})`,
    };
  }
  return { ok: true, certPem: cert, keyPem };
}

export function buildListeners(
  objs: ObjectSet,
  gw: Gateway,
  gen: number,
  now: string,
  prevListeners: Map<string, Condition[]>,
): ListenerState[] {
  const ns = gw.metadata.namespace!;
  const out: ListenerState[] = [];
  const listeners: Listener[] = Array.isArray(gw.spec.listeners) ? gw.spec.listeners : [];
  for (const [index, l] of listeners.entries()) {
    const name = typeof l?.name === 'string' ? l.name : `listener-${index}`;
    const st: ListenerState = {
      name,
      index,
      port: isPort(l?.port) ? l.port : 0,
      protocol: l?.protocol === 'HTTPS' ? 'HTTPS' : 'HTTP',
      hostname: typeof l?.hostname === 'string' && l.hostname ? l.hostname : undefined,
      ready: false,
      accepted: true,
      supportedKinds: [],
      allowsNamespace: () => false,
      certificates: [],
      attachedRoutes: 0,
      conds: new Conditions(gen, now, prevListeners.get(name) ?? []),
    };
    out.push(st);
    try {
      if (!l || typeof l !== 'object') {
        st.acceptError = { reason: Reason.Invalid, message: 'listener must be an object' };
        continue;
      }
      if (!isPort(l.port))
        st.acceptError = {
          reason: Reason.PortUnavailable,
          message: `port ${show(l.port)} is not in 1-65535`,
        };
      else if (l.protocol !== 'HTTP' && l.protocol !== 'HTTPS') {
        st.acceptError = {
          reason: Reason.UnsupportedProtocol,
          message: `protocol ${show(l.protocol)} is not supported (HTTP, HTTPS)`,
        };
      } else if (l.hostname !== undefined && hostnameError(l.hostname)) {
        st.acceptError = { reason: Reason.Invalid, message: hostnameError(l.hostname)! };
      } else if (l.protocol === 'HTTPS' && l.tls?.mode === 'Passthrough') {
        st.acceptError = {
          reason: Reason.UnsupportedProtocol,
          message: 'tls.mode Passthrough is not supported on HTTPS listeners',
        };
      }
      // allowedRoutes.kinds
      const ar = l.allowedRoutes ?? {};
      if (Array.isArray(ar.kinds) && ar.kinds.length > 0) {
        const bad: string[] = [];
        for (const k of ar.kinds) {
          const g = k?.group ?? GATEWAY_GROUP;
          if (g === GATEWAY_GROUP && ROUTE_KINDS.includes(k?.kind as RouteKind)) {
            if (!st.supportedKinds.includes(k.kind as RouteKind)) st.supportedKinds.push(k.kind as RouteKind);
          } else bad.push(`${show(g)}/${show(k?.kind)}`);
        }
        if (bad.length)
          st.refsError = {
            reason: Reason.InvalidRouteKinds,
            message: `route kinds not supported: ${bad.join(', ')}`,
          };
      } else {
        st.supportedKinds = [...ROUTE_KINDS];
      }
      // allowedRoutes.namespaces
      const from = ar.namespaces?.from ?? 'Same';
      if (from === 'Same') st.allowsNamespace = (n) => n === ns;
      else if (from === 'All') st.allowsNamespace = () => true;
      else if (from === 'Selector') {
        try {
          const m = selectorMatcher(ar.namespaces?.selector as Selector);
          st.allowsNamespace = (n) => m(objs.namespaceLabels(n));
        } catch (err) {
          st.acceptError ??= { reason: Reason.Invalid, message: `allowedRoutes: ${(err as Error).message}` };
        }
      } else
        st.acceptError ??= {
          reason: Reason.Invalid,
          message: `allowedRoutes.namespaces.from ${show(from)} is not supported`,
        };
      // TLS
      if (l.protocol === 'HTTPS' && !st.acceptError) {
        const refs = Array.isArray(l.tls?.certificateRefs) ? l.tls.certificateRefs : [];
        if (refs.length === 0)
          st.refsError ??= {
            reason: Reason.InvalidCertificateRef,
            message: 'HTTPS listener needs tls.certificateRefs',
          };
        const problems: { reason: string; message: string }[] = [];
        for (const r of refs) {
          if (!r || typeof r !== 'object' || typeof r.name !== 'string' || !r.name) {
            problems.push({
              reason: Reason.InvalidCertificateRef,
              message: 'certificateRef must name a Secret',
            });
            continue;
          }
          if (
            (r.namespace !== undefined && typeof r.namespace !== 'string') ||
            (r.group !== undefined && typeof r.group !== 'string') ||
            (r.kind !== undefined && typeof r.kind !== 'string')
          ) {
            problems.push({
              reason: Reason.InvalidCertificateRef,
              message: 'certificateRef group, kind and namespace must be strings',
            });
            continue;
          }
          const g = r?.group ?? '';
          const kind = r?.kind ?? 'Secret';
          const sns = r?.namespace ?? ns;
          if (g !== '' || kind !== 'Secret') {
            problems.push({
              reason: Reason.InvalidCertificateRef,
              message: `certificateRef kind ${g ? g + '/' : ''}${kind} is not supported`,
            });
            continue;
          }
          if (
            !refPermitted(
              objs,
              { group: GATEWAY_GROUP, kind: 'Gateway', namespace: ns },
              { group: '', kind: 'Secret', namespace: sns, name: r.name },
            )
          ) {
            problems.push({
              reason: Reason.RefNotPermitted,
              message: `certificateRef to Secret ${sns}/${r.name} is not permitted by any ReferenceGrant`,
            });
            continue;
          }
          const s = objs.secrets.get(key(sns, r.name));
          if (!s) {
            problems.push({
              reason: Reason.InvalidCertificateRef,
              message: `Secret ${sns}/${r.name} not found`,
            });
            continue;
          }
          const t = tlsSecret(s);
          if (!t.ok) {
            problems.push({ reason: Reason.InvalidCertificateRef, message: t.message });
            continue;
          }
          st.certificates.push({ name: key(sns, r.name), certPem: t.certPem, keyPem: t.keyPem });
        }
        if (problems.length)
          st.refsError ??= { reason: problems[0].reason, message: problems.map((p) => p.message).join('; ') };
        if (st.certificates.length === 0) st.programmedError = 'no valid certificate';
      }
      // a listener of a protocol we do not serve supports no route kind
      if (st.acceptError?.reason === Reason.UnsupportedProtocol) st.supportedKinds = [];
      if (st.supportedKinds.length === 0) st.programmedError ??= 'no supported route kinds';
    } catch (err) {
      // a malformed value we did not foresee: this listener is not accepted, the others are unaffected
      st.acceptError = {
        reason: Reason.Invalid,
        message: `internal error on a malformed value: ${String(err).slice(0, 200)}`,
      };
    }
  }
  // conflicts among the listeners that are otherwise acceptable
  const byPort = new Map<number, ListenerState[]>();
  for (const st of out) {
    if (st.acceptError) continue;
    const list = byPort.get(st.port) ?? [];
    list.push(st);
    byPort.set(st.port, list);
  }
  for (const [port, list] of byPort) {
    const protocols = new Set(list.map((s) => s.protocol));
    if (protocols.size > 1) {
      for (const s of list)
        s.conflict = {
          reason: Reason.ProtocolConflict,
          message: `port ${port} is used by listeners of protocols ${[...protocols].sort().join(' and ')}`,
        };
      continue;
    }
    const byHost = new Map<string, ListenerState[]>();
    for (const s of list) byHost.set(s.hostname ?? '', [...(byHost.get(s.hostname ?? '') ?? []), s]);
    for (const [h, same] of byHost) {
      if (same.length < 2) continue;
      for (const s of same) {
        s.conflict = {
          reason: Reason.HostnameConflict,
          message: `listeners ${same.map((x) => x.name).join(', ')} share port ${port} and hostname "${h || '(none)'}"`,
        };
      }
    }
  }
  for (const st of out) {
    st.accepted = !st.acceptError && !st.conflict;
    st.ready = st.accepted && !st.programmedError;
    st.conds.set(
      st.conflict
        ? { type: Cond.Conflicted, status: true, ...st.conflict }
        : { type: Cond.Conflicted, status: false, reason: Reason.NoConflicts, message: 'No conflicts' },
    );
    const acc = st.acceptError ?? st.conflict;
    st.conds.set(
      acc
        ? { type: Cond.Accepted, status: false, ...acc }
        : { type: Cond.Accepted, status: true, reason: Reason.Accepted, message: 'Listener is accepted' },
    );
    st.conds.set(
      st.refsError
        ? { type: Cond.ResolvedRefs, status: false, ...st.refsError }
        : {
            type: Cond.ResolvedRefs,
            status: true,
            reason: Reason.ResolvedRefs,
            message: 'All references resolved',
          },
    );
    st.conds.set(
      st.ready
        ? {
            type: Cond.Programmed,
            status: true,
            reason: Reason.Programmed,
            message: 'Listener is programmed',
          }
        : {
            type: Cond.Programmed,
            status: false,
            reason: Reason.Invalid,
            message: acc?.message ?? st.programmedError ?? 'invalid',
          },
    );
  }
  return out;
}
