/**
 * Wire codec for the ADS messages, on the same protobufjs registry as the resources.
 * Responses carry each resource's bytes as encoded once in the cache (no re-encoding).
 */
import type protobuf from 'protobufjs';
import type { ProtoRegistry } from '../proto.js';

export interface NodeMsg {
  id?: string;
  cluster?: string;
  user_agent_name?: string;
  user_agent_version?: string;
}

export interface StatusMsg {
  code?: number;
  message?: string;
}

export interface DiscoveryRequest {
  version_info: string;
  node?: NodeMsg | null;
  resource_names: string[];
  type_url: string;
  response_nonce: string;
  error_detail?: StatusMsg | null;
}

export interface DeltaDiscoveryRequest {
  node?: NodeMsg | null;
  type_url: string;
  resource_names_subscribe: string[];
  resource_names_unsubscribe: string[];
  initial_resource_versions: Record<string, string>;
  response_nonce: string;
  error_detail?: StatusMsg | null;
}

export interface AnyMsg {
  type_url: string;
  value: Uint8Array;
}

export interface DiscoveryResponse {
  version_info: string;
  resources: AnyMsg[];
  type_url: string;
  nonce: string;
  control_plane?: { identifier: string };
}

export interface DeltaResourceMsg {
  name: string;
  version: string;
  resource: AnyMsg;
}

export interface DeltaDiscoveryResponse {
  system_version_info: string;
  resources: DeltaResourceMsg[];
  type_url: string;
  removed_resources: string[];
  nonce: string;
  control_plane?: { identifier: string };
}

export class AdsCodec {
  readonly req: protobuf.Type;
  readonly res: protobuf.Type;
  readonly dreq: protobuf.Type;
  readonly dres: protobuf.Type;

  constructor(reg: ProtoRegistry) {
    this.req = reg.type('envoy.service.discovery.v3.DiscoveryRequest');
    this.res = reg.type('envoy.service.discovery.v3.DiscoveryResponse');
    this.dreq = reg.type('envoy.service.discovery.v3.DeltaDiscoveryRequest');
    this.dres = reg.type('envoy.service.discovery.v3.DeltaDiscoveryResponse');
  }

  decodeRequest = (b: Buffer): DiscoveryRequest => this.req.decode(b) as unknown as DiscoveryRequest;
  encodeRequest = (m: Partial<DiscoveryRequest>): Buffer =>
    Buffer.from(this.req.encode(this.req.fromObject(m as Record<string, unknown>)).finish());
  decodeResponse = (b: Buffer): DiscoveryResponse => this.res.decode(b) as unknown as DiscoveryResponse;
  encodeResponse = (m: DiscoveryResponse): Buffer => Buffer.from(this.res.encode(m).finish());

  decodeDeltaRequest = (b: Buffer): DeltaDiscoveryRequest =>
    this.dreq.decode(b) as unknown as DeltaDiscoveryRequest;
  encodeDeltaRequest = (m: Partial<DeltaDiscoveryRequest>): Buffer =>
    Buffer.from(this.dreq.encode(this.dreq.fromObject(m as Record<string, unknown>)).finish());
  decodeDeltaResponse = (b: Buffer): DeltaDiscoveryResponse =>
    this.dres.decode(b) as unknown as DeltaDiscoveryResponse;
  encodeDeltaResponse = (m: DeltaDiscoveryResponse): Buffer => Buffer.from(this.dres.encode(m).finish());
}

export const ADS_SERVICE = 'envoy.service.discovery.v3.AggregatedDiscoveryService';
export const SOTW_PATH = `/${ADS_SERVICE}/StreamAggregatedResources`;
export const DELTA_PATH = `/${ADS_SERVICE}/DeltaAggregatedResources`;
