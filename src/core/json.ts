/**
 * `parseJson` — the one JSON decoder for every text → value boundary in Hearth: request
 * bodies, query parameters that carry JSON, stored rows, backups, configuration.
 *
 * Why not plain `JSON.parse`: V8 in Node 24 and 26 (nodejs/node#63785, V8 issue 521080746)
 * can decode an object key written with an escape (`"\t"`, `"\u00e9"`, `"\""`, …) as a
 * different key once another text with a `"\\"` key has been parsed in the same process:
 * its fast path compares the key's raw characters with the key the previous objects of that
 * shape had. Keys written without escapes read the same raw and decoded, so only keys
 * holding a backslash can be hit. One user's input would silently change another user's
 * stored data, and a signed event's bytes. So:
 *
 * - the fast path is the runtime's own `JSON.parse`, taken when a cheap scan of the text
 *   (which visits only the strings that hold a backslash) finds no object key with an escape;
 * - a text with such a key is decoded by the exact parser below, which no runtime bug reaches.
 *
 * It also enforces, in one place, what Matrix asks of JSON it takes in: no lone surrogates
 * (they cannot be encoded as UTF-8, so no signature or canonical form exists for them;
 * appendices.md "Canonical JSON"), no number the runtime would turn into ±Infinity, a
 * nesting limit, a size limit, and — where asked, as for signed federation JSON, whose keys
 * must be unique for its canonical form to mean one thing — no duplicate keys.
 */

/** Why a text was refused. */
export type JsonDecodeReason =
  | 'syntax'
  | 'too-large'
  | 'too-deep'
  | 'lone-surrogate'
  | 'non-finite'
  | 'duplicate-key';

export class JsonDecodeError extends Error {
  override readonly name = 'JsonDecodeError';
  readonly reason: JsonDecodeReason;

  constructor(reason: JsonDecodeReason, message: string) {
    super(message);
    this.reason = reason;
  }
}

export function isJsonDecodeError(err: unknown): err is JsonDecodeError {
  return (
    err instanceof Error &&
    err.name === 'JsonDecodeError' &&
    typeof (err as JsonDecodeError).reason === 'string'
  );
}

export interface ParseJsonOptions {
  /** Deepest nesting of arrays and objects accepted (the top-level value is depth 1). Default 512. */
  maxDepth?: number;
  /** Longest text accepted, in UTF-16 code units. Default: no limit beyond the runtime's. */
  maxLength?: number;
  /**
   * `'reject'` (default) refuses a text that decodes to a string with a lone surrogate.
   * `'allow'` is for reading back what this program stored before the rule existed.
   */
  loneSurrogates?: 'reject' | 'allow';
  /** `'last'` (default) keeps the last value, as `JSON.parse` does; `'reject'` refuses the text. */
  duplicateKeys?: 'last' | 'reject';
  /**
   * The text was decoded from UTF-8 bytes (a request or response body): decoding never yields
   * a raw lone surrogate, so the text itself is not searched for one. Escapes are still checked.
   */
  fromUtf8?: boolean;
  /**
   * The text is this program's own `JSON.stringify` output read back (a stored row): it cannot
   * hold a lone surrogate, a non-finite number or nesting its writer did not accept, so only
   * exactness matters and no limit is checked.
   */
  trusted?: boolean;
}

/** Deeper than this is refused: our own encoders and validators walk values this deep. */
export const DEFAULT_MAX_JSON_PARSE_DEPTH = 512;
/** The exact parser's bound for trusted text (it recurses; the fast path has none). */
const TRUSTED_EXACT_DEPTH = 1024;

/**
 * `ParseJsonOptions` resolved once, in one fixed shape. A caller that decodes often (the
 * router, the SQLite store) makes one and passes it on every call: the decoder then reads
 * its flags without looking into option objects of many shapes, which in a busy process
 * costs more than the decoder's own checks.
 */
