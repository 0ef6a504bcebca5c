/**
 * HTTPRoute rules → IR routes. Each rule is compiled on its own: an invalid rule is left
 * out with a reason (UnsupportedValue), the others are unaffected. Invalid backendRefs
 * keep their share of traffic, answered with 500 (ResolvedRefs=False with the reason).
 */
import { resolveBackend } from './backend.js';
import type { BackendRefLike } from './backend.js';
import type {
  IRRetry,
  IRBackend,
  IRCluster,
  IRCors,
  IRMatch,
  IRMirror,
  IRRedirect,
  IRRewrite,
  IRRoute,
  IRStringMatch,
} from './ir.js';
import { hostnameError } from './hostname.js';
import type { ObjectSet } from './objects.js';
import { prefixStripRegex, re2Error, re2Escape } from './re2.js';
import {
  RuleError,
  checkHeaderName,
  checkHeaderValue,
  asList,
  headerOps,
  isPort,
  parseDuration,
  show,
} from './validate.js';
import type { HTTPRoute, HTTPRouteFilter, HTTPRouteMatch, HTTPRouteRetry, HTTPRouteRule } from './types.js';

export interface RefProblem {
  reason: string;
  message: string;
}

export interface CompiledRule {
  index: number;
  /** undefined: rule is valid and programmed */
  error?: string;
  routes: IRRoute[];
  clusters: IRCluster[];
  refProblems: RefProblem[];
}

export interface RuleContext {
  objs: ObjectSet;
  /** the port of the listener the route is attached to (redirect port default) */
  listenerPort: number;
  listenerProtocol: 'HTTP' | 'HTTPS';
}

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH']);
const REDIRECT_CODES = new Set([301, 302, 303, 307, 308]);
const MAX_MATCHES = 64;
const MAX_BACKENDS = 64;

export function compileStringMatch(
  m: { name?: unknown; type?: unknown; value?: unknown },
  what: string,
  header: boolean,
): IRStringMatch {
  const type = m?.type ?? 'Exact';
  const name = header ? checkHeaderName(m?.name, what) : checkQueryName(m?.name, what);
  if (type !== 'Exact' && type !== 'RegularExpression')
    throw new RuleError(`${what}: match type ${show(type)} is not supported`);
  if (type === 'Exact') return { name, type, value: checkHeaderValue(m?.value, what) };
  if (typeof m?.value !== 'string') throw new RuleError(`${what}: value must be a string`);
  const e = re2Error(m.value);
  if (e)
    throw new RuleError(
      `${what}: invalid RE2 regular expression ${JSON.stringify(m.value.slice(0, 80))}: ${e}`,
    );
  return { name, type, value: m.value };
}

