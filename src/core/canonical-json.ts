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

/**
 * The fast path. The runtime's `JSON.stringify` writes exactly the canonical text — the same
 * escapes, the same numbers once they are safe integers — except for key order: it writes an
 * object's keys in the object's own order. So `prepare` walks the value once, refuses (with
 * SLOW) anything the spec forbids or this path cannot express, and returns the value itself
 * where every object's own key order is already sorted, or a copy whose objects receive their
 * keys in sorted order; one native `JSON.stringify` then writes it. Sorting is the costly part
 * of the walk (an event's dozen top-level keys sort in a quarter of the time `JSON.stringify`
 * takes to write the whole event), and objects of the same key list recur (every event has the
 * same top-level keys), so each key list's order is computed once and kept (`shapeOf`).
 *
 * SLOW hands the value to the general path below (`check`, then a sorting serialiser), which
 * throws the precise error or, for what the fast path merely cannot express (a copy of an
 * object with array-index keys, which engines always enumerate first), encodes it.
 */
const SLOW: unique symbol = Symbol('slow');

/** What is known about one list of keys, in the order an object enumerates them. */
interface Shape {
  readonly keys: readonly string[];
  /** The top-level keys left out (`canonicalJsonWithout`), or undefined. */
  readonly omit: ReadonlySet<string> | undefined;
  /** The keys written, in canonical order (code-point order; `keys` itself when already sorted and none is left out). */
  readonly order: readonly string[];
  /** Whether `order` is `keys` itself: the object can be written as it is. */
  readonly sorted: boolean;
  /**
   * A copy can be made in `order`: no key is an array index (engines enumerate those first,
   * whatever the insertion order) and none is `__proto__` (an assignment would set the
   * prototype). Checked conservatively: a key starting with a digit counts as an index.
   */
  readonly copyable: boolean;
}

/**
 * Known key lists, by first key. A memo of pure results, bounded (cleared when full, and a
 * few lists per first key) so that hostile input with ever-new keys costs sorting, not memory.
 */
const shapes = new Map<string, Shape[]>();
let shapeCount = 0;
const MAX_SHAPES = 2048;
const MAX_SHAPES_PER_FIRST_KEY = 16;

function shapeOf(keys: string[], omit: ReadonlySet<string> | undefined): Shape {
  const first = keys[0] as string;
  const known = shapes.get(first);
  if (known !== undefined) {
    search: for (let s = 0; s < known.length; s++) {
      const shape = known[s] as Shape;
      const list = shape.keys;
      if (list.length !== keys.length || shape.omit !== omit) continue;
      for (let i = 1; i < keys.length; i++) if (list[i] !== keys[i]) continue search;
      return shape;
    }
  }
  const shape = newShape(keys, omit);
  if (shapeCount >= MAX_SHAPES) {
    shapes.clear();
    shapeCount = 0;
  }
  const list = shapes.get(first);
  if (list === undefined) shapes.set(first, [shape]);
  else if (list.length < MAX_SHAPES_PER_FIRST_KEY) list.push(shape);
  else return shape;
  shapeCount++;
  return shape;
}

function newShape(keys: string[], omit: ReadonlySet<string> | undefined): Shape {
  const kept = omit === undefined ? keys : keys.filter((key) => !omit.has(key));
  let highKey = false;
  let copyable = true;
  for (const key of kept) {
    const c = key.charCodeAt(0);
    if ((c >= 0x30 && c <= 0x39) || key === '__proto__') copyable = false;
    // Only keys holding U+D800 or above can sort differently by UTF-16 unit and by code point.
    for (let i = 0; i < key.length && !highKey; i++) if (key.charCodeAt(i) >= 0xd800) highKey = true;
  }
  const order = highKey ? kept.slice().sort(compareCodePoints) : kept.slice().sort();
  let sorted = order.length === keys.length;
  for (let i = 0; i < order.length && sorted; i++) if (order[i] !== keys[i]) sorted = false;
  return { keys, omit, order: sorted ? keys : order, sorted, copyable };
}

