/**
 * The demo's example backends: small HTTP echo servers. Each answers every request with one
 * line naming itself and what it received (`echo-v1: GET app.example.com/path`), and the
 * header `x-backend: <name>`, so a curl shows at once which backend a route sent it to.
 */
import { createServer } from 'node:http';
import type { Server } from 'node:http';

export interface EchoServer {
  name: string;
  host: string;
  port: number;
  close(): Promise<void>;
}

export function startEcho(name: string, host: string, port: number): Promise<EchoServer> {
  const server: Server = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'x-backend': name });
    res.end(`${name}: ${req.method ?? 'GET'} ${req.headers.host ?? ''}${req.url ?? '/'}\n`);
  });
  server.keepAliveTimeout = 1000;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve({
        name,
        host,
        port,
        close: () =>
          new Promise<void>((r) => {
            server.closeAllConnections();
            server.close(() => r());
          }),
      });
    });
  });
}
