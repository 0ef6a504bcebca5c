/**
 * Serve snapshots from a folder of Envoy resources (YAML), for tests and demos until the
 * Gateway API translator feeds the cache.
 *
 * Layout: `<dir>/<namespace>/<gateway>/*.yaml` → node group `<namespace>/<gateway>`.
 * Each YAML document is one resource carrying "@type" (a type URL), or a
 * `{resources: [...]}` list of such. The folder is watched; a file that does not parse or a
 * resource that does not encode is reported (log + `errors()`), and the group keeps the
 * last snapshot that loaded whole: a bad edit never withdraws config already served.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parseAllDocuments } from 'yaml';
import type { Logger } from '../log.js';
import type { SnapshotCache } from '../xds/cache/cache.js';
import { Snapshot } from '../xds/cache/snapshot.js';
import type { JsonObject, ProtoRegistry } from '../xds/proto.js';
import { isKnownType, makeResource } from '../xds/resource.js';
import type { Resource } from '../xds/resource.js';
import { DirWatcher, safeDirs } from './watch.js';

export interface FolderError {
  group: string;
  file: string;
  error: string;
}

export function loadGroup(
  reg: ProtoRegistry,
  dir: string,
  group: string,
): { resources: Resource[]; errors: FolderError[] } {
  const resources: Resource[] = [];
  const errors: FolderError[] = [];
  const files = readdirSync(dir)
    .filter((f) => /\.ya?ml$/.test(f))
    .sort();
  for (const f of files) {
    const path = join(dir, f);
    try {
      const docs = parseAllDocuments(readFileSync(path, 'utf8'));
      for (const doc of docs) {
        if (doc.errors.length > 0) throw new Error(doc.errors.map((e) => e.message).join('; '));
        const v = doc.toJS() as unknown;
        if (v === null || v === undefined) continue;
        const list = (v as { resources?: unknown[] }).resources ?? [v];
        for (const item of list) {
          const { '@type': type, ...json } = item as JsonObject;
          if (typeof type !== 'string' || !isKnownType(type)) {
            throw new Error(`resource without a known "@type": ${JSON.stringify(type)}`);
          }
          resources.push(makeResource(reg, type, json));
        }
      }
    } catch (err) {
      errors.push({ group, file: f, error: (err as Error).message });
    }
  }
  if (errors.length === 0) {
    try {
      new Snapshot(resources);
    } catch (err) {
      errors.push({ group, file: '', error: (err as Error).message });
    }
  }
  return { resources, errors };
}

export class EnvoyFolderProvider {
  /** one non-recursive watcher per folder: Node's recursive watch on Linux loses files replaced by rename */
  private readonly watcher = new DirWatcher(() => this.reload());
  private errs: FolderError[] = [];
  private known = new Set<string>();

  constructor(
    private readonly dir: string,
    private readonly cache: SnapshotCache,
    private readonly reg: ProtoRegistry,
    private readonly log: Logger,
  ) {}

  errors(): FolderError[] {
    return this.errs;
  }

  /** Load every group once (synchronously), then watch. */
  start(): void {
    this.reload();
  }

  stop(): void {
    this.watcher.close();
  }

  reload(): void {
    const errs: FolderError[] = [];
    const seen = new Set<string>();
    const dirs = [this.dir];
    for (const ns of safeDirs(this.dir)) {
      dirs.push(join(this.dir, ns));
      for (const gw of safeDirs(join(this.dir, ns))) {
        dirs.push(join(this.dir, ns, gw));
        const group = `${ns}/${gw}`;
        seen.add(group);
        const { resources, errors } = loadGroup(this.reg, join(this.dir, ns, gw), group);
        if (errors.length > 0) {
          for (const e of errors) {
            this.log.error(
              { group, file: relative(this.dir, join(this.dir, ns, gw, e.file)), error: e.error },
              'bad resource file: keeping the last good snapshot',
            );
          }
          errs.push(...errors);
          continue;
        }
        const snap = new Snapshot(resources);
        const prev = this.cache.getGroup(group);
        if (!prev || JSON.stringify(prev.allVersions()) !== JSON.stringify(snap.allVersions())) {
          this.cache.setSnapshot(group, snap);
          this.log.info({ group, versions: snap.allVersions() }, 'snapshot set from folder');
        }
      }
    }
    for (const g of this.known) {
      if (!seen.has(g)) {
        this.cache.clearSnapshot(g);
        this.log.info({ group: g }, 'group folder removed: snapshot cleared');
      }
    }
    this.known = seen;
    this.errs = errs;
    this.watcher.sync(dirs);
  }
}
