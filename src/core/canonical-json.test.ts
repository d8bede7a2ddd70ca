import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  canonicalJson,
  canonicalJsonBytes,
  compareCodePoints,
  MAX_JSON_DEPTH,
  MAX_SAFE_INTEGER,
  MIN_SAFE_INTEGER,
  utf8BytesPooled,
  withUtf8,
} from './canonical-json.ts';
import fixture from './fixtures/canonical-json-examples.json' with { type: 'json' };
import { expectCoreError } from './testing.ts';

const utf8 = new TextEncoder();

// ---------------------------------------------------------------------------------------
// An independent reference encoder, written from the spec's grammar (appendices.md
// "Canonical JSON" > "Grammar"): keys sorted by code point; only `"`, `\` and U+0000–U+001F
// escaped, with the short forms where the grammar has them and lower-case \u00XX otherwise.

function codePoints(text: string): number[] {
  return Array.from(text, (ch) => ch.codePointAt(0) as number);
}

function byCodePointReference(a: string, b: string): number {
  const x = codePoints(a);
  const y = codePoints(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i] !== y[i]) return (x[i] as number) - (y[i] as number);
  }
  return x.length - y.length;
}

const SHORT_ESCAPES: Record<number, string> = { 8: '\\b', 9: '\\t', 10: '\\n', 12: '\\f', 13: '\\r' };

function quoteReference(text: string): string {
  let out = '"';
  for (const ch of text) {
    const cp = ch.codePointAt(0) as number;
    if (ch === '"') out += '\\"';
    else if (ch === '\\') out += '\\\\';
    else if (SHORT_ESCAPES[cp]) out += SHORT_ESCAPES[cp];
    else if (cp < 0x20) out += `\\u00${cp.toString(16).padStart(2, '0')}`;
    else out += ch;
  }
  return `${out}"`;
}

function referenceCanonical(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'number') return BigInt(value).toString(); // integers only; -0 becomes "0"
  if (typeof value === 'string') return quoteReference(value);
  if (Array.isArray(value)) return `[${value.map(referenceCanonical).join(',')}]`;
  const object = value as Record<string, unknown>;
  const keys = Object.keys(object)
    .filter((k) => object[k] !== undefined)
    .sort(byCodePointReference);
  return `{${keys.map((k) => `${quoteReference(k)}:${referenceCanonical(object[k])}`).join(',')}}`;
}

// ---------------------------------------------------------------------------------------
// Arbitrary canonical-JSON values: integers in range, any well-formed strings and keys
// (astral characters and the keys around U+FFFF that UTF-16 order gets wrong included).

const key = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 6 }),
  fc.constantFrom(
    '',
    'a',
    'b',
    'A',
    '\uffff',
    '\ue000',
    '\u{10000}',
    '\u{1f600}',
    '\ud7ff',
    '1',
    '10',
    '__proto__',
  ),
);
const leaf = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.maxSafeInteger(),
  fc.constantFrom(0, -0, MAX_SAFE_INTEGER, MIN_SAFE_INTEGER),
  fc.string({ unit: 'binary', maxLength: 12 }),
);
const { json } = fc.letrec<{ json: unknown; array: unknown[]; object: Record<string, unknown> }>((tie) => ({
  json: fc.oneof({ depthSize: 'small' }, leaf, tie('array'), tie('object')),
  array: fc.array(tie('json'), { maxLength: 5 }),
  object: fc.dictionary(key, tie('json'), { maxKeys: 6 }),
}));

/** A deep copy whose objects receive their keys in an order drawn from `random`. */
function reshuffled(value: unknown, random: () => number): unknown {
  if (Array.isArray(value)) return value.map((item) => reshuffled(item, random));
  if (typeof value !== 'object' || value === null) return value;
  const entries = Object.entries(value);
  for (let i = entries.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [entries[i], entries[j]] = [entries[j] as [string, unknown], entries[i] as [string, unknown]];
  }
  const copy: Record<string, unknown> = Object.getPrototypeOf(value) === null ? Object.create(null) : {};
  for (const [k, v] of entries)
    Object.defineProperty(copy, k, { value: reshuffled(v, random), enumerable: true });
  return copy;
}

function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

// ---------------------------------------------------------------------------------------

