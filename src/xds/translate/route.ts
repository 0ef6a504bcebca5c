/** IR route tables → Envoy RouteConfiguration JSON (proto3 JSON, snake_case). */
import type {
  IRBackend,
  IRCors,
  IRHeaderOps,
  IRRewrite,
  IRRoute,
  IRRouteTable,
  IRStringMatch,
  IRVirtualHost,
} from '../../gatewayapi/ir.js';
import { prefixStripRegex } from '../../gatewayapi/re2.js';
import type { JsonObject } from '../proto.js';

/** The weighted-cluster name that stands for invalid backendRefs: absent, so Envoy answers 500. */
export const INVALID_BACKEND_CLUSTER = 'signalbox/invalid-backend-ref';

const REDIRECT_CODE: Record<number, string> = {
  301: 'MOVED_PERMANENTLY',
  302: 'FOUND',
  303: 'SEE_OTHER',
  307: 'TEMPORARY_REDIRECT',
  308: 'PERMANENT_REDIRECT',
};

const CORS_FILTER = 'envoy.filters.http.cors';

function seconds(s: number): string {
  return `${Number(s.toFixed(3))}s`;
}

function stringMatch(m: IRStringMatch): JsonObject {
  return m.type === 'Exact' ? { exact: m.value } : { safe_regex: { regex: m.value } };
}

/**
 * Envoy reads a headers_to_add value as a format string (`%DOWNSTREAM_REMOTE_ADDRESS%` is
 * expanded, a lone `%` is refused); Gateway API values are literal, so `%` becomes `%%`.
 */
function literalHeaderValue(v: string): string {
  return v.replaceAll('%', '%%');
}

function headersToAdd(ops: IRHeaderOps | undefined): JsonObject[] {
  if (!ops) return [];
  return [
    ...ops.set.map((h) => ({
      header: { key: h.name, value: literalHeaderValue(h.value) },
      append_action: 'OVERWRITE_IF_EXISTS_OR_ADD',
    })),
    ...ops.add.map((h) => ({
      header: { key: h.name, value: literalHeaderValue(h.value) },
      append_action: 'APPEND_IF_EXISTS_OR_ADD',
    })),
  ];
}

function headerFields(prefix: 'request' | 'response', ops: IRHeaderOps | undefined): JsonObject {
  const out: JsonObject = {};
  const add = headersToAdd(ops);
  if (add.length) out[`${prefix}_headers_to_add`] = add;
  if (ops?.remove.length) out[`${prefix}_headers_to_remove`] = ops.remove;
  return out;
}

/**
 * Path rewrite (URLRewrite or RequestRedirect). ReplacePrefixMatch follows the spec's
 * table, path elements not characters: "/foo" → "/" turns "/foo/bar" into "/bar".
 */
function pathRewrite(p: NonNullable<IRRewrite['path']>, redirect: boolean): JsonObject {
  if (p.type === 'ReplaceFullPath') {
    return redirect
      ? { path_redirect: p.value }
      : { regex_rewrite: { pattern: { regex: '^/.*$' }, substitution: p.value } };
  }
  const prefix = p.prefix === '/' ? '' : p.prefix;
  const repl = p.value.replace(/\/+$/, '');
  if (repl === '')
    return { regex_rewrite: { pattern: { regex: prefixStripRegex(prefix) }, substitution: '/' } };
  if (prefix === '') return { regex_rewrite: { pattern: { regex: '^/' }, substitution: `${repl}/` } };
  return { prefix_rewrite: repl };
}

function corsPolicy(c: IRCors): JsonObject {
  const out: JsonObject = {
    '@type': 'type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy',
    allow_origin_string_match: c.allowOrigins.map((o): JsonObject =>
      o.type === 'Any'
        ? { safe_regex: { regex: '.*' } }
        : o.type === 'Exact'
          ? { exact: o.value }
          : { safe_regex: { regex: o.value } },
    ),
    max_age: String(c.maxAgeSeconds),
    // A preflight from an origin the filter does not allow is answered by Envoy (200, no
    // Access-Control-* headers), not forwarded: the route's CORS policy is the gateway's
    // to enforce, and a backend answering it could allow what the route does not.
    forward_not_matching_preflights: false,
  };
  if (c.allowMethods.length) out.allow_methods = c.allowMethods.join(',');
  if (c.allowHeaders.length) out.allow_headers = c.allowHeaders.join(',');
  if (c.exposeHeaders.length) out.expose_headers = c.exposeHeaders.join(',');
  if (c.allowCredentials) out.allow_credentials = true;
  return out;
}

function clusterWeight(b: IRBackend): JsonObject {
  return {
    name: b.cluster ?? INVALID_BACKEND_CLUSTER,
    weight: b.weight,
    ...headerFields('request', b.requestHeaders),
    ...headerFields('response', b.responseHeaders),
  };
}

