/**
 * Envoy bootstrap that connects stock Envoy to signalbox over ADS.
 *
 * Node grouping rule: an Envoy's `node.cluster` is `<namespace>/<gateway-name>` of the
 * Gateway whose config it serves; `node.id` is unique per Envoy instance. signalbox keeps
 * one snapshot per group and serves it to every node of the group.
 *
 * With `tls`, the xDS connection is mTLS: Envoy presents the Gateway's client certificate
 * (from `signalbox certs --gateway <namespace>/<name>`), trusts only the signalbox CA, and
 * checks that the server certificate names the address it dials (or `serverName`).
 */
import { isIP } from 'node:net';
import { stringify } from 'yaml';

export interface BootstrapTls {
  /** PEM client certificate, its key and the CA, as paths Envoy will read */
  cert: string;
  key: string;
  ca: string;
  /** the name the server certificate must carry (SNI and SAN check); default: the xDS host */
  serverName?: string;
}

export interface BootstrapOptions {
  nodeId: string;
  /** `<namespace>/<gateway-name>` */
  group: string;
  xdsHost?: string;
  xdsPort: number;
  adminPort: number;
  /** state of the world (GRPC) or incremental (DELTA_GRPC) */
  delta?: boolean;
  /** mTLS to signalbox (see BootstrapTls); without it the xDS connection is plaintext */
  tls?: BootstrapTls;
  /**
   * where signalbox's readiness prober reaches this Envoy's listeners (an IP or host name),
   * when not at the peer address of its ADS stream (NAT, a proxy, a Service in front)
   */
  probeAddress?: string;
}

/** Node metadata key of the probe address (`signalbox bootstrap --probe-address`). */
export const PROBE_ADDRESS_KEY = 'signalbox.dev/probe-address';

/** envoy.transport_sockets.tls for the xDS cluster: client certificate, CA, server name check. */
export function xdsTransportSocket(t: BootstrapTls, host: string): Record<string, unknown> {
  const name = t.serverName ?? host;
  const ip = isIP(name) !== 0;
  return {
    name: 'envoy.transport_sockets.tls',
    typed_config: {
      '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
      // SNI carries host names only
      ...(ip ? {} : { sni: name }),
      common_tls_context: {
        alpn_protocols: ['h2'],
        tls_certificates: [{ certificate_chain: { filename: t.cert }, private_key: { filename: t.key } }],
        validation_context: {
          trusted_ca: { filename: t.ca },
          match_typed_subject_alt_names: [{ san_type: ip ? 'IP_ADDRESS' : 'DNS', matcher: { exact: name } }],
        },
      },
    },
  };
}

export function bootstrapConfig(o: BootstrapOptions): Record<string, unknown> {
  const ads = { ads: {}, resource_api_version: 'V3' };
  const host = o.xdsHost ?? '127.0.0.1';
  return {
    node: {
      id: o.nodeId,
      cluster: o.group,
      ...(o.probeAddress ? { metadata: { [PROBE_ADDRESS_KEY]: o.probeAddress } } : {}),
    },
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: o.adminPort } } },
    dynamic_resources: {
      ads_config: {
        api_type: o.delta ? 'DELTA_GRPC' : 'GRPC',
        transport_api_version: 'V3',
        set_node_on_first_message_only: true,
        grpc_services: [{ envoy_grpc: { cluster_name: 'signalbox_xds' } }],
      },
      cds_config: ads,
      lds_config: ads,
    },
    static_resources: {
      clusters: [
        {
          name: 'signalbox_xds',
          // a DNS name (the in-cluster Service) is resolved; an IP is used as it is
          type: isIP(host) ? 'STATIC' : 'STRICT_DNS',
          connect_timeout: '1s',
          typed_extension_protocol_options: {
            'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
              '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
              explicit_http_config: { http2_protocol_options: {} },
            },
          },
          load_assignment: {
            cluster_name: 'signalbox_xds',
            endpoints: [
              {
                lb_endpoints: [
                  {
                    endpoint: {
                      address: {
                        socket_address: { address: host, port_value: o.xdsPort },
                      },
                    },
                  },
                ],
              },
            ],
          },
          ...(o.tls ? { transport_socket: xdsTransportSocket(o.tls, host) } : {}),
        },
      ],
    },
  };
}

export function bootstrapYaml(o: BootstrapOptions): string {
  return stringify(bootstrapConfig(o));
}
