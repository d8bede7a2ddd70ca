/**
 * A small typed validator set for request bodies (`v`), query strings (`q`) and path
 * parameters — client-server-api/_index.md "Common error codes" / "Other error codes":
 *
 * - body: wrong type or value → 400 `M_BAD_JSON`; required key absent → 400 `M_MISSING_PARAM`;
 * - query and path: bad value → 400 `M_INVALID_PARAM`; required parameter absent →
 *   400 `M_MISSING_PARAM`.
 *
 * Each validator returns a fresh, typed value or throws a `MatrixError` whose message names the
 * field (`"initial_state[2].type": expected a string, got number`). Validators recurse only as
 * deep as the schema is written, never as deep as the input: `v.json()` accepts any value
 * without walking it (the router has already bounded its depth), so hostile nesting costs
 * nothing here.
 */
import type { JsonObject, JsonValue } from '../core/canonical-json.ts';
import { isJsonDecodeError, type JsonDecodeReason, parseJson } from '../core/json.ts';
import { badJson, invalidParam, missingParam } from '../homeserver/errors.ts';

/** Where the value came from; decides the errcode and wording of failures. */
export type Source = 'body' | 'query' | 'path';

export interface Validator<T> {
  /** What the validator wants, for messages: "a string", "an integer from 0 to 100". */
  readonly expected: string;
  /** `value` is `undefined` when the key is absent. Throws a `MatrixError` on bad input. */
  parse(value: unknown, path: string, source: Source): T;
  /** Set by `v.optional`: an absent key is allowed (the key stays absent from the result). */
  readonly isOptional?: true;
  /** Set by `v.optional(x, default)`: an absent key takes the default, so it is always present. */
  readonly hasDefault?: true;
}

export type Infer<V> = V extends Validator<infer T> ? T : never;

type Shape = { readonly [key: string]: Validator<unknown> };
type Simplify<T> = { [K in keyof T]: T[K] } & {};
type OptionalKeys<S extends Shape> = {
  [K in keyof S]: S[K] extends { isOptional: true } ? (S[K] extends { hasDefault: true } ? never : K) : never;
}[keyof S];
type RequiredKeys<S extends Shape> = Exclude<keyof S, OptionalKeys<S>>;
export type ObjectOf<S extends Shape> = Simplify<
  { [K in RequiredKeys<S>]: Infer<S[K]> } & { [K in OptionalKeys<S>]?: Exclude<Infer<S[K]>, undefined> }
>;

// --- failures -------------------------------------------------------------------------------

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'string') {
    const shown = value.length > 40 ? `${value.slice(0, 40)}…` : value;
    return JSON.stringify(shown);
  }
  if (typeof value === 'number') return Number.isFinite(value) ? `number ${value}` : 'a non-finite number';
  return typeof value;
}

function label(path: string, source: Source): string {
  switch (source) {
    case 'body':
      return path === '' ? 'Request body' : `JSON field "${path}"`;
    case 'query':
      return `Query parameter "${path}"`;
    case 'path':
      return `Path parameter "${path}"`;
  }
}

/** Throw the right Matrix error for a value that is present but wrong. */
export function invalid(path: string, source: Source, message: string): never {
  const text = `${label(path, source)}: ${message}`;
  throw source === 'body' ? badJson(text) : invalidParam(text);
}

/** Throw the right Matrix error for a required value that is absent. */
export function missing(path: string, source: Source): never {
  throw missingParam(`${label(path, source)} is required`);
}

function mismatch(v: { expected: string }, value: unknown, path: string, source: Source): never {
  if (value === undefined) missing(path, source);
  return invalid(path, source, `expected ${v.expected}, got ${describe(value)}`);
}

const childPath = (path: string, key: string) => (path === '' ? key : `${path}.${key}`);

const hasOwn = (obj: object, key: string) => Object.hasOwn(obj, key);

/** Define a property without going through setters: a key named `__proto__` stays a plain key. */
function put(target: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const utf8Length = (s: string) => {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n += 4;
        i++;
      } else n += 3;
    } else n += 3;
  }
  return n;
};

