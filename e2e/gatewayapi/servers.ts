/**
 * Local backends for the translator's traffic tests, each saying who it is: an HTTP/1.1
 * echo server (optional delay via `x-delay-ms`, WebSocket-style upgrades echoed as raw
 * bytes), an h2c echo server, and a gRPC server answering with its name.
 */
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import type { IncomingHttpHeaders, Server } from 'node:http';
import { createServer as createH2Server } from 'node:http2';
import type { Http2Server } from 'node:http2';
import { request } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import * as grpc from '@grpc/grpc-js';

export interface Seen {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
}

export interface TestBackend {
  name: string;
  host: string;
  port: number;
  seen: Seen[];
  close(): Promise<void>;
}

function listen(srv: Server | Http2Server, host: string): Promise<number> {
  return new Promise((res, rej) => {
    srv.once('error', rej);
    srv.listen(0, host, () => res((srv.address() as AddressInfo).port));
  });
}

export async function echoBackend(name: string, host: string): Promise<TestBackend> {
  const seen: Seen[] = [];
  const sockets = new Set<Socket>();
  const failures = new Map<string, number>();
  const srv = createServer((req, res) => {
    seen.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers });
    // `x-fail-key: k` + `x-fail-times: n`: answer 503 to the first n requests of key k
    const fk = req.headers['x-fail-key'];
    if (typeof fk === 'string') {
      const n = failures.get(fk) ?? 0;
      failures.set(fk, n + 1);
      if (n < Number(req.headers['x-fail-times'] ?? 0)) {
        res.writeHead(503, { 'x-backend': name, 'x-attempt': String(n + 1) });
        res.end('try again');
        return;
      }
    }
    const body = JSON.stringify({
      backend: name,
      method: req.method,
      path: req.url,
      headers: req.headers,
      proto: `HTTP/${req.httpVersion}`,
    });
    const delay = Number(req.headers['x-delay-ms'] ?? 0);
    const t = setTimeout(() => {
      if (res.destroyed) return;
      res.writeHead(200, { 'content-type': 'application/json', 'x-backend': name });
      res.end(body);
    }, delay);
    res.on('close', () => clearTimeout(t));
  });
  srv.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  srv.on('upgrade', (req, socket: Socket, head) => {
    seen.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers });
    const accept = createHash('sha1')
      .update(String(req.headers['sec-websocket-key'] ?? '') + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11')
      .digest('base64');
    socket.write(
      'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        `Sec-WebSocket-Accept: ${accept}\r\nx-backend: ${name}\r\n\r\n`,
    );
    if (head.length) socket.write(head);
    socket.on('data', (d) => socket.write(Buffer.concat([Buffer.from(`${name}:`), d])));
    socket.on('error', () => socket.destroy());
  });
  const port = await listen(srv, host);
  return {
    name,
    host,
    port,
    seen,
    close: () =>
      new Promise((r) => {
        for (const s of sockets) s.destroy();
        srv.close(() => r());
      }),
  };
}

/** h2c (HTTP/2 without TLS, prior knowledge) echo server. */
export async function h2cBackend(name: string, host: string): Promise<TestBackend> {
  const seen: Seen[] = [];
  const srv = createH2Server((req, res) => {
    seen.push({ method: req.method, path: req.url, headers: req.headers as IncomingHttpHeaders });
    res.writeHead(200, { 'content-type': 'application/json', 'x-backend': name });
    res.end(JSON.stringify({ backend: name, path: req.url, proto: `HTTP/${req.httpVersion}` }));
  });
  const port = await listen(srv, host);
  return { name, host, port, seen, close: () => new Promise((r) => srv.close(() => r())) };
}

const raw = {
  serialize: (b: Buffer) => b,
  deserialize: (b: Buffer) => b,
};

