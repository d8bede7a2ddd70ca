/**
 * Canonical JSON — appendices.md "Canonical JSON".
 *
 * The shortest UTF-8 JSON with object keys sorted by Unicode code point, integers only
 * in [-(2^53)+1, 2^53-1]. Serialisation is done by `fast-json-stable-stringify`; this
 * wrapper first walks the value and rejects what the spec forbids, so a value that
 * encodes here encodes the same on every other homeserver.
 */
import stableStringify from 'fast-json-stable-stringify';
import { CoreError } from './errors.ts';

export type JsonValue = null | boolean | number | string | JsonValue[] | JsonObject;
export interface JsonObject {
  [key: string]: JsonValue;
}

export const MAX_SAFE_INTEGER = 2 ** 53 - 1;
export const MIN_SAFE_INTEGER = -(2 ** 53) + 1;
/**
 * Nesting beyond this is refused rather than risking the stack. Synapse's Python JSON
 * encoder stops near 1,000 levels too, so no event another server accepts is lost.
 */
export const MAX_JSON_DEPTH = 512;

export interface CanonicalJsonOptions {
  /**
   * Room versions 1–5 predate strict enforcement (rooms/v6.md "Canonical JSON"): their
   * events may carry floats and out-of-range integers. `strict: false` encodes those
   * as JavaScript prints them instead of rejecting them.
   */
  strict?: boolean;
}

/** Compare two strings by Unicode code point (not by UTF-16 code unit, as `<` does). */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    // Surrogates (U+D800–DFFF) encode code points above U+FFFF, so they sort after U+E000–FFFF.
    if (x >= 0xd800 && y >= 0xd800) {
      x = x >= 0xe000 ? x - 0x800 : x + 0x2000;
      y = y >= 0xe000 ? y - 0x800 : y + 0x2000;
    }
    return x - y;
  }
  return a.length - b.length;
}

const byCodePoint = (a: { key: string }, b: { key: string }) => compareCodePoints(a.key, b.key);

/**
 * A lone surrogate cannot be encoded as UTF-8: a string is encodable exactly when it is
 * well formed (ES2024 `String.prototype.isWellFormed`, in Node ≥ 20 and current browsers and
 * edge runtimes). Where a runtime lacks it, the regex answers the same: with the `u` flag
 * paired surrogates read as one astral code point, so only lone ones are in category Cs.
 */
// U+D800–U+DFFF under the u flag matches only unpaired surrogates (the class Cs); written as a
// range because engines built without ICU (StarlingMonkey, the WASI component) lack \p{…}.
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;
const wellFormed: (text: string) => boolean =
  typeof String.prototype.isWellFormed === 'function'
    ? (text) => text.isWellFormed()
    : (text) => !LONE_SURROGATE.test(text);

/** fast-json-stable-stringify accepts a comparator, which its bundled typings leave out. */
const stringifyWith = stableStringify as unknown as (
  value: unknown,
  options?: { cmp?: (a: { key: string }, b: { key: string }) => number },
) => string;

/**
 * Walks the value, throwing `NOT_CANONICAL` on anything the spec cannot encode.
 * Returns whether some object key holds a character at or above U+D800 (the only case
 * where the default UTF-16 sort may differ from code-point order). `path` holds the keys
 * and indexes leading here; it is only turned into text for an error message.
 */
