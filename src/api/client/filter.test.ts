import { afterEach, describe, expect, it } from 'vitest';
import { isMatrixError } from '../../homeserver/errors.ts';
import { type Filter, filterLimit } from '../../homeserver/filter.ts';
import { createTestHomeserver, type TestHomeserver } from '../../testing.ts';
import { loadFilter, parseFilter } from './filter.ts';

function errcodeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return isMatrixError(err) ? err.errcode : `not a MatrixError: ${String(err)}`;
  }
  return undefined;
}

describe('parseFilter', () => {
  it('accepts the spec example with every section', () => {
    const example = {
      room: {
        state: { types: ['m.room.*'], not_rooms: ['!726s6s6q:example.com'] },
        timeline: {
          limit: 10,
          types: ['m.room.message'],
          not_rooms: ['!726s6s6q:example.com'],
          not_senders: ['@spam:example.com'],
        },
        ephemeral: {
          types: ['m.receipt', 'm.typing'],
          not_rooms: ['!726s6s6q:example.com'],
          not_senders: ['@spam:example.com'],
        },
        account_data: { types: ['m.tag'] },
        include_leave: true,
        rooms: ['!a:x'],
      },
      presence: { types: ['m.presence'], not_senders: ['@alice:example.com'] },
      account_data: { not_types: ['*'] },
      event_format: 'client',
      event_fields: ['type', 'content', 'sender'],
    };
    const parsed = parseFilter(example, 'body');
    expect(parsed).toEqual(example);
  });

  it('drops unknown keys and keeps RoomEventFilter flags', () => {
    const parsed = parseFilter(
      {
        room: {
          timeline: {
            lazy_load_members: true,
            include_redundant_members: false,
            unread_thread_notifications: true,
            contains_url: true,
          },
        },
        'org.example.unknown': 1,
      },
      'body',
    );
    expect(parsed).toEqual({
      room: {
        timeline: {
          lazy_load_members: true,
          include_redundant_members: false,
          unread_thread_notifications: true,
          contains_url: true,
        },
      },
    });
  });

  it.each([
    [{ event_format: 'xml' }],
    [{ event_fields: 'type' }],
    [{ event_fields: [1] }],
    [{ room: { timeline: { limit: -1 } } }],
    [{ room: { timeline: { limit: 1.5 } } }],
    [{ room: { timeline: { limit: '10' } } }],
    [{ room: { timeline: { types: 'm.room.message' } } }],
    [{ room: { timeline: { senders: ['alice'] } } }],
    [{ room: { rooms: ['#alias:x'] } }],
    [{ room: { include_leave: 'yes' } }],
    [{ room: { state: { lazy_load_members: 1 } } }],
    [{ presence: { not_senders: [null] } }],
    [{ room: [] }],
    [[]],
    ['{}'],
  ])('refuses %j with M_BAD_JSON as a body, M_INVALID_PARAM as a query', (bad) => {
    expect(errcodeOf(() => parseFilter(bad, 'body'))).toBe('M_BAD_JSON');
    expect(errcodeOf(() => parseFilter(bad, 'query'))).toBe('M_INVALID_PARAM');
  });

  it('accepts limit 0 (state without history) and caps limits where applied', () => {
    const filter = parseFilter({ room: { timeline: { limit: 0 } } }, 'body');
    expect(filterLimit(filter.room?.timeline, 10, 100)).toBe(0);
    expect(filterLimit({ limit: 5000 }, 10, 100)).toBe(100);
    expect(filterLimit(undefined, 10, 100)).toBe(10);
  });
});

