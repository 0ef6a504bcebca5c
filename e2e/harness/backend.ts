/** Local HTTP backends on 127.0.0.x that say who they are. */
import { createServer, request } from 'node:http';
import type { Server } from 'node:http';

export interface Backend {
  name: string;
  host: string;
  port: number;
  hits: number;
  /** stop now: open connections are cut (a request in flight fails) */
  close(): Promise<void>;
  /** stop accepting connections; resolves once the requests in flight are answered */
  drain(): Promise<void>;
}

/** `delayMs`: every answer waits that long (a slow backend: its probes take that long too). */
export function startBackend(
  name: string,
  host = '127.0.0.2',
  port = 0,
  o: { delayMs?: number } = {},
): Promise<Backend> {
  return new Promise((resolve, reject) => {
    const b: Backend = {
      name,
      host,
      port: 0,
      hits: 0,
      close: () => Promise.resolve(),
      drain: () => Promise.resolve(),
    };
    const srv: Server = createServer((req, res) => {
      b.hits++;
      const body = JSON.stringify({ backend: name, path: req.url, method: req.method, headers: req.headers });
      const answer = () => {
        res.writeHead(200, { 'content-type': 'application/json', 'x-backend': name, connection: 'close' });
        res.end(body);
      };
      if (o.delayMs) setTimeout(answer, o.delayMs);
      else answer();
    });
    srv.keepAliveTimeout = 1000;
    srv.once('error', reject);
    srv.listen(port, host, () => {
      const a = srv.address();
      b.port = typeof a === 'object' && a ? a.port : port;
      b.close = () =>
        new Promise((r) => {
          srv.closeAllConnections();
          srv.close(() => r());
        });
      b.drain = () => new Promise((r) => srv.close(() => r()));
      resolve(b);
    });
  });
}

/** One request on a new connection; resolves to status and the backend name (x-backend). */
export async function get(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; backend: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false, headers: { connection: 'close', ...headers } }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, backend: String(res.headers['x-backend'] ?? ''), body }),
      );
      res.on('error', reject);
    });
    req.setTimeout(5000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}