/** `value` itself if `JSON.stringify` writes it canonically, else a copy it does; SLOW otherwise. */
function prepare(value: unknown, strict: boolean, depth: number): unknown {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      if (strict ? !Number.isSafeInteger(value) : !Number.isFinite(value)) return SLOW;
      return value;
    case 'object': {
      if (value === null) return value;
      if (depth >= MAX_JSON_DEPTH) return SLOW;
      if (Array.isArray(value)) {
        let copy: unknown[] | undefined;
        for (let i = 0; i < value.length; i++) {
          const item: unknown = value[i];
          if (typeof item === 'string') continue;
          if (item === undefined) return SLOW;
          const ready = prepare(item, strict, depth + 1);
          if (ready === SLOW) return SLOW;
          if (ready !== item) {
            copy ??= value.slice();
            copy[i] = ready;
          }
        }
        return copy ?? value;
      }
      return prepareObject(value as Record<string, unknown>, strict, depth, undefined);
    }
    default:
      return SLOW;
  }
}

/**
 * `prepare` for an object, less the keys in `omit` (given for the top level only: the parts
 * of an event that a hash or signature leaves out), which are dropped by copying.
 */
function prepareObject(
  object: Record<string, unknown>,
  strict: boolean,
  depth: number,
  omit: ReadonlySet<string> | undefined,
): unknown {
  const proto = Object.getPrototypeOf(object);
  // At the top of `canonicalJsonWithout` the object's own keys are what counts (it is copied,
  // as destructuring would copy it); anywhere else only plain objects are JSON.
  const foreign = proto !== Object.prototype && proto !== null;
  if (foreign && omit === undefined) return SLOW;
  const keys = Object.keys(object);
  if (keys.length === 0) return foreign ? {} : object;
  if (keys.length === 1 && !foreign && (omit === undefined || !omit.has(keys[0] as string))) {
    const key = keys[0] as string;
    const item = object[key];
    if (typeof item === 'string' || item === undefined) return object;
    const ready = prepare(item, strict, depth + 1);
    if (ready === SLOW) return SLOW;
    if (ready === item) return object;
    if (key === '__proto__') return SLOW;
    const copy: Record<string, unknown> = {};
    copy[key] = ready;
    return copy;
  }
  // The shape knows which keys `omit` leaves out: no filtered copy of the key list is made.
  const shape = shapeOf(keys, omit);
  const order = shape.order;
  let copy: Record<string, unknown> | undefined;
  if (!shape.sorted || foreign) {
    if (!shape.copyable) return SLOW;
    copy = {};
  }
  for (let i = 0; i < order.length; i++) {
    const key = order[i] as string;
    const item = object[key];
    const ready = typeof item === 'string' || item === undefined ? item : prepare(item, strict, depth + 1);
    if (ready === SLOW) return SLOW;
    if (copy === undefined && ready !== item) {
      if (!shape.copyable) return SLOW;
      copy = {};
      for (let j = 0; j < i; j++) copy[order[j] as string] = object[order[j] as string];
    }
    if (copy !== undefined && ready !== undefined) copy[key] = ready;
  }
  return copy ?? object;
}

/** Encode a value as canonical JSON text. Throws `CoreError('NOT_CANONICAL')` for what the spec forbids. */
export function canonicalJson(value: unknown, options: CanonicalJsonOptions = {}): string {
  const strict = options.strict ?? true;
  return written(prepare(value, strict, 0)) ?? canonicalJsonSlow(value, strict);
}

/**
 * Canonical JSON of `object` less its top-level keys in `omit` — `canonicalJson` of the
 * object with those keys deleted, without copying it first (what a content hash, a reference
 * hash or a signature covers: an event less `signatures`, `unsigned`, …). Key orders are
 * memoised per `omit` set: pass one kept set, not a new one each call.
 */
export function canonicalJsonWithout(
  object: object,
  omit: ReadonlySet<string>,
  options: CanonicalJsonOptions = {},
): string {
  const strict = options.strict ?? true;
  if (typeof object !== 'object' || object === null || Array.isArray(object))
    return canonicalJson(object, options);
  const text = written(prepareObject(object as Record<string, unknown>, strict, 0, omit));
  if (text !== undefined) return text;
  // The general path, on the copy the fast path avoided making.
  const rest: Record<string, unknown> = {};
  for (const key of Object.keys(object)) {
    if (omit.has(key)) continue;
    const value = (object as Record<string, unknown>)[key];
    Object.defineProperty(rest, key, { value, enumerable: true, writable: true, configurable: true });
  }
  return canonicalJsonSlow(rest, strict);
}

/** The canonical text of a prepared value, or undefined when the general path must decide. */
function written(ready: unknown): string | undefined {
  if (ready === SLOW) return undefined;
  const text = JSON.stringify(ready);
  // `JSON.stringify` writes a lone surrogate as a `\udXXX` escape: then (or when the text
  // merely holds a backslash before "ud") the general path decides.
  return text.indexOf('\\ud') === -1 ? text : undefined;
}

