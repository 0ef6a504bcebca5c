/** Listening and closing of the HTTP servers of src/debug (debug endpoint, health port). */
import type { Server } from 'node:http';

/** Listen on host:port (port 0 picks one); resolves to the bound port. */
export function listenHttp(server: Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      const a = server.address();
      resolve(typeof a === 'object' && a ? a.port : port);
    });
  });
}

/** Close, dropping kept-alive connections. */
export function closeHttp(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });
}