function check(value: unknown, strict: boolean, path: (string | number)[]): boolean {
  switch (typeof value) {
    case 'string':
      if (!wellFormed(value))
        throw notCanonical(path, 'string has a lone surrogate (not encodable as UTF-8)');
      return false;
    case 'boolean':
      return false;
    case 'number':
      if (!Number.isFinite(value)) throw notCanonical(path, `number ${value} is not finite`);
      if (strict) {
        if (!Number.isInteger(value))
          throw notCanonical(path, `${value} is not an integer (floats are not allowed)`);
        if (value > MAX_SAFE_INTEGER || value < MIN_SAFE_INTEGER) {
          throw notCanonical(path, `integer ${value} is outside [-(2^53)+1, 2^53-1]`);
        }
      }
      return false;
    case 'object': {
      if (value === null) return false;
      if (path.length >= MAX_JSON_DEPTH) throw notCanonical(path, `nesting deeper than ${MAX_JSON_DEPTH}`);
      let astralKey = false;
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) {
          const item = value[i];
          path.push(i);
          if (item === undefined) throw notCanonical(path, 'undefined is not JSON');
          if (check(item, strict, path)) astralKey = true;
          path.pop();
        }
        return astralKey;
      }
      const proto = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) {
        throw notCanonical(path, `${proto?.constructor?.name ?? 'object'} is not a plain JSON object`);
      }
      // Object.keys, as the serialiser uses: own enumerable keys only.
      for (const key of Object.keys(value)) {
        const item = (value as Record<string, unknown>)[key];
        if (item === undefined) continue; // absent, as JSON.stringify treats it
        path.push(key);
        if (!wellFormed(key)) throw notCanonical(path, 'key has a lone surrogate');
        if (!astralKey) {
          for (let i = 0; i < key.length; i++) {
            if (key.charCodeAt(i) >= 0xd800) {
              astralKey = true;
              break;
            }
          }
        }
        if (check(item, strict, path)) astralKey = true;
        path.pop();
      }
      return astralKey;
    }
    default:
      throw notCanonical(path, `${typeof value} is not JSON`);
  }
}

/** What `scan` found: nothing to say, a key that needs code-point sorting, or a problem. */
const FINE = 0;
const ASTRAL_KEY = 1;
const PROBLEM = 2;

/**
 * `check` without the path bookkeeping, for the common case of a value that encodes: it
 * only says whether there is a problem, and `check` then walks again to say what and where.
 */
function scan(value: unknown, strict: boolean, depth: number): number {
  switch (typeof value) {
    case 'string':
      return wellFormed(value) ? FINE : PROBLEM;
    case 'boolean':
      return FINE;
    case 'number':
      if (strict ? !Number.isSafeInteger(value) : !Number.isFinite(value)) return PROBLEM;
      return FINE;
    case 'object': {
      if (value === null) return FINE;
      if (depth >= MAX_JSON_DEPTH) return PROBLEM;
      let found = FINE;
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) {
          const item = value[i];
          if (item === undefined) return PROBLEM;
          const inner = scan(item, strict, depth + 1);
          if (inner === PROBLEM) return PROBLEM;
          found |= inner;
        }
        return found;
      }
      const proto = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) return PROBLEM;
      for (const key of Object.keys(value)) {
        const item = (value as Record<string, unknown>)[key];
        if (item === undefined) continue;
        if (!wellFormed(key)) return PROBLEM;
        if (found === FINE) {
          for (let i = 0; i < key.length; i++) {
            if (key.charCodeAt(i) >= 0xd800) {
              found = ASTRAL_KEY;
              break;
            }
          }
        }
        const inner = scan(item, strict, depth + 1);
        if (inner === PROBLEM) return PROBLEM;
        found |= inner;
      }
      return found;
    }
    default:
      return PROBLEM;
  }
}

function notCanonical(path: (string | number)[], why: string): CoreError {
  if (path.length === 0) return new CoreError('NOT_CANONICAL', `not canonical JSON: ${why}`);
  const where = path
    .map((p) =>
      typeof p === 'number' ? `[${p}]` : /^[A-Za-z_$][\w$]*$/.test(p) ? `.${p}` : `[${JSON.stringify(p)}]`,
    )
    .join('');
  return new CoreError('NOT_CANONICAL', `not canonical JSON at ${where}: ${why}`);
}

/** Encode a value as canonical JSON text. Throws `CoreError('NOT_CANONICAL')` for what the spec forbids. */
export function canonicalJson(value: unknown, options: CanonicalJsonOptions = {}): string {
  const strict = options.strict ?? true;
  let found = scan(value, strict, 0);
  // Something is wrong: walk again with the path, to throw the precise error.
  if (found === PROBLEM) found = check(value, strict, []) ? ASTRAL_KEY : FINE;
  return found === ASTRAL_KEY ? stringifyWith(value, { cmp: byCodePoint }) : stableStringify(value);
}

const encoder = new TextEncoder();

/** Canonical JSON as the UTF-8 bytes that are hashed and signed. */
export function canonicalJsonBytes(value: unknown, options: CanonicalJsonOptions = {}): Uint8Array {
  return encoder.encode(canonicalJson(value, options));
}