export class JsonRules {
  /** Deepest nesting accepted; ∞ for trusted text. */
  readonly maxDepth: number;
  /** Longest text accepted; ∞ when unbounded. */
  readonly maxLength: number;
  /** Refuse strings with a lone surrogate (escaped, and raw unless `fromUtf8`). */
  readonly rejectSurrogates: boolean;
  /** Also search the text itself for a raw lone surrogate. */
  readonly searchRaw: boolean;
  readonly rejectDuplicates: boolean;
  /** Walk the decoded value for nesting and ±Infinity (every text that is not trusted). */
  readonly checkValues: boolean;

  constructor(options: ParseJsonOptions = {}) {
    const trusted = options.trusted === true;
    this.maxDepth = trusted ? Number.POSITIVE_INFINITY : (options.maxDepth ?? DEFAULT_MAX_JSON_PARSE_DEPTH);
    this.maxLength = options.maxLength ?? Number.POSITIVE_INFINITY;
    this.rejectSurrogates = !trusted && options.loneSurrogates !== 'allow';
    this.searchRaw = this.rejectSurrogates && options.fromUtf8 !== true;
    this.rejectDuplicates = options.duplicateKeys === 'reject';
    this.checkValues = !trusted;
  }
}

const DEFAULT_RULES = new JsonRules();

/** `text` as a JSON value, exactly as RFC 8259 reads it, on every runtime. Throws `JsonDecodeError`. */
export function parseJson(text: string, options?: ParseJsonOptions | JsonRules): unknown {
  const rules =
    options === undefined ? DEFAULT_RULES : options instanceof JsonRules ? options : new JsonRules(options);
  if (text.length > rules.maxLength) {
    throw new JsonDecodeError('too-large', `JSON text is longer than ${rules.maxLength} characters`);
  }
  // A raw lone surrogate in the text itself (a JS string can hold one; decoded UTF-8 cannot).
  if (rules.searchRaw && !isWellFormed(text)) {
    throw new JsonDecodeError('lone-surrogate', 'JSON text holds a lone surrogate');
  }
  // Most texts hold no backslash at all: then there is nothing to scan.
  const first = text.indexOf('\\');
  if (rules.rejectDuplicates || (first !== -1 && hasEscapedKey(text, first))) {
    // Recursive: bounded even for trusted text, whose writer nests far less than this.
    const exactDepth = Number.isFinite(rules.maxDepth) ? rules.maxDepth : TRUSTED_EXACT_DEPTH;
    return new ExactParser(text, exactDepth, rules.rejectDuplicates, rules.rejectSurrogates).parseText();
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    // A RangeError is an engine's stack giving out on absurd nesting: too deep, not malformed.
    if (err instanceof SyntaxError) throw new JsonDecodeError('syntax', `not valid JSON: ${err.message}`);
    throw new JsonDecodeError('too-deep', `JSON nests deeper than ${rules.maxDepth} levels`);
  }
  if (rules.checkValues) {
    // Only an escape can put a lone surrogate in a string of a well-formed text, and keys with
    // escapes went to the exact parser: so the values' strings are looked at, and only when
    // the text has a backslash at all. (Searching the text for `\u` instead costs a restart
    // at every backslash: far more than the strings' own check on a text full of escapes.)
    const strings = rules.rejectSurrogates && first !== -1;
    if (typeof value === 'object') {
      if (value !== null) checkContainer(value, 1, rules.maxDepth, strings);
    } else if (typeof value === 'string') {
      if (strings && !isWellFormed(value)) loneSurrogate();
    } else if (typeof value === 'number' && !Number.isFinite(value)) nonFinite();
  }
  return value;
}

// --- the cheap scan ----------------------------------------------------------------------

const BACKSLASH = 0x5c;
const QUOTE = 0x22;
const COLON = 0x3a;

