/**
 * `signalbox demo` (what `make run` starts): standalone signalbox on a folder of Gateway API
 * YAML (examples/), one local stock Envoy per Gateway (`--envoy local`), an echo server
 * (echo.ts) for every loopback endpoint the folder's EndpointSlices name, proved readiness.
 * Once every route has an outcome it prints a summary a person can act on: each Gateway
 * with its listener URLs, each route with its state (Ready, or not and why), and curl lines
 * to paste, made from the routes' own matches (host, path, headers, method, query) with the
 * backends each should reach. Afterwards every change of a route's state is printed, so an
 * edit of a file in the folder shows up as Proving, then Ready (or why not).
 */
import { readdirSync, readFileSync, watch } from 'node:fs';
import type { FSWatcher } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { startApp } from '../app.js';
import type { App } from '../app.js';
import type { Logger } from '../log.js';
import { startEcho } from './echo.js';
import type { EchoServer } from './echo.js';

export interface DemoOptions {
  configDir: string;
  log: Logger;
  /** the Envoy binary (path or name on PATH) */
  envoyPath?: string;
  debugAddress?: string;
  xdsAddress?: string;
  /** where the summary and route states go (default stdout) */
  out?: NodeJS.WritableStream;
  /** how long to wait for every route's outcome before the summary (ms, default 60 s) */
  summaryTimeoutMs?: number;
}

interface Cond {
  type: string;
  status: string;
  reason: string;
  message: string;
  observedGeneration?: number;
}
interface StatusEntry {
  kind: string;
  namespace?: string;
  name: string;
  generation?: number;
  status: {
    addresses?: { value: string }[];
    conditions?: Cond[];
    parents?: { parentRef: { name: string; namespace?: string }; conditions: Cond[] }[];
  } | null;
}

type Obj = Record<string, unknown> & {
  kind?: string;
  metadata?: { name?: string; namespace?: string; labels?: Record<string, string> };
  spec?: Record<string, unknown>;
};

/** Every YAML document of the folder's .yaml/.yml files (bad files are the provider's business). */
export function readFolder(dir: string): Obj[] {
  const out: Obj[] = [];
  for (const f of readdirSync(dir).sort()) {
    if (!/\.ya?ml$/.test(f)) continue;
    try {
      for (const d of parseAllDocuments(readFileSync(join(dir, f), 'utf8'))) {
        const v = d.toJS() as unknown;
        if (v && typeof v === 'object') out.push(v as Obj);
      }
    } catch {
      /* reported by the file provider */
    }
  }
  return out;
}

/** Loopback endpoints of the folder's EndpointSlices: name (the Service) → host:port. */
export function echoEndpoints(objs: Obj[]): { name: string; host: string; port: number }[] {
  const out = new Map<string, { name: string; host: string; port: number }>();
  for (const o of objs) {
    if (o.kind !== 'EndpointSlice') continue;
    const name = o.metadata?.labels?.['kubernetes.io/service-name'] ?? o.metadata?.name ?? 'echo';
    const ports = (o.ports as { port?: number }[] | undefined) ?? [];
    for (const e of (o.endpoints as { addresses?: string[] }[] | undefined) ?? [])
      for (const host of e.addresses ?? [])
        for (const p of ports)
          if (host.startsWith('127.') && p.port) out.set(`${host}:${p.port}`, { name, host, port: p.port });
  }
  return [...out.values()];
}

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

export interface CurlLine {
  route: string;
  /** the shell line to paste */
  line: string;
  /** the backends that may answer (weights in %) */
  expect: { backend: string; percent: number }[];
}

/**
 * Curl lines for the routes of the folder: one per rule (its first match), sent to the
 * address the Gateway got (status.addresses) and the port of its listener.
 */
