/**
 * The intermediate representation: what each Gateway's data plane must do, with no Envoy
 * types. src/xds/translate turns it into Envoy resources.
 */

export interface IR {
  gateways: IRGateway[];
}

export interface IRGateway {
  namespace: string;
  name: string;
  /** node group: `<namespace>/<name>` */
  group: string;
  /**
   * the address its listeners bind when the Gateway has its own (a local Envoy, see
   * TranslateOptions.gatewayAddresses); otherwise the bind address given to src/xds/translate
   */
  address?: string;
  /** one entry per port, sorted by port */
  ports: IRPort[];
  clusters: IRCluster[];
  secrets: IRSecret[];
}

export interface IRPort {
  port: number;
  protocol: 'HTTP' | 'HTTPS';
  /** HTTP: one table for the port; HTTPS: one per Gateway listener (SNI) */
  tables: IRRouteTable[];
}

export interface IRRouteTable {
  /** unique in the Gateway: route configuration name */
  name: string;
  /** Gateway listener names served by this table */
  listeners: string[];
  /** HTTPS: SNI server names (empty: any) */
  serverNames: string[];
  /** HTTPS: secret names (certificates) */
  certificates: string[];
  virtualHosts: IRVirtualHost[];
}

export interface IRVirtualHost {
  name: string;
  domains: string[];
  routes: IRRoute[];
}

export type IRPathMatch =
  | { type: 'Exact'; value: string }
  | { type: 'Prefix'; value: string }
  | { type: 'RegularExpression'; value: string };

export interface IRStringMatch {
  name: string;
  type: 'Exact' | 'RegularExpression';
  value: string;
}

export interface IRMatch {
  path: IRPathMatch;
  headers: IRStringMatch[];
  queryParams: IRStringMatch[];
  method?: string;
  /** gRPC: only requests with a gRPC content-type; characters of the service and method matched (precedence) */
  grpc?: { serviceChars: number; methodChars: number };
}

export interface IRHeaderOps {
  set: { name: string; value: string }[];
  add: { name: string; value: string }[];
  remove: string[];
}

export interface IRBackend {
  /** cluster name; undefined: invalid backend (its share answers 500) */
  cluster?: string;
  weight: number;
  requestHeaders?: IRHeaderOps;
  responseHeaders?: IRHeaderOps;
}

export interface IRRedirect {
  scheme?: string;
  hostname?: string;
  port?: number;
  path?:
    | { type: 'ReplaceFullPath'; value: string }
    | { type: 'ReplacePrefixMatch'; value: string; prefix: string };
  statusCode: number;
  /** protocol of the listener (the scheme when none is given) */
  listenerProtocol: 'HTTP' | 'HTTPS';
}

export interface IRRewrite {
  hostname?: string;
  path?:
    | { type: 'ReplaceFullPath'; value: string }
    | { type: 'ReplacePrefixMatch'; value: string; prefix: string };
}

export interface IRMirror {
  cluster: string;
  /** fraction of requests mirrored, in millionths */
  millionths: number;
}

export interface IRCors {
  allowOrigins: { type: 'Exact' | 'RegularExpression' | 'Any'; value: string }[];
  allowCredentials: boolean;
  allowMethods: string[];
  allowHeaders: string[];
  exposeHeaders: string[];
  maxAgeSeconds: number;
}

export interface IRRoute {
  /** deterministic: `<kind>/<ns>/<name>/rule/<i>/match/<j>` */
  name: string;
  match: IRMatch;
  action:
    | { type: 'forward'; backends: IRBackend[] }
    | { type: 'redirect'; redirect: IRRedirect }
    | { type: 'direct'; status: number; body?: string };
  requestHeaders?: IRHeaderOps;
  responseHeaders?: IRHeaderOps;
  rewrite?: IRRewrite;
  mirrors?: IRMirror[];
  cors?: IRCors;
  retry?: IRRetry;
  /** seconds; 0 disables */
  timeoutSeconds?: number;
  backendTimeoutSeconds?: number;
}

export interface IRRetry {
  attempts: number;
  codes: number[];
  backoffSeconds?: number;
}

export interface IREndpoint {
  address: string;
  port: number;
  /** ready endpoints are used; serving-but-terminating ones only when none is ready */
  ready: boolean;
}

export interface IRCluster {
  /** `<ns>/<service>/<port>` (suffixed `/grpc` for gRPC traffic) */
  name: string;
  protocol: 'http1' | 'h2c';
  endpoints: IREndpoint[];
}

export interface IRSecret {
  /** `<ns>/<secret>` */
  name: string;
  certPem: string;
  keyPem: string;
}
