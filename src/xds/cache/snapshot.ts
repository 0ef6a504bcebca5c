/** An immutable set of resources for one node group, with a deterministic version per type. */
import { ALL_TYPES, SHORT, TypeUrl, versionOf } from '../resource.js';
import type { Resource } from '../resource.js';

export class Snapshot {
  readonly resources: ReadonlyMap<TypeUrl, ReadonlyMap<string, Resource>>;
  private readonly versions = new Map<TypeUrl, string>();

  constructor(resources: Iterable<Resource>) {
    const m = new Map<TypeUrl, Map<string, Resource>>();
    for (const t of ALL_TYPES) m.set(t, new Map());
    for (const r of resources) {
      const byName = m.get(r.typeUrl);
      if (!byName) throw new Error(`unknown resource type ${r.typeUrl}`);
      if (byName.has(r.name)) throw new Error(`duplicate ${SHORT[r.typeUrl]} resource name "${r.name}"`);
      byName.set(r.name, r);
    }
    // keep each type's map in name order so every listing is deterministic
    for (const [t, byName] of m)
      m.set(t, new Map([...byName].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))));
    this.resources = m;
  }

  get(t: TypeUrl): ReadonlyMap<string, Resource> {
    return this.resources.get(t) ?? new Map();
  }

  version(t: TypeUrl): string {
    let v = this.versions.get(t);
    if (v === undefined) {
      v = versionOf(this.get(t).values());
      this.versions.set(t, v);
    }
    return v;
  }

  /** Every type's version, for the debug endpoint. */
  allVersions(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const t of ALL_TYPES) out[SHORT[t]] = this.version(t);
    return out;
  }

  /** Cross-reference check: names referenced but absent (a route naming a missing cluster...). */
  danglingRefs(): string[] {
    const problems: string[] = [];
    for (const r of this.get(TypeUrl.Listener).values()) {
      for (const n of r.deps.routes)
        if (!this.get(TypeUrl.Route).has(n)) problems.push(`LDS ${r.name} -> RDS ${n}`);
    }
    for (const r of this.get(TypeUrl.Route).values()) {
      for (const n of r.deps.clusters)
        if (!this.get(TypeUrl.Cluster).has(n)) problems.push(`RDS ${r.name} -> CDS ${n}`);
    }
    for (const r of this.get(TypeUrl.Cluster).values()) {
      for (const n of r.deps.endpoints) {
        if (!this.get(TypeUrl.Endpoint).has(n)) problems.push(`CDS ${r.name} -> EDS ${n}`);
      }
    }
    return problems;
  }
}
