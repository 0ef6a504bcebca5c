/**
 * Standalone mode: a watched folder of Kubernetes YAML (GatewayClass, Gateway, HTTPRoute,
 * GRPCRoute, ReferenceGrant, Service, EndpointSlice, Secret, Namespace; several documents
 * per file, `kind: List` too; sub-folders are read). Every object goes through what the
 * API server would do to it (schema.ts: CRD defaults and structural validation) and gets
 * the metadata it would set: generation (1 on create, +1 when anything but metadata and
 * status changes), resourceVersion, creationTimestamp, uid. The objects are translated and
 * the snapshots published per Gateway; the status each object would be written is kept
 * on it (for lastTransitionTime) and served by `status()` (`GET /debug/status`).
 *
 * Errors never withdraw what is served: a Gateway whose Envoy configuration cannot be built
 * keeps its last good snapshot and gets Programmed=False (the pipeline's per-Gateway
 * isolation; the other Gateways update); a file that does not parse keeps its previous
 * objects; an object the API server would reject keeps its previous version (like a
 * failed `kubectl apply`); an empty file keeps its previous objects (a file being
 * written); to withdraw objects, delete them from the file or delete the file.
 */
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parseAllDocuments } from 'yaml';
import type { ObjectStatus } from '../../gatewayapi/index.js';
import type { Logger } from '../../log.js';
import type { Metrics } from '../../metrics.js';
import type { SnapshotCache } from '../../xds/cache/cache.js';
import type { ProtoRegistry } from '../../xds/proto.js';
import type { Readiness } from '../../readiness/index.js';
import { Pipeline, nowRfc3339 } from '../pipeline.js';
import type { GatewayFailure, LocalDataPlane } from '../pipeline.js';
import { DirWatcher } from '../watch.js';
import { admit } from './schema.js';

type J = Record<string, unknown>;
const isObj = (v: unknown): v is J => !!v && typeof v === 'object' && !Array.isArray(v);

const CLUSTER_SCOPED = new Set(['GatewayClass', 'Namespace']);
const ROUTE_KINDS = new Set(['HTTPRoute', 'GRPCRoute']);

export interface FileError {
  /** path relative to the folder */
  file: string;
  kind?: string;
  namespace?: string;
  name?: string;
  error: string;
}

export interface StatusEntry {
  apiVersion: string;
  kind: string;
  namespace?: string;
  name: string;
  generation: number;
  /** the status signalbox writes for this object; null when it writes none */
  status: Record<string, unknown> | null;
}

interface FileState {
  /** inode, size, mtime and ctime (ns) when it was read ('' when changed within the last second): an unchanged stamp is not read again */
  stamp: string;
  text: string;
  /** the last objects of this file that were admitted, by key */
  objects: Map<string, J>;
  errors: FileError[];
}

interface ObjState {
  file: string;
  /** the admitted object it was made from (a file not read again hands the same one) */
  src: J;
  /** JSON of the admitted object without metadata (its spec, for generation) */
  spec: string;
  /** JSON of its metadata as written in the file */
  meta: string;
  generation: number;
  obj: J;
  status: Record<string, unknown> | null;
  /** JSON of `status` */
  statusJson: string;
  /** the status handed to applyStatuses it was last compared with (the same one again: no change) */
  statusIn?: Record<string, unknown> | null;
}

export interface FileProviderOptions {
  dir: string;
  cache: SnapshotCache;
  registry: ProtoRegistry;
  log: Logger;
  controllerName: string;
  bindAddress?: string;
  debounceMs?: number;
  metrics?: Metrics;
  /** proved readiness (Ready conditions in the route statuses) */
  readiness?: Readiness;
  /** local Envoys (serve --envoy local): per-Gateway addresses and an Envoy each */
  local?: LocalDataPlane;
}

/** `<kind>/<namespace>/<name>` of a status object (decorate() hands unchanged ones again) */
const statusKeys = new WeakMap<ObjectStatus, string>();

function keyOf(o: J): string {
  const md = o.metadata as J;
  return `${String(o.kind)}/${String(md.namespace ?? '')}/${String(md.name)}`;
}

export class FileProvider {
  private readonly files = new Map<string, FileState>();
  private readonly objs = new Map<string, ObjState>();
  private readonly watcher: DirWatcher;
  private readonly pipeline: Pipeline;
  private rv = 0;
  private errs: FileError[] = [];
  private lastStatuses?: ObjectStatus[];
  /** translations run (one per change of the object set) */
  translations = 0;

  constructor(private readonly o: FileProviderOptions) {
    this.watcher = new DirWatcher(() => this.reload(), o.debounceMs);
    this.pipeline = new Pipeline({
      cache: o.cache,
      registry: o.registry,
      log: o.log,
      controllerName: o.controllerName,
      bindAddress: o.bindAddress,
      metrics: o.metrics,
      readiness: o.readiness,
      local: o.local,
    });
    // readiness moves on its own (ACKs, probes): the statuses are decorated again
    o.readiness?.on('changed', () => {
      if (this.lastStatuses) this.applyStatuses(this.lastStatuses, false);
    });
  }

