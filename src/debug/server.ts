/** Read-only debug endpoint: nodes and their ledgers, snapshots, health, metrics. */
import { closeHttp, listenHttp } from './listen.js';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { SnapshotCache } from '../xds/cache/cache.js';
import type { Json, JsonObject } from '../xds/proto.js';
import { ALL_TYPES, SHORT } from '../xds/resource.js';

export interface DebugSources {
  cache: SnapshotCache;
  metrics: Metrics;
  log: Logger;
  /** readiness: true once the provider has loaded its initial state */
  ready: () => boolean;
  /** extra JSON documents served at /debug/<name> (status, provider errors, ...) */
  extra?: Record<string, () => unknown>;
}

const SECRET_KEYS = new Set(['private_key', 'privateKey', 'password', 'pkcs12', 'private_key_provider']);

/** Replace private key material with a marker, recursively. */
export function redact(j: Json): Json {
  if (Array.isArray(j)) return j.map(redact);
  if (j && typeof j === 'object') {
    const out: JsonObject = {};
    for (const [k, v] of Object.entries(j)) out[k] = SECRET_KEYS.has(k) ? '[redacted]' : redact(v);
    return out;
  }
  return j;
}

/**
 * One group's snapshot (`node`: the one that node of the group is served, its own if it has
 * one): per type each resource's name, content hash, the names it references (`deps`: what
 * Envoy subscribes to because of it) and the resource itself.
 */
export function snapshotJson(cache: SnapshotCache, group: string, node?: string): unknown {
  const snap = node ? cache.snapshotFor({ id: node, cluster: group }) : cache.getGroup(group);
  if (!snap) return undefined;
  const out: Record<string, unknown> = {
    group,
    ...(node ? { node } : {}),
    versions: snap.allVersions(),
    resources: {},
  };
  const res = out.resources as Record<string, unknown>;
  for (const t of ALL_TYPES) {
    res[SHORT[t]] = [...snap.get(t).values()].map((r) => {
      const deps = Object.fromEntries(Object.entries(r.deps).filter(([, v]) => v.length > 0));
      return {
        name: r.name,
        version: r.hash,
        ...(Object.keys(deps).length > 0 ? { deps } : {}),
        resource: redact({ '@type': t, ...r.json }),
      };
    });
  }
  return out;
}

export class DebugServer {
  readonly server: Server;
  port = 0;

  constructor(private readonly src: DebugSources) {
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        src.log.error({ err }, 'debug request failed');
        if (!res.headersSent) res.writeHead(500);
        res.end('internal error\n');
      });
    });
  }

  private json(res: ServerResponse, code: number, body: unknown): void {
    res.writeHead(code, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body, null, 2) + '\n');
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const p = url.pathname.replace(/\/+$/, '') || '/';
    if (req.method !== 'GET') {
      res.writeHead(405, { allow: 'GET' });
      res.end('read-only endpoint\n');
      return;
    }
    if (p === '/healthz') {
      res.writeHead(200);
      res.end('ok\n');
      return;
    }
    if (p === '/readyz') {
      const ok = this.src.ready();
      res.writeHead(ok ? 200 : 503);
      res.end(ok ? 'ok\n' : 'not ready\n');
      return;
    }
    if (p === '/metrics') {
      res.writeHead(200, { 'content-type': this.src.metrics.registry.contentType });
      res.end(await this.src.metrics.registry.metrics());
      return;
    }
    if (p === '/debug/nodes') return this.json(res, 200, this.src.cache.ledger.toJSON());
    if (p === '/debug/snapshots') {
      return this.json(
        res,
        200,
        this.src.cache.groups().map(([group, s]) => ({
          group,
          versions: s.allVersions(),
          nodes: this.src.cache.nodesOf(group),
        })),
      );
    }
    const m = /^\/debug\/snapshots\/([^/]+)\/([^/]+)$/.exec(p);
    if (m) {
      const body = snapshotJson(
        this.src.cache,
        `${decodeURIComponent(m[1])}/${decodeURIComponent(m[2])}`,
        url.searchParams.get('node') ?? undefined,
      );
      if (body === undefined) return this.json(res, 404, { error: 'no snapshot for that group' });
      return this.json(res, 200, body);
    }
    const extra = /^\/debug\/([a-z-]+)$/.exec(p);
    if (extra && this.src.extra?.[extra[1]]) return this.json(res, 200, this.src.extra[extra[1]]());
    this.json(res, 404, {
      error: 'not found',
      paths: [
        '/debug/nodes',
        '/debug/snapshots',
        '/debug/snapshots/<namespace>/<gateway>[?node=<id>]',
        ...Object.keys(this.src.extra ?? {}).map((k) => `/debug/${k}`),
        '/healthz',
        '/readyz',
        '/metrics',
      ],
    });
  }

  async listen(host: string, port: number): Promise<number> {
    this.port = await listenHttp(this.server, host, port);
    return this.port;
  }

  close(): Promise<void> {
    return closeHttp(this.server);
  }
}
