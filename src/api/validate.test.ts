import { describe, expect, it } from 'vitest';
import { isMatrixError, type MatrixError } from '../homeserver/errors.ts';
import { decodeJsonText, q, type Source, type Validator, v } from './validate.ts';

function fails(fn: () => unknown): MatrixError {
  try {
    fn();
  } catch (err) {
    if (isMatrixError(err)) return err;
    throw err;
  }
  throw new Error('expected a MatrixError');
}

const body = <T>(val: Validator<T>, value: unknown) => val.parse(value, '', 'body' as Source);
const errOf = <T>(val: Validator<T>, value: unknown) => {
  const e = fails(() => body(val, value));
  return [e.errcode, e.message];
};

describe('body validators', () => {
  it('strings with limits in code units, UTF-8 bytes and patterns', () => {
    const s = v.object({ s: v.string({ min: 1, max: 4, maxBytes: 6 }) });
    expect(body(s, { s: 'abcd' })).toEqual({ s: 'abcd' });
    expect(errOf(s, { s: '' })).toEqual(['M_BAD_JSON', 'JSON field "s": must not be empty']);
    expect(errOf(s, { s: 'abcde' })).toEqual(['M_BAD_JSON', 'JSON field "s": must be at most 4 characters']);
    expect(errOf(s, { s: 'ééé€' })).toEqual([
      'M_BAD_JSON',
      'JSON field "s": must be at most 6 bytes of UTF-8',
    ]);
    expect(body(s, { s: '😀' })).toEqual({ s: '😀' }); // 2 code units, 4 bytes
    expect(errOf(s, { s: 5 })).toEqual(['M_BAD_JSON', 'JSON field "s": expected a string, got number 5']);
    expect(errOf(s, {})).toEqual(['M_MISSING_PARAM', 'JSON field "s" is required']);
    const p = v.string({ pattern: /^@/, patternName: 'a user ID' });
    expect(errOf(v.object({ u: p }), { u: 'x' })).toEqual(['M_BAD_JSON', 'JSON field "u": is not a user ID']);
  });

  it('integers are safe integers; numbers are finite', () => {
    const o = v.object({ i: v.int({ min: 0, max: 10 }) });
    expect(body(o, { i: 10 })).toEqual({ i: 10 });
    for (const bad of [1.5, 2 ** 53, '3', null, true]) expect(errOf(o, { i: bad })[0]).toBe('M_BAD_JSON');
    expect(errOf(o, { i: 11 })).toEqual(['M_BAD_JSON', 'JSON field "i": must be ≤ 10, got 11']);
    expect(errOf(o, { i: -1 })).toEqual(['M_BAD_JSON', 'JSON field "i": must be ≥ 0, got -1']);
    expect(body(v.object({ n: v.number() }), { n: 0.5 })).toEqual({ n: 0.5 });
    expect(errOf(v.object({ n: v.number() }), { n: Number.POSITIVE_INFINITY })[0]).toBe('M_BAD_JSON');
  });

  it('optional keys stay absent; defaults fill in; null is not absent', () => {
    const o = v.object({
      a: v.optional(v.bool()),
      b: v.optional(v.int(), 7),
      c: v.optional(v.nullable(v.string())),
    });
    expect(body(o, {})).toEqual({ b: 7 });
    expect('a' in body(o, {})).toBe(false);
    expect(body(o, { a: true, b: 1, c: null })).toEqual({ a: true, b: 1, c: null });
    expect(errOf(o, { a: null })).toEqual(['M_BAD_JSON', 'JSON field "a": expected a boolean, got null']);
  });

  it('paths name nested fields and array elements', () => {
    const o = v.object({ list: v.array(v.object({ inner: v.object({ x: v.int() }) })) });
    expect(errOf(o, { list: [{ inner: { x: 1 } }, { inner: { x: 'no' } }] })).toEqual([
      'M_BAD_JSON',
      'JSON field "list[1].inner.x": expected an integer, got "no"',
    ]);
    expect(errOf(o, { list: [{ inner: {} }] })).toEqual([
      'M_MISSING_PARAM',
      'JSON field "list[0].inner.x" is required',
    ]);
    expect(errOf(o, { list: {} })).toEqual([
      'M_BAD_JSON',
      'JSON field "list": expected an array, got object',
    ]);
  });

  it('arrays and records bound their size', () => {
    expect(errOf(v.array(v.int(), { max: 2 }), [1, 2, 3])).toEqual([
      'M_BAD_JSON',
      'Request body: must have at most 2 elements',
    ]);
    expect(errOf(v.array(v.int(), { min: 1 }), [])).toEqual([
      'M_BAD_JSON',
      'Request body: must have at least 1 element',
    ]);
    const r = v.record(v.int(), { maxKeys: 2, key: v.string({ pattern: /^@/ }) });
    expect(body(r, { '@a': 1 })).toEqual({ '@a': 1 });
    expect(errOf(r, { '@a': 1, '@b': 2, '@c': 3 })[1]).toBe('Request body: must have at most 2 keys');
    expect(errOf(r, { a: 1 })[1]).toMatch(/^JSON field "a": is not a string matching/);
    expect(errOf(r, { '@a': 'x' })[1]).toBe('JSON field "@a": expected an integer, got "x"');
  });

  it('strips undeclared keys unless asked to keep them', () => {
    expect(body(v.object({ a: v.int() }), { a: 1, b: 2 })).toEqual({ a: 1 });
    expect(body(v.object({ a: v.int() }, { unknownKeys: 'keep' }), { a: 1, b: 2 })).toEqual({ a: 1, b: 2 });
  });

  it('enums, literals, unions, refinements', () => {
    expect(errOf(v.enum(['a', 'b']), 'c')[1]).toBe('Request body: expected one of "a", "b", got "c"');
    expect(body(v.literal('m.login.dummy'), 'm.login.dummy')).toBe('m.login.dummy');
    const u = v.union(v.string(), v.int());
    expect(body(u, 3)).toBe(3);
    expect(errOf(u, true)[1]).toBe('Request body: expected a string or an integer, got boolean');
    const even = v.refine(v.int(), (n) => (n % 2 ? 'must be even' : undefined));
    expect(errOf(v.object({ n: even }), { n: 3 })).toEqual(['M_BAD_JSON', 'JSON field "n": must be even']);
    const optEven = v.object({
      n: v.refine(v.optional(v.int()), (n) => (n !== undefined && n % 2 ? 'odd' : undefined)),
    });
    expect(body(optEven, {})).toEqual({});
  });

  it('json() passes values through without walking them', () => {
    let deep: unknown = 0;
    for (let i = 0; i < 100_000; i++) deep = [deep];
    const o = v.object({ content: v.json() });
    expect(body(o, { content: deep }).content).toBe(deep);
    expect(errOf(o, {})[0]).toBe('M_MISSING_PARAM');
    expect(errOf(v.object({ c: v.jsonObject() }), { c: [] })[0]).toBe('M_BAD_JSON');
  });

  it('never lets "__proto__" reach a prototype', () => {
    const parsed = JSON.parse('{"__proto__":{"admin":true},"a":1}');
    const kept = body(v.object({ a: v.int() }, { unknownKeys: 'keep' }), parsed) as Record<string, unknown>;
    expect(Object.getPrototypeOf(kept)).toBe(Object.prototype);
    expect(Object.hasOwn(kept, '__proto__')).toBe(true);
    expect((kept as { admin?: boolean }).admin).toBeUndefined();
    const rec = body(v.record(v.json()), parsed) as Record<string, unknown>;
    expect(Object.getPrototypeOf(rec)).toBe(Object.prototype);
    expect(Object.keys(rec)).toEqual(['__proto__', 'a']);
  });
});

