/** IR clusters → Envoy Cluster (EDS over ADS) and ClusterLoadAssignment JSON; IR secrets → Secret. */
import type { IRCluster, IRSecret } from '../../gatewayapi/ir.js';
import type { JsonObject } from '../proto.js';

export function envoyCluster(c: IRCluster): JsonObject {
  const out: JsonObject = {
    name: c.name,
    type: 'EDS',
    eds_cluster_config: { eds_config: { ads: {}, resource_api_version: 'V3' } },
    connect_timeout: '5s',
    lb_policy: 'ROUND_ROBIN',
  };
  if (c.protocol === 'h2c') {
    out.typed_extension_protocol_options = {
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
        '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
        explicit_http_config: { http2_protocol_options: {} },
      },
    };
  }
  return out;
}

export function envoyLoadAssignment(c: IRCluster): JsonObject {
  const out: JsonObject = { cluster_name: c.name };
  if (c.endpoints.length) {
    out.endpoints = [
      {
        lb_endpoints: c.endpoints.map((e) => ({
          endpoint: { address: { socket_address: { address: e.address, port_value: e.port } } },
        })),
      },
    ];
  }
  return out;
}

export function envoySecret(s: IRSecret): JsonObject {
  return {
    name: s.name,
    tls_certificate: {
      certificate_chain: { inline_string: s.certPem },
      private_key: { inline_string: s.keyPem },
    },
  };
}
