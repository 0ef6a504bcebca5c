/**
 * Envoy bootstrap that connects stock Envoy to signalbox over ADS.
 *
 * Node grouping rule: an Envoy's `node.cluster` is `<namespace>/<gateway-name>` of the
 * Gateway whose config it serves; `node.id` is unique per Envoy instance. signalbox keeps
 * one snapshot per group and serves it to every node of the group.
 */
import { stringify } from 'yaml';

export interface BootstrapOptions {
  nodeId: string;
  /** `<namespace>/<gateway-name>` */
  group: string;
  xdsHost?: string;
  xdsPort: number;
  adminPort: number;
  /** state of the world (GRPC) or incremental (DELTA_GRPC) */
  delta?: boolean;
}

export function bootstrapConfig(o: BootstrapOptions): Record<string, unknown> {
  const ads = { ads: {}, resource_api_version: 'V3' };
  return {
    node: { id: o.nodeId, cluster: o.group },
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
          type: 'STATIC',
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
                        socket_address: { address: o.xdsHost ?? '127.0.0.1', port_value: o.xdsPort },
                      },
                    },
                  },
                ],
              },
            ],
          },
        },
      ],
    },
  };
}

export function bootstrapYaml(o: BootstrapOptions): string {
  return stringify(bootstrapConfig(o));
}
