/** The ADS gRPC server (@grpc/grpc-js): state-of-the-world and delta on one port. */
import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../../log.js';
import type { Metrics } from '../../metrics.js';
import type { SnapshotCache } from '../cache/cache.js';
import type { ProtoRegistry } from '../proto.js';
import { AdsCodec, DELTA_PATH, SOTW_PATH } from './codec.js';
import type {
  DeltaDiscoveryRequest,
  DeltaDiscoveryResponse,
  DiscoveryRequest,
  DiscoveryResponse,
} from './codec.js';
import { DeltaSession } from './delta.js';
import { groupsFromSubjectAltName } from './identity.js';
import type { Session, SessionOptions } from './session.js';
import { SotwSession } from './sotw.js';

export interface AdsServerOptions {
  cache: SnapshotCache;
  metrics: Metrics;
  log: Logger;
  registry: ProtoRegistry;
  stepTimeoutMs?: number;
  maxRequestsPerSecond?: number;
  controlPlaneId?: string;
  /**
   * mTLS: serve ADS over TLS and require a client certificate signed by clientCa. A
   * client is then served only the Gateways its certificate names (URI SANs
   * spiffe://signalbox/gateway/<namespace>/<name>, see identity.ts). Without it ADS is
   * plaintext and unauthenticated (local development and tests).
   */
  tls?: { cert: Buffer; key: Buffer; clientCa: Buffer };
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/i;

export class AdsServer {
  readonly server: grpc.Server;
  readonly codec: AdsCodec;
  readonly sessions = new Set<Session>();
  private readonly sopts: SessionOptions;
  port = 0;

  constructor(private readonly opts: AdsServerOptions) {
    this.codec = new AdsCodec(opts.registry);
    this.sopts = {
      cache: opts.cache,
      metrics: opts.metrics,
      log: opts.log,
      stepTimeoutMs: opts.stepTimeoutMs ?? 10_000,
      maxRequestsPerSecond: opts.maxRequestsPerSecond ?? 500,
      controlPlaneId: opts.controlPlaneId ?? 'signalbox',
    };
    this.server = new grpc.Server({
      'grpc.keepalive_time_ms': 30_000,
      'grpc.keepalive_timeout_ms': 10_000,
      'grpc.keepalive_permit_without_calls': 1,
      'grpc.max_receive_message_length': 16 * 1024 * 1024,
      'grpc.max_send_message_length': 256 * 1024 * 1024,
    });
    const c = this.codec;
    const def: grpc.ServiceDefinition = {
      StreamAggregatedResources: {
        path: SOTW_PATH,
        requestStream: true,
        responseStream: true,
        requestSerialize: c.encodeRequest,
        requestDeserialize: c.decodeRequest,
        responseSerialize: c.encodeResponse,
        responseDeserialize: c.decodeResponse,
      },
      DeltaAggregatedResources: {
        path: DELTA_PATH,
        requestStream: true,
        responseStream: true,
        requestSerialize: c.encodeDeltaRequest,
        requestDeserialize: c.decodeDeltaRequest,
        responseSerialize: c.encodeDeltaResponse,
        responseDeserialize: c.decodeDeltaResponse,
      },
    };
    this.server.addService(def, {
      StreamAggregatedResources: (call: grpc.ServerDuplexStream<DiscoveryRequest, DiscoveryResponse>) =>
        this.attach(new SotwSession(this.sopts, call, call.getPeer()), call, (s, m) =>
          (s as SotwSession).onRequest(m as DiscoveryRequest),
        ),
      DeltaAggregatedResources: (
        call: grpc.ServerDuplexStream<DeltaDiscoveryRequest, DeltaDiscoveryResponse>,
      ) =>
        this.attach(new DeltaSession(this.sopts, call, call.getPeer()), call, (s, m) =>
          (s as DeltaSession).onRequest(m as DeltaDiscoveryRequest),
        ),
    });
  }

  private attach(
    s: Session,
    call: grpc.ServerDuplexStream<unknown, unknown>,
    onReq: (s: Session, m: unknown) => void,
  ): void {
    if (this.opts.tls) {
      // the Gateways this client may be served: bound to its certificate, checked on the
      // first request against node.cluster (Session.admit)
      const san = call.getAuthContext()?.sslPeerCertificate?.subjectaltname;
      s.allowedGroups = groupsFromSubjectAltName(san);
    }
    this.sessions.add(s);
    const end = (reason: string) => {
      this.sessions.delete(s);
      s.close(reason);
    };
    call.on('data', (m: unknown) => {
      try {
        onReq(s, m);
      } catch (err) {
        this.opts.log.error({ err, node: s.node?.id }, 'request handling failed');
        this.opts.metrics.streamErrors.inc({ reason: 'internal' });
        s.fail(grpc.status.INTERNAL, 'internal', 'internal error');
      }
    });
    call.on('end', () => {
      end('client closed');
      try {
        call.end();
      } catch {
        /* gone */
      }
    });
    call.on('cancelled', () => end('cancelled'));
    call.on('error', (err: Error) => {
      this.opts.metrics.streamErrors.inc({ reason: 'stream_error' });
      end(`stream error: ${err.message}`);
    });
    call.on('close', () => end('closed'));
  }

  /** Listen on host:port (port 0 picks one). Resolves to the bound port. */
  listen(address: string): Promise<number> {
    const tls = this.opts.tls;
    const host = address.slice(0, Math.max(0, address.lastIndexOf(':'))).replace(/^\[|\]$/g, '');
    if (!tls && !LOOPBACK.test(host))
      this.opts.log.warn(
        { address },
        'ADS is plaintext and unauthenticated on a non-loopback address: anyone who reaches it is served any Gateway, TLS keys included; use --xds-tls-cert, --xds-tls-key and --xds-client-ca',
      );
    const creds = tls
      ? grpc.ServerCredentials.createSsl(tls.clientCa, [{ cert_chain: tls.cert, private_key: tls.key }], true)
      : grpc.ServerCredentials.createInsecure();
    return new Promise((resolve, reject) => {
      this.server.bindAsync(address, creds, (err, port) => {
        if (err) return reject(err);
        this.port = port;
        this.bound.push(`${address.slice(0, address.lastIndexOf(':'))}:${port}`);
        resolve(port);
      });
    });
  }

  private readonly bound: string[] = [];

  /**
   * Graceful shutdown, first step: no new connections (an Envoy connecting now goes to
   * another replica); the streams open keep being served until `close`.
   */
  stopAccepting(): void {
    for (const b of this.bound.splice(0)) {
      try {
        this.server.unbind(b);
      } catch (err) {
        this.opts.log.warn({ err, address: b }, 'ADS: could not stop listening');
      }
    }
  }

  /** Stop accepting, close every stream. */
  async close(): Promise<void> {
    for (const s of [...this.sessions]) s.close('server shutdown');
    this.sessions.clear();
    await new Promise<void>((resolve) => {
      // streams the clients keep open would hold a graceful shutdown forever
      const t = setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, 1000);
      this.server.tryShutdown(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  /** Close immediately (streams reset), as a crash would. */
  forceClose(): void {
    for (const s of [...this.sessions]) s.close('server shutdown');
    this.sessions.clear();
    this.server.forceShutdown();
  }
}
