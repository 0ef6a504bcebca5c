/**
 * What the API server does to a Gateway API object before storing it, from the CRD
 * schemas (crdSchemas(): the pinned CRDs the build copied): prune nulls, apply `default:` values (the
 * structural-schema defaulting algorithm: a missing property with a default gets it, then
 * defaulting goes on inside it) and validate structurally (types, required, enum, bounds,
 * patterns; unknown fields are errors, as with kubectl's default strict field validation).
 * CEL rules (x-kubernetes-validations) are not evaluated. Core kinds get the few defaults
 * of their built-in types that the translator reads.
 */
import { crdSchemas } from './crdschema.js';
import type { Schema } from './crdschema.js';

export const GATEWAY_GROUP = 'gateway.networking.k8s.io';

type J = Record<string, unknown>;

const isObj = (v: unknown): v is J => !!v && typeof v === 'object' && !Array.isArray(v);

/** The schema of `<group>/<version>` `kind`, or undefined when the CRDs do not serve it. */
export function schemaFor(apiVersion: string, kind: string): Schema | undefined {
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion];
  if (group !== GATEWAY_GROUP) return undefined;
  const versions = crdSchemas()[kind];
  let s = versions?.[version];
  if (typeof s === 'string') s = versions[s];
  return typeof s === 'object' ? s : undefined;
}

/** Apply the schema's defaults to `x` in place (the API server's algorithm, after pruning nulls). */
export function applyDefaults(x: unknown, s: Schema | undefined): void {
  if (!s) return;
  if (Array.isArray(x)) {
    for (let i = 0; i < x.length; i++) {
      if (x[i] === null && s.items?.default !== undefined) x[i] = structuredClone(s.items.default);
      applyDefaults(x[i], s.items);
    }
    return;
  }
  if (!isObj(x)) return;
  for (const [k, ps] of Object.entries(s.properties ?? {})) {
    if (x[k] === null && !ps.nullable) delete x[k];
    if (!(k in x) && ps.default !== undefined) x[k] = structuredClone(ps.default);
  }
  for (const [k, v] of Object.entries(x)) {
    const ps = s.properties?.[k] ?? (isObj(s.additionalProperties) ? s.additionalProperties : undefined);
    applyDefaults(v, ps);
  }
}

const patternCache = new Map<string, RegExp | null>();
function compile(p: string): RegExp | null {
  let r = patternCache.get(p);
  if (r === undefined) {
    try {
      r = new RegExp(p, 'u');
    } catch {
      try {
        r = new RegExp(p);
      } catch {
        r = null; // a Go (RE2) pattern JavaScript cannot read: not checked
      }
    }
    patternCache.set(p, r);
  }
  return r;
}

function typeOk(v: unknown, s: Schema): boolean {
  if (s['x-kubernetes-int-or-string']) return Number.isInteger(v) || typeof v === 'string';
  switch (s.type) {
    case 'object':
      return isObj(v);
    case 'array':
      return Array.isArray(v);
    case 'string':
      return typeof v === 'string';
    case 'integer':
      return Number.isInteger(v);
    case 'number':
      return typeof v === 'number';
    case 'boolean':
      return typeof v === 'boolean';
    default:
      return true;
  }
}

