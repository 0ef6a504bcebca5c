/**
 * Proto registry and codec. Loads the Envoy data-plane-api tree (assembled under
 * protos/vendor by scripts/protos.mjs) with protobufjs, and converts between the proto3
 * JSON form that Envoy's YAML uses (snake_case or camelCase keys, `@type` Anys, "5s"
 * durations, bare wrapper values, Struct as JSON) and wire bytes.
 *
 * Encoding is deterministic: map keys are sorted before encoding, and protobufjs writes
 * fields in field-number order, so equal content gives equal bytes (xds-rules 3).
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import protobuf from 'protobufjs';

// descriptor.proto is not among protobufjs's built-in common files; register it the way
// @grpc/proto-loader does, from the JSON protobufjs ships.
const descriptorJson = createRequire(import.meta.url)('protobufjs/google/protobuf/descriptor.json') as {
  nested: { google: { nested: { protobuf: { nested: protobuf.INamespace['nested'] } } } };
};
if (!protobuf.common.get('google/protobuf/descriptor.proto')) {
  protobuf.common(
    'descriptor',
    descriptorJson.nested.google.nested.protobuf.nested as Record<string, protobuf.AnyNestedObject>,
  );
}

const here = dirname(fileURLToPath(import.meta.url));

/** Locate the repository root (the folder holding protos/roots.txt) from src/ or dist/src/. */
export function findRepoRoot(): string {
  let dir = here;
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'protos', 'roots.txt'))) return dir;
    dir = resolve(dir, '..');
  }
  throw new Error('cannot find protos/roots.txt above ' + here);
}

export const TREES = ['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'] as const;

export class ProtoError extends Error {}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
export type JsonObject = { [k: string]: Json };
export type { Json };

const WRAPPERS = new Set([
  'google.protobuf.DoubleValue',
  'google.protobuf.FloatValue',
  'google.protobuf.Int64Value',
  'google.protobuf.UInt64Value',
  'google.protobuf.Int32Value',
  'google.protobuf.UInt32Value',
  'google.protobuf.BoolValue',
  'google.protobuf.StringValue',
  'google.protobuf.BytesValue',
]);
/** Well-known types whose JSON form is not an object of fields: inside an Any they sit under "value". */
const SPECIAL_JSON = new Set([
  ...WRAPPERS,
  'google.protobuf.Duration',
  'google.protobuf.Timestamp',
  'google.protobuf.Struct',
  'google.protobuf.Value',
  'google.protobuf.ListValue',
  'google.protobuf.FieldMask',
]);

const TYPE_PREFIX = 'type.googleapis.com/';

function parseDuration(s: string, path: string): { seconds: string; nanos: number } {
  const m = /^(-)?(\d+)(?:\.(\d{1,9}))?s$/.exec(s);
  if (!m) throw new ProtoError(`${path}: invalid duration ${JSON.stringify(s)} (want e.g. "1.5s")`);
  const neg = m[1] === '-';
  const secs = m[2];
  const nanos = m[3] ? Number(m[3].padEnd(9, '0')) : 0;
  return { seconds: (neg ? '-' : '') + secs, nanos: neg ? -nanos : nanos };
}

function formatDuration(seconds: number | string | undefined, nanos: number | undefined): string {
  const s = BigInt(String(seconds ?? 0));
  const n = nanos ?? 0;
  const neg = s < 0n || n < 0;
  const abs = (neg ? -s : s).toString();
  const frac = Math.abs(n);
  if (frac === 0) return `${neg ? '-' : ''}${abs}s`;
  let f = String(frac).padStart(9, '0');
  while (f.endsWith('000')) f = f.slice(0, -3);
  return `${neg ? '-' : ''}${abs}.${f}s`;
}

function camelToSnake(s: string): string {
  return s.replace(/[A-Z]/g, (c) => '_' + c.toLowerCase());
}

export class ProtoRegistry {
  readonly root: protobuf.Root;
  private readonly fieldIndex = new Map<protobuf.Type, Map<string, protobuf.Field>>();

  private constructor(root: protobuf.Root) {
    this.root = root;
  }

