/**
 * Input object types. The Gateway API kinds are generated from the CRD schemas of
 * sigs.k8s.io/gateway-api (scripts/gatewayapi-types.mjs → src/generated/gatewayapi); the
 * aliases below name their nested parts. Core kinds (Service, EndpointSlice, Secret,
 * Namespace) are the few fields the translator reads.
 */
import type {
  Gateway as GenGateway,
  GatewayClass as GenGatewayClass,
  GRPCRoute as GenGRPCRoute,
  HTTPRoute as GenHTTPRoute,
  HTTPRouteExperimental as GenHTTPRouteExperimental,
  ReferenceGrant as GenReferenceGrant,
} from '../generated/gatewayapi/index.js';

export const GATEWAY_GROUP = 'gateway.networking.k8s.io';
export const DEFAULT_CONTROLLER = 'signalbox.dev/gateway-controller';

export interface ObjectMeta {
  name?: string;
  namespace?: string;
  generation?: number;
  creationTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  resourceVersion?: string;
  uid?: string;
}

/** Every object carries apiVersion/kind/metadata; we treat them loosely until validated. */
export interface KObject {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
  spec?: unknown;
  status?: unknown;
  data?: Record<string, string>;
  [k: string]: unknown;
}

type WithMeta<T> = Omit<T, 'metadata'> & { metadata: ObjectMeta };

export type GatewayClass = WithMeta<GenGatewayClass>;
export type Gateway = WithMeta<GenGateway>;
export type HTTPRoute = WithMeta<GenHTTPRoute>;
export type GRPCRoute = WithMeta<GenGRPCRoute>;
export type ReferenceGrant = WithMeta<GenReferenceGrant>;

export type Listener = Gateway['spec']['listeners'][number];
export type AllowedRoutes = NonNullable<Listener['allowedRoutes']>;
export type CertificateRef = NonNullable<NonNullable<Listener['tls']>['certificateRefs']>[number];
export type ParentRef = NonNullable<HTTPRoute['spec']['parentRefs']>[number];
export type HTTPRouteRule = NonNullable<HTTPRoute['spec']['rules']>[number];
export type HTTPRouteMatch = NonNullable<HTTPRouteRule['matches']>[number];
export type HTTPRouteFilter = NonNullable<HTTPRouteRule['filters']>[number];
export type HTTPBackendRef = NonNullable<HTTPRouteRule['backendRefs']>[number];
export type HTTPHeaderModifier = NonNullable<HTTPRouteFilter['requestHeaderModifier']>;
export type HTTPRequestRedirect = NonNullable<HTTPRouteFilter['requestRedirect']>;
export type HTTPURLRewrite = NonNullable<HTTPRouteFilter['urlRewrite']>;
export type HTTPRequestMirror = NonNullable<HTTPRouteFilter['requestMirror']>;
export type HTTPCORS = NonNullable<HTTPRouteFilter['cors']>;
/** rules[].retry is in the experimental channel only */
export type HTTPRouteRetry = NonNullable<
  NonNullable<GenHTTPRouteExperimental['spec']['rules']>[number]['retry']
>;
export type GRPCRouteRule = NonNullable<GRPCRoute['spec']['rules']>[number];
export type GRPCRouteMatch = NonNullable<GRPCRouteRule['matches']>[number];
export type GRPCRouteFilter = NonNullable<GRPCRouteRule['filters']>[number];
export type GRPCBackendRef = NonNullable<GRPCRouteRule['backendRefs']>[number];

export interface ServicePort {
  name?: string;
  port: number;
  targetPort?: number | string;
  protocol?: string;
  appProtocol?: string;
}
export interface Service {
  kind: 'Service';
  metadata: ObjectMeta;
  spec?: { type?: string; ports?: ServicePort[]; clusterIP?: string; externalName?: string };
}
export interface EndpointSlice {
  kind: 'EndpointSlice';
  metadata: ObjectMeta;
  addressType?: string;
  endpoints?: {
    addresses?: string[];
    conditions?: { ready?: boolean | null; serving?: boolean | null; terminating?: boolean | null };
    hostname?: string;
    zone?: string;
  }[];
  ports?: { name?: string; port?: number; protocol?: string; appProtocol?: string }[];
}
export interface Secret {
  kind: 'Secret';
  metadata: ObjectMeta;
  type?: string;
  data?: Record<string, string>;
  stringData?: Record<string, string>;
}
export interface Namespace {
  kind: 'Namespace';
  metadata: ObjectMeta;
}

/** A namespaced object key as the spec spells references: `<namespace>/<name>`. */
export function key(ns: string | undefined, name: string | undefined): string {
  return `${ns ?? ''}/${name ?? ''}`;
}
