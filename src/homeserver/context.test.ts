import { describe, expect, it } from 'vitest';
import { isLocalId } from './context.ts';

describe('isLocalId', () => {
  const config = { serverName: 'example.org:8448' };

  it('parses the server name of every sigil', () => {
    for (const id of [
      '@a:example.org:8448',
      '!r:example.org:8448',
      '$e:example.org:8448',
      '#a:example.org:8448',
    ])
      expect(isLocalId(config, id), id).toBe(true);
  });

  it('is false for other servers, lookalike suffixes and what does not parse', () => {
    for (const id of ['@a:example.org', '@a:evil.example.org:8448', '$hashonly', 'not an id', ''])
      expect(isLocalId(config, id), id).toBe(false);
  });
});
