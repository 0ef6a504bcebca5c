/**
 * Regular expressions in Gateway API are RE2, as Envoy's safe_regex is. They are judged by
 * RE2 itself, as Envoy judges them: the native/re2size addon (Debian's libre2 behind a small
 * Node-API binding, built by scripts/build-native.sh) compiles a pattern with the options
 * Envoy uses and reports RE2's error or its ProgramSize(). Envoy refuses a regex whose
 * program size exceeds the runtime key re2.max_program_size.error_level (default 100), and
 * with it the whole RouteConfiguration, so such a pattern is refused here, on its rule.
 * Syntax and matching (re2FullMatch) use re2-wasm, Google's RE2 compiled to WebAssembly.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
type RE2Ctor = new (pattern: string, flags: string) => { test(s: string): boolean };
const { RE2 } = require('re2-wasm') as { RE2: RE2Ctor };

interface Re2Size {
  /** RE2's ProgramSize() of `pattern`; throws with RE2's error text when it does not compile. */
  programSize(pattern: string): number;
}

function loadRe2Size(): Re2Size {
  const here = dirname(fileURLToPath(import.meta.url));
  const rel = 'native/re2size/build/Release/re2size.node';
  // src/gatewayapi/re2.ts and dist/src/gatewayapi/re2.js
  const candidates = [resolve(here, '../..', rel), resolve(here, '../../..', rel)];
  const file = candidates.find((f) => existsSync(f));
  if (!file)
    throw new Error(
      `signalbox: the re2size addon is not built (looked for ${candidates.join(', ')}); ` +
        'run scripts/build-native.sh (or make protos): it needs libre2-dev',
    );
  try {
    return require(file) as Re2Size;
  } catch (err) {
    throw new Error(
      `signalbox: cannot load the re2size addon ${file} (is libre2 installed?): ${(err as Error).message}`,
    );
  }
}

const re2size = loadRe2Size();

/** Envoy's default for the runtime key re2.max_program_size.error_level. */
export const MAX_PROGRAM_SIZE = 100;
/** A sanity cap before compiling at all. */
export const MAX_REGEX_LENGTH = 1024;

const cache = new Map<string, string | number>();

/** RE2's program size of `pattern`, or RE2's error text when it is not a valid expression. */
export function re2ProgramSize(pattern: string): number | string {
  let r = cache.get(pattern);
  if (r === undefined) {
    try {
      r = re2size.programSize(pattern);
    } catch (err) {
      r = (err as Error).message;
    }
    if (cache.size > 10_000) cache.clear();
    cache.set(pattern, r);
  }
  return r;
}

const syntaxCache = new Map<string, string | null>();

/** RE2's syntax verdict from re2-wasm (a newer RE2 than Debian's: `(?<name>x)`, as Envoy's, is valid). */
function syntaxError(pattern: string): string | undefined {
  let r = syntaxCache.get(pattern);
  if (r === undefined) {
    try {
      new RE2(pattern, 'u');
      r = null;
    } catch (err) {
      r = (err as Error).message.replace(/^Invalid regular expression: \/.*\/u: /s, '');
    }
    if (syntaxCache.size > 10_000) syntaxCache.clear();
    syntaxCache.set(pattern, r);
  }
  return r ?? undefined;
}

/**
 * undefined when Envoy would accept `pattern` as a safe_regex, else the reason. Validity is
 * judged by re2-wasm (whose RE2 is as recent as Envoy's), the program size by Debian's
 * libre2; a pattern only the older libre2 cannot parse (new syntax) has no size here and is
 * let through: Envoy is the judge of it (never refuse what Envoy accepts).
 */
export function re2Error(pattern: string): string | undefined {
  if (pattern === '') return 'empty regular expression';
  if (pattern.length > MAX_REGEX_LENGTH)
    return `regular expression longer than ${MAX_REGEX_LENGTH} characters`;
  const e = syntaxError(pattern);
  if (e !== undefined) return e;
  const r = re2ProgramSize(pattern);
  if (typeof r === 'string') return undefined;
  if (r > MAX_PROGRAM_SIZE)
    return `regular expression too complex for Envoy: RE2 program size ${r} exceeds the limit of ${MAX_PROGRAM_SIZE} (re2.max_program_size.error_level)`;
  return undefined;
}

/** Test a string against an RE2 expression (full match, as Envoy's safe_regex does). */
export function re2FullMatch(pattern: string, s: string): boolean {
  return new RE2(`^(?:${pattern})$`, 'u').test(s);
}

/** Escape a literal for use inside an RE2 expression. */
export function re2Escape(s: string): string {
  return s.replace(/[\\^$.|?*+()[\]{}]/g, '\\$&');
}

/** The regex_rewrite pattern that removes a matched path prefix and the slashes after it. */
export function prefixStripRegex(prefix: string): string {
  return `^${re2Escape(prefix)}/*`;
}
