/**
 * kubectl as a user types it, for the e2e tests on the real test cluster (e2e/k8s): shell
 * lines run with .tools/bin on PATH and the cluster's KUBECONFIG. Every line runs
 * asynchronously: signalbox (its status writer, its probes) may run in the test's process
 * and must not be frozen meanwhile.
 */
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse, stringify } from 'yaml';

const TOOLS = resolve('.tools/bin');

export interface ShellRun {
  code: number;
  stdout: string;
  stderr: string;
  /** how long the line ran */
  ms: number;
}

export interface KubeShell {
  /** a shell command line with kubectl (.tools/bin) on PATH and the test cluster's KUBECONFIG */
  sh(line: string, input?: string): Promise<ShellRun>;
  /** `sh`, its stdout; throws on a non-zero exit */
  ok(line: string, input?: string): Promise<string>;
  /** `kubectl apply -f -` of these objects */
  apply(...docs: unknown[]): Promise<string>;
  /** `kubectl get <what> -o json`, parsed */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  getJson(what: string): Promise<any>;
}

/** kubectl lines against the cluster of `kubeconfig()` (read at each run: set in a beforeAll). */
export function kubeShell(kubeconfig: () => string): KubeShell {
  const sh = (line: string, input?: string): Promise<ShellRun> =>
    new Promise((res) => {
      const t0 = Date.now();
      const env = { ...process.env, PATH: `${TOOLS}:${process.env.PATH ?? ''}`, KUBECONFIG: kubeconfig() };
      const child = execFile('bash', ['-c', line], { env, maxBuffer: 64 << 20 }, (err, stdout, stderr) =>
        res({
          code: err ? (typeof err.code === 'number' ? err.code : 1) : 0,
          stdout,
          stderr,
          ms: Date.now() - t0,
        }),
      );
      if (input !== undefined) child.stdin?.end(input);
    });
  const ok = async (line: string, input?: string): Promise<string> => {
    const r = await sh(line, input);
    if (r.code !== 0) throw new Error(`${line}: exit ${r.code}: ${r.stderr}${r.stdout}`);
    return r.stdout;
  };
  return {
    sh,
    ok,
    apply: (...docs) => ok('kubectl apply -f -', docs.map((d) => stringify(d)).join('---\n')),
    getJson: async (what) => JSON.parse(await ok(`kubectl get ${what} -o json`)) as unknown,
  };
}

/**
 * Write the kubeconfig `path`: the cluster of the kubeconfig `admin`, the user `signalbox`
 * with a bearer token (a ServiceAccount's, from `kubectl create token`).
 */
export function writeTokenKubeconfig(admin: string, token: string, path: string): void {
  const cfg = parse(readFileSync(admin, 'utf8')) as {
    users: unknown[];
    contexts: { context: { user: string } }[];
  };
  cfg.users = [{ name: 'signalbox', user: { token } }];
  cfg.contexts[0].context.user = 'signalbox';
  writeFileSync(path, stringify(cfg));
}
