/** --log-format: pino JSON lines for machines, one readable line per event on a terminal. */
import { Writable } from 'node:stream';
import { makeLogger } from '../src/log.js';

function sink(isTTY: boolean): Writable & { text: () => string; isTTY?: boolean } {
  let buf = '';
  const w = new Writable({
    write(chunk: Buffer, _enc, cb) {
      buf += chunk.toString();
      cb();
    },
  }) as Writable & { text: () => string; isTTY?: boolean };
  w.text = () => buf;
  if (isTTY) w.isTTY = true;
  return w;
}

describe('log format', () => {
  test('json: one JSON object per line with the context fields', () => {
    const out = sink(false);
    makeLogger({ format: 'json', destination: out, level: 'info' }).info({ gateway: 'default/gw' }, 'hello');
    const line = JSON.parse(out.text().trim()) as Record<string, unknown>;
    expect(line).toMatchObject({ level: 30, msg: 'hello', gateway: 'default/gw', name: 'signalbox' });
  });

  test('pretty: a readable line (level name, message, context), not JSON', () => {
    const out = sink(false);
    makeLogger({ format: 'pretty', destination: out, level: 'info' }).warn(
      { gateway: 'default/gw' },
      'hello',
    );
    const text = out.text();
    expect(() => JSON.parse(text)).toThrow();
    expect(text).toMatch(/WARN.*hello.*default\/gw/);
    expect(text.trim().split('\n')).toHaveLength(1);
  });

  test('auto: pretty on a terminal, JSON otherwise', () => {
    const tty = sink(true);
    makeLogger({ format: 'auto', destination: tty, level: 'info' }).info('on a terminal');
    expect(() => JSON.parse(tty.text())).toThrow();
    expect(tty.text()).toMatch(/INFO.*on a terminal/);
    const pipe = sink(false);
    makeLogger({ format: 'auto', destination: pipe, level: 'info' }).info('piped');
    expect(JSON.parse(pipe.text().trim())).toMatchObject({ msg: 'piped' });
  });
});
