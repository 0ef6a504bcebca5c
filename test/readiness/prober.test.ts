/**
 * The prober against local fake "Envoys" (node servers answering as Envoy would): every
 * outcome, TLS with SNI and an unverified certificate, retries and aborts.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createNetServer } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';
import { join } from 'node:path';
import { PROBE_HEADER } from '../../src/readiness/probe.js';
import type { ProbeRequest } from '../../src/readiness/probe.js';
import { UPSTREAM_TIME_HEADER, probe, probeUntil } from '../../src/readiness/prober.js';
import type { ProbeTarget } from '../../src/readiness/prober.js';
import { TESTDATA } from '../gatewayapi/helpers.js';

const REQ: ProbeRequest = {
  host: 'probe.example.com',
  path: '/.well-known/signalbox-probe/abc.0',
  headerValue: 'abc.0',
  cluster: 'c',
  routeEntry: 'e',
  virtualHost: 'v',
};

type Handler = (req: IncomingMessage, res: ServerResponse) => void;
const servers: Server[] = [];
const sockets = new Set<Socket>();

function track(s: Server): Server {
  servers.push(s);
  s.on('connection', (c: Socket) => {
    sockets.add(c);
    c.on('close', () => sockets.delete(c));
  });
  return s;
}
async function listen(s: Server): Promise<ProbeTarget> {
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  return { address: '127.0.0.1', port: (s.address() as AddressInfo).port };
}
const http = (h: Handler) => listen(track(createServer(h)));

/** An "Envoy" that has applied the probe route: stamps our header, and the upstream time when `upstream`. */
const applied =
  (upstream: boolean, status = 200): Handler =>
  (req, res) => {
    const headers: Record<string, string> = { [PROBE_HEADER]: String(req.headers[PROBE_HEADER]) };
    if (upstream) headers[UPSTREAM_TIME_HEADER] = '3';
    res.writeHead(status, headers);
    res.end('x'.repeat(10_000));
  };

afterAll(async () => {
  for (const c of sockets) c.destroy();
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
});

describe('probe', () => {
  test('ok: our header and an upstream time; any upstream status counts; the request is as asked', async () => {
    let seen: IncomingMessage | undefined;
    const t = await http((req, res) => {
      seen = req;
      applied(true, 404)(req, res);
    });
    const o = await probe(t, REQ);
    expect(o).toEqual({ ok: true, status: 404, latencyMs: expect.any(Number) as number });
    expect(seen?.method).toBe('GET');
    expect(seen?.url).toBe(REQ.path);
    expect(seen?.headers.host).toBe(REQ.host);
    expect(seen?.headers[PROBE_HEADER]).toBe(REQ.headerValue);
    expect(seen?.httpVersion).toBe('1.1');
  });

  test('wrong-hash: no header (a 404 from no route too), or another value', async () => {
    const none = await http((_q, res) => res.writeHead(404, { [UPSTREAM_TIME_HEADER]: '1' }).end());
    expect(await probe(none, REQ)).toMatchObject({ ok: false, reason: 'wrong-hash', status: 404 });
    const other = await http((_q, res) =>
      res.writeHead(200, { [PROBE_HEADER]: 'abc.1', [UPSTREAM_TIME_HEADER]: '1' }).end(),
    );
    expect(await probe(other, REQ)).toMatchObject({ ok: false, reason: 'wrong-hash', status: 200 });
  });

  test('local-reply: our header without an upstream time', async () => {
    const t = await http(applied(false, 503));
    expect(await probe(t, REQ)).toMatchObject({ ok: false, reason: 'local-reply', status: 503 });
  });

  test('connect: refused, or reset before any response', async () => {
    const s = track(createNetServer());
    const t = await listen(s);
    await new Promise((r) => s.close(r));
    expect(await probe(t, REQ)).toMatchObject({ ok: false, reason: 'connect' });
    const reset = await listen(track(createNetServer((c) => c.resetAndDestroy())));
    expect(await probe(reset, REQ)).toMatchObject({ ok: false, reason: 'connect' });
  });

  test('timeout: no answer in time; headers without the end of the body are judged on the headers', async () => {
    const silent = await http(() => undefined);
    const t0 = Date.now();
    expect(await probe(silent, REQ, 200)).toMatchObject({ ok: false, reason: 'timeout' });
    expect(Date.now() - t0).toBeLessThan(2000);
    const slowBody = await http((req, res) => {
      res.writeHead(200, { [PROBE_HEADER]: String(req.headers[PROBE_HEADER]), [UPSTREAM_TIME_HEADER]: '1' });
      res.write('part');
    });
    expect(await probe(slowBody, REQ, 300)).toMatchObject({ ok: true, status: 200 });
  });

  test('protocol: not HTTP', async () => {
    const t = await listen(track(createNetServer((c) => c.end('SSH-2.0-nope\r\n\r\n'))));
    expect(await probe(t, REQ)).toMatchObject({ ok: false, reason: 'protocol' });
  });

  test('TLS: SNI is the servername, the (self-signed) certificate is not verified', async () => {
    let sni: string | undefined;
    const s = track(
      createHttpsServer(
        {
          cert: readFileSync(join(TESTDATA, 'certs', 'rsa.crt')),
          key: readFileSync(join(TESTDATA, 'certs', 'rsa.key')),
          SNICallback: (name, cb) => {
            sni = name;
            cb(null);
          },
        },
        applied(true),
      ),
    );
    const t = await listen(s);
    expect(await probe({ ...t, tls: { servername: 'www.example.com' } }, REQ)).toMatchObject({ ok: true });
    expect(sni).toBe('www.example.com');
    // plain HTTP to a TLS port is not an HTTP answer
    expect(await probe(t, REQ, 500)).toMatchObject({ ok: false });
  });
});

describe('probeUntil', () => {
  test('retries wrong-hash, local-reply and connect until ok', async () => {
    let n = 0;
    const t = await http((req, res) => {
      n++;
      if (n === 1) return res.writeHead(404).end(); // not applied yet
      if (n === 2) return applied(false, 503)(req, res); // applied, no upstream yet
      applied(true)(req, res);
    });
    const o = await probeUntil(t, REQ, { timeoutMs: 5000, backoffMs: [5, 20] });
    expect(o).toMatchObject({ ok: true, status: 200, attempts: 3 });
  });

  test('returns the last failure when time is up', async () => {
    const t = await http(applied(false, 503));
    const t0 = Date.now();
    const o = await probeUntil(t, REQ, { timeoutMs: 300, backoffMs: [10, 30] });
    expect(o).toMatchObject({ ok: false, reason: 'local-reply' });
    expect(o.attempts).toBeGreaterThan(1);
    expect(Date.now() - t0).toBeLessThan(1500);
  });

  test('a protocol failure is not retried', async () => {
    const t = await listen(track(createNetServer((c) => c.end('nope\r\n\r\n'))));
    expect(await probeUntil(t, REQ, { timeoutMs: 2000 })).toMatchObject({
      ok: false,
      reason: 'protocol',
      attempts: 1,
    });
  });

  test('an abort ends the wait and the attempt under way', async () => {
    const t = await http(() => undefined);
    const ac = new AbortController();
    const pending = probeUntil(t, REQ, { timeoutMs: 20_000, signal: ac.signal });
    setTimeout(() => ac.abort(), 50);
    const t0 = Date.now();
    const o = await pending;
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(o).toMatchObject({ ok: false, reason: 'timeout', attempts: 1 });
    const pre = await probeUntil(t, REQ, { timeoutMs: 1000, signal: AbortSignal.abort() });
    expect(pre).toMatchObject({ ok: false, attempts: 0 });
  });
});
