/**
 * `make run` as a newcomer meets it (README, "The two commands"): on a fresh clone of this
 * repository, as a subprocess, exactly `make run`. It installs what it needs, starts
 * signalbox on examples/ with a local stock Envoy and the example echo backends, and prints
 * a summary: this test waits for it, runs every curl line it printed and checks each answer
 * comes from a backend the line names; edits an example file and sees the new state
 * reported (Proving, then Ready) and served; then sends SIGINT to the process group (what
 * Ctrl-C does) and checks that no process it started is left.
 */
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from './harness/envoy.js';

const HOW_LONG = 20 * 60_000; // a fresh clone installs and builds everything first

/** Processes whose command line or working directory is inside `dir`. */
function processesIn(dir: string): string[] {
  const out: string[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p) || Number(p) === process.pid) continue;
    try {
      const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
      let cwd = '';
      try {
        cwd = readlinkSync(`/proc/${p}/cwd`);
      } catch {
        /* gone, or not ours */
      }
      if (cmd.includes(dir) || cwd.startsWith(dir)) out.push(`${p}: ${cmd}`);
    } catch {
      /* exited meanwhile */
    }
  }
  return out;
}

describe('make run on a fresh clone', () => {
  let dir: string;
  let clone: string;
  let make: ChildProcess | undefined;
  let out = '';
  let err = '';
  let exited: Promise<number | null>;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'signalbox-demo-'));
    clone = join(dir, 'signalbox');
    execFileSync('git', ['clone', '--quiet', process.cwd(), clone]);
    // its own process group: SIGINT to the group is what Ctrl-C in a terminal sends
    make = spawn('make', ['run'], { cwd: clone, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    make.stdout!.on('data', (b: Buffer) => (out += b.toString()));
    make.stderr!.on('data', (b: Buffer) => (err += b.toString()));
    exited = new Promise((r) => make!.once('exit', (code) => r(code)));
  });

  afterAll(async () => {
    if (make?.exitCode === null && make.pid) {
      try {
        process.kill(-make.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
      await exited;
    }
    for (const p of processesIn(clone)) {
      try {
        process.kill(Number(p.split(':')[0]), 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    rmSync(dir, { recursive: true, force: true });
  });

  const sh = (line: string) => execFileSync('bash', ['-c', line], { encoding: 'utf8', timeout: 30_000 });
  const tail = () => `\n--- stdout:\n${out.slice(-3000)}\n--- stderr:\n${err.slice(-3000)}`;

  test(
    'the summary, every printed curl line answered by a backend it names, an edit reported and served, Ctrl-C leaves nothing',
    async () => {
      await waitFor(
        'the summary',
        () => out.includes('Ctrl-C stops everything') || make!.exitCode !== null,
        HOW_LONG,
        500,
      );
      if (make!.exitCode !== null) throw new Error(`make run exited ${make!.exitCode}${tail()}`);
      const summary = out.slice(out.indexOf('signalbox demo:'));
      // each Gateway with its URL, each route Ready
      expect(summary).toMatch(
        /^ {2}default\/demo {2}http:\/\/127\.\d+\.\d+\.\d+:8080 \(http\) {2}Programmed, Envoy pid \d+$/m,
      );
      expect(summary).toMatch(/^ {2}httproute default\/web {2}Ready — proved through 1 Envoy\(s\)$/m);
      expect(summary).toMatch(/^ {2}httproute default\/api {2}Ready — proved through 1 Envoy\(s\)$/m);
      const envoyPid = Number(/Envoy pid (\d+)/.exec(summary)![1]);

      // every curl line: run as printed, each answer from a backend it names
      const tries = summary
        .split('\n')
        .filter((l) => /^ {2}(curl|for) /.test(l))
        .map((l) => {
          const [line, expect] = l.trim().split(/ {3}# → /);
          return { line, backends: expect.split(', ').map((e) => e.split(' ')[0]) };
        });
      expect(tries.length).toBe(4); // host and path routing, header matching, a weighted split
      expect(tries.some((t) => t.line.startsWith('for ') && t.backends.length === 2)).toBe(true);
      expect(tries.some((t) => t.line.includes("-H 'x-canary: true'"))).toBe(true);
      for (const t of tries) {
        const answers = sh(t.line).trim().split('\n');
        expect(answers.length).toBe(t.line.startsWith('for ') ? 10 : 1);
        for (const a of answers) expect(t.backends).toContain(a.split(':')[0]);
      }
      const v1 = tries.find((t) => t.line.includes('/v1'))!;
      expect(sh(v1.line)).toMatch(/^echo-api: GET api\.example\.com\/v1$/m);

      // an edit of an example file: reported (proved) and served
      const api = join(clone, 'examples', 'api.yaml');
      writeFileSync(api, readFileSync(api, 'utf8').replace('name: echo-api', 'name: echo-v1'));
      await waitFor(
        'the edit reported Ready',
        () => /httproute default\/api generation 2: Ready — proved/.test(out),
        60_000,
        100,
      ).catch((e: Error) => {
        throw new Error(`${e.message}${tail()}`);
      });
      expect(out).toMatch(/httproute default\/api generation 2: not Ready \(Proving\)/);
      expect(sh(v1.line)).toMatch(/^echo-v1: GET api\.example\.com\/v1$/m);

      // Ctrl-C: everything it started stops
      process.kill(-make!.pid!, 'SIGINT');
      await waitFor(
        'make run exited',
        () => make!.exitCode !== null || make!.signalCode !== null,
        30_000,
      ).catch((e: Error) => {
        throw new Error(`${e.message}${tail()}`);
      });
      await waitFor('no process of the clone left', () => processesIn(clone).length === 0, 10_000).catch(
        () => {
          throw new Error(`left running: ${processesIn(clone).join('; ')}`);
        },
      );
      expect(() => process.kill(envoyPid, 0)).toThrow();
      // the echo backends are gone with it
      expect(() => sh(v1.line.replace('curl -s', 'curl -s --max-time 2 --fail'))).toThrow();
    },
    HOW_LONG + 120_000,
  );
});