// --- body (JSON) validators -----------------------------------------------------------------

export interface StringOptions {
  /** Minimum length in UTF-16 code units (JavaScript's `length`). */
  min?: number;
  /** Maximum length in UTF-16 code units. */
  max?: number;
  /** Maximum length in UTF-8 bytes — the unit of the spec's identifier limits. */
  maxBytes?: number;
  pattern?: RegExp;
  /** Shown instead of the pattern's source when `pattern` fails. */
  patternName?: string;
}

function string(opts: StringOptions = {}): Validator<string> {
  const expected = opts.patternName ? `a string (${opts.patternName})` : 'a string';
  return {
    expected,
    parse(value, path, source) {
      if (typeof value !== 'string') return mismatch(this, value, path, source);
      if (opts.min !== undefined && value.length < opts.min) {
        invalid(
          path,
          source,
          opts.min === 1 ? 'must not be empty' : `must be at least ${opts.min} characters`,
        );
      }
      if (opts.max !== undefined && value.length > opts.max) {
        invalid(path, source, `must be at most ${opts.max} characters`);
      }
      if (opts.maxBytes !== undefined && utf8Length(value) > opts.maxBytes) {
        invalid(path, source, `must be at most ${opts.maxBytes} bytes of UTF-8`);
      }
      if (opts.pattern && !opts.pattern.test(value)) {
        invalid(path, source, `is not ${opts.patternName ?? `a string matching ${opts.pattern.source}`}`);
      }
      return value;
    },
  };
}

function rangeText(kind: string, min?: number, max?: number): string {
  if (min !== undefined && max !== undefined) return `${kind} from ${min} to ${max}`;
  if (min !== undefined) return `${kind} ≥ ${min}`;
  if (max !== undefined) return `${kind} ≤ ${max}`;
  return kind;
}

function checkRange(
  n: number,
  min: number | undefined,
  max: number | undefined,
  path: string,
  source: Source,
) {
  if (min !== undefined && n < min) invalid(path, source, `must be ≥ ${min}, got ${n}`);
  if (max !== undefined && n > max) invalid(path, source, `must be ≤ ${max}, got ${n}`);
}

/** An integer within ±(2^53−1), the range canonical JSON can carry. */
function int(opts: { min?: number; max?: number } = {}): Validator<number> {
  return {
    expected: rangeText('an integer', opts.min, opts.max),
    parse(value, path, source) {
      if (typeof value !== 'number' || !Number.isSafeInteger(value))
        return mismatch(this, value, path, source);
      checkRange(value, opts.min, opts.max, path, source);
      return value;
    },
  };
}

function number(opts: { min?: number; max?: number } = {}): Validator<number> {
  return {
    expected: rangeText('a number', opts.min, opts.max),
    parse(value, path, source) {
      if (typeof value !== 'number' || !Number.isFinite(value)) return mismatch(this, value, path, source);
      checkRange(value, opts.min, opts.max, path, source);
      return value;
    },
  };
}

function bool(): Validator<boolean> {
  return {
    expected: 'a boolean',
    parse(value, path, source) {
      if (typeof value !== 'boolean') return mismatch(this, value, path, source);
      return value;
    },
  };
}

function literal<const T extends string | number | boolean | null>(expectedValue: T): Validator<T> {
  return {
    expected: JSON.stringify(expectedValue),
    parse(value, path, source) {
      if (value !== expectedValue) return mismatch(this, value, path, source);
      return expectedValue;
    },
  };
}

/** One of a fixed set of strings, e.g. `v.enum(['public', 'private'])`. */
function oneOfStrings<const T extends readonly string[]>(values: T): Validator<T[number]> {
  const allowed = new Set<string>(values);
  return {
    expected: `one of ${values.map((x) => JSON.stringify(x)).join(', ')}`,
    parse(value, path, source) {
      if (typeof value !== 'string' || !allowed.has(value)) return mismatch(this, value, path, source);
      return value as T[number];
    },
  };
}

