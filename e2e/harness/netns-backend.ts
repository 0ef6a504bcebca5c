/**
 * HTTP backends in a network namespace of their own (netns.ts), for tests against the real
 * API server (it refuses loopback EndpointSlice addresses). The namespace gets
 * `<prefix>.2/30` of a 198.51.100.0/24 block (TEST-NET-2), the host side `<prefix>.1`; each
 * server answers with its name in `x-backend` and the request path as the body.
 */
import { createNetns } from './netns.js';

export interface NetnsBackend {
  /** the backends' address, inside the namespace */
  ip: string;
  stop(): void;
}

/**
 * @param tag short and unique per test file (names of the namespace and the veth pair)
 * @param block fourth octet of the /30 block (0, 4, 8, ...; see netns.ts for those in use)
 * @param servers port → name of each backend
 */
export function startNetnsBackends(tag: string, block: number, servers: [number, string][]): NetnsBackend {
  const ns = createNetns(tag, block);
  const script = `for (const [p, n] of ${JSON.stringify(servers)}) require('http').createServer((q,s)=>{s.writeHead(200,{'x-backend':n,'connection':'close'});s.end(q.url)}).listen(p,'${ns.ip}')`;
  const proc = ns.spawn(process.execPath, ['-e', script], { stdio: 'ignore' });
  return {
    ip: ns.ip,
    stop() {
      proc.kill();
      ns.remove();
    },
  };
}
