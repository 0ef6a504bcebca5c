/**
 * signalbox in standalone mode (a folder of Gateway API YAML) the way the readiness tests run
 * it: ADS and debug on free loopback ports, Envoy listeners on 127.0.0.1, readiness timeouts
 * short enough for a test (ACK 20 s, probes 4 s); READINESS_LOG=<level> shows the logs.
 */
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { startApp } from '../../src/app.js';
import type { App, AppOptions } from '../../src/app.js';
import { makeLogger, silentLogger } from '../../src/log.js';

export function startStandalone(dir: string, o: Partial<AppOptions> = {}): Promise<App> {
  return startApp({
    log: process.env.READINESS_LOG ? makeLogger({ level: process.env.READINESS_LOG }) : silentLogger(),
    xdsAddress: '127.0.0.1:0',
    debugAddress: '127.0.0.1:0',
    configDir: dir,
    listenerAddress: '127.0.0.1',
    readinessAckTimeoutMs: 20_000,
    readinessProbeTimeoutMs: 4_000,
    ...o,
  });
}

/** YAML documents as one file's text. */
export const yamlOf = (...docs: unknown[]): string => docs.map((d) => stringify(d)).join('---\n');

/** Replace `file` in `dir` at once (write aside, rename), as an editor saving it would. */
export function replaceFile(dir: string, file: string, text: string): void {
  writeFileSync(join(dir, `.${file}.tmp`), text);
  renameSync(join(dir, `.${file}.tmp`), join(dir, file));
}
