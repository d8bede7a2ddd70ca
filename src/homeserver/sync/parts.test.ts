import { describe, expect, it } from 'vitest';
import type { Membership } from '../../storage/store.ts';
import { clampSince } from './compute.ts';
import { stripEvent } from './stripped.ts';
import { pickHeroes } from './summary.ts';

const member = (userId: string, membership: string, stream: number | null): Membership => ({
  roomId: '!r:x',
  userId,
  membership,
  eventId: `$${userId}`,
  stream,
  forgotten: false,
});

describe('clampSince', () => {
  it('reads stored streams from the future as now, in-memory ones as the beginning', () => {
    const now = {
      events: 10,
      receipts: 5,
      accountData: 3,
      toDevice: 2,
      deviceLists: 1,
      typing: 4,
      presence: 6,
      partialState: 4,
    };
    const since = {
      events: 99,
      receipts: 1,
      accountData: 3,
      toDevice: 7,
      deviceLists: 0,
      typing: 9,
      presence: 2,
      partialState: 7,
    };
    expect(clampSince(since, now)).toEqual({
      events: 10,
      receipts: 1,
      accountData: 3,
      toDevice: 2,
      deviceLists: 0,
      typing: 0,
      presence: 2,
      partialState: 4,
    });
  });
});

describe('pickHeroes', () => {
  it('takes the first five joined or invited others by stream, never the user', () => {
    const members = [
      member('@me:x', 'join', 1),
      member('@f:x', 'join', 7),
      member('@b:x', 'invite', 3),
      member('@a:x', 'join', 2),
      member('@left:x', 'leave', 4),
      member('@c:x', 'join', 5),
      member('@e:x', 'join', 5),
      member('@d:x', 'join', 6),
    ];
    expect(pickHeroes(members, '@me:x')).toEqual(['@a:x', '@b:x', '@c:x', '@e:x', '@d:x']);
  });

  it('falls back to left and banned members, and is empty when alone', () => {
    expect(
      pickHeroes(
        [member('@me:x', 'join', 1), member('@gone:x', 'ban', 2), member('@k:x', 'knock', 3)],
        '@me:x',
      ),
    ).toEqual(['@gone:x']);
    expect(pickHeroes([member('@me:x', 'join', 1)], '@me:x')).toEqual([]);
  });
});

describe('stripEvent', () => {
  it('keeps only sender, type, state_key and content, and refuses incomplete events', () => {
    const full = {
      sender: '@a:x',
      type: 'm.room.name',
      state_key: '',
      content: { name: 'n' },
      event_id: '$e',
      unsigned: { age: 1 },
    };
    expect(stripEvent(full)).toEqual({
      sender: '@a:x',
      type: 'm.room.name',
      state_key: '',
      content: { name: 'n' },
    });
    expect(stripEvent({ ...full, state_key: undefined })).toBeNull();
    expect(stripEvent({ ...full, content: 'x' })).toBeNull();
    expect(stripEvent(null)).toBeNull();
  });
});