function checkQueryName(n: unknown, what: string): string {
  if (typeof n !== 'string' || n === '' || n.length > 256 || /[\0\r\n&=#?]/.test(n)) {
    throw new RuleError(`${what}: query parameter name ${JSON.stringify(n)?.slice(0, 80)} is not valid`);
  }
  return n;
}

/** First match per name wins (the spec: later matches with the same name are ignored). */
function dedupe(list: IRStringMatch[], caseInsensitive: boolean): IRStringMatch[] {
  const seen = new Set<string>();
  return list.filter((m) => {
    const k = caseInsensitive ? m.name.toLowerCase() : m.name;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

function compileMatch(m: HTTPRouteMatch, what: string): IRMatch {
  if (m === null || typeof m !== 'object') throw new RuleError(`${what}: must be an object`);
  const p = m.path ?? { type: 'PathPrefix', value: '/' };
  const ptype = p.type ?? 'PathPrefix';
  const pvalue = p.value ?? '/';
  if (typeof pvalue !== 'string' || pvalue.length > 1024)
    throw new RuleError(`${what}.path: value must be a string of at most 1024 characters`);
  let path: IRMatch['path'];
  if (ptype === 'Exact' || ptype === 'PathPrefix') {
    if (!pvalue.startsWith('/'))
      throw new RuleError(`${what}.path: value ${JSON.stringify(pvalue.slice(0, 80))} must start with "/"`);
    if (/[?#\s]|\/\/|\/\.\.?(\/|$)/.test(pvalue) || /%2f|%5c/i.test(pvalue)) {
      throw new RuleError(
        `${what}.path: value ${JSON.stringify(pvalue.slice(0, 80))} must not contain "?", "#", whitespace, "//", "/./", "/../" or encoded slashes`,
      );
    }
    path =
      ptype === 'Exact'
        ? { type: 'Exact', value: pvalue }
        : { type: 'Prefix', value: pvalue.length > 1 ? pvalue.replace(/\/+$/, '') : '/' };
  } else if (ptype === 'RegularExpression') {
    const e = re2Error(pvalue);
    if (e)
      throw new RuleError(
        `${what}.path: invalid RE2 regular expression ${JSON.stringify(pvalue.slice(0, 80))}: ${e}`,
      );
    path = { type: 'RegularExpression', value: pvalue };
  } else {
    throw new RuleError(`${what}.path: type ${show(ptype)} is not supported`);
  }
  const headers = dedupe(
    asList<NonNullable<HTTPRouteMatch['headers']>[number]>(m.headers, `${what}.headers`).map((h, i) =>
      compileStringMatch(h, `${what}.headers[${i}]`, true),
    ),
    true,
  );
  const queryParams = dedupe(
    asList<NonNullable<HTTPRouteMatch['queryParams']>[number]>(m.queryParams, `${what}.queryParams`).map(
      (q, i) => compileStringMatch(q, `${what}.queryParams[${i}]`, false),
    ),
    false,
  );
  if (m.method !== undefined && !METHODS.has(m.method))
    throw new RuleError(`${what}.method: ${show(m.method)} is not an HTTP method`);
  return { path, headers, queryParams, method: m.method };
}

interface Filters {
  requestHeaders?: IRRoute['requestHeaders'];
  responseHeaders?: IRRoute['responseHeaders'];
  redirect?: IRRedirect;
  rewrite?: IRRewrite;
  mirrors: IRMirror[];
  cors?: IRCors;
}

function pathModifier(
  p: { type?: string; replaceFullPath?: string; replacePrefixMatch?: string } | undefined,
  what: string,
  matches: IRMatch[],
): IRRewrite['path'] {
  if (!p) return undefined;
  if (p.type === 'ReplaceFullPath') {
    if (
      typeof p.replaceFullPath !== 'string' ||
      !p.replaceFullPath.startsWith('/') ||
      /[\s?#]/.test(p.replaceFullPath) ||
      p.replaceFullPath.length > 1024
    ) {
      throw new RuleError(`${what}: replaceFullPath must be an absolute path`);
    }
    return { type: 'ReplaceFullPath', value: p.replaceFullPath };
  }
  if (p.type === 'ReplacePrefixMatch') {
    if (
      typeof p.replacePrefixMatch !== 'string' ||
      !p.replacePrefixMatch.startsWith('/') ||
      /[\s?#]/.test(p.replacePrefixMatch) ||
      p.replacePrefixMatch.length > 1024
    ) {
      throw new RuleError(`${what}: replacePrefixMatch must be an absolute path`);
    }
    if (matches.some((m) => m.path.type !== 'Prefix')) {
      throw new RuleError(
        `${what}: ReplacePrefixMatch needs every match of the rule to be of type PathPrefix`,
      );
    }
    return { type: 'ReplacePrefixMatch', value: p.replacePrefixMatch, prefix: matches[0].path.value };
  }
  throw new RuleError(`${what}: path modifier type ${show(p.type)} is not supported`);
}

const WELL_KNOWN: Record<string, number> = { http: 80, https: 443 };

function compileFilters(
  filters: HTTPRouteFilter[] | undefined,
  what: string,
  matches: IRMatch[],
  ctx: RuleContext,
  from: { kind: string; namespace: string },
  refProblems: RefProblem[],
  clusters: IRCluster[],
): Filters {
  const out: Filters = { mirrors: [] };
  const seen = new Set<string>();
  for (const [i, f] of asList<HTTPRouteFilter>(filters, `${what}.filters`).entries()) {
    const w = `${what}.filters[${i}]`;
    if (!f || typeof f !== 'object') throw new RuleError(`${w}: must be an object`);
    if (f.type !== 'RequestMirror' && seen.has(f.type))
      throw new RuleError(`${w}: filter ${f.type} appears more than once`);
    seen.add(f.type);
    switch (f.type) {
      case 'RequestHeaderModifier':
        out.requestHeaders = headerOps(f.requestHeaderModifier, `${w}.requestHeaderModifier`);
        break;
      case 'ResponseHeaderModifier':
        out.responseHeaders = headerOps(f.responseHeaderModifier, `${w}.responseHeaderModifier`);
        break;
      case 'RequestRedirect': {
        const r = f.requestRedirect ?? {};
        const code = r.statusCode ?? 302;
        if (!REDIRECT_CODES.has(code))
          throw new RuleError(`${w}: redirect statusCode ${code} is not one of 301, 302, 303, 307, 308`);
        if (r.scheme !== undefined && r.scheme !== 'http' && r.scheme !== 'https')
          throw new RuleError(`${w}: redirect scheme must be http or https`);
        if (r.hostname !== undefined && hostnameError(r.hostname))
          throw new RuleError(`${w}: ${hostnameError(r.hostname)}`);
        if (r.hostname?.startsWith('*'))
          throw new RuleError(`${w}: redirect hostname must not be a wildcard`);
        if (r.port !== undefined && !isPort(r.port))
          throw new RuleError(`${w}: redirect port must be in 1-65535`);
        const scheme = r.scheme;
        // the spec: no port given → the scheme's well-known port if a scheme is given, else the listener's
        const port = r.port ?? (scheme ? WELL_KNOWN[scheme] : ctx.listenerPort);
        out.redirect = {
          scheme,
          hostname: r.hostname,
          port,
          path: pathModifier(r.path, `${w}.path`, matches),
          statusCode: code,
          listenerProtocol: ctx.listenerProtocol,
        };
        break;
      }
      case 'URLRewrite': {
        const r = f.urlRewrite ?? {};
        if (r.hostname !== undefined && hostnameError(r.hostname))
          throw new RuleError(`${w}: ${hostnameError(r.hostname)}`);
        if (r.hostname?.startsWith('*')) throw new RuleError(`${w}: rewrite hostname must not be a wildcard`);
        out.rewrite = { hostname: r.hostname, path: pathModifier(r.path, `${w}.path`, matches) };
        break;
      }
      case 'RequestMirror': {
        const m = f.requestMirror;
        if (!m || typeof m !== 'object') throw new RuleError(`${w}: requestMirror is required`);
        let millionths = 1_000_000;
        if (m.percent !== undefined && m.fraction !== undefined)
          throw new RuleError(`${w}: only one of percent and fraction`);
        if (m.percent !== undefined) {
          if (!Number.isInteger(m.percent) || m.percent < 0 || m.percent > 100)
            throw new RuleError(`${w}: percent must be 0-100`);
          millionths = m.percent * 10_000;
        } else if (m.fraction !== undefined) {
          const den = m.fraction.denominator ?? 100;
          const num = m.fraction.numerator;
          if (!Number.isInteger(num) || !Number.isInteger(den) || den < 1 || num < 0 || num > den) {
            throw new RuleError(`${w}: fraction must have 0 <= numerator <= denominator, denominator >= 1`);
          }
          millionths = Math.round((num * 1_000_000) / den);
        }
        const b = resolveBackend(ctx.objs, m.backendRef as BackendRefLike, from, 'http');
        if (!b.ok) {
          refProblems.push({ reason: b.reason, message: `${w}: mirror ${b.message}` });
          break;
        }
        clusters.push(b.cluster);
        out.mirrors.push({ cluster: b.cluster.name, millionths });
        break;
      }
      case 'CORS':
        out.cors = compileCors(f.cors, `${w}.cors`);
        break;
      case 'ExtensionRef':
        throw new RuleError(`${w}: ExtensionRef filters are not supported`);
      default:
        throw new RuleError(`${w}: filter type ${show((f as { type?: unknown }).type)} is not supported`);
    }
  }
  if (out.redirect && out.rewrite)
    throw new RuleError(`${what}: RequestRedirect and URLRewrite cannot be used together`);
  return out;
}

function compileCors(c: HTTPRouteFilter['cors'], what: string): IRCors {
  if (!c || typeof c !== 'object') throw new RuleError(`${what}: is required`);
  const origins: IRCors['allowOrigins'] = [];
  for (const o of asList<string>(c.allowOrigins, `${what}.allowOrigins`)) {
    if (typeof o !== 'string' || o.length > 253 || /\s/.test(o))
      throw new RuleError(`${what}.allowOrigins: ${JSON.stringify(o)} is not an origin`);
    if (o === '*') origins.push({ type: 'Any', value: '*' });
    else if (o.includes('*')) {
      const value = o.split('*').map(re2Escape).join('[^/]*');
      const e = re2Error(value);
      if (e) throw new RuleError(`${what}.allowOrigins: ${JSON.stringify(o)}: ${e}`);
      origins.push({ type: 'RegularExpression', value });
    } else origins.push({ type: 'Exact', value: o });
  }
  const list = (l: unknown, name: string) => {
    if (l === undefined) return [];
    if (!Array.isArray(l)) throw new RuleError(`${what}.${name}: must be a list`);
    return l.map((x) => checkHeaderName(x === '*' ? 'x' : x, `${what}.${name}`) && String(x));
  };
  const methods = list(c.allowMethods, 'allowMethods');
  for (const m of methods)
    if (m !== '*' && !METHODS.has(m)) throw new RuleError(`${what}.allowMethods: ${m} is not an HTTP method`);
  const maxAge = c.maxAge ?? 5;
  if (!Number.isInteger(maxAge) || maxAge < 1 || maxAge > 86400 * 365)
    throw new RuleError(`${what}.maxAge: must be a positive number of seconds`);
  return {
    allowOrigins: origins,
    allowCredentials: c.allowCredentials === true,
    allowMethods: methods,
    allowHeaders: list(c.allowHeaders, 'allowHeaders'),
    exposeHeaders: list(c.exposeHeaders, 'exposeHeaders'),
    maxAgeSeconds: maxAge,
  };
}

/** Resolve a rule's backendRefs into weighted IR backends (invalid ones keep their weight). */
export function compileBackends(
  refs: (BackendRefLike & { filters?: unknown })[] | undefined,
  what: string,
  ctx: RuleContext,
  from: { kind: string; namespace: string },
  purpose: 'http' | 'grpc',
  refProblems: RefProblem[],
  clusters: IRCluster[],
): IRBackend[] {
  const out: IRBackend[] = [];
  if (refs !== undefined && !Array.isArray(refs)) throw new RuleError(`${what}.backendRefs: must be a list`);
  if ((refs ?? []).length > MAX_BACKENDS)
    throw new RuleError(`${what}.backendRefs: more than ${MAX_BACKENDS} entries`);
  for (const [i, ref] of (refs ?? []).entries()) {
    const w = `${what}.backendRefs[${i}]`;
    const weight = ref?.weight ?? 1;
    if (!Number.isInteger(weight) || weight < 0 || weight > 1_000_000)
      throw new RuleError(`${w}: weight must be an integer in 0-1000000`);
    let requestHeaders: IRBackend['requestHeaders'];
    let responseHeaders: IRBackend['responseHeaders'];
    const filters = ref?.filters;
    if (filters !== undefined) {
      if (!Array.isArray(filters)) throw new RuleError(`${w}.filters: must be a list`);
      for (const [j, f] of (
        filters as { type?: string; requestHeaderModifier?: unknown; responseHeaderModifier?: unknown }[]
      ).entries()) {
        if (f?.type === 'RequestHeaderModifier')
          requestHeaders = headerOps(f.requestHeaderModifier, `${w}.filters[${j}]`);
        else if (f?.type === 'ResponseHeaderModifier')
          responseHeaders = headerOps(f.responseHeaderModifier, `${w}.filters[${j}]`);
        else
          throw new RuleError(
            `${w}.filters[${j}]: filter type ${show(f?.type)} is not supported on a backendRef`,
          );
      }
    }
    const b = resolveBackend(ctx.objs, ref, from, purpose);
    if (!b.ok) {
      refProblems.push({ reason: b.reason, message: `${w}: ${b.message}` });
      if (weight > 0) out.push({ weight });
      continue;
    }
    clusters.push(b.cluster);
    if (weight > 0) out.push({ cluster: b.cluster.name, weight, requestHeaders, responseHeaders });
  }
  return out;
}

/** rules[].retry (experimental channel): attempts, retriable status codes, backoff. */
function compileRetry(r: HTTPRouteRetry | undefined, what: string): IRRetry | undefined {
  if (r === undefined || r === null) return undefined;
  if (typeof r !== 'object') throw new RuleError(`${what}: must be an object`);
  const attempts = r.attempts ?? 1;
  if (!Number.isInteger(attempts) || attempts < 1 || attempts > 100)
    throw new RuleError(`${what}.attempts: must be an integer in 1-100`);
  const codes = r.codes ?? [];
  if (!Array.isArray(codes) || codes.some((c) => !Number.isInteger(c) || c < 400 || c > 599)) {
    throw new RuleError(`${what}.codes: must be HTTP status codes in 400-599`);
  }
  const out: IRRetry = { attempts, codes: [...new Set(codes)].sort((a, b) => a - b) };
  if (r.backoff !== undefined) {
    const b = parseDuration(r.backoff, `${what}.backoff`);
    if (b > 0) out.backoffSeconds = b;
  }
  return out;
}

export function compileHTTPRule(
  route: HTTPRoute,
  rule: HTTPRouteRule,
  index: number,
  ctx: RuleContext,
): CompiledRule {
  const ns = route.metadata.namespace!;
  const what = `spec.rules[${index}]`;
  const refProblems: RefProblem[] = [];
  const clusters: IRCluster[] = [];
  try {
    if (!rule || typeof rule !== 'object') throw new RuleError(`${what}: must be an object`);
    const rawMatches = rule.matches ?? [{}];
    if (!Array.isArray(rawMatches)) throw new RuleError(`${what}.matches: must be a list`);
    if (rawMatches.length > MAX_MATCHES)
      throw new RuleError(`${what}.matches: more than ${MAX_MATCHES} matches`);
    const matches = (rawMatches.length ? rawMatches : [{}]).map((m, j) =>
      compileMatch(m, `${what}.matches[${j}]`),
    );
    const from = { kind: 'HTTPRoute', namespace: ns };
    const f = compileFilters(rule.filters, what, matches, ctx, from, refProblems, clusters);
    let timeoutSeconds: number | undefined;
    let backendTimeoutSeconds: number | undefined;
    if (rule.timeouts) {
      if (rule.timeouts.request !== undefined)
        timeoutSeconds = parseDuration(rule.timeouts.request, `${what}.timeouts.request`);
      if (rule.timeouts.backendRequest !== undefined) {
        backendTimeoutSeconds = parseDuration(
          rule.timeouts.backendRequest,
          `${what}.timeouts.backendRequest`,
        );
      }
      if (
        timeoutSeconds !== undefined &&
        timeoutSeconds > 0 &&
        backendTimeoutSeconds !== undefined &&
        (backendTimeoutSeconds === 0 || backendTimeoutSeconds > timeoutSeconds)
      ) {
        throw new RuleError(`${what}.timeouts: backendRequest must not be longer than request`);
      }
    }
    const retry = compileRetry((rule as { retry?: HTTPRouteRetry }).retry, `${what}.retry`);
    let action: IRRoute['action'];
    if (f.redirect) {
      if (asList(rule.backendRefs, `${what}.backendRefs`).length > 0)
        throw new RuleError(`${what}: RequestRedirect cannot be used with backendRefs`);
      action = { type: 'redirect', redirect: f.redirect };
    } else {
      const backends = compileBackends(rule.backendRefs, what, ctx, from, 'http', refProblems, clusters);
      action = backends.some((b) => b.cluster)
        ? { type: 'forward', backends }
        : { type: 'direct', status: 500 };
    }
    // ReplacePrefixMatch replaces the prefix each match matched
    const perMatch = <T extends { path?: IRRewrite['path'] }>(x: T, m: IRMatch): T =>
      x.path?.type === 'ReplacePrefixMatch' ? { ...x, path: { ...x.path, prefix: m.path.value } } : x;
    const routes: IRRoute[] = matches.map((match, j) => ({
      name: `httproute/${ns}/${route.metadata.name}/rule/${index}/match/${j}`,
      match,
      action: action.type === 'redirect' ? { ...action, redirect: perMatch(action.redirect, match) } : action,
      ...(f.requestHeaders ? { requestHeaders: f.requestHeaders } : {}),
      ...(f.responseHeaders ? { responseHeaders: f.responseHeaders } : {}),
      ...(f.rewrite ? { rewrite: perMatch(f.rewrite, match) } : {}),
      ...(f.mirrors.length ? { mirrors: f.mirrors } : {}),
      ...(f.cors ? { cors: f.cors } : {}),
      ...(retry && action.type === 'forward' ? { retry } : {}),
      ...(timeoutSeconds !== undefined ? { timeoutSeconds } : {}),
      ...(backendTimeoutSeconds !== undefined ? { backendTimeoutSeconds } : {}),
    }));
    // ReplacePrefixMatch to "/" is a regex rewrite of the matched prefix: Envoy checks its size too
    for (const r of routes) {
      for (const p of [r.rewrite?.path, r.action.type === 'redirect' ? r.action.redirect.path : undefined]) {
        if (p?.type !== 'ReplacePrefixMatch' || p.value.replace(/\/+$/, '') !== '' || p.prefix === '/')
          continue;
        const e = re2Error(prefixStripRegex(p.prefix));
        if (e)
          throw new RuleError(
            `${what}: ReplacePrefixMatch of the prefix ${JSON.stringify(p.prefix.slice(0, 80))}: ${e}`,
          );
      }
    }
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
