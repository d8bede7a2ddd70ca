import { describe, expect, it } from 'vitest';
import { formatSyncToken, formatTopoToken, parseSyncToken, parseTopoToken } from './tokens.ts';

describe('tokens', () => {
  it('round-trips sync tokens and rejects anything else', () => {
    const p = {
      events: 12,
      receipts: 3,
      accountData: 0,
      toDevice: 9,
      deviceLists: 1,
      typing: 4,
      presence: 2,
      partialState: 5,
    };
    expect(parseSyncToken(formatSyncToken(p))).toEqual(p);
    // A token of before the partial-state stream reads it as 0.
    expect(parseSyncToken('s12_3_0_9_1_4_2')).toEqual({ ...p, partialState: 0 });
    for (const bad of [
      '',
      's',
      's1_2',
      's1_2_3_4_5_6_x',
      's-1_2_3_4_5_6_7',
      't1_2',
      's01_2_3_4_5_6_7',
      's1_2_3_4_5_6_7_8_9',
      's1_2_3_4_5_6',
    ]) {
      expect(parseSyncToken(bad)).toBeNull();
    }
  });

  it('round-trips topological tokens, negative streams included', () => {
    expect(parseTopoToken(formatTopoToken({ depth: 5, stream: -3 }))).toEqual({ depth: 5, stream: -3 });
    for (const bad of ['t', 't1', 't1_', 't_1', 'ta_1', 't-1_1', 's1_1', 't1_1_1'])
      expect(parseTopoToken(bad)).toBeNull();
  });
});
