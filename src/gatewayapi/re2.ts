/**
 * Regular expressions in Gateway API are RE2, as Envoy's safe_regex is: validate them with
 * an RE2 implementation (re2-wasm, Google's RE2 compiled to WebAssembly), never JS RegExp.
 */
import { createRequire } from 'node:module';

type RE2Ctor = new (pattern: string, flags: string) => { test(s: string): boolean };
const { RE2 } = createRequire(import.meta.url)('re2-wasm') as { RE2: RE2Ctor };

/** Envoy's default program size limit is generous; we cap the pattern length instead. */
export const MAX_REGEX_LENGTH = 1024;

const cache = new Map<string, string | null>();

/** undefined when `pattern` is a valid RE2 expression, else the reason. */
export function re2Error(pattern: string): string | undefined {
  if (pattern === '') return 'empty regular expression';
  if (pattern.length > MAX_REGEX_LENGTH)
    return `regular expression longer than ${MAX_REGEX_LENGTH} characters`;
  let r = cache.get(pattern);
  if (r === undefined) {
    try {
      new RE2(pattern, 'u');
      r = null;
    } catch (err) {
      r = (err as Error).message.replace(/^Invalid regular expression: \/.*\/u: /s, '');
    }
    if (cache.size > 10_000) cache.clear();
    cache.set(pattern, r);
  }
  return r ?? undefined;
}

/** Test a string against an RE2 expression (full match, as Envoy's safe_regex does). */
export function re2FullMatch(pattern: string, s: string): boolean {
  return new RE2(`^(?:${pattern})$`, 'u').test(s);
}

/** Escape a literal for use inside an RE2 expression. */
export function re2Escape(s: string): string {
  return s.replace(/[\\^$.|?*+()[\]{}]/g, '\\$&');
}
