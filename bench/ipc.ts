/** IPC between a benchmark and its forked client process (bench/fanout-clients.ts). */
import type { ChildProcess } from 'node:child_process';
import type { Mode, Target } from './ads-client.js';

export interface StartMsg {
  cmd: 'start';
  port: number;
  mode: Mode;
  streams: number;
  perChannel: number;
  group: string;
  target: Target;
  timeoutMs: number;
}
export interface ExpectMsg {
  cmd: 'expect';
  target: Target;
  timeoutMs: number;
}
export type ToClients = StartMsg | ExpectMsg | { cmd: 'stop' };
export type FromClients =
  | { ev: 'ready'; ms: number; streams: number; channels: number }
  | { ev: 'armed' }
  | {
      ev: 'done';
      times: (number | null)[];
      responses: number;
      bytes: number;
      errors: string[];
      /** CPU seconds this (client) process used from arming until done */
      cpuS: number;
    }
  | { ev: 'error'; message: string };

export function waitMsg<T extends FromClients['ev']>(
  c: ChildProcess,
  ev: T,
  timeoutMs: number,
): Promise<Extract<FromClients, { ev: T }>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      c.off('message', on);
      reject(new Error(`clients: no "${ev}" within ${timeoutMs} ms`));
    }, timeoutMs);
    const on = (m: FromClients) => {
      if (m.ev === ev || m.ev === 'error') {
        clearTimeout(timer);
        c.off('message', on);
        if (m.ev === 'error') reject(new Error(`clients: ${m.message}`));
        else resolve(m as Extract<FromClients, { ev: T }>);
      }
    };
    c.on('message', on);
  });
}
