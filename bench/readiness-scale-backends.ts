/**
 * The backends of bench/readiness-scale.ts: many small HTTP servers in one process, driven
 * over IPC (forked on the host, or run inside a network namespace with `ip netns exec` for
 * Kubernetes mode, whose API server refuses loopback EndpointSlice addresses). Each server
 * answers every request 200 with its name in `x-backend` and `connection: close`.
 *
 *   start {host, names} → started {ports}     (a free port each, in the order of names)
 *   drain {names}       → drained             (they stop accepting; requests in flight finish)
 *   stop                → exits
 */
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { FromBackends, ToBackends } from './readiness-scale.js';

const servers = new Map<string, Server>();
const send = (m: FromBackends) => process.send?.(m);

function listen(host: string, name: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer((req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'text/plain', 'x-backend': name, connection: 'close' });
      res.end(name);
    });
    srv.once('error', reject);
    srv.listen({ port: 0, host, backlog: 1024 }, () => {
      const a = srv.address();
      servers.set(name, srv);
      resolve(typeof a === 'object' && a ? a.port : 0);
    });
  });
}

process.on('message', (m: ToBackends) => {
  void (async () => {
    try {
      if (m.cmd === 'start') {
        const ports: number[] = [];
        for (const n of m.names) ports.push(await listen(m.host, n));
        send({ id: m.id, ev: 'started', ports });
      } else if (m.cmd === 'drain') {
        for (const n of m.names) {
          servers.get(n)?.close();
          servers.delete(n);
        }
        send({ id: m.id, ev: 'drained' });
      } else if (m.cmd === 'stop') {
        process.exit(0);
      }
    } catch (err) {
      send({ id: m.id, ev: 'error', message: String(err) });
    }
  })();
});
process.on('disconnect', () => process.exit(0));
send({ id: 0, ev: 'up' });