/** Structural validation; returns errors as the API server words them (`path: message`). */
export function validate(x: unknown, s: Schema | undefined, path = '', out: string[] = []): string[] {
  if (!s) return out;
  const at = path || '<root>';
  if (x === null) {
    if (!s.nullable) out.push(`${at}: Invalid value: "null": must not be null`);
    return out;
  }
  if (!typeOk(x, s)) {
    out.push(`${at}: Invalid value: ${JSON.stringify(x)}: must be of type ${s.type ?? 'int-or-string'}`);
    return out;
  }
  if (s.enum && !s.enum.some((e) => e === x))
    out.push(
      `${at}: Unsupported value: ${JSON.stringify(x)}: supported values: ${s.enum.map((e) => JSON.stringify(e)).join(', ')}`,
    );
  if (typeof x === 'string') {
    const n = [...x].length;
    if (s.maxLength !== undefined && n > s.maxLength)
      out.push(`${at}: Too long: may not be more than ${s.maxLength} bytes`);
    if (s.minLength !== undefined && n < s.minLength)
      out.push(`${at}: Invalid value: ${JSON.stringify(x)}: should be at least ${s.minLength} chars long`);
    if (s.pattern) {
      const re = compile(s.pattern);
      if (re && !re.test(x))
        out.push(`${at}: Invalid value: ${JSON.stringify(x)}: should match '${s.pattern}'`);
    }
  }
  if (typeof x === 'number') {
    if (s.maximum !== undefined && x > s.maximum)
      out.push(`${at}: Invalid value: ${x}: should be less than or equal to ${s.maximum}`);
    if (s.minimum !== undefined && x < s.minimum)
      out.push(`${at}: Invalid value: ${x}: should be greater than or equal to ${s.minimum}`);
  }
  if (Array.isArray(x)) {
    if (s.maxItems !== undefined && x.length > s.maxItems)
      out.push(`${at}: Too many: ${x.length}: must have at most ${s.maxItems} items`);
    if (s.minItems !== undefined && x.length < s.minItems)
      out.push(`${at}: Invalid value: ${x.length}: should have at least ${s.minItems} items`);
    x.forEach((v, i) => validate(v, s.items, `${path}[${i}]`, out));
  }
  if (isObj(x)) {
    for (const r of s.required ?? [])
      if (!(r in x)) out.push(`${path ? `${path}.` : ''}${r}: Required value`);
    for (const [k, v] of Object.entries(x)) {
      const sub = `${path ? `${path}.` : ''}${k}`;
      const ps = s.properties?.[k];
      if (ps) validate(v, ps, sub, out);
      else if (isObj(s.additionalProperties)) validate(v, s.additionalProperties, sub, out);
      else if (
        s.additionalProperties !== true &&
        !s['x-kubernetes-preserve-unknown-fields'] &&
        (s.properties || s.additionalProperties === false)
      )
        out.push(`${sub}: unknown field "${k}"`);
    }
  }
  return out;
}

const NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** Built-in defaults of the core kinds, for the fields the translator reads. */
function coreDefaults(o: J): void {
  const spec = isObj(o.spec) ? o.spec : undefined;
  switch (o.kind) {
    case 'Service':
      if (!spec) o.spec = {};
      {
        const sp = o.spec as J;
        sp.type ??= 'ClusterIP';
        if (Array.isArray(sp.ports))
          for (const p of sp.ports) {
            if (!isObj(p)) continue;
            p.protocol ??= 'TCP';
            if (p.targetPort === undefined && p.port !== undefined) p.targetPort = p.port;
          }
      }
      break;
    case 'EndpointSlice':
      if (Array.isArray(o.ports)) for (const p of o.ports) if (isObj(p)) p.protocol ??= 'TCP';
      break;
    case 'Secret':
      o.type ??= 'Opaque';
      break;
  }
}

const CORE: Record<string, string> = {
  Service: 'v1',
  Secret: 'v1',
  Namespace: 'v1',
  EndpointSlice: 'discovery.k8s.io/v1',
};

/**
 * Default and validate one object in place as the API server would on create/update.
 * Returns the errors; an object with errors must not be stored.
 */
export function admit(o: J): string[] {
  const kind = typeof o.kind === 'string' ? o.kind : '';
  const apiVersion = typeof o.apiVersion === 'string' ? o.apiVersion : '';
  const md = isObj(o.metadata) ? o.metadata : undefined;
  const errs: string[] = [];
  if (!kind) errs.push('kind: Required value');
  if (!apiVersion) errs.push('apiVersion: Required value');
  if (!md) return [...errs, 'metadata: Required value'];
  const name = md.name;
  if (typeof name !== 'string' || !name) errs.push('metadata.name: Required value');
  else if (name.length > 253 || !NAME.test(name))
    errs.push(
      `metadata.name: Invalid value: ${JSON.stringify(name)}: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.'`,
    );
  if (md.namespace !== undefined && (typeof md.namespace !== 'string' || !LABEL.test(md.namespace)))
    errs.push(`metadata.namespace: Invalid value: ${JSON.stringify(md.namespace)}`);
  if (errs.length) return errs;
  if (CORE[kind] !== undefined) {
    if (CORE[kind] !== apiVersion) return [`no matches for kind "${kind}" in version "${apiVersion}"`];
    coreDefaults(o);
    return [];
  }
  const s = schemaFor(apiVersion, kind);
  if (!s) return [`no matches for kind "${kind}" in version "${apiVersion}"`];
  const { metadata, status: _status, ...rest } = o;
  applyDefaults(rest, s);
  const out = validate(rest, s);
  for (const k of Object.keys(rest)) o[k] = rest[k];
  o.metadata = metadata;
  return out;
}