  /** Load and publish once (synchronously), then watch. */
  start(): void {
    this.reload();
  }

  stop(): void {
    this.watcher.close();
  }

  errors(): FileError[] {
    return this.errs;
  }

  /** Gateways whose latest configuration could not be built (they keep their last good snapshot). */
  gatewayFailures(): GatewayFailure[] {
    return this.pipeline.failures();
  }

  /** One entry per object: what it looks like after defaulting, and the status written to it. */
  status(): StatusEntry[] {
    return [...this.objs.keys()].sort().map((k) => {
      const s = this.objs.get(k)!;
      const md = s.obj.metadata as J;
      return {
        apiVersion: String(s.obj.apiVersion),
        kind: String(s.obj.kind),
        ...(md.namespace ? { namespace: String(md.namespace) } : {}),
        name: String(md.name),
        generation: s.generation,
        status: s.status,
      };
    });
  }

  /** The objects as the translator sees them (defaulted, with metadata and written status). */
  objects(): J[] {
    return [...this.objs.keys()].sort().map((k) => this.objs.get(k)!.obj);
  }

  reload(): void {
    const eventAt = this.watcher.takeFirstEvent();
    const dirs: string[] = [];
    const paths: string[] = [];
    const stamps = new Map<string, string>();
    const walk = (d: string) => {
      dirs.push(d);
      let names: string[];
      try {
        names = readdirSync(d).sort();
      } catch {
        return;
      }
      for (const n of names) {
        if (n.startsWith('.') || n.endsWith('~')) continue;
        const p = join(d, n);
        let st;
        try {
          st = statSync(p, { bigint: true });
        } catch {
          continue;
        }
        if (st.isDirectory()) walk(p);
        else if (st.isFile() && /\.(ya?ml|json)$/.test(n)) {
          const f = relative(this.o.dir, p);
          paths.push(f);
          // file times tick in jiffies: a file changed within the last second may change
          // again under the same stamp, so it is read again next time
          const settled = Date.now() - Number(st.ctimeNs / 1_000_000n) > 1000;
          stamps.set(f, settled ? `${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}` : '');
        }
      }
    };
    walk(this.o.dir);
    paths.sort();

    for (const f of [...this.files.keys()]) if (!stamps.has(f)) this.files.delete(f);
    for (const f of paths) this.loadFile(f, stamps.get(f)!);

    // merge: the first file (in path order) that defines an object wins
    const errs: FileError[] = [];
    const current = new Map<string, { file: string; obj: J }>();
    for (const f of paths) {
      const fs = this.files.get(f);
      if (!fs) continue;
      errs.push(...fs.errors);
      for (const [k, obj] of fs.objects) {
        const had = current.get(k);
        if (had) {
          const md = obj.metadata as J;
          errs.push({
            file: f,
            kind: String(obj.kind),
            namespace: md.namespace as string | undefined,
            name: String(md.name),
            error: `already defined in ${had.file}: ignored here`,
          });
          continue;
        }
        current.set(k, { file: f, obj });
      }
    }
    for (const e of errs) {
      if (!this.errs.some((x) => JSON.stringify(x) === JSON.stringify(e)))
        this.o.log.error(e, 'config file error: the previous objects stay served');
    }
    this.errs = errs;

    let changed = false;
    for (const k of [...this.objs.keys()]) {
      if (!current.has(k)) {
        this.objs.delete(k);
        changed = true;
        this.o.log.info({ object: k }, 'object deleted');
      }
    }
    for (const [k, { file, obj }] of current) {
      const prev = this.objs.get(k);
      if (prev?.src === obj) {
        prev.file = file;
        continue;
      }
      const { metadata, status: _status, ...rest } = obj;
      const spec = JSON.stringify(rest);
      const meta = JSON.stringify(metadata);
      if (prev && prev.spec === spec && prev.meta === meta) {
        prev.file = file;
        prev.src = obj;
        continue;
      }
      changed = true;
      const md = { ...(metadata as J) };
      const generation = !prev ? 1 : prev.spec === spec ? prev.generation : prev.generation + 1;
      const pmd = prev?.obj.metadata as J | undefined;
      md.generation = generation;
      md.resourceVersion = String(++this.rv);
      md.uid = pmd?.uid ?? randomUUID();
      md.creationTimestamp ??= pmd?.creationTimestamp ?? nowRfc3339();
      const out: J = { ...rest, metadata: md };
      if (prev?.status) out.status = prev.status;
      this.objs.set(k, {
        file,
        src: obj,
        spec,
        meta,
        generation,
        obj: out,
        status: prev?.status ?? null,
        statusJson: prev?.statusJson ?? 'null',
      });
      this.o.log.info({ object: k, generation, file }, prev ? 'object changed' : 'object added');
    }
    if (changed || this.translations === 0) this.translate(eventAt);
    this.watcher.sync(dirs);
  }

