/**
 * GRPCRoute rules → IR routes. A gRPC method is the HTTP/2 path `/<service>/<method>`;
 * service and method matches (Exact or RegularExpression) become a path match on it.
 */
import { compileBackends, compileStringMatch } from './httproute.js';
import type { CompiledRule, RefProblem, RuleContext } from './httproute.js';
import type { IRCluster, IRMatch, IRRoute } from './ir.js';
import { re2Error, re2Escape } from './re2.js';
import type { GRPCRoute, GRPCRouteMatch, GRPCRouteRule } from './types.js';
import { RuleError, asList, headerOps, show } from './validate.js';

const SERVICE = /^[A-Za-z_][A-Za-z_0-9]*(\.[A-Za-z_][A-Za-z_0-9]*)*$/;
const METHOD = /^[A-Za-z_][A-Za-z_0-9]*$/;

function compileGRPCMatch(m: GRPCRouteMatch, what: string): IRMatch {
  if (m === null || typeof m !== 'object') throw new RuleError(`${what}: must be an object`);
  const mm = m.method;
  let path: IRMatch['path'] = { type: 'Prefix', value: '/' };
  const grpc = { serviceChars: 0, methodChars: 0 };
  if (mm) {
    grpc.serviceChars = typeof mm.service === 'string' ? mm.service.length : 0; // checked below
    grpc.methodChars = typeof mm.method === 'string' ? mm.method.length : 0;
    const type = mm.type ?? 'Exact';
    if (typeof mm !== 'object') throw new RuleError(`${what}.method: must be an object`);
    const { service, method } = mm;
    if (
      (service !== undefined && typeof service !== 'string') ||
      (method !== undefined && typeof method !== 'string')
    ) {
      throw new RuleError(`${what}.method: service and method must be strings`);
    }
    if (!service && !method) throw new RuleError(`${what}.method: one of service and method is required`);
    if (type === 'Exact') {
      if (service !== undefined && !SERVICE.test(service))
        throw new RuleError(`${what}.method.service: ${JSON.stringify(service)} is not a gRPC service name`);
      if (method !== undefined && !METHOD.test(method))
        throw new RuleError(`${what}.method.method: ${JSON.stringify(method)} is not a gRPC method name`);
      if (service && method) path = { type: 'Exact', value: `/${service}/${method}` };
      else if (service) path = { type: 'Prefix', value: `/${service}` };
      else path = { type: 'RegularExpression', value: `/[^/]+/${re2Escape(method!)}` };
    } else if (type === 'RegularExpression') {
      for (const [n, v] of [
        ['service', service],
        ['method', method],
      ] as const) {
        if (v !== undefined) {
          const e = re2Error(v);
          if (e)
            throw new RuleError(
              `${what}.method.${n}: invalid RE2 regular expression ${JSON.stringify(v.slice(0, 80))}: ${e}`,
            );
        }
      }
      path = { type: 'RegularExpression', value: `/(?:${service || '[^/]+'})/(?:${method || '[^/]+'})` };
    } else {
      throw new RuleError(`${what}.method: type ${show(type)} is not supported`);
    }
    // the path regex Envoy gets (service and method together) must pass its program size check
    if (path.type === 'RegularExpression') {
      const e = re2Error(path.value);
      if (e)
        throw new RuleError(
          `${what}.method: path regular expression ${JSON.stringify(path.value.slice(0, 80))}: ${e}`,
        );
    }
  }
  const seen = new Set<string>();
  const headers = asList<NonNullable<GRPCRouteMatch['headers']>[number]>(m.headers, `${what}.headers`)
    .map((h, i) => compileStringMatch(h, `${what}.headers[${i}]`, true))
    .filter((h) => (seen.has(h.name) ? false : (seen.add(h.name), true)));
  return { path, headers, queryParams: [], grpc };
}

export function compileGRPCRule(
  route: GRPCRoute,
  rule: GRPCRouteRule,
  index: number,
  ctx: RuleContext,
): CompiledRule {
  const ns = route.metadata.namespace!;
  const what = `spec.rules[${index}]`;
  const refProblems: RefProblem[] = [];
  const clusters: IRCluster[] = [];
  try {
    if (!rule || typeof rule !== 'object') throw new RuleError(`${what}: must be an object`);
    const raw = rule.matches ?? [{}];
    if (!Array.isArray(raw) || raw.length > 64)
      throw new RuleError(`${what}.matches: must be a list of at most 64`);
    const matches = (raw.length ? raw : [{}]).map((m, j) => compileGRPCMatch(m, `${what}.matches[${j}]`));
    const from = { kind: 'GRPCRoute', namespace: ns };
    let requestHeaders: IRRoute['requestHeaders'];
    let responseHeaders: IRRoute['responseHeaders'];
    const mirrors: NonNullable<IRRoute['mirrors']> = [];
    const seen = new Set<string>();
    for (const [i, f] of asList<NonNullable<GRPCRouteRule['filters']>[number]>(
      rule.filters,
      `${what}.filters`,
    ).entries()) {
      const w = `${what}.filters[${i}]`;
      if (f?.type !== 'RequestMirror' && seen.has(show(f?.type)))
        throw new RuleError(`${w}: filter ${f?.type} appears more than once`);
      seen.add(show(f?.type));
      if (f?.type === 'RequestHeaderModifier')
        requestHeaders = headerOps(f.requestHeaderModifier, `${w}.requestHeaderModifier`);
      else if (f?.type === 'ResponseHeaderModifier')
        responseHeaders = headerOps(f.responseHeaderModifier, `${w}.responseHeaderModifier`);
      else if (f?.type === 'RequestMirror') {
        const b = compileBackends(
          [f.requestMirror?.backendRef as never],
          w,
          ctx,
          from,
          'grpc',
          refProblems,
          clusters,
        );
        if (b[0]?.cluster) mirrors.push({ cluster: b[0].cluster, millionths: 1_000_000 });
      } else throw new RuleError(`${w}: filter type ${show(f?.type)} is not supported`);
    }
    const backends = compileBackends(rule.backendRefs, what, ctx, from, 'grpc', refProblems, clusters);
    const action: IRRoute['action'] = backends.some((b) => b.cluster)
      ? { type: 'forward', backends }
      : { type: 'direct', status: 500 };
    const routes: IRRoute[] = matches.map((match, j) => ({
      name: `grpcroute/${ns}/${route.metadata.name}/rule/${index}/match/${j}`,
      match,
      action,
      ...(requestHeaders ? { requestHeaders } : {}),
      ...(responseHeaders ? { responseHeaders } : {}),
      ...(mirrors.length ? { mirrors } : {}),
    }));
    return { index, routes, clusters, refProblems };
  } catch (err) {
    // anything else is a malformed value we did not foresee: the rule is dropped all the same
    const message =
      err instanceof RuleError
        ? err.message
        : `${what}: internal error on a malformed value (${String(err)})`;
    return { index, error: message, routes: [], clusters: [], refProblems };
  }
}
