/**
 * The real Kubernetes test stack of e2e/k8s (etcd + kube-apiserver on 127.0.0.1) for one
 * test file. On a loaded 2-core machine a start can miss one of start.sh's bounded waits
 * (apiserver /readyz in 60 s, a port taken between pick and bind): it is stopped and tried
 * once more, and a second failure throws with start.sh's own error and its logs' tails.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

function tail(file: string, n = 1500): string {
  return existsSync(file) ? readFileSync(file, 'utf8').slice(-n) : '(none)';
}

/** Start the stack in `dir` (start.sh's state folder); returns the kubeconfig path. */
export function startKubeStack(
  dir: string,
  env: NodeJS.ProcessEnv = process.env,
  args: string[] = [],
): string {
  let last = '';
  for (let attempt = 1; attempt <= 2; attempt++) {
    try {
      execFileSync('e2e/k8s/start.sh', [...args, dir], {
        stdio: ['ignore', 'ignore', 'pipe'],
        env,
        encoding: 'utf8',
      });
      return join(dir, 'kubeconfig');
    } catch (err) {
      last = `${String((err as { stderr?: string }).stderr ?? err).trim()}\n--- kube-apiserver.log:\n${tail(join(dir, 'kube-apiserver.log'))}\n--- etcd.log:\n${tail(join(dir, 'etcd.log'))}`;
      process.stderr.write(`e2e/k8s/start.sh ${dir} failed (attempt ${attempt}): ${last.slice(0, 400)}\n`);
      stopKubeStack(dir);
    }
  }
  throw new Error(`e2e/k8s/start.sh failed twice: ${last}`);
}

export function stopKubeStack(dir: string): void {
  try {
    execFileSync('e2e/k8s/stop.sh', [dir], { stdio: 'ignore' });
  } catch {
    /* nothing ran */
  }
}
