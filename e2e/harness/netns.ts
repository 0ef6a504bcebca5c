/**
 * A Linux network namespace of its own for a test, joined to the host by a veth pair: the
 * namespace gets `198.51.100.<block+2>/30` (TEST-NET-2), the host side `<block+1>`, which is
 * also the namespace's default route. Linux's weak host model delivers a packet to any
 * address of the host, so from inside the namespace every host address (the host sides of
 * other namespaces' veths, a server on 0.0.0.0) is reachable through it; the host reaches the
 * namespace at `ip`.
 *
 * /30 blocks in use (fourth octet; pick an unused one for a new test file):
 *   0 e2e/provider/kubernetes.test.ts, 4 e2e/provider/kubernetes-readiness.test.ts,
 *   8 e2e/provider/readiness-fleet.test.ts, 12 and 16 e2e/readiness-envoys.test.ts
 *
 * Needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN). Names carry the test process's pid; a
 * namespace or veth left by a run that died (its pid gone) on the same block is removed
 * first, so its address does not shadow the new one.
 */
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess, SpawnOptions } from 'node:child_process';

export interface Netns {
  /** the namespace's name (`ip netns exec <name> ...`) */
  name: string;
  /** the namespace side's address */
  ip: string;
  /** the host side's address (the namespace's default route) */
  hostIp: string;
  /** the host side's interface */
  hostIf: string;
  /** run `cmd args` inside the namespace; `ip netns exec` execs it, so the child is `cmd` itself */
  spawn(cmd: string, args: string[], opts?: SpawnOptions): ChildProcess;
  /** run `cmd args` inside the namespace and wait for it (throws on failure) */
  run(cmd: string, ...args: string[]): string;
  /**
   * delete the namespace and the veth pair (idempotent, never throws); stop the processes
   * running inside first, or the namespace lives on with them
   */
  remove(): void;
}

const ip = (...a: string[]) => execFileSync('ip', a, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
const quiet = (...a: string[]) => {
  try {
    ip(...a);
  } catch {
    /* already gone */
  }
};

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Namespaces `<tag><pid>` and host interfaces holding `hostIp` left by dead processes. */
function removeStale(tag: string, hostIp: string): void {
  const re = new RegExp(`^${tag}(\\d+)`);
  for (const line of ip('netns', 'list').split('\n')) {
    const name = line.split(' ')[0];
    const m = re.exec(name);
    if (m && !alive(Number(m[1]))) quiet('netns', 'del', name);
  }
  for (const line of ip('-o', '-4', 'addr', 'show', 'to', `${hostIp}/32`).split('\n')) {
    const dev = /^\d+:\s+([^\s@:]+)/.exec(line)?.[1];
    const m = dev ? /(\d+)a$/.exec(dev) : null;
    if (dev && m && !alive(Number(m[1]))) quiet('link', 'del', dev);
  }
}

/**
 * @param tag short (at most 6 characters) and unique per test file: names of the namespace
 *   (`<tag><pid>`) and of the veth pair (`<tag><pid>a` on the host, `<tag><pid>b` inside)
 * @param block fourth octet of the /30 block (0, 4, 8, ...; see the list above)
 */
export function createNetns(tag: string, block: number): Netns {
  if (block % 4 !== 0 || block < 0 || block > 252) throw new Error(`bad /30 block ${block}`);
  const name = `${tag}${process.pid}`;
  const hostIf = `${name}a`;
  const nsIf = `${name}b`;
  if (hostIf.length > 15) throw new Error(`tag ${tag} too long for interface names`);
  const hostIp = `198.51.100.${block + 1}`;
  const nsIp = `198.51.100.${block + 2}`;
  removeStale(tag, hostIp);
  const n: Netns = {
    name,
    ip: nsIp,
    hostIp,
    hostIf,
    spawn: (cmd, args, opts = {}) => spawn('ip', ['netns', 'exec', name, cmd, ...args], opts),
    run: (cmd, ...args) => ip('netns', 'exec', name, cmd, ...args),
    remove() {
      quiet('netns', 'del', name); // takes the namespace's end of the veth, and so the pair
      quiet('link', 'del', hostIf);
    },
  };
  try {
    ip('netns', 'add', name);
    ip('link', 'add', hostIf, 'type', 'veth', 'peer', 'name', nsIf);
    ip('link', 'set', nsIf, 'netns', name);
    ip('addr', 'add', `${hostIp}/30`, 'dev', hostIf);
    ip('link', 'set', hostIf, 'up');
    n.run('ip', 'link', 'set', 'lo', 'up');
    n.run('ip', 'addr', 'add', `${nsIp}/30`, 'dev', nsIf);
    n.run('ip', 'link', 'set', nsIf, 'up');
    n.run('ip', 'route', 'add', 'default', 'via', hostIp);
  } catch (err) {
    n.remove();
    const e = err as Error & { stderr?: Buffer };
    throw new Error(`network namespace ${name}: ${e.message} ${e.stderr?.toString() ?? ''}`);
  }
  return n;
}
