import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { indexWords, MAX_WORD_LENGTH, searchWords, unicodeWords } from './search-text.ts';

describe('search words', () => {
  it('finds the words of ASCII text as the general path does', () => {
    const ascii = fc.string({
      unit: fc.constantFrom(...'aZ09 _-.,:;!?\'"@#$%&*()[]{}<>/\\|`~^+=\t\n\u0000\u007f'.split('')),
      maxLength: 200,
    });
    fc.assert(
      fc.property(ascii, (text) => {
        expect(searchWords(text)).toEqual(unicodeWords(text));
      }),
      { numRuns: 500 },
    );
    const long = 'x'.repeat(MAX_WORD_LENGTH + 1);
    const text = `Hello, World! 42 times: snake_case ${long} e-mail ${'y'.repeat(MAX_WORD_LENGTH)}`;
    expect(searchWords(text)).toEqual(unicodeWords(text));
    expect(searchWords(text)).toEqual([
      'hello',
      'world',
      '42',
      'times',
      'snake',
      'case',
      'e',
      'mail',
      'y'.repeat(64),
    ]);
  });

  it('normalises, lowercases and splits unspaced scripts outside ASCII', () => {
    expect(searchWords('Ｆｕｌｌｗｉｄｔｈ Café')).toEqual(['fullwidth', 'café']);
    expect(searchWords('東京tower')).toEqual(['東', '京', 'tower']);
    expect(indexWords('the quick the lazy THE')).toEqual(['the', 'quick', 'lazy']);
  });
});