export function curlLines(objs: Obj[], statuses: StatusEntry[]): CurlLine[] {
  const gwAddr = new Map<string, string>();
  for (const s of statuses)
    if (s.kind === 'Gateway' && s.status?.addresses?.[0])
      gwAddr.set(`${s.namespace ?? 'default'}/${s.name}`, s.status.addresses[0].value);
  const gws = new Map<string, Obj>();
  for (const o of objs)
    if (o.kind === 'Gateway') gws.set(`${o.metadata?.namespace ?? 'default'}/${o.metadata?.name}`, o);
  const out: CurlLine[] = [];
  for (const r of objs) {
    if (r.kind !== 'HTTPRoute') continue;
    const ns = r.metadata?.namespace ?? 'default';
    const spec = r.spec as {
      parentRefs?: { name: string; namespace?: string; sectionName?: string; port?: number }[];
      hostnames?: string[];
      rules?: {
        matches?: {
          path?: { type?: string; value?: string };
          headers?: { type?: string; name: string; value: string }[];
          queryParams?: { type?: string; name: string; value: string }[];
          method?: string;
        }[];
        backendRefs?: { name: string; weight?: number }[];
      }[];
    };
    const parent = spec.parentRefs?.[0];
    if (!parent) continue;
    const gwKey = `${parent.namespace ?? ns}/${parent.name}`;
    const addr = gwAddr.get(gwKey);
    const listeners = (
      (gws.get(gwKey)?.spec as { listeners?: { name: string; port: number; protocol: string }[] })
        ?.listeners ?? []
    ).filter((l) => l.protocol === 'HTTP');
    const listener = listeners.find((l) => !parent.sectionName || l.name === parent.sectionName);
    if (!addr || !listener) continue;
    const host = (spec.hostnames?.[0] ?? `demo.example.com`).replace(/^\*\./, 'demo.');
    for (const rule of spec.rules ?? []) {
      const m = rule.matches?.[0] ?? {};
      if (m.path?.type === 'RegularExpression') continue;
      if ((m.headers ?? []).some((h) => h.type === 'RegularExpression')) continue;
      const refs = rule.backendRefs ?? [];
      if (refs.length === 0) continue;
      const total = refs.reduce((a, b) => a + (b.weight ?? 1), 0);
      if (total === 0) continue;
      const expect = refs
        .filter((b) => (b.weight ?? 1) > 0)
        .map((b) => ({ backend: b.name, percent: Math.round((100 * (b.weight ?? 1)) / total) }));
      const query = (m.queryParams ?? []).map(
        (p) => `${encodeURIComponent(p.name)}=${encodeURIComponent(p.value)}`,
      );
      const url = `http://${addr}:${listener.port}${m.path?.value ?? '/'}${query.length ? `?${query.join('&')}` : ''}`;
      const args = [
        'curl -s',
        ...(m.method ? [`-X ${m.method}`] : []),
        `-H ${q(`Host: ${host}`)}`,
        ...(m.headers ?? []).map((h) => `-H ${q(`${h.name}: ${h.value}`)}`),
        q(url),
      ].join(' ');
      const line = expect.length > 1 ? `for i in $(seq 10); do ${args}; done` : args;
      out.push({ route: `${ns}/${r.metadata?.name}`, line, expect });
    }
  }
  return out;
}

function routeState(s: StatusEntry): { ready: boolean; text: string; generation?: number } {
  const conds = s.status?.parents?.[0]?.conditions ?? [];
  const accepted = conds.find((c) => c.type === 'Accepted');
  if (accepted && accepted.status !== 'True')
    return { ready: false, text: `not accepted: ${accepted.reason} — ${accepted.message}` };
  const ready = conds.find((c) => c.type === 'Ready');
  if (!ready) return { ready: false, text: 'waiting for status' };
  return {
    ready: ready.status === 'True',
    generation: ready.observedGeneration,
    text: `${ready.status === 'True' ? 'Ready' : `not Ready (${ready.reason})`} — ${ready.message}`,
  };
}

const terminal = (s: StatusEntry) => {
  const c = s.status?.parents?.[0]?.conditions;
  if (!c) return false;
  const accepted = c.find((x) => x.type === 'Accepted');
  if (accepted && accepted.status !== 'True') return true;
  const r = c.find((x) => x.type === 'Ready');
  return !!r && r.reason !== 'Proving' && (r.observedGeneration ?? 0) >= (s.generation ?? 0);
};

export interface Demo {
  app: App;
  echoes: EchoServer[];
  close(): Promise<void>;
}