function array<T>(item: Validator<T>, opts: { min?: number; max?: number } = {}): Validator<T[]> {
  return {
    expected: 'an array',
    parse(value, path, source) {
      if (!Array.isArray(value)) return mismatch(this, value, path, source);
      if (opts.min !== undefined && value.length < opts.min) {
        invalid(path, source, `must have at least ${opts.min} element${opts.min === 1 ? '' : 's'}`);
      }
      if (opts.max !== undefined && value.length > opts.max) {
        invalid(path, source, `must have at most ${opts.max} elements`);
      }
      const out: T[] = new Array(value.length);
      for (let i = 0; i < value.length; i++) {
        const element = value[i];
        // A JSON array has no holes, but `undefined` would read as "missing": say what it is.
        out[i] = item.parse(element === undefined ? null : element, `${path}[${i}]`, source);
      }
      return out;
    },
  };
}

export interface ObjectOptions {
  /**
   * `'strip'` (default): the result holds only the declared keys. `'keep'`: undeclared keys
   * are copied through unvalidated (for extensible objects such as event content).
   */
  unknownKeys?: 'strip' | 'keep';
}

function object<const S extends Shape>(shape: S, opts: ObjectOptions = {}): Validator<ObjectOf<S>> {
  const keys = Object.keys(shape);
  const keep = opts.unknownKeys === 'keep';
  return {
    expected: 'an object',
    parse(value, path, source) {
      if (!isPlainObject(value)) return mismatch(this, value, path, source);
      const out: Record<string, unknown> = {};
      if (keep) for (const key of Object.keys(value)) put(out, key, value[key]);
      for (const key of keys) {
        const field = shape[key] as Validator<unknown>;
        const raw = hasOwn(value, key) ? value[key] : undefined;
        if (raw === undefined && field.isOptional && !field.hasDefault) continue;
        put(out, key, field.parse(raw, childPath(path, key), source));
      }
      return out as ObjectOf<S>;
    },
  };
}

/** An object used as a map: any keys, every value checked by `value`. */
function record<T>(
  value: Validator<T>,
  opts: { maxKeys?: number; key?: Validator<string> } = {},
): Validator<Record<string, T>> {
  return {
    expected: 'an object',
    parse(input, path, source) {
      if (!isPlainObject(input)) return mismatch(this, input, path, source);
      const keys = Object.keys(input);
      if (opts.maxKeys !== undefined && keys.length > opts.maxKeys) {
        invalid(path, source, `must have at most ${opts.maxKeys} keys`);
      }
      const out: Record<string, T> = {};
      for (const key of keys) {
        const p = childPath(path, key);
        if (opts.key) opts.key.parse(key, p, source);
        put(out, key, value.parse(input[key], p, source));
      }
      return out;
    },
  };
}

function optional<T>(inner: Validator<T>): Validator<T | undefined> & { isOptional: true };
function optional<T>(inner: Validator<T>, fallback: T): Validator<T> & { isOptional: true; hasDefault: true };
function optional<T>(inner: Validator<T>, ...rest: [] | [T]): Validator<T | undefined> {
  const hasFallback = rest.length > 0;
  const fallback = rest[0];
  return {
    expected: inner.expected,
    isOptional: true,
    ...(hasFallback ? { hasDefault: true as const } : {}),
    parse(value, path, source) {
      if (value === undefined) return fallback;
      return inner.parse(value, path, source);
    },
  };
}

function nullable<T>(inner: Validator<T>): Validator<T | null> {
  return {
    expected: `${inner.expected} or null`,
    parse(value, path, source) {
      if (value === null) return null;
      return inner.parse(value, path, source);
    },
  };
}

/** Any JSON value, passed through untouched (already parsed, depth-bounded JSON). */
function json(): Validator<JsonValue> {
  return {
    expected: 'a JSON value',
    parse(value, path, source) {
      if (value === undefined) missing(path, source);
      return value as JsonValue;
    },
  };
}

/** Any JSON object, passed through untouched — event content, `creation_content` … */
function jsonObject(): Validator<JsonObject> {
  return {
    expected: 'an object',
    parse(value, path, source) {
      if (!isPlainObject(value)) return mismatch(this, value, path, source);
      return value as JsonObject;
    },
  };
}