/** The general path: a precise error for what the spec forbids, else a sorting serialiser. */
function canonicalJsonSlow(value: unknown, strict: boolean): string {
  let found = scan(value, strict, 0);
  // Something is wrong: walk again with the path, to throw the precise error.
  if (found === PROBLEM) found = check(value, strict, []) ? ASTRAL_KEY : FINE;
  return found === ASTRAL_KEY ? stringifyWith(value, { cmp: byCodePoint }) : stableStringify(value);
}

const encoder = new TextEncoder();

/**
 * UTF-8 of `text`. Canonical JSON is mostly ASCII, whose UTF-8 is one byte per code unit:
 * `encodeInto` a buffer of that size is then the whole encoding, and costs less than `encode`
 * (which sizes its own buffer); any other text is encoded again the usual way.
 */
export function utf8Bytes(text: string): Uint8Array {
  const out = new Uint8Array(text.length);
  const { read } = encoder.encodeInto(text, out);
  return read === text.length ? out : encoder.encode(text);
}

/**
 * Slabs `utf8BytesPooled` carves arrays from. 8 KiB, as Node pools its small Buffers: a kept
 * array holds at most that much alive, and a slab serves a dozen or more events' signed bytes.
 */
const SLAB_BYTES = 8192;
let slab = new Uint8Array(0);
let slabUsed = 0;

/**
 * `utf8Bytes(text)`, as a view of a shared slab rather than an array of its own (a fresh
 * ArrayBuffer per event is memory the runtime allocates outside its heap and sweeps later).
 * For bytes that are kept a while (an event's signed bytes, returned by `verifyEvent`);
 * never write into them or hand their `buffer` on.
 */
export function utf8BytesPooled(text: string): Uint8Array {
  // Text of up to a quarter slab; larger text (rare for an event) gets its own bytes.
  if (text.length * 3 > SLAB_BYTES / 4) return utf8Bytes(text);
  for (;;) {
    const { read, written } = encoder.encodeInto(text, slab.subarray(slabUsed));
    if (read === text.length) {
      const bytes = slab.subarray(slabUsed, slabUsed + written);
      // Aligned, so that no two arrays share a word.
      slabUsed += (written + 7) & ~7;
      return bytes;
    }
    // Did not fit: a new slab, which holds any text this short.
    slab = new Uint8Array(SLAB_BYTES);
    slabUsed = 0;
  }
}

/**
 * A buffer `withUtf8` encodes into, reused from call to call: a fresh `Uint8Array` per
 * signature is an ArrayBuffer the runtime allocates outside its heap and sweeps later.
 * Sized for an event (65,536 bytes at most on the wire: server-server-api.md "Size
 * limits"); larger text gets its own bytes.
 */
const SCRATCH_BYTES = 65_536;
let scratch: Uint8Array | undefined;
let lending = false;

/**
 * Calls `use` with the UTF-8 of `text` and returns its result. The bytes are lent for the
 * call only — they are overwritten afterwards — so `use` must be synchronous and keep
 * nothing (a synchronous signature or digest of them). A nested call, or text that might
 * not fit, gets bytes of its own.
 */
export function withUtf8<T>(text: string, use: (bytes: Uint8Array) => T): T {
  // A UTF-16 code unit is at most three bytes of UTF-8, so this text fits.
  if (lending || text.length * 3 > SCRATCH_BYTES) return use(utf8Bytes(text));
  scratch ??= new Uint8Array(SCRATCH_BYTES);
  const bytes = scratch;
  lending = true;
  try {
    const { written } = encoder.encodeInto(text, bytes);
    return use(bytes.subarray(0, written));
  } finally {
    lending = false;
  }
}

/** Canonical JSON as the UTF-8 bytes that are hashed and signed. */
export function canonicalJsonBytes(value: unknown, options: CanonicalJsonOptions = {}): Uint8Array {
  return utf8Bytes(canonicalJson(value, options));
}

/** `canonicalJsonWithout` as the UTF-8 bytes that are hashed and signed. */
export function canonicalJsonBytesWithout(
  object: object,
  omit: ReadonlySet<string>,
  options: CanonicalJsonOptions = {},
): Uint8Array {
  return utf8Bytes(canonicalJsonWithout(object, omit, options));
}
