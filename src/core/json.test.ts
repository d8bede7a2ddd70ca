import { execFileSync } from 'node:child_process';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type JsonDecodeReason, jsonHasEscapedKey, parseJson } from './json.ts';

/** Every escape the runtime bug was seen with, as written in JSON text, and what it decodes to. */
const ESCAPED_KEYS: Array<[string, string]> = [
  ['\\t', '\t'],
  ['\\n', '\n'],
  ['\\"', '"'],
  ['\\/', '/'],
  ['\\b', '\b'],
  ['\\f', '\f'],
  ['\\r', '\r'],
  ['\\u00e9', 'é'],
  ['\\u4e2d', '中'],
  ['\\u0041', 'A'],
  ['\\ud83d\\ude00', '😀'],
  // Longer keys too: the runtime compares the key's raw characters, as many as it decodes
  // to, with keys it has seen, so `ab\n` reads as an earlier `ab\\`.
  ['ab\\n', 'ab\n'],
  ['ab\\u0041', 'abA'],
  ['x\\"', 'x"'],
];
const POISON = '{"\\\\":1}';
/** Keys seen before the cases, each one the raw prefix of a longer case above. */
const LONGER_POISONS = ['{"ab\\\\":1}', '{"x\\\\":1}'];

function reason(run: () => unknown): JsonDecodeReason | 'accepted' {
  try {
    run();
    return 'accepted';
  } catch (err) {
    const r = (err as { reason?: JsonDecodeReason }).reason;
    if (!r) throw err;
    return r;
  }
}

describe('parseJson against the V8 escaped-key bug (nodejs/node#63785)', () => {
  // A fresh process, poisoned before anything else runs in it: the runtime's misreading
  // depends on which strings that process has already seen, so the raw reads come first and
  // the decoder (imported after) then reads the same texts in the same poisoned process.
  const script = `
    const cases = ${JSON.stringify(ESCAPED_KEYS.map(([raw]) => `{"${raw}":1}`))};
    for (const text of ${JSON.stringify([POISON, ...LONGER_POISONS])}) JSON.parse(text);
    const raw = cases.map((text) => Object.keys(JSON.parse(text))[0]);
    const { parseJson } = await import(${JSON.stringify(new URL('./json.ts', import.meta.url).href)});
    const ours = cases.map((text) => Object.keys(parseJson(text))[0]);
    console.log(JSON.stringify({ raw, ours }));`;
  const results = parseJson(
    execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' }),
  ) as { raw: string[]; ours: string[] };
  const major = Number(process.versions.node.split('.')[0]);

  it.each(ESCAPED_KEYS.map(([raw, decoded], i) => [raw, decoded, i] as const))(
    'decodes the key "%s" exactly after a "\\\\" key was parsed',
    (_raw, decoded, i) => {
      expect(results.ours[i]).toBe(decoded);
    },
  );

  it.runIf(major === 24 || major === 26)('shows the runtime itself getting it wrong (Node 24/26)', () => {
    // If this ever fails, the runtime was fixed: the fast path is then exact everywhere.
    expect(results.raw.filter((k) => k === '\\').length).toBeGreaterThanOrEqual(5);
    expect(results.raw.slice(-3)).toEqual(['ab\\', 'ab\\', 'x\\']);
  });
});

