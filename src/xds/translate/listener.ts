/** IR ports → Envoy Listener JSON: one Listener per port; HTTPS: a filter chain per SNI. */
import type { IRPort, IRRouteTable } from '../../gatewayapi/ir.js';
import type { JsonObject } from '../proto.js';

const ADS: JsonObject = { ads: {}, resource_api_version: 'V3' };

export function listenerName(port: number): string {
  return `listener-${port}`;
}

function hcm(t: IRRouteTable, statPrefix: string): JsonObject {
  return {
    name: 'envoy.filters.network.http_connection_manager',
    typed_config: {
      '@type':
        'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
      stat_prefix: statPrefix,
      codec_type: 'AUTO',
      rds: { route_config_name: t.name, config_source: ADS },
      upgrade_configs: [{ upgrade_type: 'websocket' }],
      normalize_path: true,
      merge_slashes: false,
      http_filters: [
        {
          name: 'envoy.filters.http.cors',
          typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors' },
        },
        {
          name: 'envoy.filters.http.router',
          typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' },
        },
      ],
    },
  };
}

export function envoyListener(p: IRPort, bindAddress: string): JsonObject {
  const name = listenerName(p.port);
  const out: JsonObject = {
    name,
    address: { socket_address: { address: bindAddress, port_value: p.port } },
  };
  if (p.protocol === 'HTTP') {
    out.filter_chains = [{ name: p.tables[0].name, filters: [hcm(p.tables[0], name)] }];
    return out;
  }
  out.listener_filters = [
    {
      name: 'envoy.filters.listener.tls_inspector',
      typed_config: {
        '@type': 'type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector',
      },
    },
  ];
  out.filter_chains = p.tables.map((t) => {
    const fc: JsonObject = {
      name: t.name,
      filters: [hcm(t, `${name}-${t.listeners[0]}`)],
      transport_socket: {
        name: 'envoy.transport_sockets.tls',
        typed_config: {
          '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
          common_tls_context: {
            alpn_protocols: ['h2', 'http/1.1'],
            tls_certificate_sds_secret_configs: t.certificates.map((c) => ({ name: c, sds_config: ADS })),
          },
        },
      },
    };
    if (t.serverNames.length) fc.filter_chain_match = { server_names: t.serverNames };
    return fc;
  });
  return out;
}
