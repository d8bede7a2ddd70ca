import { describe, expect, it } from 'vitest';
import { matchGlob, parsePropertyPath, valueAtPath } from './glob.ts';

describe('glob matching of whole values (event_match)', () => {
  it('follows the spec example: "lunc?*" against a topic', () => {
    expect(matchGlob('lunc?*', 'Lunch plans')).toBe(true);
    expect(matchGlob('lunc?*', 'LUNCH')).toBe(true);
    expect(matchGlob('lunc?*', ' lunch')).toBe(false);
    expect(matchGlob('lunc?*', 'lunc')).toBe(false);
  });

  it('lets * match nothing or anything, including newlines', () => {
    expect(matchGlob('*', '')).toBe(true);
    expect(matchGlob('a*b', 'ab')).toBe(true);
    expect(matchGlob('a*b', 'a\nline\nb')).toBe(true);
    expect(matchGlob('a**b', 'axxb')).toBe(true);
    expect(matchGlob('a*b', 'abc')).toBe(false);
  });

  it('lets ? match exactly one character, a whole astral code point', () => {
    expect(matchGlob('?', '')).toBe(false);
    expect(matchGlob('?', 'ab')).toBe(false);
    expect(matchGlob('a?c', 'a😀c')).toBe(true);
    expect(matchGlob('a??c', 'a😀c')).toBe(false);
  });

  it('treats everything other than * and ? literally', () => {
    expect(matchGlob('m.notice', 'm.notice')).toBe(true);
    expect(matchGlob('m.notice', 'mXnotice')).toBe(false);
    expect(matchGlob('[abc]', 'a')).toBe(false);
    expect(matchGlob('[abc]', '[ABC]')).toBe(true);
    expect(matchGlob('(a|b)+\\d', '(a|b)+\\d')).toBe(true);
    expect(matchGlob('^$', '^$')).toBe(true);
  });

  it('matches case-insensitively', () => {
    expect(matchGlob('M.ROOM.MESSAGE', 'm.room.message')).toBe(true);
    expect(matchGlob('straße', 'STRASSE')).toBe(false);
    expect(matchGlob('ÉTÉ', 'été')).toBe(true);
  });

  it('an empty pattern matches only the empty value (the tombstone state_key condition)', () => {
    expect(matchGlob('', '')).toBe(true);
    expect(matchGlob('', ' ')).toBe(false);
  });

  it('stays fast on patterns that make backtracking matchers explode', () => {
    const text = 'a'.repeat(65_536);
    const started = performance.now();
    expect(matchGlob('*a*a*a*a*a*a*a*a*b', text)).toBe(false);
    expect(matchGlob('*a*a*a*a*a*a*a*a*b', text, 'words')).toBe(false);
    expect(performance.now() - started).toBeLessThan(2_000);
  });
});

describe('glob matching at word boundaries (content.body)', () => {
  it('follows the spec example: "ex*ple"', () => {
    expect(matchGlob('ex*ple', 'An example event.', 'words')).toBe(true);
    expect(matchGlob('ex*ple', 'exple', 'words')).toBe(true);
    expect(matchGlob('ex*ple', 'An exciting triple-whammy', 'words')).toBe(true);
  });

  it('needs a boundary on both sides; letters, digits and _ are word characters', () => {
    expect(matchGlob('cake', 'I like cake!', 'words')).toBe(true);
    expect(matchGlob('cake', 'cakes', 'words')).toBe(false);
    expect(matchGlob('cake', 'pancake', 'words')).toBe(false);
    expect(matchGlob('cake', 'cake_shop', 'words')).toBe(false);
    expect(matchGlob('cake', 'cake2', 'words')).toBe(false);
    expect(matchGlob('cake', 'cake-shop', 'words')).toBe(true);
    expect(matchGlob('cake', '(CAKE)', 'words')).toBe(true);
    // The spec's sets are ASCII: a non-ASCII letter is a boundary.
    expect(matchGlob('caf', 'café', 'words')).toBe(true);
  });

  it('finds a later match after an earlier failed start', () => {
    expect(matchGlob('tea', 'teapot and tea', 'words')).toBe(true);
    expect(matchGlob('t?a', 'tex, then tea', 'words')).toBe(true);
    expect(matchGlob('time*tea', "It's time for tea", 'words')).toBe(true);
    expect(matchGlob('time*tea', "It's time for teatime", 'words')).toBe(false);
  });

  it('matches patterns that begin or end with non-word characters', () => {
    expect(matchGlob('@room', 'hey @room look', 'words')).toBe(true);
    expect(matchGlob('@room', 'hey @roomy', 'words')).toBe(false);
  });
});

describe('long patterns (31 tokens and more take the other automaton)', () => {
  const long = 'abcdefghij'.repeat(4);
  it('agree with the short-pattern matcher', () => {
    expect(matchGlob(`${long}*`, `${long}tail`)).toBe(true);
    expect(matchGlob(`*${long}`, `x${long}`)).toBe(true);
    expect(matchGlob(`${long}?`, long)).toBe(false);
    expect(
      matchGlob(`${long.slice(0, 20)}*${long.slice(20)}`, `${long.slice(0, 20)}--${long.slice(20)}`),
    ).toBe(true);
    expect(matchGlob(long, `say ${long.toUpperCase()}!`, 'words')).toBe(true);
    expect(matchGlob(long, `say ${long}s`, 'words')).toBe(false);
    expect(matchGlob(`${long}*x`, `${long} then ${long}x`, 'words')).toBe(true);
  });

  it('stay fast too', () => {
    const started = performance.now();
    expect(matchGlob(`${'*a'.repeat(20)}b`, 'a'.repeat(65_536))).toBe(false);
    expect(performance.now() - started).toBeLessThan(5_000);
  });
});

describe('dot-separated property paths', () => {
  it('splits on unescaped dots and unescapes \\. and \\\\', () => {
    expect(parsePropertyPath('content.body')).toEqual(['content', 'body']);
    expect(parsePropertyPath('content.m\\.relates_to.rel_type')).toEqual([
      'content',
      'm.relates_to',
      'rel_type',
    ]);
    expect(parsePropertyPath('content.m\\\\foo')).toEqual(['content', 'm\\foo']);
    expect(parsePropertyPath('content.m\\\\.foo')).toEqual(['content', 'm\\', 'foo']);
  });

  it('leaves other escape sequences as they are', () => {
    expect(parsePropertyPath('content.a\\xb')).toEqual(['content', 'a\\xb']);
    expect(parsePropertyPath('trailing\\')).toEqual(['trailing\\']);
  });

  it('keeps empty segments', () => {
    expect(parsePropertyPath('')).toEqual(['']);
    expect(parsePropertyPath('a..b')).toEqual(['a', '', 'b']);
  });

  it('reads values through objects only, never through arrays or the prototype', () => {
    const event = { content: { 'm.mentions': { user_ids: ['@a:x'] }, list: [{ a: 1 }], 'm\\foo': 1 } };
    expect(valueAtPath(event, parsePropertyPath('content.m\\.mentions.user_ids'))).toEqual(['@a:x']);
    expect(valueAtPath(event, parsePropertyPath('content.m\\\\foo'))).toBe(1);
    expect(valueAtPath(event, parsePropertyPath('content.list.0.a'))).toBeUndefined();
    expect(valueAtPath(event, parsePropertyPath('content.constructor'))).toBeUndefined();
    expect(valueAtPath(event, parsePropertyPath('content.missing.deeper'))).toBeUndefined();
  });
});