  private loadFile(f: string, stamp: string): void {
    const prev = this.files.get(f);
    if (stamp !== '' && prev?.stamp === stamp) return;
    let text: string;
    try {
      text = readFileSync(join(this.o.dir, f), 'utf8');
    } catch {
      return; // vanished since listing: the next event reloads
    }
    if (prev && prev.text === text) {
      prev.stamp = stamp;
      return;
    }
    const keep = (error: string): void => {
      this.files.set(f, {
        stamp,
        text,
        objects: prev?.objects ?? new Map(),
        errors: [{ file: f, error }],
      });
    };
    if (text.trim() === '' && prev && prev.objects.size > 0) {
      keep('empty file (being written?): its previous objects stay');
      return;
    }
    const docs = parseAllDocuments(text);
    const raw: unknown[] = [];
    for (const d of docs) {
      if (d.errors.length > 0) {
        keep(`YAML error: ${d.errors.map((e) => e.message).join('; ')}`);
        return;
      }
      const v = d.toJS() as unknown;
      if (v === null || v === undefined) continue;
      if (isObj(v) && v.kind === 'List' && Array.isArray(v.items)) raw.push(...(v.items as unknown[]));
      else raw.push(v);
    }
    const objects = new Map<string, J>();
    const errors: FileError[] = [];
    for (const r of raw) {
      if (!isObj(r)) {
        errors.push({ file: f, error: 'a document is not an object' });
        continue;
      }
      const o = structuredClone(r);
      const md = isObj(o.metadata) ? o.metadata : undefined;
      if (md && !CLUSTER_SCOPED.has(String(o.kind)) && md.namespace === undefined) md.namespace = 'default';
      if (md && CLUSTER_SCOPED.has(String(o.kind))) delete md.namespace;
      const problems = admit(o);
      if (problems.length > 0) {
        const e: FileError = {
          file: f,
          kind: typeof o.kind === 'string' ? o.kind : undefined,
          namespace: typeof md?.namespace === 'string' ? md.namespace : undefined,
          name: typeof md?.name === 'string' ? md.name : undefined,
          error: problems.join('; '),
        };
        errors.push(e);
        // a rejected apply leaves the stored object as it was
        if (md && typeof md.name === 'string') {
          const k = keyOf(o);
          const old = prev?.objects.get(k);
          if (old) objects.set(k, old);
        }
        continue;
      }
      // the API server keeps generation, resourceVersion, uid, status for itself
      for (const x of ['generation', 'resourceVersion', 'uid', 'managedFields']) delete (o.metadata as J)[x];
      delete o.status;
      const k = keyOf(o);
      if (objects.has(k)) {
        errors.push({
          file: f,
          kind: String(o.kind),
          name: String((o.metadata as J).name),
          error: 'defined twice in this file: the first one counts',
        });
        continue;
      }
      objects.set(k, o);
    }
    this.files.set(f, { stamp, text, objects, errors });
  }

  /** `eventAt`: the file event that led to it (ms), for signalbox_event_push_latency_seconds */
  private translate(eventAt?: number): void {
    this.translations++;
    const objects = [...this.objs.values()].map((s) => s.obj);
    const res = this.pipeline.run(objects, undefined, eventAt);
    if (!res) return;
    this.lastStatuses = res.statuses;
    this.applyStatuses(res.statuses);
    for (const r of res.rejected) this.o.log.warn(r, 'object set aside by the translator');
  }

  /** Keep on each object the status signalbox would write (with readiness's Ready conditions). */
  private applyStatuses(statuses: ObjectStatus[], full = true): void {
    const given = new Map<string, ObjectStatus>();
    for (const s of this.o.readiness ? this.o.readiness.decorate(statuses) : statuses) {
      let k = statusKeys.get(s);
      if (k === undefined) statusKeys.set(s, (k = `${s.kind}/${s.namespace ?? ''}/${s.name}`));
      given.set(k, s);
    }
    // after a translation every object is looked at (a status may have gone); when only
    // readiness moved, the objects with a status are enough
    const keys = full ? this.objs.keys() : given.keys();
    for (const k of keys) {
      const st = this.objs.get(k);
      if (!st) continue;
      const kind = String(st.obj.kind);
      const status = given.get(k)?.status ?? null;
      // the very status compared last time (readiness decorates unchanged routes to the
      // same object): nothing to compare
      if (status !== null && status === st.statusIn) continue;
      st.statusIn = status;
      let next = status;
      // a route we no longer serve: our parent entries are removed (others' would stay)
      if (!next && ROUTE_KINDS.has(kind) && st.status) next = { parents: [] };
      const json = JSON.stringify(next);
      if (json === st.statusJson) continue;
      st.status = next;
      st.statusJson = json;
      const md = { ...(st.obj.metadata as J), resourceVersion: String(++this.rv) };
      st.obj = { ...st.obj, metadata: md, ...(next ? { status: next } : {}) };
      if (!next) delete st.obj.status;
      this.o.log.info({ object: k, generation: st.generation, status: next }, 'status changed');
    }
  }
}
