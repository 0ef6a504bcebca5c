/** Shared by the translator tests: load cases, render goldens, ask Envoy to validate. */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments, stringify } from 'yaml';
import { translate } from '../../src/gatewayapi/translator.js';
import type { TranslateResult } from '../../src/gatewayapi/translator.js';
import type { Json, JsonObject, ProtoRegistry } from '../../src/xds/proto.js';
import { Snapshot } from '../../src/xds/cache/snapshot.js';
import { SHORT } from '../../src/xds/resource.js';
import { gatewayJson, gatewayResources } from '../../src/xds/translate/index.js';
import type { GatewayJson } from '../../src/xds/translate/index.js';
import { staticBootstrap } from '../../src/xds/translate/static.js';

export const HERE = dirname(fileURLToPath(import.meta.url));
export const TESTDATA = join(HERE, 'testdata');
export const ENVOY = resolve(process.env.ENVOY_BIN ?? '.tools/bin/envoy');
export const NOW = '2026-01-01T00:00:00Z';

const certCache = new Map<string, string>();
function certB64(file: string): string {
  let v = certCache.get(file);
  if (!v) {
    v = readFileSync(join(TESTDATA, 'certs', file)).toString('base64');
    certCache.set(file, v);
  }
  return v;
}

/** Substitute `__CERT_<n>__` / `__KEY_<n>__` with the base64 of test certificates. */
export function withCerts(text: string): string {
  return text
    .replace(/__CERT_([a-z]+)__/g, (_m, n: string) => certB64(`${n}.crt`))
    .replace(/__KEY_([a-z]+)__/g, (_m, n: string) => certB64(`${n}.key`));
}

export function loadObjects(file: string): unknown[] {
  const text = withCerts(readFileSync(file, 'utf8'));
  return parseAllDocuments(text)
    .map((d) => d.toJS() as unknown)
    .filter((d) => d !== null && d !== undefined);
}

export interface Translated {
  result: TranslateResult;
  json: GatewayJson[];
  snapshots: Map<string, Snapshot>;
}

export function run(reg: ProtoRegistry, objects: unknown[]): Translated {
  const result = translate(objects, { now: NOW, addresses: ['127.0.0.1'] });
  const json = result.ir.gateways.map((g) => gatewayJson(g, { bindAddress: '127.0.0.1' }));
  const snapshots = new Map(json.map((j) => [j.group, new Snapshot(gatewayResources(reg, j))]));
  return { result, json, snapshots };
}

function redactPem(j: Json): Json {
  if (Array.isArray(j)) return j.map(redactPem);
  if (j && typeof j === 'object') {
    const o: JsonObject = {};
    for (const [k, v] of Object.entries(j)) {
      o[k] =
        k === 'inline_string' && typeof v === 'string'
          ? `<pem sha256:${createHash('sha256').update(v).digest('hex').slice(0, 16)}>`
          : redactPem(v);
    }
    return o;
  }
  return j;
}

/** The golden text: every object's status, set-aside objects, and per Gateway its Envoy resources and versions. */
export function golden(t: Translated): string {
  const xds: Record<string, unknown> = {};
  for (const j of t.json) {
    const snap = t.snapshots.get(j.group)!;
    xds[j.group] = {
      versions: snap.allVersions(),
      listeners: j.listeners,
      routes: j.routes,
      clusters: j.clusters,
      endpoints: j.endpoints,
      secrets: redactPem(j.secrets),
    };
  }
  return stringify(
    { statuses: t.result.statuses, rejected: t.result.rejected, xds },
    { lineWidth: 0, aliasDuplicateObjects: false },
  );
}

export function envoyAvailable(): boolean {
  return existsSync(ENVOY);
}

/** Run `envoy --mode validate` on one bootstrap. */
export function envoyValidate(bootstrap: JsonObject): { ok: boolean; output: string } {
  const dir = mkdtempSync(join(tmpdir(), 'signalbox-validate-'));
  const file = join(dir, 'bootstrap.json');
  writeFileSync(file, JSON.stringify(bootstrap));
  const r = spawnSync(ENVOY, ['--mode', 'validate', '-c', file, '--disable-hot-restart', '-l', 'error'], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  rmSync(dir, { recursive: true, force: true });
  const output = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  return { ok: r.status === 0, output };
}

/**
 * Make many cases' outputs fit one bootstrap: prefix every cluster and secret name (and
 * their references) with a case tag and move each case's listeners to its own ports.
 */
export function isolate(j: GatewayJson, tag: string, portBase: number): GatewayJson {
  const ports = new Map<number, number>();
  const port = (p: number) => {
    if (!ports.has(p)) ports.set(p, portBase + ports.size);
    return ports.get(p)!;
  };
  const ren = (n: unknown) => (typeof n === 'string' ? `${tag}/${n}` : n);
  const fix = (v: Json, parentKey = ''): Json => {
    if (Array.isArray(v)) return v.map((e) => fix(e, parentKey));
    if (!v || typeof v !== 'object') return v;
    const o: JsonObject = {};
    for (const [k, x] of Object.entries(v)) {
      if (k === 'cluster' && typeof x === 'string') o[k] = ren(x) as string;
      else if (
        k === 'name' &&
        (parentKey === 'clusters' || parentKey === 'tls_certificate_sds_secret_configs') &&
        typeof x === 'string'
      )
        o[k] = ren(x) as string;
      else if (k === 'port_value' && typeof x === 'number' && parentKey === 'socket_address') o[k] = port(x);
      else o[k] = fix(x, k);
    }
    return o;
  };
  const listeners = j.listeners.map((l) => {
    const l2 = fix(l) as JsonObject;
    return { ...l2, name: `${tag}/${String(l.name)}` };
  });
  return {
    group: `${tag}/${j.group}`,
    listeners,
    routes: j.routes.map((r) => fix(r) as JsonObject),
    clusters: j.clusters.map((c) => ({ ...c, name: ren(c.name) as string })),
    endpoints: j.endpoints.map((e) => ({ ...e, cluster_name: ren(e.cluster_name) as string })),
    secrets: j.secrets.map((s) => ({ ...s, name: ren(s.name) as string })),
  };
}

/** Validate many cases in one Envoy run; on rejection, find the cases Envoy rejects. */
export function validateCases(
  cases: { name: string; json: GatewayJson[] }[],
): { name: string; output: string }[] {
  const all = cases.flatMap((c, i) =>
    c.json.map((g, k) => isolate(g, `c${i}g${k}`, 20000 + i * 50 + k * 10)),
  );
  const r = envoyValidate(staticBootstrap(all));
  if (r.ok) return [];
  if (cases.length === 1) return [{ name: cases[0].name, output: r.output.slice(-3000) }];
  const mid = Math.ceil(cases.length / 2);
  return [...validateCases(cases.slice(0, mid)), ...validateCases(cases.slice(mid))];
}

export { SHORT };