describe('parseJson', () => {
  it('reads what JSON.parse reads on ordinary texts', () => {
    for (const text of ['{}', '[]', 'null', '0', '-0', '1.5e3', '"x"', ' { "a" : [ 1 , true , null ] } ']) {
      expect(parseJson(text)).toEqual(JSON.parse(text));
    }
  });

  it('keeps __proto__ an own property on both paths', () => {
    for (const text of ['{"__proto__":{"admin":true}}', '{"__proto__":{"admin":true},"\\t":1}']) {
      const value = parseJson(text) as Record<string, unknown>;
      expect(Object.getPrototypeOf(value)).toBe(Object.prototype);
      expect(Object.keys(value)).toContain('__proto__');
      expect((value as { admin?: unknown }).admin).toBeUndefined();
    }
  });

  it('refuses lone surrogates, escaped or raw, unless told to allow them', () => {
    for (const text of [
      '"\\ud800"',
      '{"a":"x\\udc00"}',
      '{"\\ud800":1}',
      '["\\ud83d\\u0041"]',
      '"\\ud83d"',
    ]) {
      expect(reason(() => parseJson(text))).toBe('lone-surrogate');
      expect(reason(() => parseJson(text, { loneSurrogates: 'allow' }))).toBe('accepted');
      // Text decoded from UTF-8 skips only the search for raw ones: escapes are still refused.
      expect(reason(() => parseJson(text, { fromUtf8: true }))).toBe('lone-surrogate');
    }
    expect(reason(() => parseJson('"\ud800"'))).toBe('lone-surrogate');
    // Decoding UTF-8 cannot yield a raw lone surrogate: a malformed sequence becomes U+FFFD.
    const decoded = new TextDecoder().decode(new Uint8Array([0x22, 0xed, 0xa0, 0x80, 0x22]));
    expect(parseJson(decoded, { fromUtf8: true })).toBe('\ufffd\ufffd\ufffd');
    expect(parseJson('"\\ud83d\\ude00"')).toBe('😀');
    expect(parseJson('{"\\ud83d\\ude00":"\\uD83D\\uDE00"}')).toEqual({ '😀': '😀' });
  });

  it('refuses numbers the runtime would turn into Infinity, on both paths', () => {
    for (const text of ['1e400', '{"a":-1E+309}', `[${'9'.repeat(310)}]`, `{"a":1${'0'.repeat(300)}e10}`]) {
      expect(reason(() => parseJson(text))).toBe('non-finite');
      expect(reason(() => parseJson(text, { duplicateKeys: 'reject' }))).toBe('non-finite');
    }
    expect(parseJson('{"a":"1e400","b":1e308}')).toEqual({ a: '1e400', b: 1e308 });
  });

  it('bounds nesting on both paths', () => {
    const nest = (n: number) => '['.repeat(n) + ']'.repeat(n);
    expect(reason(() => parseJson(nest(10), { maxDepth: 10 }))).toBe('accepted');
    expect(reason(() => parseJson(nest(11), { maxDepth: 10 }))).toBe('too-deep');
    expect(reason(() => parseJson(`{"\\t":${nest(10)}}`, { maxDepth: 10 }))).toBe('too-deep');
    expect(reason(() => parseJson(`{"\\t":${nest(9)}}`, { maxDepth: 10 }))).toBe('accepted');
    expect(reason(() => parseJson(nest(100_000)))).toBe('too-deep');
    expect(reason(() => parseJson(`{"\\t":${nest(100_000)}}`))).toBe('too-deep');
  });

  it('rejects duplicate keys only when asked', () => {
    expect(parseJson('{"a":1,"a":2}')).toEqual({ a: 2 });
    expect(reason(() => parseJson('{"a":1,"a":2}', { duplicateKeys: 'reject' }))).toBe('duplicate-key');
    expect(reason(() => parseJson('{"a":1,"\\u0061":2}', { duplicateKeys: 'reject' }))).toBe('duplicate-key');
    expect(reason(() => parseJson('[{"a":1},{"a":2}]', { duplicateKeys: 'reject' }))).toBe('accepted');
  });

  it('reads its own stored text back without re-applying input rules when trusted', () => {
    expect(parseJson('{"a":"\\ud800","\\t":1}', { trusted: true })).toEqual({ a: '\ud800', '\t': 1 });
    const nest = (n: number) => '['.repeat(n) + ']'.repeat(n);
    expect(reason(() => parseJson(nest(2000), { trusted: true }))).toBe('accepted');
    expect(reason(() => parseJson(`{"\\t":${nest(1000)}}`, { trusted: true }))).toBe('accepted');
    expect(reason(() => parseJson(`{"\\t":${nest(100_000)}}`, { trusted: true }))).toBe('too-deep');
  });

  it('bounds length', () => {
    expect(reason(() => parseJson('"abcdef"', { maxLength: 5 }))).toBe('too-large');
  });

  it('refuses every malformed text on the exact path as JSON.parse does', () => {
    const broken = [
      '',
      ' ',
      '{',
      '{"a"}',
      '{"a":}',
      '{"a":1,}',
      '[1,]',
      '[01]',
      '[1.]',
      '[.5]',
      '[+1]',
      '["\\x"]',
      '["\\u12"]',
      '["\t"]',
      '["a]',
      '[tru]',
      '[nul]',
      '{} {}',
      '{a:1}',
      "{'a':1}",
      '[NaN]',
      '[-]',
      '[1e]',
      '{"a" 1}',
    ];
    for (const text of broken) {
      expect(() => JSON.parse(text)).toThrow(SyntaxError);
      expect(reason(() => parseJson(text))).toBe('syntax');
      // The same text with an escaped key up front, so the exact parser decides.
      const exact = `{"\\t":${text}}`;
      expect(
        reason(() => parseJson(exact)),
        exact,
      ).toBe('syntax');
      expect(
        reason(() => parseJson(text, { duplicateKeys: 'reject' })),
        text,
      ).toBe('syntax');
    }
  });
});