export async function runDemo(o: DemoOptions): Promise<Demo> {
  const out = o.out ?? process.stdout;
  const print = (s = '') => out.write(`${s}\n`);
  const echoes: EchoServer[] = [];
  const started = new Set<string>();
  const startEchoes = async () => {
    for (const e of echoEndpoints(readFolder(o.configDir))) {
      const k = `${e.host}:${e.port}`;
      if (started.has(k)) continue;
      started.add(k);
      try {
        echoes.push(await startEcho(e.name, e.host, e.port));
      } catch (err) {
        o.log.warn({ err, backend: e.name, address: k }, 'demo: could not start the echo backend');
      }
    }
  };
  await startEchoes();
  const app = await startApp({
    log: o.log,
    configDir: o.configDir,
    xdsAddress: o.xdsAddress ?? '127.0.0.1:0',
    debugAddress: o.debugAddress ?? '127.0.0.1:0',
    readiness: 'proved',
    localEnvoys: { envoyPath: o.envoyPath },
  });
  const statuses = async (): Promise<StatusEntry[]> =>
    (await (await fetch(`http://127.0.0.1:${app.debugPort}/debug/status`)).json()) as StatusEntry[];
  const routes = (all: StatusEntry[]) => all.filter((s) => s.kind === 'HTTPRoute' || s.kind === 'GRPCRoute');

  // the summary, once every route has an outcome (or the wait is over)
  const deadline = Date.now() + (o.summaryTimeoutMs ?? 60_000);
  let all = await statuses();
  while (Date.now() < deadline && !(routes(all).length > 0 && routes(all).every(terminal))) {
    await new Promise<void>((r) => {
      const t = setTimeout(r, 200);
      app.readiness?.once('changed', () => {
        clearTimeout(t);
        r();
      });
    });
    all = await statuses();
  }
  const envoys = (app.launcher?.toJSON().envoys ?? []) as {
    gateway: string;
    address: string;
    pid: number | null;
  }[];
  const objs = readFolder(o.configDir);
  print('');
  print(`signalbox demo: ${o.configDir}, one stock Envoy per Gateway, proved readiness`);
  print('');
  print('Gateways');
  for (const g of all.filter((s) => s.kind === 'Gateway')) {
    const key = `${g.namespace ?? 'default'}/${g.name}`;
    const addr = g.status?.addresses?.[0]?.value;
    const spec = objs.find(
      (x) => x.kind === 'Gateway' && `${x.metadata?.namespace ?? 'default'}/${x.metadata?.name}` === key,
    )?.spec as { listeners?: { name: string; port: number; protocol: string }[] } | undefined;
    const urls = (spec?.listeners ?? []).map(
      (l) => `${l.protocol === 'HTTPS' ? 'https' : 'http'}://${addr ?? '?'}:${l.port} (${l.name})`,
    );
    const programmed = g.status?.conditions?.find((c) => c.type === 'Programmed');
    const pid = envoys.find((e) => e.gateway === key)?.pid;
    print(
      `  ${key}  ${urls.join(', ')}  ${programmed?.status === 'True' ? 'Programmed' : `not Programmed (${programmed?.reason ?? '?'})`}${pid ? `, Envoy pid ${pid}` : ''}`,
    );
  }
  print('');
  print('Routes');
  const last = new Map<string, string>();
  for (const r of routes(all)) {
    const st = routeState(r);
    last.set(`${r.namespace ?? 'default'}/${r.name}`, st.text);
    print(`  ${r.kind.toLowerCase()} ${r.namespace ?? 'default'}/${r.name}  ${st.text}`);
  }
  print('');
  print('Try (each line shows the backends that answer it):');
  for (const c of curlLines(objs, all))
    print(
      `  ${c.line}   # → ${c.expect.map((e) => (c.expect.length > 1 ? `${e.backend} ${e.percent} %` : e.backend)).join(', ')}`,
    );
  print('');
  print(`Edit a file in ${o.configDir} and the new route state shows here. Ctrl-C stops everything.`);
  print(`Debug endpoint: http://127.0.0.1:${app.debugPort}/debug/readiness`);

  // every later change of a route's state
  let busy = false;
  let again = false;
  const report = async () => {
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    try {
      do {
        again = false;
        const now = routes(await statuses());
        const seen = new Set<string>();
        for (const r of now) {
          const k = `${r.namespace ?? 'default'}/${r.name}`;
          seen.add(k);
          const st = routeState(r);
          if (last.get(k) === st.text) continue;
          last.set(k, st.text);
          print(
            `[${new Date().toISOString().slice(11, 19)}] ${r.kind.toLowerCase()} ${k} generation ${r.generation ?? '?'}: ${st.text}`,
          );
        }
        for (const k of [...last.keys()])
          if (!seen.has(k)) {
            last.delete(k);
            print(`[${new Date().toISOString().slice(11, 19)}] route ${k}: deleted`);
          }
      } while (again);
    } catch {
      /* closing */
    } finally {
      busy = false;
    }
  };
  const onChanged = () => void report();
  app.readiness?.on('changed', onChanged);
  let watcher: FSWatcher | undefined;
  try {
    // new loopback endpoints in an edited file get their echo server too
    watcher = watch(o.configDir, () => void startEchoes());
  } catch {
    /* no watching: the echo servers of the start stay */
  }
  return {
    app,
    echoes,
    async close() {
      watcher?.close();
      app.readiness?.off('changed', onChanged);
      await app.close();
      await Promise.all(echoes.map((e) => e.close()));
    },
  };
}