/**
 * Add a check to a validator: `check` returns an error message (→ M_BAD_JSON / M_INVALID_PARAM)
 * or nothing. It may also throw its own `MatrixError` for a more specific errcode.
 */
function refine<T>(inner: Validator<T>, check: (value: T) => string | undefined): Validator<T> {
  return {
    expected: inner.expected,
    ...(inner.isOptional ? { isOptional: true as const } : {}),
    ...(inner.hasDefault ? { hasDefault: true as const } : {}),
    parse(value, path, source) {
      const parsed = inner.parse(value, path, source);
      if (parsed === undefined && inner.isOptional) return parsed;
      const problem = check(parsed);
      if (problem !== undefined) invalid(path, source, problem);
      return parsed;
    },
  };
}

/** The first alternative that accepts the value wins; the message lists them all. */
function union<V extends readonly Validator<unknown>[]>(...alternatives: V): Validator<Infer<V[number]>> {
  return {
    expected: alternatives.map((a) => a.expected).join(' or '),
    parse(value, path, source) {
      if (value === undefined) missing(path, source);
      for (const alt of alternatives) {
        try {
          return alt.parse(value, path, source) as Infer<V[number]>;
        } catch {
          // try the next alternative; the combined message below names them all
        }
      }
      return mismatch(this, value, path, source);
    },
  };
}

export const v = {
  string,
  int,
  number,
  bool,
  literal,
  enum: oneOfStrings,
  array,
  object,
  record,
  optional,
  nullable,
  json,
  jsonObject,
  refine,
  union,
};

// --- query-string validators ----------------------------------------------------------------

/** A query parameter: all of its values in order (`?via=a&via=b`), or `undefined` if absent. */
export interface QueryParam<T> {
  readonly expected: string;
  parse(values: readonly string[] | undefined, name: string): T;
  readonly isOptional?: true;
  readonly hasDefault?: true;
}

export interface QueryValidator<T> {
  parse(params: URLSearchParams): T;
}

type QueryShape = { readonly [key: string]: QueryParam<unknown> };
type InferQ<P> = P extends QueryParam<infer T> ? T : never;
type QOptionalKeys<S extends QueryShape> = {
  [K in keyof S]: S[K] extends { isOptional: true } ? (S[K] extends { hasDefault: true } ? never : K) : never;
}[keyof S];
export type QueryOf<S extends QueryShape> = Simplify<
  { [K in Exclude<keyof S, QOptionalKeys<S>>]: InferQ<S[K]> } & {
    [K in QOptionalKeys<S>]?: Exclude<InferQ<S[K]>, undefined>;
  }
>;

/** Lift a body validator over the first value of a query parameter (strings only). */
function scalar<T>(expected: string, convert: (text: string, name: string) => T): QueryParam<T> {
  return {
    expected,
    parse(values, name) {
      // Repeated scalar parameters: the first one counts, as most servers do.
      const first = values?.[0];
      if (first === undefined) return missing(name, 'query');
      return convert(first, name);
    },
  };
}

const qString = (opts: StringOptions = {}) => {
  const inner = string(opts);
  return scalar(inner.expected, (text, name) => inner.parse(text, name, 'query'));
};

const DECIMAL = /^-?(0|[1-9][0-9]*)$/;

const qInt = (opts: { min?: number; max?: number } = {}) => {
  const inner = int(opts);
  return scalar(inner.expected, (text, name) => {
    const n = DECIMAL.test(text) ? Number(text) : Number.NaN;
    if (!Number.isSafeInteger(n)) invalid(name, 'query', `expected ${inner.expected}, got ${describe(text)}`);
    return inner.parse(n, name, 'query');
  });
};

/** `true` / `false` exactly, as the spec's examples write them. */
const qBool = () =>
  scalar('true or false', (text, name) => {
    if (text === 'true') return true;
    if (text === 'false') return false;
    return invalid(name, 'query', `expected true or false, got ${describe(text)}`);
  });

