/**
 * The README's configuration reference is the CLI's own help (scripts/cli-reference.mjs):
 * every command, every option, as `--help` prints it. A flag added without regenerating
 * the README fails here.
 */
import { execFileSync } from 'node:child_process';

test('README.md configuration reference = the --help of every command', () => {
  let out = '';
  try {
    out = execFileSync(process.execPath, ['scripts/cli-reference.mjs', '--check'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  } catch (err) {
    throw new Error(`${String((err as { stderr?: string }).stderr ?? err)}`);
  }
  expect(out).toMatch(/matches the help of \d+ commands/);
});
