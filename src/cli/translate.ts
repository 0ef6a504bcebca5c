/**
 * `signalbox translate`: Gateway API YAML → the Envoy resources of each Gateway and the
 * status of every object, offline. The inputs go through exactly what standalone mode does
 * with a folder (the file provider: API-server defaulting and validation, generations, the
 * pipeline's translator and Envoy encoding, per-Gateway isolation of failures), in a
 * throw-away folder with a cache nobody serves; no readiness (nothing is proved offline,
 * so routes carry no Ready condition).
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, extname, join } from 'node:path';
import { snapshotJson } from '../debug/server.js';
import { silentLogger } from '../log.js';
import { FileProvider } from '../provider/file/index.js';
import type { FileError, StatusEntry } from '../provider/file/index.js';
import type { GatewayFailure } from '../provider/pipeline.js';
import { SnapshotCache } from '../xds/cache/cache.js';
import { protoRegistry } from '../xds/proto.js';
import { CliError, oneLine, table } from './output.js';
import type { SnapshotJson } from './sync.js';
import { TYPES } from './sync.js';

export interface TranslateInput {
  /** where it came from: a path, or `-` (stdin) */
  source: string;
  text: string;
}

export interface TranslateOutput {
  /** per Gateway we serve: its snapshot (GET /debug/snapshots/<ns>/<gw> form) */
  gateways: SnapshotJson[];
  /** every object, as the API server would hold it, with the status signalbox writes (null: none) */
  objects: StatusEntry[];
  /** documents that do not parse or that the API server would reject (they are left out) */
  errors: FileError[];
  /** Gateways whose Envoy configuration could not be built */
  gatewayFailures: GatewayFailure[];
}

const YAML_FILE = /\.(ya?ml|json)$/i;

/** The inputs named by -f: files, folders (their YAML and JSON files, recursively, in path order), `-` for stdin. */
export function readInputs(paths: string[], stdin: () => string): TranslateInput[] {
  const out: TranslateInput[] = [];
  const walk = (p: string, top: boolean) => {
    let st;
    try {
      st = statSync(p);
    } catch {
      throw new CliError(`-f ${p}: no such file or folder`);
    }
    if (st.isDirectory()) {
      for (const n of readdirSync(p).sort()) {
        if (n.startsWith('.')) continue;
        const c = join(p, n);
        if (statSync(c).isDirectory() || YAML_FILE.test(n)) walk(c, false);
      }
    } else if (top || YAML_FILE.test(p)) out.push({ source: p, text: readFileSync(p, 'utf8') });
  };
  for (const p of paths) {
    if (p === '-') out.push({ source: '-', text: stdin() });
    else walk(p, true);
  }
  return out;
}

export function translateOffline(
  inputs: TranslateInput[],
  o: { controllerName: string; listenerAddress?: string },
): TranslateOutput {
  const dir = mkdtempSync(join(tmpdir(), 'signalbox-translate-'));
  const sources = new Map<string, string>();
  try {
    inputs.forEach((inp, i) => {
      // numbered in the order given: the provider reads files in path order (the first definition of an object wins)
      const ext = YAML_FILE.test(inp.source) ? extname(inp.source).toLowerCase() : '.yaml';
      const base = inp.source === '-' ? 'stdin' : basename(inp.source, extname(inp.source));
      const f = `${String(i).padStart(4, '0')}-${base.replace(/[^A-Za-z0-9_.-]/g, '_')}${ext}`;
      writeFileSync(join(dir, f), inp.text);
      sources.set(f, inp.source);
    });
    const cache = new SnapshotCache();
    const files = new FileProvider({
      dir,
      cache,
      registry: protoRegistry(),
      log: silentLogger(),
      controllerName: o.controllerName,
      bindAddress: o.listenerAddress,
    });
    try {
      files.start();
    } finally {
      files.stop();
    }
    const src = (f: string) => sources.get(f) ?? f;
    return {
      gateways: cache.groups().map(([g]) => snapshotJson(cache, g) as SnapshotJson),
      objects: files.status(),
      errors: files.errors().map((e) => ({ ...e, file: src(e.file) })),
      gatewayFailures: files.gatewayFailures(),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

interface Cond {
  type: string;
  status: string;
  reason?: string;
}

function conditionsOf(e: StatusEntry): string {
  const s = e.status as {
    conditions?: Cond[];
    parents?: { parentRef?: { name?: string }; conditions?: Cond[] }[];
  } | null;
  if (!s) return '';
  // the reason of a condition that is not as it should be (Conflicted should be False, the others True)
  const good = (c: Cond) => c.status === (c.type === 'Conflicted' ? 'False' : 'True');
  const list = (cs: Cond[] | undefined) =>
    (cs ?? []).map((c) => `${c.type}=${c.status}${!good(c) && c.reason ? `(${c.reason})` : ''}`).join(' ');
  if (Array.isArray(s.parents))
    return s.parents.length === 0
      ? 'no parent of ours'
      : s.parents.map((p) => `${p.parentRef?.name ?? '?'}: ${list(p.conditions)}`).join('; ');
  const listeners = (s as { listeners?: { name: string; attachedRoutes?: number; conditions?: Cond[] }[] })
    .listeners;
  const l = Array.isArray(listeners)
    ? listeners.map((x) => ` | ${x.name} (${x.attachedRoutes ?? 0} routes): ${list(x.conditions)}`).join('')
    : '';
  return list(s.conditions) + l;
}

/** The human form: resources per Gateway, every object's conditions, the errors. */
export function translateTable(out: TranslateOutput): string {
  const parts: string[] = [];
  if (out.gateways.length === 0) parts.push('no Gateway of ours: nothing to serve\n');
  else {
    const rows: string[][] = [];
    for (const g of out.gateways)
      for (const t of TYPES)
        for (const r of g.resources[t] ?? []) rows.push([g.group, t, r.name, r.version.slice(0, 8)]);
    parts.push(table(['GATEWAY', 'TYPE', 'NAME', 'VERSION'], rows));
  }
  parts.push(
    table(
      ['KIND', 'NAMESPACE', 'NAME', 'GEN', 'CONDITIONS'],
      out.objects.map((e) => [e.kind, e.namespace ?? '', e.name, String(e.generation), conditionsOf(e)]),
    ),
  );
  for (const f of out.gatewayFailures)
    parts.push(`Gateway ${f.group} could not be built: ${oneLine(f.error)}\n`);
  for (const e of out.errors)
    parts.push(
      `error: ${e.file}${e.kind ? ` ${e.kind}` : ''}${e.name ? ` ${e.namespace ? `${e.namespace}/` : ''}${e.name}` : ''}: ${oneLine(e.error, 500)}\n`,
    );
  return parts.join('\n');
}