const qEnum = <const T extends readonly string[]>(values: T) => {
  const inner = oneOfStrings(values);
  return scalar(inner.expected, (text, name) => inner.parse(text, name, 'query'));
};

/** A parameter given as JSON text (`filter={"limit":10}`), checked with a body validator. */
const qJson = <T>(inner: Validator<T>) =>
  scalar(`JSON (${inner.expected})`, (text, name) => {
    const parsed = decodeJsonText(text, QUERY_JSON_MAX_DEPTH, (problem) => invalid(name, 'query', problem));
    return inner.parse(parsed, name, 'query');
  });

/** Every value of a repeated parameter (`server_name`, `via`); absent means an empty list. */
const qList = (item: StringOptions = {}, opts: { max?: number } = {}): QueryParam<string[]> => {
  const inner = string(item);
  return {
    expected: `a list of ${inner.expected.replace(/^a /, '')}s`,
    parse(values, name) {
      if (values === undefined) return [];
      if (opts.max !== undefined && values.length > opts.max) {
        invalid(name, 'query', `may be given at most ${opts.max} times`);
      }
      return values.map((x) => inner.parse(x, name, 'query'));
    },
  };
};

function qOptional<T>(inner: QueryParam<T>): QueryParam<T | undefined> & { isOptional: true };
function qOptional<T>(
  inner: QueryParam<T>,
  fallback: T,
): QueryParam<T> & { isOptional: true; hasDefault: true };
function qOptional<T>(inner: QueryParam<T>, ...rest: [] | [T]): QueryParam<T | undefined> {
  const fallback = rest[0];
  return {
    expected: inner.expected,
    isOptional: true,
    ...(rest.length > 0 ? { hasDefault: true as const } : {}),
    parse(values, name) {
      if (values === undefined || values.length === 0) return fallback;
      return inner.parse(values, name);
    },
  };
}

/** The query string as a whole. Undeclared parameters (`access_token`, cache-busters) are ignored. */
function qObject<const S extends QueryShape>(shape: S): QueryValidator<QueryOf<S>> {
  const keys = Object.keys(shape);
  return {
    parse(params) {
      const out: Record<string, unknown> = {};
      for (const key of keys) {
        const param = shape[key] as QueryParam<unknown>;
        const values = params.getAll(key);
        const given = values.length > 0 ? values : undefined;
        if (given === undefined && param.isOptional && !param.hasDefault) continue;
        put(out, key, param.parse(given, key));
      }
      return out as QueryOf<S>;
    },
  };
}

export const q = {
  string: qString,
  int: qInt,
  bool: qBool,
  enum: qEnum,
  json: qJson,
  list: qList,
  optional: qOptional,
  object: qObject,
};

// --- depth ----------------------------------------------------------------------------------

/** Query JSON (filters) is small; a tighter bound than bodies. */
const QUERY_JSON_MAX_DEPTH = 64;

/** How a refusal of `parseJson` reads in an error message, after "Request body …" or a parameter name. */
export function describeJsonProblem(reason: Exclude<JsonDecodeReason, 'syntax'>, maxDepth: number): string {
  switch (reason) {
    case 'too-deep':
      return `nests deeper than ${maxDepth} levels`;
    case 'too-large':
      return 'is too large';
    case 'lone-surrogate':
      return 'holds a lone surrogate (a \\uD800–\\uDFFF escape without its pair), which cannot be encoded as UTF-8';
    case 'non-finite':
      return 'holds a number too large to represent';
    case 'duplicate-key':
      return 'has an object with the same key twice';
  }
}

/** JSON text given in a query parameter (a filter): its value, or `fail` with what is wrong. */
export function decodeJsonText(text: string, maxDepth: number, fail: (problem: string) => never): unknown {
  try {
    return parseJson(text, { maxDepth });
  } catch (err) {
    if (!isJsonDecodeError(err)) throw err;
    return fail(err.reason === 'syntax' ? 'is not valid JSON' : describeJsonProblem(err.reason, maxDepth));
  }
}
