/** Output of the operator commands: human tables, or the data as JSON or YAML (`-o`). */
import { stringify } from 'yaml';

export const FORMATS = ['table', 'json', 'yaml'] as const;
export type Format = (typeof FORMATS)[number];

/** An error an operator command reports: its message, and the exit code (2 unless said). */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 2,
  ) {
    super(message);
  }
}

/** The server could not be reached (or did not answer): worth trying again while waiting. */
export class UnreachableError extends CliError {}

/**
 * Columns separated by two spaces, each as wide as its widest cell (the last one not
 * padded, so a long message does not widen the others). Empty cells print `-`.
 */
export function table(headers: string[], rows: string[][]): string {
  const cells = [
    headers,
    ...rows.map((r) => headers.map((_, i) => (r[i] === undefined || r[i] === '' ? '-' : r[i]))),
  ];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => r[i].length)));
  return (
    cells
      .map((r) =>
        r
          .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i])))
          .join('  ')
          .trimEnd(),
      )
      .join('\n') + '\n'
  );
}

/** The data in the requested format; `human` renders the table form. */
export function render(format: Format, data: unknown, human: () => string): string {
  if (format === 'json') return JSON.stringify(data, null, 2) + '\n';
  if (format === 'yaml') return stringify(data, { lineWidth: 0 });
  return human();
}

/** The first 8 characters of a content hash or version (enough to tell them apart by eye). */
export const short = (h: string | undefined): string => (h ? h.slice(0, 8) : '');

/** One line of a long text, at most `max` characters. */
export function oneLine(s: string, max = 200): string {
  const l = s.replace(/\s+/g, ' ').trim();
  return l.length > max ? `${l.slice(0, max - 3)}...` : l;
}

/**
 * A duration: `500ms`, `30s`, `2m`, `1h`, or a bare number of seconds. Returns milliseconds.
 */
export function parseDuration(v: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(v.trim());
  if (!m) throw new CliError(`"${v}" is not a duration (e.g. 500ms, 30s, 2m, 1h)`);
  const n = Number(m[1]);
  const scale: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  return Math.round(n * scale[m[2] ?? 's']);
}

/** `<namespace>/<name>`, both parts non-empty. */
export function parseNamespacedName(v: string, what = 'gateway'): { namespace: string; name: string } {
  const parts = v.split('/');
  if (parts.length !== 2 || !parts[0] || !parts[1])
    throw new CliError(`${what} "${v}" is not <namespace>/<name>`);
  return { namespace: parts[0], name: parts[1] };
}
