/** Hostnames: validation, matching and the intersection of a route's and a listener's. */

const LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** undefined if `h` is a valid Gateway API hostname (RFC 1123, optional leading `*.`, no IPs). */
export function hostnameError(h: unknown): string | undefined {
  if (typeof h !== 'string' || h === '') return 'hostname must be a non-empty string';
  if (h.length > 253) return 'hostname longer than 253 characters';
  const body = h.startsWith('*.') ? h.slice(2) : h;
  if (/^[0-9.]+$/.test(body) || body.includes(':')) return `hostname "${h}" is an IP address`;
  const labels = body.split('.');
  for (const l of labels) {
    if (l.length > 63 || !LABEL.test(l)) return `hostname "${h}" is not a valid RFC 1123 hostname`;
  }
  return undefined;
}

export const isWildcard = (h: string) => h.startsWith('*.');

/** Does hostname pattern `pattern` (exact or `*.suffix`) match the hostname (or pattern) `h`? */
export function covers(pattern: string, h: string): boolean {
  if (!isWildcard(pattern)) return pattern === h;
  const suffix = pattern.slice(1); // ".example.com"
  if (isWildcard(h)) return h === pattern || h.slice(1).endsWith(suffix);
  return h.endsWith(suffix) && h.length > suffix.length;
}

/**
 * The hostnames a route serves on a listener: the intersection of the route's hostnames and
 * the listener's hostname (empty listener hostname: any). Empty result: no intersection.
 */
export function intersect(listenerHostname: string | undefined, routeHostnames: string[]): string[] {
  const L = listenerHostname || undefined;
  if (routeHostnames.length === 0) return [L ?? '*'];
  if (!L) return [...routeHostnames];
  const out: string[] = [];
  for (const h of routeHostnames) {
    if (covers(L, h)) out.push(h);
    else if (covers(h, L)) out.push(L);
  }
  return [...new Set(out)];
}

/**
 * Specificity of a listener hostname, for listener isolation: exact beats wildcard beats
 * none; among wildcards, more labels win.
 */
export function specificity(h: string | undefined): number {
  if (!h) return 0;
  if (isWildcard(h)) return 1 + h.split('.').length;
  return 1000;
}