export function envoyRoute(r: IRRoute): JsonObject {
  const m = r.match;
  const match: JsonObject = {};
  if (m.path.type === 'Exact') match.path = m.path.value;
  else if (m.path.type === 'Prefix') {
    if (m.path.value === '/') match.prefix = '/';
    else match.path_separated_prefix = m.path.value;
  } else match.safe_regex = { regex: m.path.value };
  const headers: JsonObject[] = m.headers.map((h) => ({ name: h.name, string_match: stringMatch(h) }));
  if (m.method) headers.unshift({ name: ':method', string_match: { exact: m.method } });
  if (headers.length) match.headers = headers;
  if (m.queryParams.length)
    match.query_parameters = m.queryParams.map((q) => ({ name: q.name, string_match: stringMatch(q) }));
  if (m.grpc) match.grpc = {};

  const out: JsonObject = { name: r.name, match };
  const a = r.action;
  if (a.type === 'redirect') {
    const rd = a.redirect;
    const red: JsonObject = { response_code: REDIRECT_CODE[rd.statusCode] };
    if (rd.scheme) red.scheme_redirect = rd.scheme;
    if (rd.hostname) red.host_redirect = rd.hostname;
    // the spec: no port in Location for http:80 and https:443
    const scheme = rd.scheme ?? (rd.listenerProtocol === 'HTTPS' ? 'https' : 'http');
    if (rd.port && !((scheme === 'http' && rd.port === 80) || (scheme === 'https' && rd.port === 443)))
      red.port_redirect = rd.port;
    if (rd.path) Object.assign(red, pathRewrite(rd.path, true));
    out.redirect = red;
  } else if (a.type === 'direct') {
    out.direct_response = { status: a.status };
  } else {
    const route: JsonObject = { cluster_not_found_response_code: 'INTERNAL_SERVER_ERROR' };
    const valid = a.backends;
    const simple =
      valid.length === 1 && valid[0].cluster && !valid[0].requestHeaders && !valid[0].responseHeaders;
    if (simple) route.cluster = valid[0].cluster!;
    else {
      // several invalid backendRefs share one absent cluster name (Envoy needs unique names)
      const merged: IRBackend[] = [];
      let invalid = 0;
      for (const b of valid) {
        if (b.cluster) merged.push(b);
        else invalid += b.weight;
      }
      if (invalid > 0) merged.push({ weight: invalid });
      route.weighted_clusters = { clusters: merged.map(clusterWeight) };
    }
    if (r.timeoutSeconds !== undefined) route.timeout = seconds(r.timeoutSeconds);
    if (r.backendTimeoutSeconds !== undefined && r.timeoutSeconds === undefined && !r.retry) {
      route.timeout = seconds(r.backendTimeoutSeconds);
    }
    if (r.retry || r.backendTimeoutSeconds !== undefined) {
      const rp: JsonObject = { num_retries: r.retry?.attempts ?? 0 };
      if (r.retry) {
        // connection-level failures are always retriable; status codes when listed
        rp.retry_on = [
          'connect-failure',
          'refused-stream',
          'reset',
          ...(r.retry.codes.length ? ['retriable-status-codes'] : []),
        ].join(',');
        if (r.retry.codes.length) rp.retriable_status_codes = r.retry.codes;
        if (r.retry.backoffSeconds) rp.retry_back_off = { base_interval: seconds(r.retry.backoffSeconds) };
      }
      if (r.backendTimeoutSeconds !== undefined) rp.per_try_timeout = seconds(r.backendTimeoutSeconds);
      route.retry_policy = rp;
    }
    if (r.rewrite?.hostname) route.host_rewrite_literal = r.rewrite.hostname;
    if (r.rewrite?.path) Object.assign(route, pathRewrite(r.rewrite.path, false));
    if (r.mirrors?.length) {
      route.request_mirror_policies = r.mirrors.map((mm): JsonObject =>
        mm.millionths >= 1_000_000
          ? { cluster: mm.cluster }
          : {
              cluster: mm.cluster,
              runtime_fraction: { default_value: { numerator: mm.millionths, denominator: 'MILLION' } },
            },
      );
    }
    out.route = route;
  }
  Object.assign(out, headerFields('request', r.requestHeaders), headerFields('response', r.responseHeaders));
  if (r.cors) out.typed_per_filter_config = { [CORS_FILTER]: corsPolicy(r.cors) };
  return out;
}

export function envoyVirtualHost(
  vh: IRVirtualHost,
  routeJson: (r: IRRoute) => JsonObject = envoyRoute,
): JsonObject {
  return { name: vh.name, domains: vh.domains, routes: vh.routes.map(routeJson) };
}

export function envoyRouteConfiguration(t: IRRouteTable, routeJson?: (r: IRRoute) => JsonObject): JsonObject {
  return {
    name: t.name,
    virtual_hosts: t.virtualHosts.map((vh) => envoyVirtualHost(vh, routeJson)),
    // routes to invalid backendRefs name an absent cluster on purpose (Envoy answers 500)
    validate_clusters: false,
    ignore_port_in_host_matching: true,
  };
}
