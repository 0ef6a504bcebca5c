/**
 * Which Gateways an ADS client may be served, from its TLS client certificate.
 *
 * A client certificate names each Gateway (node group) it may be served with a URI SAN
 * `spiffe://signalbox/gateway/<namespace>/<gateway-name>` (issued by `signalbox certs
 * --gateway <namespace>/<gateway-name>`). A node whose node.cluster is not one of them is
 * refused. The namespace is a DNS label and the name a DNS subdomain, so neither contains
 * '/' and the mapping is one to one.
 */
export const GATEWAY_URI_PREFIX = 'spiffe://signalbox/gateway/';

const LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

/** Is `g` a `<namespace>/<gateway-name>` with Kubernetes-valid names? */
export function isGatewayGroup(g: string): boolean {
  const parts = g.split('/');
  return parts.length === 2 && LABEL.test(parts[0]) && SUBDOMAIN.test(parts[1]);
}

/** The URI SAN that allows a client to be served the Gateway `<namespace>/<name>`. */
export function gatewayUri(group: string): string {
  if (!isGatewayGroup(group)) throw new Error(`"${group}" is not <namespace>/<gateway-name>`);
  return GATEWAY_URI_PREFIX + group;
}

/**
 * Split node's `subjectaltname` string ("DNS:a, URI:spiffe://..., IP Address:1.2.3.4").
 * Values with special characters are JSON-quoted by node (`URI:"a,b"`).
 */
export function parseSubjectAltName(san: string | undefined): { type: string; value: string }[] {
  const out: { type: string; value: string }[] = [];
  if (!san) return out;
  let i = 0;
  while (i < san.length) {
    const colon = san.indexOf(':', i);
    if (colon < 0) break;
    const type = san.slice(i, colon).trim();
    let j = colon + 1;
    let value: string;
    if (san[j] === '"') {
      // a JSON string: find its closing quote (skipping escapes)
      let k = j + 1;
      while (k < san.length && san[k] !== '"') k += san[k] === '\\' ? 2 : 1;
      try {
        value = JSON.parse(san.slice(j, k + 1)) as string;
      } catch {
        value = '';
      }
      j = k + 1;
    } else {
      const comma = san.indexOf(', ', j);
      const end = comma < 0 ? san.length : comma;
      value = san.slice(j, end);
      j = end;
    }
    out.push({ type, value });
    const next = san.indexOf(', ', j);
    if (next < 0) break;
    i = next + 2;
  }
  return out;
}

/** The Gateways (`<namespace>/<gateway-name>`) named by a certificate's URI SANs. */
export function groupsFromSubjectAltName(san: string | undefined): Set<string> {
  const groups = new Set<string>();
  for (const { type, value } of parseSubjectAltName(san)) {
    if (type !== 'URI' || !value.startsWith(GATEWAY_URI_PREFIX)) continue;
    const g = value.slice(GATEWAY_URI_PREFIX.length);
    if (isGatewayGroup(g)) groups.add(g);
  }
  return groups;
}