/**
 * Whether some object key of `text` is written with an escape; `first` is the text's first
 * backslash. In valid JSON a backslash stands only inside a string, and a quote is escaped
 * exactly when an odd run of backslashes stands before it (no escape but `\\` holds a
 * backslash after its first character, so a run of backslashes starts where an escape does).
 * It moves by single-character searches (V8 runs a two-character search far slower, and
 * restarts it at every backslash), visiting only the strings that hold a backslash:
 *
 * - from a backslash, the next quote: if it closes the string, the string is a key when a
 *   colon follows it;
 * - past a few escaped quotes, the string may hold many more (quoted speech, pasted code):
 *   instead of one search per quote, `afterNextKey` goes to the next colon that follows a
 *   key and reads that key back (keys are short), which settles every string between.
 *
 * On invalid JSON the answer does not matter: both paths refuse the text.
 */
function hasEscapedKey(text: string, first: number): boolean {
  let at = first;
  while (at !== -1) {
    // `at` is a backslash inside a string.
    let quote = text.indexOf('"', at + 1);
    let escaped = 0;
    while (quote !== -1 && escapedAt(text, quote) && ++escaped < QUOTES_BEFORE_KEY_SEARCH) {
      quote = text.indexOf('"', quote + 1);
    }
    if (quote === -1) return false;
    let from: number;
    if (escaped === QUOTES_BEFORE_KEY_SEARCH) {
      from = afterNextKey(text, quote + 1);
      if (from === ESCAPED) return true;
      if (from === -1) return false;
    } else {
      let j = quote + 1;
      let c = text.charCodeAt(j);
      while (isJsonSpace(c)) c = text.charCodeAt(++j);
      if (c === COLON) return true;
      from = quote + 1;
    }
    at = text.indexOf('\\', from);
  }
  return false;
}

/**
 * Whether some object key of `text`, valid JSON, is written with an escape: the texts the
 * fast path leaves to the exact parser. (Exported for its property test.)
 */
export function jsonHasEscapedKey(text: string): boolean {
  const first = text.indexOf('\\');
  return first !== -1 && hasEscapedKey(text, first);
}

const ESCAPED = -2;
/** Escaped quotes in one string passed one by one before going to the next key instead. */
const QUOTES_BEFORE_KEY_SEARCH = 3;

/** JSON's white space (RFC 8259): space, tab, line feed, carriage return. */
function isJsonSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
}

/** Whether the character at `at` has an odd run of backslashes before it. */
function escapedAt(text: string, at: number): boolean {
  let before = at - 1;
  while (text.charCodeAt(before) === BACKSLASH) before--;
  return ((at - 1 - before) & 1) === 1;
}

/**
 * From `from` (inside a string), the first colon that separates a key from its value, and the
 * key before it: `ESCAPED` if that key holds an escape, else the position after the colon, or
 * -1 if no key follows. A colon with an unescaped quote before it (white space between)
 * separates a key, or starts a string (`":)"`): inside a string every quote is escaped. In
 * the second case the "key" read back is what lies between two strings; it is taken for
 * escaped only if the string before it ends with an escape — a false alarm that costs the
 * exact parser's read, never a miss — and the search goes on from inside that string, where
 * every later backslash is still found.
 */
function afterNextKey(text: string, from: number): number {
  let colon = text.indexOf(':', from);
  while (colon !== -1) {
    let end = colon - 1;
    let c = text.charCodeAt(end);
    while (isJsonSpace(c)) c = text.charCodeAt(--end);
    if (c === QUOTE && !escapedAt(text, end)) {
      // `end` closes a key: read it back to its opening quote.
      for (let k = end - 1; k >= 0; k--) {
        c = text.charCodeAt(k);
        if (c === BACKSLASH) return ESCAPED;
        if (c === QUOTE) return text.charCodeAt(k - 1) === BACKSLASH ? ESCAPED : colon + 1;
      }
      return -1;
    }
    colon = text.indexOf(':', colon + 1);
  }
  return -1;
}

function tooDeep(maxDepth: number): never {
  throw new JsonDecodeError('too-deep', `JSON nests deeper than ${maxDepth} levels`);
}

function nonFinite(): never {
  throw new JsonDecodeError('non-finite', 'JSON holds a number too large to represent');
}