/** A gRPC server that answers any unary call of the given methods with `<name>:<method path>`. */
export async function grpcBackend(
  name: string,
  host: string,
  methods: string[],
): Promise<TestBackend & { server: grpc.Server }> {
  const seen: Seen[] = [];
  const server = new grpc.Server();
  const defs: Record<string, grpc.MethodDefinition<Buffer, Buffer>> = {};
  const impl: grpc.UntypedServiceImplementation = {};
  for (const path of methods) {
    defs[path] = {
      path,
      requestStream: false,
      responseStream: false,
      requestSerialize: raw.serialize,
      requestDeserialize: raw.deserialize,
      responseSerialize: raw.serialize,
      responseDeserialize: raw.deserialize,
    };
    impl[path] = (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
      seen.push({ method: 'POST', path, headers: call.metadata.getMap() as IncomingHttpHeaders });
      const md = new grpc.Metadata();
      md.set('x-backend', name);
      call.sendMetadata(md);
      cb(null, Buffer.from(`${name}:${path}`));
    };
  }
  server.addService(defs as grpc.ServiceDefinition, impl);
  const port = await new Promise<number>((res, rej) =>
    server.bindAsync(`${host}:0`, grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? rej(err) : res(p),
    ),
  );
  return {
    name,
    host,
    port,
    seen,
    server,
    close: () => new Promise((r) => server.tryShutdown(() => r())),
  };
}

/** One unary gRPC call with raw bytes; resolves to the response text and response headers. */
export function grpcCall(
  target: string,
  path: string,
  metadata: Record<string, string> = {},
): Promise<
  { ok: true; text: string; headers: Record<string, string> } | { ok: false; code: number; details: string }
> {
  const client = new grpc.Client(target, grpc.credentials.createInsecure());
  const md = new grpc.Metadata();
  for (const [k, v] of Object.entries(metadata)) md.set(k, v);
  return new Promise((resolve) => {
    const headers: Record<string, string> = {};
    const call = client.makeUnaryRequest(
      path,
      raw.serialize,
      raw.deserialize,
      Buffer.from('hi'),
      md,
      { deadline: Date.now() + 5000 },
      (err, res) => {
        client.close();
        if (err) resolve({ ok: false, code: err.code, details: err.details });
        else resolve({ ok: true, text: res!.toString(), headers });
      },
    );
    call.on('metadata', (m: grpc.Metadata) => {
      for (const [k, v] of Object.entries(m.getMap())) headers[k] = String(v);
    });
  });
}

export interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  json?: {
    backend?: string;
    path?: string;
    method?: string;
    headers?: Record<string, string>;
    proto?: string;
  };
}

/** One HTTP/1.1 request on a fresh connection. */
export function http1(
  url: string,
  opts: { method?: string; headers?: Record<string, string> } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method: opts.method ?? 'GET', agent: false, headers: { connection: 'close', ...opts.headers } },
      (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => {
          let json: Reply['json'];
          try {
            json = JSON.parse(body) as Reply['json'];
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json });
        });
        res.on('error', reject);
      },
    );
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

/** Send an Upgrade: websocket request; resolve with the 101 headers and the echo of `payload`. */
export function upgrade(
  url: string,
  payload: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; backend: string; echo: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, {
      agent: false,
      headers: {
        connection: 'Upgrade',
        upgrade: 'websocket',
        'sec-websocket-version': '13',
        'sec-websocket-key': Buffer.from('signalbox-test-k').toString('base64'),
        ...headers,
      },
    });
    req.on('upgrade', (res, socket) => {
      socket.write(payload);
      socket.once('data', (d: Buffer) => {
        socket.destroy();
        resolve({
          status: res.statusCode ?? 0,
          backend: String(res.headers['x-backend'] ?? ''),
          echo: d.toString(),
        });
      });
    });
    req.on('response', (res) => {
      res.resume();
      resolve({ status: res.statusCode ?? 0, backend: String(res.headers['x-backend'] ?? ''), echo: '' });
    });
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}
