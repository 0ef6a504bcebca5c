/** pino JSON logs. Children carry context: node, group (gateway), type, version, route. */
import pino from 'pino';
import type { Logger } from 'pino';

export type { Logger };

export function makeLogger(opts: { level?: string; name?: string } = {}): Logger {
  return pino({
    name: opts.name ?? 'signalbox',
    level: opts.level ?? process.env.SIGNALBOX_LOG_LEVEL ?? 'info',
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
  });
}

/** A logger that discards everything (tests that do not look at logs). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