describe('the spec examples (appendices.md "Canonical JSON" > "Examples")', () => {
  it('has all ten examples in the fixture', () => {
    expect(fixture.examples).toHaveLength(10);
  });

  it.each(fixture.examples.map((example, i) => [i + 1, example.input, example.canonical]))(
    'example %i encodes byte for byte',
    (_n, input, canonical) => {
      const value = JSON.parse(input as string);
      expect(canonicalJson(value)).toBe(canonical);
      expect(canonicalJsonBytes(value)).toEqual(utf8.encode(canonical as string));
    },
  );

  it('writes non-ASCII as raw UTF-8, not \\u escapes', () => {
    // {"a":"日"} — 日 is U+65E5, E6 97 A5 in UTF-8.
    expect(Array.from(canonicalJsonBytes({ a: '\u65E5' }))).toEqual([
      0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xe6, 0x97, 0xa5, 0x22, 0x7d,
    ]);
  });
});

describe('escaping follows the grammar', () => {
  it.each([
    ['"', '"\\""'],
    ['\\', '"\\\\"'],
    ['\b', '"\\b"'],
    ['\t', '"\\t"'],
    ['\n', '"\\n"'],
    ['\f', '"\\f"'],
    ['\r', '"\\r"'],
    ['\u0000', '"\\u0000"'],
    ['\u0007', '"\\u0007"'],
    ['\u000b', '"\\u000b"'],
    ['\u000e', '"\\u000e"'],
    ['\u001f', '"\\u001f"'],
    ['\u001a', '"\\u001a"'],
    ['/', '"/"'],
    ['\u007f', '"\u007f"'],
    ['\u0080', '"\u0080"'],
    ['\u2028\u2029', '"\u2028\u2029"'],
    ['\ufeff', '"\ufeff"'],
    ['\u{1f600}', '"\u{1f600}"'],
    ["<script>&'", '"<script>&\'"'],
  ])('%j encodes as %s', (text, encoded) => {
    expect(canonicalJson(text)).toBe(encoded);
    expect(canonicalJson({ [text]: text })).toBe(`{${encoded}:${encoded}}`);
  });

  it('escapes exactly the characters the grammar escapes, for any string', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (text) => {
        expect(canonicalJson(text)).toBe(quoteReference(text));
      }),
      { numRuns: 1000 },
    );
    fc.assert(
      fc.property(fc.string({ unit: 'binary-ascii' }), (text) => {
        expect(canonicalJson(text)).toBe(quoteReference(text));
      }),
      { numRuns: 1000 },
    );
  });
});

describe('numbers', () => {
  it('writes integers without exponent or fraction, -0 as 0', () => {
    expect(canonicalJson([0, -0, 1, -1, 1e10, 1e15, MAX_SAFE_INTEGER, MIN_SAFE_INTEGER])).toBe(
      '[0,0,1,-1,10000000000,1000000000000000,9007199254740991,-9007199254740991]',
    );
  });

  it.each([
    [1.5, /1.5 is not an integer/],
    [-0.5, /not an integer/],
    [0.1, /not an integer/],
    [1e-7, /not an integer/],
    [2 ** 53, /integer 9007199254740992 is outside/],
    [-(2 ** 53), /outside/],
    [1e21, /outside/],
    [Number.MAX_VALUE, /outside/],
    [Number.NaN, /NaN is not finite/],
    [Number.POSITIVE_INFINITY, /Infinity is not finite/],
    [Number.NEGATIVE_INFINITY, /-Infinity is not finite/],
  ])('rejects %d', (n, message) => {
    expectCoreError(() => canonicalJson(n), 'NOT_CANONICAL', message);
    expectCoreError(() => canonicalJson({ content: { n } }), 'NOT_CANONICAL', /at \.content\.n:/);
    expectCoreError(() => canonicalJsonBytes([n]), 'NOT_CANONICAL', /at \[0\]:/);
  });

  it('with strict: false (room versions 1-5) accepts floats and big integers, not NaN or Infinity', () => {
    expect(canonicalJson({ b: 1.5, a: -0.25, c: 2 ** 53, d: 1e300 }, { strict: false })).toBe(
      '{"a":-0.25,"b":1.5,"c":9007199254740992,"d":1e+300}',
    );
    expectCoreError(() => canonicalJson({ a: Number.NaN }, { strict: false }), 'NOT_CANONICAL', /not finite/);
    expectCoreError(
      () => canonicalJson([Number.POSITIVE_INFINITY], { strict: false }),
      'NOT_CANONICAL',
      /not finite/,
    );
    // What strict mode forbids for numbers only: strings and structure rules still hold.
    expectCoreError(
      () => canonicalJson({ a: '\ud800' }, { strict: false }),
      'NOT_CANONICAL',
      /lone surrogate/,
    );
  });
});