function loneSurrogate(): never {
  throw new JsonDecodeError('lone-surrogate', 'JSON text holds a lone surrogate escape');
}

/**
 * Refuses nesting deeper than `maxDepth`, numbers the runtime made ±Infinity (`1e400`) and,
 * with `strings`, strings holding a lone surrogate, in `container` (an object or array at
 * `depth`) and below. Recursive, but never deeper than `maxDepth` levels, so hostile nesting
 * cannot exhaust the stack; leaves are checked in the loop, only containers cost a call.
 */
function checkContainer(container: object, depth: number, maxDepth: number, strings: boolean): void {
  if (depth > maxDepth) tooDeep(maxDepth);
  if (Array.isArray(container)) {
    for (let i = 0; i < container.length; i++) {
      const item: unknown = container[i];
      if (typeof item === 'string') {
        if (strings && !isWellFormed(item)) loneSurrogate();
      } else if (typeof item === 'object') {
        if (item !== null) checkContainer(item, depth + 1, maxDepth, strings);
      } else if (typeof item === 'number' && !Number.isFinite(item)) nonFinite();
    }
    return;
  }
  for (const key in container) {
    const item: unknown = (container as Record<string, unknown>)[key];
    if (typeof item === 'string') {
      if (strings && !isWellFormed(item)) loneSurrogate();
    } else if (typeof item === 'object') {
      if (item !== null) checkContainer(item, depth + 1, maxDepth, strings);
    } else if (typeof item === 'number' && !Number.isFinite(item)) nonFinite();
  }
}

// U+D800–U+DFFF under the u flag matches only unpaired surrogates (the class Cs); written as a
// range because engines built without ICU (StarlingMonkey, the WASI component) lack \p{…}.
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;
const isWellFormed: (text: string) => boolean =
  typeof ''.isWellFormed === 'function'
    ? (text) => text.isWellFormed()
    : (text) => !LONE_SURROGATE.test(text);

// --- the exact parser --------------------------------------------------------------------

const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
/** A run of string characters that need no decoding. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: RFC 8259 forbids raw U+0000–U+001F in strings; the run stops there.
const PLAIN_RUN = /[^"\\\u0000-\u001f]*/y;
const ESCAPES: Record<string, string> = {
  '"': '"',
  '\\': '\\',
  '/': '/',
  b: '\b',
  f: '\f',
  n: '\n',
  r: '\r',
  t: '\t',
};

/**
 * RFC 8259 read by hand: slower than the runtime's parser, so used only for the texts the
 * fast path must not see, and for strict duplicate-key checking. Recursive, bounded by
 * `maxDepth`.
 */
class ExactParser {
  private at = 0;
  private readonly text: string;
  private readonly maxDepth: number;
  private readonly rejectDuplicates: boolean;
  private readonly rejectSurrogates: boolean;

  constructor(text: string, maxDepth: number, rejectDuplicates: boolean, rejectSurrogates: boolean) {
    this.text = text;
    this.maxDepth = maxDepth;
    this.rejectDuplicates = rejectDuplicates;
    this.rejectSurrogates = rejectSurrogates;
  }

  parseText(): unknown {
    this.space();
    let value: unknown;
    try {
      value = this.value(1);
    } catch (err) {
      // A runtime with a small stack (a worker) gives out before maxDepth: still too deep.
      if (err instanceof RangeError)
        throw new JsonDecodeError('too-deep', 'JSON nests too deep for this runtime');
      throw err;
    }
    this.space();
    if (this.at !== this.text.length) this.fail('unexpected text after the JSON value');
    return value;
  }

  private fail(what: string): never {
    throw new JsonDecodeError('syntax', `not valid JSON: ${what} at position ${this.at}`);
  }

  private space(): void {
    const { text } = this;
    while (this.at < text.length) {
      const c = text.charCodeAt(this.at);
      if (!isJsonSpace(c)) return;
      this.at++;
    }
  }