  /** Load every entry file of protos/roots.txt (and their imports). */
  static load(repoRoot = findRepoRoot()): ProtoRegistry {
    const vendor = join(repoRoot, 'protos', 'vendor');
    if (!existsSync(join(vendor, 'VERSION'))) {
      throw new ProtoError(`protos/vendor is missing: run 'npm run protos' (or 'make protos') first`);
    }
    const entries = readFileSync(join(repoRoot, 'protos', 'roots.txt'), 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    const root = new protobuf.Root();
    root.resolvePath = (_origin: string, target: string): string | null => {
      if (target.startsWith('google/protobuf/') && protobuf.common.get(target)) return target;
      for (const t of TREES) {
        const p = join(vendor, t, target);
        if (existsSync(p)) return p;
      }
      return target;
    };
    root.loadSync(entries, { keepCase: true });
    root.resolveAll();
    return new ProtoRegistry(root);
  }

  private readonly typeCache = new Map<string, protobuf.Type>();
  /** protobufjs computes fullName on every access (a walk up the parents): keep it */
  private readonly fullNames = new Map<protobuf.Type, string>();

  private fullNameOf(t: protobuf.Type): string {
    let n = this.fullNames.get(t);
    if (n === undefined) {
      n = t.fullName.slice(1);
      this.fullNames.set(t, n);
    }
    return n;
  }

  type(fullName: string): protobuf.Type {
    const cached = this.typeCache.get(fullName);
    if (cached) return cached;
    const name = fullName.startsWith(TYPE_PREFIX) ? fullName.slice(TYPE_PREFIX.length) : fullName;
    try {
      const t = this.root.lookupType(name);
      this.typeCache.set(fullName, t);
      return t;
    } catch {
      throw new ProtoError(`unknown proto type ${name}`);
    }
  }

  private fields(type: protobuf.Type): Map<string, protobuf.Field> {
    let idx = this.fieldIndex.get(type);
    if (!idx) {
      idx = new Map();
      for (const f of type.fieldsArray) {
        idx.set(f.name, f);
        idx.set(camelToSnake(f.name), f);
        // proto3 JSON name (lowerCamelCase of the proto name)
        idx.set(
          f.name.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase()),
          f,
        );
      }
      this.fieldIndex.set(type, idx);
    }
    return idx;
  }

  /** Encode a proto3-JSON value of the given type into wire bytes. Throws ProtoError with a path. */
  encode(typeName: string, json: unknown, path = typeName): Uint8Array {
    const type = this.type(typeName);
    const obj = this.normalize(type, json, path);
    return type.encode(type.fromObject(obj)).finish();
  }

  /** Decode wire bytes into proto3 JSON (snake_case keys, Any unpacked with @type). */
  decode(typeName: string, bytes: Uint8Array): JsonObject {
    const type = this.type(typeName);
    const msg = type.decode(bytes);
    const obj = type.toObject(msg, { longs: String, enums: String, bytes: String, defaults: false });
    return this.toJson(type, obj) as JsonObject;
  }

  // ---- proto3 JSON -> protobufjs plain object ----

  private normalize(type: protobuf.Type, json: unknown, path: string): Record<string, unknown> {
    const full = this.fullNameOf(type);
    if (full === 'google.protobuf.Any') return this.normalizeAny(json, path);
    if (SPECIAL_JSON.has(full)) return this.normalizeSpecial(full, json, path);
    if (json === null || typeof json !== 'object' || Array.isArray(json)) {
      throw new ProtoError(`${path}: expected an object for ${full}, got ${JSON.stringify(json)}`);
    }
    const out: Record<string, unknown> = {};
    const idx = this.fields(type);
    for (const [k, v] of Object.entries(json as Record<string, unknown>)) {
      const f = idx.get(k);
      if (!f) throw new ProtoError(`${path}: unknown field "${k}" in ${full}`);
      if (v === null || v === undefined) continue;
      out[f.name] = this.normalizeField(f, v, `${path}.${k}`);
    }
    return out;
  }

  private normalizeField(f: protobuf.Field, v: unknown, path: string): unknown {
    f.resolve();
    if (f.map) {
      if (typeof v !== 'object' || v === null || Array.isArray(v)) {
        throw new ProtoError(`${path}: expected a map object`);
      }
      const out: Record<string, unknown> = {};
      for (const k of Object.keys(v).sort()) {
        out[k] = this.normalizeScalarOrMessage(f, (v as Record<string, unknown>)[k], `${path}.${k}`);
      }
      return out;
    }
    if (f.repeated) {
      if (!Array.isArray(v)) throw new ProtoError(`${path}: expected a list`);
      return v.map((e, i) => this.normalizeScalarOrMessage(f, e, `${path}[${i}]`));
    }
    return this.normalizeScalarOrMessage(f, v, path);
  }

