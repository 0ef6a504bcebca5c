/**
 * A raw ADS client for protocol tests: speaks the wire protocol with the same codec as the
 * server, but decides nothing by itself — each test sends exactly the requests it means.
 */
import * as grpc from '@grpc/grpc-js';
import { protoRegistry } from '../../src/xds/proto.js';
import { AdsCodec, DELTA_PATH, SOTW_PATH } from '../../src/xds/server/codec.js';
import type {
  DeltaDiscoveryRequestIn,
  DeltaDiscoveryResponseOut,
  DiscoveryRequestIn,
  DiscoveryResponseOut,
} from '../../src/xds/server/codec.js';

let codec: AdsCodec | undefined;
export function adsCodec(): AdsCodec {
  codec ??= new AdsCodec(protoRegistry());
  return codec;
}

class Stream<Req, Res> {
  readonly received: Res[] = [];
  private waiters: ((r: Res) => void)[] = [];
  ended?: { code: number; details: string };
  private endWaiters: (() => void)[] = [];

  constructor(readonly call: grpc.ClientDuplexStream<Req, Res>) {
    call.on('data', (r: Res) => {
      const w = this.waiters.shift();
      if (w) w(r);
      else this.received.push(r);
    });
    call.on('error', (e: grpc.ServiceError) => this.finish(e.code, e.details));
    call.on('status', (s: grpc.StatusObject) => this.finish(s.code, s.details));
    call.on('end', () => this.finish(0, 'end'));
  }

  private finish(code: number, details: string): void {
    if (this.ended) return;
    this.ended = { code, details };
    for (const w of this.endWaiters) w();
  }

  send(req: Partial<Req>): void {
    this.call.write(req as Req);
  }

  /** The next response (already received or arriving within timeoutMs). */
  next(timeoutMs = 3000): Promise<Res> {
    const r = this.received.shift();
    if (r) return Promise.resolve(r);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== done);
        reject(new Error(`no response within ${timeoutMs} ms`));
      }, timeoutMs);
      const done = (x: Res) => {
        clearTimeout(t);
        resolve(x);
      };
      this.waiters.push(done);
    });
  }

  /** Resolves true if no response arrives within ms. */
  async quiet(ms = 300): Promise<boolean> {
    try {
      await this.next(ms);
      return false;
    } catch {
      return true;
    }
  }

  /** Wait for the server to end the stream. */
  closedWith(timeoutMs = 3000): Promise<{ code: number; details: string }> {
    if (this.ended) return Promise.resolve(this.ended);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('stream still open')), timeoutMs);
      this.endWaiters.push(() => {
        clearTimeout(t);
        resolve(this.ended as { code: number; details: string });
      });
    });
  }

  cancel(): void {
    this.call.cancel();
  }
}

export class SotwStream extends Stream<DiscoveryRequestIn, DiscoveryResponseOut> {}
export class DeltaStream extends Stream<DeltaDiscoveryRequestIn, DeltaDiscoveryResponseOut> {}

export class AdsClient {
  readonly client: grpc.Client;
  constructor(port: number) {
    this.client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  }

  sotw(): SotwStream {
    const c = adsCodec();
    return new SotwStream(this.client.makeBidiStreamRequest(SOTW_PATH, c.encodeRequest, c.decodeResponse));
  }

  delta(): DeltaStream {
    const c = adsCodec();
    return new DeltaStream(
      this.client.makeBidiStreamRequest(DELTA_PATH, c.encodeDeltaRequest, c.decodeDeltaResponse),
    );
  }

  close(): void {
    this.client.close();
  }
}

/** Names of the resources in a SotW response. */
export function names(r: DiscoveryResponseOut): string[] {
  const reg = protoRegistry();
  return r.resources.map((a) => {
    const j = reg.decode(a.type_url, a.value);
    return String(j.name ?? j.cluster_name);
  });
}

/** Decoded resources of a SotW response. */
export function decoded(r: DiscoveryResponseOut): Record<string, unknown>[] {
  const reg = protoRegistry();
  return r.resources.map((a) => reg.decode(a.type_url, a.value));
}