describe('what is not JSON', () => {
  class Custom {
    a = 1;
  }
  it.each([
    ['a lone high surrogate in a string', { a: 'x\ud800' }, /at \.a: string has a lone surrogate/],
    ['a lone low surrogate in a string', ['\udc00y'], /at \[0\]: string has a lone surrogate/],
    ['reversed surrogates', '\udc00\ud800', /lone surrogate/],
    ['a lone surrogate in a key', { 'k\ud800': 1 }, /key has a lone surrogate/],
    ['undefined in an array', [1, undefined], /at \[1\]: undefined is not JSON/],
    // biome-ignore lint/suspicious/noSparseArray: the hole is the point
    ['a hole in an array', [1, , 2], /at \[1\]: undefined is not JSON/],
    ['undefined at the top', undefined, /undefined is not JSON/],
    ['a function', { f: () => 1 }, /at \.f: function is not JSON/],
    ['a symbol', [Symbol('s')], /symbol is not JSON/],
    ['a bigint', { n: 1n }, /bigint is not JSON/],
    ['a Date', { d: new Date(0) }, /Date is not a plain JSON object/],
    ['a Map', new Map([['a', 1]]), /Map is not a plain JSON object/],
    ['a Set', new Set([1]), /Set is not a plain JSON object/],
    ['a Uint8Array', new Uint8Array(2), /Uint8Array is not a plain JSON object/],
    ['a class instance', new Custom(), /Custom is not a plain JSON object/],
    ['a boxed string', [new String('s')], /String is not a plain JSON object/],
    ['an object with a custom prototype', Object.create({ inherited: 1 }), /not a plain JSON object/],
    ['an object with toJSON', { toJSON: () => 'x' }, /toJSON: function is not JSON/],
    [
      'a nested bad key path',
      { a: [{}, { 'b c': [0.5] }] },
      /at \.a\[1\]\["b c"\]\[0\]: 0.5 is not an integer/,
    ],
  ])('rejects %s', (_what, value, message) => {
    expectCoreError(() => canonicalJson(value), 'NOT_CANONICAL', message);
  });

  it('accepts objects with a null prototype, and drops undefined members as JSON does', () => {
    const bare = Object.create(null);
    bare.b = 2;
    bare.a = 1;
    expect(canonicalJson(bare)).toBe('{"a":1,"b":2}');
    expect(canonicalJson({ a: undefined, b: 1 })).toBe('{"b":1}');
  });

  it(`accepts nesting to ${MAX_JSON_DEPTH} levels and rejects deeper, cycles included`, () => {
    const nest = (levels: number): unknown => {
      let value: unknown = 0;
      for (let i = 0; i < levels; i++) value = i % 2 ? [value] : { k: value };
      return value;
    };
    expect(canonicalJson(nest(MAX_JSON_DEPTH))).toMatch(/^\[\{"k":\[/);
    expectCoreError(
      () => canonicalJson(nest(MAX_JSON_DEPTH + 1)),
      'NOT_CANONICAL',
      /nesting deeper than 512/,
    );
    expectCoreError(() => canonicalJson(nest(100_000)), 'NOT_CANONICAL', /nesting deeper than 512/);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expectCoreError(() => canonicalJson(cyclic), 'NOT_CANONICAL', /nesting deeper/);
  });
});

describe('key order is by Unicode code point', () => {
  it('puts U+E000..U+FFFF before astral characters, unlike UTF-16 order', () => {
    const value = { '\u{10000}': 1, '\uffff': 2, '\u{1f600}': 3, '\ue000': 4, '\ud7ff': 5, z: 6 };
    expect(canonicalJson(value)).toBe('{"z":6,"\ud7ff":5,"\ue000":4,"\uffff":2,"\u{10000}":1,"\u{1f600}":3}');
    // The plain sort (UTF-16 code units) would differ, so this checks something.
    expect(Object.keys(value).sort()).toEqual(['z', '\ud7ff', '\u{10000}', '\u{1f600}', '\ue000', '\uffff']);
  });

  it('compares prefixes and astral pairs correctly', () => {
    expect(compareCodePoints('a', 'ab')).toBeLessThan(0);
    expect(compareCodePoints('ab', 'a')).toBeGreaterThan(0);
    expect(compareCodePoints('\u{1f600}', '\u{1f601}')).toBeLessThan(0);
    expect(compareCodePoints('\uffff', '\u{10000}')).toBeLessThan(0);
    expect(compareCodePoints('x\u{10000}', 'x\uffff')).toBeGreaterThan(0);
    expect(compareCodePoints('same', 'same')).toBe(0);
  });

  it('agrees with a code-point sort for any two strings', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), fc.string({ unit: 'binary' }), (a, b) => {
        expect(Math.sign(compareCodePoints(a, b))).toBe(Math.sign(byCodePointReference(a, b)));
      }),
      { numRuns: 2000 },
    );
  });
});

