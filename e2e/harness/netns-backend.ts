/**
 * HTTP backends in a network namespace of their own, for tests against the real API server
 * (it refuses loopback EndpointSlice addresses). The namespace gets `<prefix>.2/30` of a
 * 198.51.100.0/24 block (TEST-NET-2), the host side `<prefix>.1`; each server answers with its
 * name in `x-backend` and the request path as the body.
 */
import { execFileSync, spawn } from 'node:child_process';

export interface NetnsBackend {
  /** the backends' address, inside the namespace */
  ip: string;
  stop(): void;
}

/**
 * @param tag short and unique per test file (names of the namespace and the veth pair)
 * @param block fourth octet of the /30 block (0, 4, 8, ...)
 * @param servers port → name of each backend
 */
export function startNetnsBackends(tag: string, block: number, servers: [number, string][]): NetnsBackend {
  const ns = `${tag}${process.pid}`;
  const hostIf = `${tag}${process.pid}a`.slice(0, 15);
  const nsIf = `${tag}${process.pid}b`.slice(0, 15);
  const hostIp = `198.51.100.${block + 1}`;
  const ip = `198.51.100.${block + 2}`;
  const run = (...a: string[]) => execFileSync('ip', a, { stdio: 'ignore' });
  run('netns', 'add', ns);
  run('link', 'add', hostIf, 'type', 'veth', 'peer', 'name', nsIf);
  run('link', 'set', nsIf, 'netns', ns);
  run('addr', 'add', `${hostIp}/30`, 'dev', hostIf);
  run('link', 'set', hostIf, 'up');
  run('netns', 'exec', ns, 'ip', 'addr', 'add', `${ip}/30`, 'dev', nsIf);
  run('netns', 'exec', ns, 'ip', 'link', 'set', nsIf, 'up');
  const script = `for (const [p, n] of ${JSON.stringify(servers)}) require('http').createServer((q,s)=>{s.writeHead(200,{'x-backend':n,'connection':'close'});s.end(q.url)}).listen(p,'${ip}')`;
  const proc = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', script], { stdio: 'ignore' });
  return {
    ip,
    stop() {
      proc.kill();
      try {
        run('netns', 'del', ns);
        run('link', 'del', hostIf);
      } catch {
        /* already gone with the namespace */
      }
    },
  };
}
