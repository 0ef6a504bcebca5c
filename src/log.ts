/**
 * Logs (pino). Children carry context: node, group (gateway), type, version, route.
 * Format: `json` (pino's JSON lines, for machines) or `pretty` (pino-pretty, one readable
 * line per event, for a person at a terminal); `auto` (the default) is pretty when stdout
 * is a terminal, JSON otherwise.
 */
import pino from 'pino';
import type { Logger } from 'pino';
import pretty from 'pino-pretty';

export type { Logger };

export type LogFormat = 'auto' | 'json' | 'pretty';
export const LOG_FORMATS: readonly LogFormat[] = ['auto', 'json', 'pretty'];

export function makeLogger(
  opts: { level?: string; name?: string; format?: LogFormat; destination?: NodeJS.WritableStream } = {},
): Logger {
  const dest = opts.destination ?? process.stdout;
  const format = opts.format ?? 'auto';
  const isTty = (dest as { isTTY?: boolean }).isTTY === true;
  const options = {
    name: opts.name ?? 'signalbox',
    level: opts.level ?? process.env.SIGNALBOX_LOG_LEVEL ?? 'info',
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  if (format === 'pretty' || (format === 'auto' && isTty))
    return pino(
      options,
      pretty({
        destination: dest,
        colorize: isTty,
        sync: true,
        translateTime: 'SYS:HH:MM:ss.l',
        ignore: 'pid,hostname,name',
        singleLine: true,
      }),
    );
  return opts.destination ? pino(options, opts.destination) : pino(options);
}

/** A logger that discards everything (tests that do not look at logs). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