// --- property: random values, written with random escapes, read after poisoning -----------

/** A value's JSON text with each character of each string written raw or escaped at random. */
function writeWithEscapes(value: unknown, coin: () => number): string {
  const quote = (s: string) => {
    let out = '"';
    for (const ch of s) {
      const code = ch.codePointAt(0) as number;
      const mustEscape = ch === '"' || ch === '\\' || code < 0x20;
      const pick = coin();
      if (!mustEscape && pick < 0.5) {
        out += ch;
      } else if (pick < 0.75 && '"\\/\b\f\n\r\t'.includes(ch)) {
        out += {
          '"': '\\"',
          '\\': '\\\\',
          '/': '\\/',
          '\b': '\\b',
          '\f': '\\f',
          '\n': '\\n',
          '\r': '\\r',
          '\t': '\\t',
        }[ch];
      } else {
        for (let i = 0; i < ch.length; i++) {
          const unit = ch.charCodeAt(i).toString(16).padStart(4, '0');
          out += `\\u${pick < 0.9 ? unit : unit.toUpperCase()}`;
        }
      }
    }
    return `${out}"`;
  };
  const ws = () => (coin() < 0.8 ? '' : ' \n\t\r'[Math.floor(coin() * 4)]);
  const write = (v: unknown): string => {
    if (typeof v === 'string') return quote(v);
    if (Array.isArray(v)) return `[${ws()}${v.map(write).join(`${ws()},${ws()}`)}${ws()}]`;
    if (v !== null && typeof v === 'object') {
      const parts = Object.entries(v).map(([k, x]) => `${quote(k)}${ws()}:${ws()}${write(x)}`);
      return `{${ws()}${parts.join(`,${ws()}`)}${ws()}}`;
    }
    return JSON.stringify(v);
  };
  return write(value);
}

function seeded(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
}

const key = fc.oneof(
  fc.string({ minLength: 1, maxLength: 1, unit: 'grapheme' }),
  fc.constantFrom('\\', '"', '/', '\t', '\n', 'é', '中', 'A', '😀'),
  fc.string({ maxLength: 6, unit: 'binary' }),
);
const { value: jsonTree } = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.string({ maxLength: 8, unit: 'binary' }),
    fc.integer(),
    fc.double({ noNaN: true, noDefaultInfinity: true }).filter((d) => !Object.is(d, -0)),
    fc.boolean(),
    fc.constant(null),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(key, tie('value'), { maxKeys: 4 }),
  ),
}));
const poison = fc.constantFrom(
  POISON,
  '{"\\\\":{"\\\\":[1]}}',
  '[{"\\\\":1},{"\\\\":2}]',
  '{"a\\\\":1}',
  '{"\\\\t":1}',
);

/** Strings that may hold lone surrogates, as single code units, next to ordinary ones. */
const surrogateString = fc
  .array(
    fc.oneof(
      fc.constantFrom('\ud800', '\udbff', '\udc00', '\udfff', '\ud83d\ude00', '\\', 'u', 'a', '"'),
      fc.string({ maxLength: 3 }),
    ),
    { maxLength: 6 },
  )
  .map((parts) => parts.join(''));