describe('properties', () => {
  it('equals the reference encoder written from the grammar', () => {
    fc.assert(
      fc.property(json, (value) => {
        expect(canonicalJson(value)).toBe(referenceCanonical(value));
      }),
      { numRuns: 500 },
    );
  });

  it('round-trips: canonicalJson(JSON.parse(canonicalJson(x))) === canonicalJson(x)', () => {
    fc.assert(
      fc.property(json, (value) => {
        const text = canonicalJson(value);
        expect(canonicalJson(JSON.parse(text))).toBe(text);
      }),
      { numRuns: 500 },
    );
  });

  it('does not depend on key insertion order', () => {
    fc.assert(
      fc.property(json, fc.integer(), (value, seed) => {
        expect(canonicalJson(reshuffled(value, seeded(seed)))).toBe(canonicalJson(value));
      }),
      { numRuns: 500 },
    );
  });

  it('gives bytes equal to the UTF-8 of the text', () => {
    fc.assert(
      fc.property(json, (value) => {
        expect(canonicalJsonBytes(value)).toEqual(utf8.encode(canonicalJson(value)));
      }),
      { numRuns: 200 },
    );
    // ASCII, non-ASCII at the end (where a one-byte-per-unit buffer runs out), astral.
    for (const text of ['plain', 'caf\u00e9', '\u00e9', '日本語', '\u{1f600}x', '']) {
      expect(canonicalJsonBytes(text)).toEqual(utf8.encode(JSON.stringify(text)));
    }
  });
});

describe('the UTF-8 that is signed and kept', () => {
  const texts = [
    '',
    'plain',
    'caf\u00e9',
    '\u00e9',
    '日本語',
    '\u{1f600}x',
    'a'.repeat(30_000),
    '\u{1f600}'.repeat(12_000),
  ];

  it('withUtf8 lends exactly the UTF-8 of any text, and a nested call bytes of its own', () => {
    for (const text of texts) {
      expect(withUtf8(text, (bytes) => Array.from(bytes))).toEqual(Array.from(utf8.encode(text)));
    }
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), fc.string({ unit: 'binary' }), (outer, inner) => {
        withUtf8(outer, (bytes) => {
          const before = Array.from(bytes);
          expect(before).toEqual(Array.from(utf8.encode(outer)));
          expect(withUtf8(inner, (nested) => Array.from(nested))).toEqual(Array.from(utf8.encode(inner)));
          expect(Array.from(bytes)).toEqual(before);
        });
      }),
      { numRuns: 200 },
    );
  });

  it('utf8BytesPooled gives the UTF-8 of any text, and arrays it gave earlier keep their bytes', () => {
    const kept: [Uint8Array, string][] = [];
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 700 }), (text) => {
        const bytes = utf8BytesPooled(text);
        expect(bytes).toEqual(utf8.encode(text));
        kept.push([bytes, text]);
      }),
      // Enough text to fill several slabs.
      { numRuns: 400 },
    );
    for (const text of texts) kept.push([utf8BytesPooled(text), text]);
    for (const [bytes, text] of kept) expect(bytes).toEqual(utf8.encode(text));
  });
});
