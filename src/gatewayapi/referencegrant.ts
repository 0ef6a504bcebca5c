/**
 * ReferenceGrant: a reference from (group, kind, namespace) to an object in another
 * namespace is permitted only when a ReferenceGrant in the target namespace allows it.
 */
import type { ObjectSet } from './objects.js';

export interface RefFrom {
  group: string;
  kind: string;
  namespace: string;
}
export interface RefTo {
  group: string;
  kind: string;
  namespace: string;
  name: string;
}

export function refPermitted(objs: ObjectSet, from: RefFrom, to: RefTo): boolean {
  if (from.namespace === to.namespace) return true;
  for (const g of objs.referenceGrants.values()) {
    if (g.metadata.namespace !== to.namespace) continue;
    const spec = g.spec as { from?: unknown; to?: unknown };
    const froms = Array.isArray(spec.from) ? spec.from : [];
    const tos = Array.isArray(spec.to) ? spec.to : [];
    const fromOk = froms.some(
      (f: { group?: string; kind?: string; namespace?: string }) =>
        f && (f.group ?? '') === from.group && f.kind === from.kind && f.namespace === from.namespace,
    );
    if (!fromOk) continue;
    const toOk = tos.some(
      (t: { group?: string; kind?: string; name?: string }) =>
        t &&
        (t.group ?? '') === to.group &&
        t.kind === to.kind &&
        (t.name === undefined || t.name === '' || t.name === to.name),
    );
    if (toOk) return true;
  }
  return false;
}