describe('query validators', () => {
  const parse = <T>(val: { parse(p: URLSearchParams): T }, qs: string) => val.parse(new URLSearchParams(qs));
  const qerr = (fn: () => unknown) => {
    const e = fails(fn);
    return [e.errcode, e.message];
  };

  it('typed scalars with M_INVALID_PARAM / M_MISSING_PARAM', () => {
    const s = q.object({
      limit: q.int({ min: 1 }),
      dir: q.enum(['b', 'f']),
      flag: q.optional(q.bool(), false),
    });
    expect(parse(s, 'limit=5&dir=b')).toEqual({ limit: 5, dir: 'b', flag: false });
    expect(parse(s, 'limit=5&dir=b&flag=true&other=x')).toEqual({ limit: 5, dir: 'b', flag: true });
    expect(qerr(() => parse(s, 'dir=b'))).toEqual(['M_MISSING_PARAM', 'Query parameter "limit" is required']);
    expect(qerr(() => parse(s, 'limit=0&dir=b'))).toEqual([
      'M_INVALID_PARAM',
      'Query parameter "limit": must be ≥ 1, got 0',
    ]);
    for (const bad of ['', '+1', '0x10', '1e2', ' 1', '01', '9007199254740993']) {
      expect(qerr(() => parse(s, `limit=${encodeURIComponent(bad)}&dir=b`))[0]).toBe('M_INVALID_PARAM');
    }
    expect(qerr(() => parse(s, 'limit=1&dir=b&flag=1'))).toEqual([
      'M_INVALID_PARAM',
      'Query parameter "flag": expected true or false, got "1"',
    ]);
  });

  it('the first of repeated scalars counts; lists take every value', () => {
    const s = q.object({ from: q.string(), via: q.list({ min: 1 }, { max: 3 }) });
    expect(parse(s, 'from=a&from=b&via=x&via=y')).toEqual({ from: 'a', via: ['x', 'y'] });
    expect(parse(s, 'from=a')).toEqual({ from: 'a', via: [] });
    expect(qerr(() => parse(s, 'from=a&via=1&via=2&via=3&via=4'))[1]).toBe(
      'Query parameter "via": may be given at most 3 times',
    );
    expect(qerr(() => parse(s, 'from=a&via='))[0]).toBe('M_INVALID_PARAM');
  });

  it('JSON parameters are parsed, depth-bounded and validated as query input', () => {
    const s = q.object({ filter: q.optional(q.json(v.object({ limit: v.optional(v.int()) }))) });
    expect(parse(s, `filter=${encodeURIComponent('{"limit":3}')}`)).toEqual({ filter: { limit: 3 } });
    expect(parse(s, '')).toEqual({});
    expect(qerr(() => parse(s, 'filter=%7B'))).toEqual([
      'M_INVALID_PARAM',
      'Query parameter "filter": is not valid JSON',
    ]);
    expect(qerr(() => parse(s, `filter=${encodeURIComponent('{"limit":"x"}')}`))).toEqual([
      'M_INVALID_PARAM',
      'Query parameter "filter.limit": expected an integer, got "x"',
    ]);
    const deep = `${'['.repeat(1000)}${']'.repeat(1000)}`;
    expect(qerr(() => parse(s, `filter=${deep}`))[1]).toMatch(/nests deeper than 64/);
  });
});

describe('decodeJsonText', () => {
  const fail = (problem: string): never => {
    throw new Error(problem);
  };
  it('reads JSON query text and names what is wrong with bad text', () => {
    expect(decodeJsonText('{"\\t":[1]}', 3, fail)).toEqual({ '\t': [1] });
    expect(() => decodeJsonText('{', 3, fail)).toThrow('is not valid JSON');
    expect(() => decodeJsonText('[[[[]]]]', 3, fail)).toThrow('nests deeper than 3 levels');
    expect(() => decodeJsonText('{"a":1e999}', 3, fail)).toThrow('too large to represent');
    expect(() => decodeJsonText('{"a":"\\ud800"}', 3, fail)).toThrow('lone surrogate');
  });
});