  private normalizeScalarOrMessage(f: protobuf.Field, v: unknown, path: string): unknown {
    const rt = f.resolvedType;
    if (rt instanceof protobuf.Type) return this.normalize(rt, v, path);
    if (rt instanceof protobuf.Enum) {
      if (typeof v === 'string') {
        if (!(v in rt.values)) throw new ProtoError(`${path}: unknown enum value ${v} for ${rt.name}`);
        return rt.values[v];
      }
      if (typeof v === 'number') return v;
      throw new ProtoError(`${path}: expected an enum name`);
    }
    switch (f.type) {
      case 'string':
        if (typeof v !== 'string') throw new ProtoError(`${path}: expected a string`);
        return v;
      case 'bool':
        if (typeof v !== 'boolean') throw new ProtoError(`${path}: expected true or false`);
        return v;
      case 'bytes':
        if (typeof v !== 'string') throw new ProtoError(`${path}: expected base64 bytes`);
        return v;
      case 'double':
      case 'float':
        if (typeof v !== 'number') throw new ProtoError(`${path}: expected a number`);
        return v;
      default: {
        // integer kinds; 64-bit may be strings
        if (typeof v === 'number') {
          if (!Number.isInteger(v)) throw new ProtoError(`${path}: expected an integer`);
          return v;
        }
        if (typeof v === 'string' && /^-?\d+$/.test(v)) return v;
        throw new ProtoError(`${path}: expected an integer`);
      }
    }
  }

  private normalizeAny(json: unknown, path: string): Record<string, unknown> {
    if (json === null || typeof json !== 'object' || Array.isArray(json)) {
      throw new ProtoError(`${path}: expected an Any object with "@type"`);
    }
    const { '@type': url, ...rest } = json as Record<string, unknown>;
    if (typeof url !== 'string') throw new ProtoError(`${path}: Any without "@type"`);
    const inner = this.type(url);
    const innerFull = this.fullNameOf(inner);
    const value = SPECIAL_JSON.has(innerFull) ? rest.value : rest;
    return { type_url: url, value: this.encode(innerFull, value, `${path}<${innerFull}>`) };
  }

  private normalizeSpecial(full: string, v: unknown, path: string): Record<string, unknown> {
    if (WRAPPERS.has(full)) {
      if (typeof v === 'object' && v !== null && 'value' in v) return v as Record<string, unknown>;
      return { value: v };
    }
    switch (full) {
      case 'google.protobuf.Duration':
        if (typeof v === 'string') return parseDuration(v, path);
        if (typeof v === 'object' && v !== null) return v as Record<string, unknown>;
        throw new ProtoError(`${path}: invalid duration`);
      case 'google.protobuf.Timestamp': {
        if (typeof v !== 'string') throw new ProtoError(`${path}: expected an RFC 3339 timestamp`);
        const ms = Date.parse(v);
        if (Number.isNaN(ms)) throw new ProtoError(`${path}: invalid timestamp ${v}`);
        return { seconds: String(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1e6 };
      }
      case 'google.protobuf.FieldMask':
        if (typeof v !== 'string') throw new ProtoError(`${path}: expected a field mask string`);
        return { paths: v.split(',').filter(Boolean).map(camelToSnake) };
      case 'google.protobuf.Struct':
        if (typeof v !== 'object' || v === null || Array.isArray(v)) {
          throw new ProtoError(`${path}: expected an object for Struct`);
        }
        return this.structFromJson(v as Record<string, unknown>);
      case 'google.protobuf.ListValue':
        if (!Array.isArray(v)) throw new ProtoError(`${path}: expected a list`);
        return { values: v.map((e) => this.valueFromJson(e)) };
      case 'google.protobuf.Value':
        return this.valueFromJson(v);
    }
    throw new ProtoError(`${path}: unsupported well-known type ${full}`);
  }

  private structFromJson(v: Record<string, unknown>): Record<string, unknown> {
    const fields: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) fields[k] = this.valueFromJson(v[k]);
    return { fields };
  }