describe('filter endpoints and loadFilter', () => {
  let hs: TestHomeserver | undefined;
  afterEach(async () => {
    await hs?.close();
    hs = undefined;
  });

  it('round-trips a filter, answers on r0 and v3, and loads it by ID or inline', async () => {
    hs = await createTestHomeserver();
    const alice = await hs.createUser('alice');
    const definition = {
      room: { timeline: { limit: 7, types: ['m.room.*'] }, state: { lazy_load_members: true } },
      event_fields: ['content.body'],
      'org.example.extra': { kept: true },
    };
    const created = await hs.call('POST', `/_matrix/client/v3/user/${alice.userId}/filter`, {
      token: alice.accessToken,
      body: definition,
    });
    expect(created.status).toBe(200);
    const filterId = created.body.filter_id as string;
    expect(typeof filterId).toBe('string');
    expect(filterId.startsWith('{')).toBe(false);
    const fetched = await hs.call('GET', `/_matrix/client/r0/user/${alice.userId}/filter/${filterId}`, {
      token: alice.accessToken,
    });
    expect(fetched.status).toBe(200);
    expect(fetched.body).toEqual(definition);

    const { filters } = hs.internals;
    const byId: Filter = await loadFilter(filters, alice.userId, filterId);
    expect(byId.room?.timeline?.limit).toBe(7);
    expect(byId.room?.state?.lazy_load_members).toBe(true);
    const inline = await loadFilter(filters, alice.userId, '{"room":{"timeline":{"limit":3}}}');
    expect(inline.room?.timeline?.limit).toBe(3);
    expect(await loadFilter(filters, alice.userId, undefined)).toEqual({});
  });

  it('refuses other users, unknown IDs and invalid filters with Matrix errors', async () => {
    hs = await createTestHomeserver();
    const alice = await hs.createUser('alice');
    const bob = await hs.createUser('bob');
    const created = await hs.call('POST', `/_matrix/client/v3/user/${alice.userId}/filter`, {
      token: alice.accessToken,
      body: {},
    });
    const filterId = created.body.filter_id as string;

    const otherPost = await hs.call('POST', `/_matrix/client/v3/user/${alice.userId}/filter`, {
      token: bob.accessToken,
      body: {},
    });
    expect([otherPost.status, otherPost.body.errcode]).toEqual([403, 'M_FORBIDDEN']);
    const otherGet = await hs.call('GET', `/_matrix/client/v3/user/${alice.userId}/filter/${filterId}`, {
      token: bob.accessToken,
    });
    expect([otherGet.status, otherGet.body.errcode]).toEqual([403, 'M_FORBIDDEN']);
    // Bob asking for his own filter with Alice's ID finds nothing: filters are per user.
    const bobsOwn = await hs.call('GET', `/_matrix/client/v3/user/${bob.userId}/filter/${filterId}`, {
      token: bob.accessToken,
    });
    expect([bobsOwn.status, bobsOwn.body.errcode]).toEqual([404, 'M_NOT_FOUND']);
    const unknown = await hs.call('GET', `/_matrix/client/v3/user/${alice.userId}/filter/999`, {
      token: alice.accessToken,
    });
    expect([unknown.status, unknown.body.errcode]).toEqual([404, 'M_NOT_FOUND']);

    const bad = await hs.call('POST', `/_matrix/client/v3/user/${alice.userId}/filter`, {
      token: alice.accessToken,
      body: { room: { timeline: { limit: 'ten' } } },
    });
    expect([bad.status, bad.body.errcode]).toEqual([400, 'M_BAD_JSON']);
    expect(bad.body.error).toContain('room.timeline.limit');
    const notObject = await hs.call('POST', `/_matrix/client/v3/user/${alice.userId}/filter`, {
      token: alice.accessToken,
      body: '[1]',
    });
    expect([notObject.status, notObject.body.errcode]).toEqual([400, 'M_BAD_JSON']);
    const noToken = await hs.call('POST', `/_matrix/client/v3/user/${alice.userId}/filter`, { body: {} });
    expect([noToken.status, noToken.body.errcode]).toEqual([401, 'M_MISSING_TOKEN']);

    const { filters } = hs.internals;
    for (const param of ['{not json', '{"room":{"timeline":{"limit":-1}}}', 'nope', filterId.repeat(3)]) {
      await expect(loadFilter(filters, alice.userId, param)).rejects.toMatchObject({
        errcode: 'M_INVALID_PARAM',
        status: 400,
      });
    }
    await expect(loadFilter(filters, bob.userId, filterId)).rejects.toMatchObject({
      errcode: 'M_INVALID_PARAM',
    });
  });
});