describe('parseJson property', () => {
  it('refuses a text exactly when a string in it has a lone surrogate, however it is escaped', () => {
    fc.assert(
      fc.property(
        fc.dictionary(surrogateString, surrogateString, { maxKeys: 3 }),
        fc.integer(),
        (value, seed) => {
          const text = writeWithEscapes(value, seeded(seed));
          const lone = [...Object.keys(value), ...Object.values(value)].some((s) => !s.isWellFormed());
          expect(
            reason(() => parseJson(text)),
            text,
          ).toBe(lone ? 'lone-surrogate' : 'accepted');
          // The same, nested in an array and an object, and as a string at the top.
          expect(reason(() => parseJson(`[0,{"x":${text}}]`))).toBe(lone ? 'lone-surrogate' : 'accepted');
          const first = Object.values(value)[0];
          if (first !== undefined) {
            const top = writeWithEscapes(first, seeded(seed));
            expect(reason(() => parseJson(top))).toBe(first.isWellFormed() ? 'accepted' : 'lone-surrogate');
          }
        },
      ),
      { numRuns: 2_000 },
    );
  });

  it('sends a text to the exact parser exactly when one of its keys is written with an escape', () => {
    // A reference reading of the text, one character at a time: each string, whether it
    // holds a backslash, and whether a colon follows it. Also whether some string starts
    // with a colon: the scan may then take a value for a key (never the other way round).
    let colonFirst = false;
    const reference = (text: string): boolean => {
      colonFirst = false;
      let found = false;
      for (let i = 0; i < text.length; i++) {
        if (text[i] !== '"') continue;
        if (text[i + 1] === ':') colonFirst = true;
        let escaped = false;
        for (i++; text[i] !== '"'; i++) {
          if (text[i] === '\\') {
            escaped = true;
            i++;
          }
        }
        let j = i + 1;
        while (' \t\n\r'.includes(text[j] as string)) j++;
        if (escaped && text[j] === ':') found = true;
      }
      return found;
    };
    // Strings dense with quotes, colons and backslashes, as keys and as values.
    const tricky = fc.oneof(
      key,
      fc.stringMatching(/^[":\\ a{}[\],]{0,12}$/),
      fc.constantFrom('say "hi": now', '":"', '\\":', 'C:\\temp', '""""""', 'a"b"c"d"e'),
    );
    const { tree } = fc.letrec((tie) => ({
      tree: fc.oneof(
        { depthSize: 'small' },
        tricky,
        fc.integer(),
        fc.array(tie('tree'), { maxLength: 4 }),
        fc.dictionary(tricky, tie('tree'), { maxKeys: 4 }),
      ),
    }));
    fc.assert(
      fc.property(tree, fc.integer(), (value, seed) => {
        const text = writeWithEscapes(value, seeded(seed));
        const expected = reference(text);
        const scanned = jsonHasEscapedKey(text);
        // Never a miss: that would leave a misreadable key to the runtime's parser.
        if (expected) expect(scanned, text).toBe(true);
        // A false alarm only costs the exact parser's slower read, and needs a colon first.
        else if (!colonFirst) expect(scanned, text).toBe(false);
      }),
      { numRuns: 5_000 },
    );
  });

  it('reads back every value written with random escapes, whatever was parsed before', () => {
    fc.assert(
      fc.property(poison, jsonTree, fc.integer(), (poisonText, value, seed) => {
        JSON.parse(poisonText);
        const text = writeWithEscapes(value, seeded(seed));
        expect(parseJson(text, { loneSurrogates: 'allow' })).toEqual(value);
      }),
      { numRuns: 2_000 },
    );
  });

  it('reads them back exactly under the input rules too (strings are then checked for lone surrogates)', () => {
    const wellFormed = (v: unknown): boolean =>
      typeof v === 'string'
        ? v.isWellFormed()
        : Array.isArray(v)
          ? v.every(wellFormed)
          : v !== null && typeof v === 'object'
            ? Object.entries(v).every(([k, x]) => k.isWellFormed() && wellFormed(x))
            : true;
    fc.assert(
      fc.property(poison, jsonTree.filter(wellFormed), fc.integer(), (poisonText, value, seed) => {
        JSON.parse(poisonText);
        const text = writeWithEscapes(value, seeded(seed));
        expect(parseJson(text)).toEqual(value);
        expect(parseJson(text, { trusted: true })).toEqual(value);
      }),
      { numRuns: 2_000 },
    );
  });
});