  private valueFromJson(v: unknown): Record<string, unknown> {
    if (v === null || v === undefined) return { null_value: 'NULL_VALUE' };
    if (typeof v === 'number') return { number_value: v };
    if (typeof v === 'string') return { string_value: v };
    if (typeof v === 'boolean') return { bool_value: v };
    if (Array.isArray(v)) return { list_value: { values: v.map((e) => this.valueFromJson(e)) } };
    return { struct_value: this.structFromJson(v as Record<string, unknown>) };
  }

  // ---- protobufjs plain object -> proto3 JSON ----

  private toJson(type: protobuf.Type, obj: Record<string, unknown>): Json {
    const full = type.fullName.slice(1);
    if (full === 'google.protobuf.Any') {
      const url = String(obj.type_url ?? '');
      const bytes = Buffer.from(String(obj.value ?? ''), 'base64');
      let inner: protobuf.Type;
      try {
        inner = this.type(url);
      } catch {
        return { '@type': url, value: String(obj.value ?? '') };
      }
      const innerObj = inner.toObject(inner.decode(bytes), {
        longs: String,
        enums: String,
        bytes: String,
        defaults: false,
      });
      const j = this.toJson(inner, innerObj);
      const innerFull = inner.fullName.slice(1);
      if (SPECIAL_JSON.has(innerFull)) return { '@type': url, value: j };
      return { '@type': url, ...(j as JsonObject) };
    }
    if (WRAPPERS.has(full)) return (obj.value ?? defaultWrapper(full)) as Json;
    if (full === 'google.protobuf.Duration') {
      return formatDuration(obj.seconds as string | undefined, obj.nanos as number | undefined);
    }
    if (full === 'google.protobuf.Timestamp') {
      const ms = Number(obj.seconds ?? 0) * 1000 + Math.floor(Number(obj.nanos ?? 0) / 1e6);
      return new Date(ms).toISOString();
    }
    if (full === 'google.protobuf.Struct') return this.structToJson(obj);
    if (full === 'google.protobuf.Value') return this.valueToJson(obj);
    if (full === 'google.protobuf.ListValue') {
      return ((obj.values as Record<string, unknown>[] | undefined) ?? []).map((e) => this.valueToJson(e));
    }
    if (full === 'google.protobuf.FieldMask') return ((obj.paths as string[] | undefined) ?? []).join(',');
    const out: JsonObject = {};
    for (const f of type.fieldsArray) {
      const v = obj[f.name];
      if (v === undefined || v === null) continue;
      f.resolve();
      const conv = (e: unknown): Json =>
        f.resolvedType instanceof protobuf.Type
          ? this.toJson(f.resolvedType, e as Record<string, unknown>)
          : (e as Json);
      if (f.map) {
        const m: JsonObject = {};
        for (const k of Object.keys(v as object).sort()) m[k] = conv((v as Record<string, unknown>)[k]);
        out[f.name] = m;
      } else if (f.repeated) {
        out[f.name] = (v as unknown[]).map(conv);
      } else {
        out[f.name] = conv(v);
      }
    }
    return out;
  }

  private structToJson(obj: Record<string, unknown>): JsonObject {
    const out: JsonObject = {};
    const fields = (obj.fields as Record<string, Record<string, unknown>> | undefined) ?? {};
    for (const k of Object.keys(fields).sort()) out[k] = this.valueToJson(fields[k]);
    return out;
  }

  private valueToJson(v: Record<string, unknown>): Json {
    if ('number_value' in v) return v.number_value as number;
    if ('string_value' in v) return v.string_value as string;
    if ('bool_value' in v) return v.bool_value as boolean;
    if ('struct_value' in v) return this.structToJson(v.struct_value as Record<string, unknown>);
    if ('list_value' in v) {
      const lv = v.list_value as { values?: Record<string, unknown>[] };
      return (lv.values ?? []).map((e) => this.valueToJson(e));
    }
    return null;
  }
}

function defaultWrapper(full: string): Json {
  if (full === 'google.protobuf.BoolValue') return false;
  if (full === 'google.protobuf.StringValue' || full === 'google.protobuf.BytesValue') return '';
  if (full === 'google.protobuf.Int64Value' || full === 'google.protobuf.UInt64Value') return '0';
  return 0;
}

let shared: ProtoRegistry | undefined;
/** The process-wide registry (loading the Envoy tree takes a second; do it once). */
export function protoRegistry(): ProtoRegistry {
  shared ??= ProtoRegistry.load();
  return shared;
}
