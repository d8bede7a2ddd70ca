import { describe, expect, it } from 'vitest';
import { applyEventFields, matchesEventFilter, matchesRoom, matchesType, parseFieldPath } from './filter.ts';

describe('matching', () => {
  const message = {
    type: 'm.room.message',
    sender: '@alice:x',
    room_id: '!r:x',
    content: { body: 'hi', url: 'mxc://x/y' },
  };

  it('matches types with * wildcards and lets not_types win', () => {
    expect(matchesType({ types: ['m.room.*'] }, 'm.room.message')).toBe(true);
    expect(matchesType({ types: ['m.room.*'] }, 'm.roomy')).toBe(false);
    expect(matchesType({ types: ['*.message'] }, 'm.room.message')).toBe(true);
    expect(matchesType({ types: ['m.*.message'] }, 'm.room.message')).toBe(true);
    expect(matchesType({ types: ['m.room.message'] }, 'm.room.messages')).toBe(false);
    // A dot is a literal character, not a regular-expression wildcard.
    expect(matchesType({ types: ['m.room.message'] }, 'mXroomXmessage')).toBe(false);
    expect(matchesType({ types: ['*'], not_types: ['m.room.message'] }, 'm.room.message')).toBe(false);
    expect(matchesType({ types: [] }, 'm.room.message')).toBe(false);
    expect(matchesType({ not_types: ['*'] }, 'anything')).toBe(false);
  });

  it('filters by sender, room and contains_url', () => {
    expect(matchesEventFilter({ senders: ['@alice:x'] }, message)).toBe(true);
    expect(matchesEventFilter({ senders: ['@bob:x'] }, message)).toBe(false);
    expect(matchesEventFilter({ senders: ['@alice:x'], not_senders: ['@alice:x'] }, message)).toBe(false);
    expect(matchesEventFilter({ rooms: ['!r:x'] }, message)).toBe(true);
    expect(matchesEventFilter({ rooms: ['!r:x'], not_rooms: ['!r:x'] }, message)).toBe(false);
    expect(matchesEventFilter({ rooms: ['!other:x'] }, message)).toBe(false);
    // A room given separately stands in for an event without room_id (sync sections).
    expect(matchesEventFilter({ rooms: ['!other:x'] }, { type: 'm.typing' }, '!r:x')).toBe(false);
    expect(matchesEventFilter({ contains_url: true }, message)).toBe(true);
    expect(matchesEventFilter({ contains_url: false }, message)).toBe(false);
    expect(matchesEventFilter({ contains_url: true }, { ...message, content: { url: 5 } })).toBe(false);
    expect(matchesEventFilter({ contains_url: false }, { ...message, content: { body: 'x' } })).toBe(true);
    // Ephemeral events have no sender: a senders list excludes them, not_senders does not.
    expect(matchesEventFilter({ senders: ['@alice:x'] }, { type: 'm.typing' })).toBe(false);
    expect(matchesEventFilter({ not_senders: ['@alice:x'] }, { type: 'm.typing' })).toBe(true);
    expect(matchesEventFilter(undefined, message)).toBe(true);
    expect(matchesRoom({ not_rooms: ['!r:x'] }, '!r:x')).toBe(false);
    expect(matchesRoom({}, '!r:x')).toBe(true);
  });
});

describe('event_fields', () => {
  it('splits dot paths with the appendix escapes', () => {
    expect(parseFieldPath('content.body')).toEqual(['content', 'body']);
    expect(parseFieldPath('content.m\\.relates_to')).toEqual(['content', 'm.relates_to']);
    expect(parseFieldPath('content.m\\\\foo')).toEqual(['content', 'm\\foo']);
    expect(parseFieldPath('content.a\\xb')).toEqual(['content', 'a\\xb']);
    expect(parseFieldPath('type')).toEqual(['type']);
  });

  it('keeps only the listed fields', () => {
    const event = {
      type: 'm.room.message',
      sender: '@a:x',
      event_id: '$e',
      content: { body: 'hi', msgtype: 'm.text', 'm.relates_to': { rel_type: 'm.thread', event_id: '$root' } },
      unsigned: { age: 5 },
    };
    expect(applyEventFields(event, ['type', 'content.body'])).toEqual({
      type: 'm.room.message',
      content: { body: 'hi' },
    });
    expect(
      applyEventFields(event, ['content.m\\.relates_to.rel_type', 'missing.path', 'type.deeper']),
    ).toEqual({
      content: { 'm.relates_to': { rel_type: 'm.thread' } },
    });
    expect(applyEventFields(event, ['content.body', 'content'])).toEqual({ content: event.content });
    expect(applyEventFields(event, undefined)).toBe(event);
    expect(applyEventFields(event, [])).toBe(event);
    // The original is untouched.
    expect(event.content.msgtype).toBe('m.text');
  });
});