  private value(depth: number): unknown {
    const c = this.text[this.at];
    switch (c) {
      case '{':
        return this.object(depth);
      case '[':
        return this.array(depth);
      case '"':
        return this.string();
      case 't':
        return this.literal('true', true);
      case 'f':
        return this.literal('false', false);
      case 'n':
        return this.literal('null', null);
      default:
        return this.number();
    }
  }

  private enter(depth: number): void {
    if (depth > this.maxDepth) {
      throw new JsonDecodeError('too-deep', `JSON nests deeper than ${this.maxDepth} levels`);
    }
  }

  private object(depth: number): Record<string, unknown> {
    this.enter(depth);
    this.at++;
    const out: Record<string, unknown> = {};
    const seen = this.rejectDuplicates ? new Set<string>() : undefined;
    this.space();
    if (this.text[this.at] === '}') {
      this.at++;
      return out;
    }
    for (;;) {
      if (this.text[this.at] !== '"') this.fail('expected a key');
      const key = this.string();
      if (seen) {
        if (seen.has(key)) {
          throw new JsonDecodeError('duplicate-key', `JSON object has the key ${JSON.stringify(key)} twice`);
        }
        seen.add(key);
      }
      this.space();
      if (this.text[this.at] !== ':') this.fail('expected a colon');
      this.at++;
      this.space();
      const value = this.value(depth + 1);
      // `__proto__` is an own property in JSON.parse's result, never the prototype.
      if (key === '__proto__') {
        Object.defineProperty(out, key, { value, writable: true, enumerable: true, configurable: true });
      } else {
        out[key] = value;
      }
      this.space();
      const next = this.text[this.at++];
      if (next === '}') return out;
      if (next !== ',') {
        this.at--;
        this.fail('expected , or }');
      }
      this.space();
    }
  }

  private array(depth: number): unknown[] {
    this.enter(depth);
    this.at++;
    const out: unknown[] = [];
    this.space();
    if (this.text[this.at] === ']') {
      this.at++;
      return out;
    }
    for (;;) {
      out.push(this.value(depth + 1));
      this.space();
      const next = this.text[this.at++];
      if (next === ']') return out;
      if (next !== ',') {
        this.at--;
        this.fail('expected , or ]');
      }
      this.space();
    }
  }

  private string(): string {
    const { text } = this;
    this.at++;
    let out = '';
    for (;;) {
      PLAIN_RUN.lastIndex = this.at;
      PLAIN_RUN.test(text);
      if (PLAIN_RUN.lastIndex > this.at) {
        out += text.slice(this.at, PLAIN_RUN.lastIndex);
        this.at = PLAIN_RUN.lastIndex;
      }
      const c = text[this.at];
      if (c === '"') {
        this.at++;
        if (this.rejectSurrogates && !isWellFormed(out)) loneSurrogate();
        return out;
      }
      if (c !== '\\') this.fail(c === undefined ? 'unterminated string' : 'control character in a string');
      const e = text[this.at + 1];
      if (e === 'u') {
        const hex = text.slice(this.at + 2, this.at + 6);
        if (!/^[0-9a-fA-F]{4}$/.test(hex)) this.fail('bad \\u escape');
        out += String.fromCharCode(Number.parseInt(hex, 16));
        this.at += 6;
      } else {
        const decoded = e === undefined ? undefined : ESCAPES[e];
        if (decoded === undefined) this.fail('bad escape');
        out += decoded;
        this.at += 2;
      }
    }
  }

  private literal<T>(word: string, value: T): T {
    if (!this.text.startsWith(word, this.at)) this.fail('unexpected character');
    this.at += word.length;
    return value;
  }

  private number(): number {
    NUMBER.lastIndex = this.at;
    const match = NUMBER.exec(this.text);
    if (!match) this.fail(this.at >= this.text.length ? 'unexpected end' : 'unexpected character');
    this.at += match[0].length;
    const value = Number(match[0]);
    if (!Number.isFinite(value)) {
      throw new JsonDecodeError('non-finite', 'JSON holds a number too large to represent');
    }
    return value;
  }
}
