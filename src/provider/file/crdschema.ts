/**
 * The OpenAPI schemas of the Gateway API CRDs (sigs.k8s.io/gateway-api, standard channel),
 * reduced to what defaulting and structural validation read: types, properties, items,
 * `default`, `required`, `enum`, bounds and patterns. Descriptions and CEL rules are
 * dropped. The CRD files of the pinned version are put under protos/gateway-api/standard
 * by the build (scripts/gatewayapi-types.mjs, from the Go module cache; gitignored) and
 * extracted once at run time by `crdSchemas()`.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { findRepoRoot } from '../../xds/proto.js';

export const GATEWAY_API_MODULE = 'sigs.k8s.io/gateway-api';
export const GATEWAY_API_VERSION = 'v1.6.3';
/** the kinds the translator reads */
export const CRD_KINDS = ['GatewayClass', 'Gateway', 'HTTPRoute', 'GRPCRoute', 'ReferenceGrant'];

export interface Schema {
  type?: string;
  default?: unknown;
  properties?: Record<string, Schema>;
  items?: Schema;
  additionalProperties?: Schema | boolean;
  required?: string[];
  enum?: unknown[];
  pattern?: string;
  format?: string;
  maxLength?: number;
  minLength?: number;
  maxItems?: number;
  minItems?: number;
  maximum?: number;
  minimum?: number;
  nullable?: boolean;
  'x-kubernetes-int-or-string'?: boolean;
  'x-kubernetes-preserve-unknown-fields'?: boolean;
}

/** `<kind>` → `<version>` → schema of the whole object (status left out), or the name of a version with the same schema */
export type SchemaSet = Record<string, Record<string, Schema | string>>;

const KEEP = [
  'type',
  'default',
  'required',
  'enum',
  'pattern',
  'format',
  'maxLength',
  'minLength',
  'maxItems',
  'minItems',
  'maximum',
  'minimum',
  'nullable',
  'x-kubernetes-int-or-string',
  'x-kubernetes-preserve-unknown-fields',
] as const;

function reduce(s: Record<string, unknown>): Schema {
  const out: Record<string, unknown> = {};
  for (const k of KEEP) if (s[k] !== undefined) out[k] = s[k];
  if (s.properties && typeof s.properties === 'object') {
    const p: Record<string, Schema> = {};
    for (const [name, sub] of Object.entries(s.properties as Record<string, Record<string, unknown>>))
      p[name] = reduce(sub);
    out.properties = p;
  }
  if (s.items && typeof s.items === 'object') out.items = reduce(s.items as Record<string, unknown>);
  if (typeof s.additionalProperties === 'boolean') out.additionalProperties = s.additionalProperties;
  else if (s.additionalProperties && typeof s.additionalProperties === 'object')
    out.additionalProperties = reduce(s.additionalProperties as Record<string, unknown>);
  return out as Schema;
}

/** Reduce the CRDs (parsed YAML documents) of CRD_KINDS to a SchemaSet. */
export function extractSchemas(crds: unknown[]): SchemaSet {
  const out: SchemaSet = {};
  for (const c of crds as {
    kind?: string;
    spec?: {
      names?: { kind?: string };
      versions?: { name: string; served?: boolean; schema?: { openAPIV3Schema?: Record<string, unknown> } }[];
    };
  }[]) {
    const kind = c?.spec?.names?.kind;
    if (c?.kind !== 'CustomResourceDefinition' || !kind || !CRD_KINDS.includes(kind)) continue;
    const versions: Record<string, Schema | string> = {};
    const seen: [string, string][] = [];
    for (const v of c.spec?.versions ?? []) {
      const raw = v.schema?.openAPIV3Schema;
      if (!v.served || !raw) continue;
      const s = reduce(raw);
      delete s.properties?.status;
      // metadata is validated by the API server itself, not by the CRD schema
      if (s.properties?.metadata) s.properties.metadata = { type: 'object' };
      const text = JSON.stringify(s);
      const same = seen.find(([, t]) => t === text);
      versions[v.name] = same ? same[0] : s;
      if (!same) seen.push([v.name, text]);
    }
    out[kind] = versions;
  }
  return out;
}

/** The module's folder in the Go module cache (downloaded through the Go module proxy if missing). */
export function gatewayApiModuleDir(cwd: string): string {
  const json = execFileSync(
    'go',
    ['mod', 'download', '-json', `${GATEWAY_API_MODULE}@${GATEWAY_API_VERSION}`],
    {
      env: { ...process.env, GOFLAGS: '-mod=mod' },
      cwd,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const info = JSON.parse(json) as { Dir?: string; Error?: string };
  if (info.Error || !info.Dir)
    throw new Error(`go mod download ${GATEWAY_API_MODULE}: ${info.Error ?? 'no Dir'}`);
  return info.Dir;
}

/** Parse the standard-channel CRDs of the module folder. */
export function readStandardCrds(moduleDir: string): unknown[] {
  const dir = join(moduleDir, 'config', 'crd', 'standard');
  const docs: unknown[] = [];
  for (const f of readdirSync(dir).sort()) {
    if (!f.endsWith('.yaml')) continue;
    for (const d of parseAllDocuments(readFileSync(join(dir, f), 'utf8'))) docs.push(d.toJS());
  }
  return docs;
}

let loaded: SchemaSet | undefined;

/** The schemas of the pinned CRDs the build put under protos/gateway-api/standard (extracted once). */
export function crdSchemas(root = findRepoRoot()): SchemaSet {
  if (!loaded) {
    const dir = join(root, 'protos', 'gateway-api', 'standard');
    let files: string[];
    try {
      files = readdirSync(dir).filter((f) => f.endsWith('.yaml'));
    } catch {
      throw new Error(`${dir} is missing: run 'make protos' (it copies the Gateway API CRDs there)`);
    }
    const docs: unknown[] = [];
    for (const f of files.sort()) {
      for (const d of parseAllDocuments(readFileSync(join(dir, f), 'utf8'))) docs.push(d.toJS());
    }
    loaded = extractSchemas(docs);
  }
  return loaded;
}
