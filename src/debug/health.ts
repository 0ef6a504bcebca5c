/**
 * Probes (and metrics) on their own port: /healthz, /readyz and /metrics only — no
 * configuration, no node data — so a cluster's kubelet and Prometheus can reach them while
 * the debug endpoint (snapshots, ledgers) stays on 127.0.0.1.
 */
import { closeHttp, listenHttp } from './listen.js';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';

export class HealthServer {
  readonly server: Server;
  port = 0;

  constructor(src: { metrics: Metrics; log: Logger; ready: () => boolean }) {
    this.server = createServer((req, res) => {
      const p = new URL(req.url ?? '/', 'http://localhost').pathname.replace(/\/+$/, '') || '/';
      if (req.method !== 'GET') {
        res.writeHead(405, { allow: 'GET' });
        res.end('read-only endpoint\n');
      } else if (p === '/healthz') {
        res.writeHead(200);
        res.end('ok\n');
      } else if (p === '/readyz') {
        const ok = src.ready();
        res.writeHead(ok ? 200 : 503);
        res.end(ok ? 'ok\n' : 'not ready\n');
      } else if (p === '/metrics') {
        src.metrics.registry.metrics().then(
          (body) => {
            res.writeHead(200, { 'content-type': src.metrics.registry.contentType });
            res.end(body);
          },
          (err: unknown) => {
            src.log.error({ err }, 'metrics failed');
            res.writeHead(500);
            res.end('internal error\n');
          },
        );
      } else {
        res.writeHead(404);
        res.end('not found: /healthz, /readyz, /metrics\n');
      }
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
