import { afterEach, describe, expect, it } from 'vitest';
import { formatSyncToken } from '../../homeserver/tokens.ts';
import {
  createTestHomeserver,
  manualClock,
  roomWith,
  sendText,
  type TestHomeserver,
  type TestUser,
} from './testing.ts';

type Json = Record<string, unknown>;
type ClientEvent = {
  event_id: string;
  type: string;
  sender: string;
  room_id?: string;
  state_key?: string;
  content: Json;
  origin_server_ts: number;
  unsigned?: Json;
};

const V3 = '/_matrix/client/v3';
/** Well-formed (v4+ event ID grammar) but stored nowhere. */
const UNKNOWN_EVENT = `$${'A'.repeat(43)}`;

describe('reading rooms', () => {
  let hs: TestHomeserver | undefined;
  afterEach(async () => {
    await hs?.close();
    hs = undefined;
  });

  const get = async (path: string, user: TestUser | undefined) => {
    const res = await (hs as TestHomeserver).call(
      'GET',
      path.startsWith('/_matrix') ? path : `${V3}${path}`,
      { token: user?.accessToken },
    );
    return res as { status: number; body: Json & Record<string, unknown> };
  };

  it('lists joined rooms, state, single state events and members', async () => {
    hs = await createTestHomeserver();
    const alice = await hs.createUser('alice');
    const bob = await hs.createUser('bob');
    const carol = await hs.createUser('carol');
    const roomId = await roomWith(hs, alice, [bob], { preset: 'public_chat', name: 'Lobby' });
    const other = await roomWith(hs, alice);
    const { rooms } = hs.internals;
    await rooms.invite(alice.userId, roomId, carol.userId);

    expect(((await get('/joined_rooms', alice)).body.joined_rooms as string[]).sort()).toEqual(
      [roomId, other].sort(),
    );
    expect((await get('/_matrix/client/r0/joined_rooms', bob)).body).toEqual({ joined_rooms: [roomId] });

    const state = await hs.call('GET', `${V3}/rooms/${roomId}/state`, { token: bob.accessToken });
    expect(state.status).toBe(200);
    const events = state.body as unknown as ClientEvent[];
    expect(Array.isArray(events)).toBe(true);
    const types = events.map((e) => `${e.type}|${e.state_key}`);
    for (const key of [
      'm.room.create|',
      'm.room.power_levels|',
      'm.room.name|',
      `m.room.member|${alice.userId}`,
      `m.room.member|${carol.userId}`,
    ]) {
      expect(types).toContain(key);
    }
    for (const e of events) {
      expect(e.room_id).toBe(roomId);
      expect(typeof e.event_id).toBe('string');
      expect(typeof e.unsigned?.age).toBe('number');
      // Client format: no federation fields.
      expect(e).not.toHaveProperty('auth_events');
      expect(e).not.toHaveProperty('signatures');
    }

    // The empty state key with and without the trailing slash; content or whole event.
    for (const path of [`/rooms/${roomId}/state/m.room.name`, `/rooms/${roomId}/state/m.room.name/`]) {
      const res = await get(path, bob);
      expect([path, res.status, res.body]).toEqual([path, 200, { name: 'Lobby' }]);
    }
    const asEvent = await get(`/rooms/${roomId}/state/m.room.name/?format=event`, bob);
    expect(asEvent.body).toMatchObject({
      type: 'm.room.name',
      state_key: '',
      room_id: roomId,
      sender: alice.userId,
      content: { name: 'Lobby' },
    });
    const member = await get(`/rooms/${roomId}/state/m.room.member/${encodeURIComponent(bob.userId)}`, bob);
    expect(member.body).toMatchObject({ membership: 'join' });
    const missing = await get(`/rooms/${roomId}/state/m.room.topic`, bob);
    expect([missing.status, missing.body.errcode]).toEqual([404, 'M_NOT_FOUND']);
    const badFormat = await get(`/rooms/${roomId}/state/m.room.name?format=xml`, bob);
    expect([badFormat.status, badFormat.body.errcode]).toEqual([400, 'M_INVALID_PARAM']);

    const members = async (query: string) =>
      ((await get(`/rooms/${roomId}/members${query}`, bob)).body.chunk as ClientEvent[])
        .map((e) => `${e.state_key}=${e.content.membership}`)
        .sort();
    expect(await members('')).toEqual(
      [`${alice.userId}=join`, `${bob.userId}=join`, `${carol.userId}=invite`].sort(),
    );
    expect(await members('?membership=invite')).toEqual([`${carol.userId}=invite`]);
    expect(await members('?not_membership=join')).toEqual([`${carol.userId}=invite`]);
    // Both together make an "or": join, or anything but invite.
    expect(await members('?membership=join&not_membership=invite')).toEqual(
      [`${alice.userId}=join`, `${bob.userId}=join`].sort(),
    );
    const badMembership = await get(`/rooms/${roomId}/members?membership=member`, bob);
    expect([badMembership.status, badMembership.body.errcode]).toEqual([400, 'M_INVALID_PARAM']);

    const joined = await get(`/rooms/${roomId}/joined_members`, bob);
    expect(joined.body).toEqual({
      joined: { [alice.userId]: { display_name: 'alice' }, [bob.userId]: { display_name: 'bob' } },
    });

    // Carol is only invited, Eve unknown: neither reads the room.
    for (const path of [
      `/rooms/${roomId}/state`,
      `/rooms/${roomId}/members`,
      `/rooms/${roomId}/joined_members`,
      `/rooms/${roomId}/state/m.room.name`,
    ]) {
      const res = await get(path, carol);
      expect([path, res.status, res.body.errcode]).toEqual([path, 403, 'M_FORBIDDEN']);
    }
    const unknownRoom = await get('/rooms/!nope:test.localhost/state', bob);
    expect([unknownRoom.status, unknownRoom.body.errcode]).toEqual([403, 'M_FORBIDDEN']);
    const badRoom = await get('/rooms/not-a-room/state', bob);
    expect([badRoom.status, badRoom.body.errcode]).toEqual([400, 'M_INVALID_PARAM']);
  });

  it('serves one event with transaction_id for the sending device only, prev_content and redacted_because', async () => {
    const clock = manualClock();
    hs = await createTestHomeserver({ clock });
    const alice = await hs.createUser('alice');
    const bob = await hs.createUser('bob');
    const roomId = await roomWith(hs, alice, [bob], { preset: 'public_chat', name: 'First' });
    const { rooms } = hs.internals;
    const eventId = await sendText(hs, alice, roomId, 'hello', 'txn-1');
    clock.advance(1234);

    const own = await get(`/rooms/${roomId}/event/${eventId}`, alice);
    expect(own.status).toBe(200);
    expect(own.body).toMatchObject({
      event_id: eventId,
      room_id: roomId,
      type: 'm.room.message',
      sender: alice.userId,
      content: { msgtype: 'm.text', body: 'hello' },
      unsigned: { age: 1234, transaction_id: 'txn-1' },
    });
    const seenByBob = await get(`/rooms/${roomId}/event/${eventId}`, bob);
    expect((seenByBob.body.unsigned as Json).transaction_id).toBeUndefined();
    // Another device of Alice's does not get it either.
    const otherDevice = await hs.store.accounts.createSession({
      userId: alice.userId,
      deviceId: 'OTHER',
      accessToken: 'alice-other',
      now: 0,
    });
    void otherDevice;
    const fromOther = await hs.call('GET', `${V3}/rooms/${roomId}/event/${eventId}`, {
      token: 'alice-other',
    });
    expect((fromOther.body.unsigned as Json).transaction_id).toBeUndefined();

    await rooms.setState(alice.userId, roomId, 'm.room.name', '', { name: 'Second' });
    const nameEvent = await get(`/rooms/${roomId}/state/m.room.name?format=event`, bob);
    expect((nameEvent.body.unsigned as Json).prev_content).toEqual({ name: 'First' });

    const { eventId: redactionId } = await rooms.redact({
      sender: alice.userId,
      roomId,
      eventId,
      reason: 'oops',
    });
    const redacted = await get(`/rooms/${roomId}/event/${eventId}`, bob);
    expect(redacted.body.content).toEqual({});
    expect((redacted.body.unsigned as Json).redacted_because).toMatchObject({
      event_id: redactionId,
      type: 'm.room.redaction',
      redacts: eventId,
      content: expect.objectContaining({ reason: 'oops' }),
    });

    const unknown = await get(`/rooms/${roomId}/event/${UNKNOWN_EVENT}`, bob);
    expect([unknown.status, unknown.body.errcode]).toEqual([404, 'M_NOT_FOUND']);
    const badId = await get(`/rooms/${roomId}/event/not-an-event`, bob);
    expect([badId.status, badId.body.errcode]).toEqual([400, 'M_INVALID_PARAM']);
    const eve = await hs.createUser('eve');
    const outsider = await get(`/rooms/${roomId}/event/${eventId}`, eve);
    expect([outsider.status, outsider.body.errcode]).toEqual([403, 'M_FORBIDDEN']);
    // An event of another room is not found through this one.
    const otherRoom = await roomWith(hs, bob);
    const elsewhere = await get(`/rooms/${otherRoom}/event/${eventId}`, bob);
    expect([elsewhere.status, elsewhere.body.errcode]).toEqual([404, 'M_NOT_FOUND']);
  });

  it('paginates back and forth through 200 messages with round-tripping tokens', async () => {
    hs = await createTestHomeserver();
    const alice = await hs.createUser('alice');
    const bob = await hs.createUser('bob');
    const roomId = await roomWith(hs, alice, [bob]);
    for (let i = 0; i < 200; i++) await sendText(hs, i % 2 ? bob : alice, roomId, `m${i}`);
    const onlyMessages = encodeURIComponent(JSON.stringify({ types: ['m.room.message'] }));

    // Backwards from the end (no `from`, v1.3+).
    const back: string[] = [];
    let from: string | undefined;
    let pages = 0;
    let firstStart: string | undefined;
    for (;;) {
      const res = await get(
        `/rooms/${roomId}/messages?dir=b&limit=30&filter=${onlyMessages}${from ? `&from=${from}` : ''}`,
        bob,
      );
      expect(res.status).toBe(200);
      if (from) expect(res.body.start).toBe(from);
      else firstStart = res.body.start as string;
      back.push(...(res.body.chunk as ClientEvent[]).map((e) => e.content.body as string));
      pages++;
      if (res.body.end === undefined) break;
      from = res.body.end as string;
      expect(pages).toBeLessThan(20);
    }
    expect(back).toEqual(Array.from({ length: 200 }, (_, i) => `m${199 - i}`));
    expect(pages).toBe(7);

    // Forwards from the beginning, then from the token the backwards run ended on.
    const forward: string[] = [];
    from = undefined;
    for (;;) {
      const res = await get(
        `/rooms/${roomId}/messages?dir=f&limit=45&filter=${onlyMessages}${from ? `&from=${from}` : ''}`,
        bob,
      );
      forward.push(...(res.body.chunk as ClientEvent[]).map((e) => e.content.body as string));
      if (res.body.end === undefined) break;
      from = res.body.end as string;
    }
    expect(forward).toEqual(Array.from({ length: 200 }, (_, i) => `m${i}`));

    // A start token given back pages the same way again; `to` stops the page.
    const again = await get(
      `/rooms/${roomId}/messages?dir=b&limit=3&from=${firstStart}&filter=${onlyMessages}`,
      bob,
    );
    expect((again.body.chunk as ClientEvent[]).map((e) => e.content.body)).toEqual(['m199', 'm198', 'm197']);
    const middle = await get(`/rooms/${roomId}/messages?dir=b&limit=10&filter=${onlyMessages}`, bob);
    const stop = await get(
      `/rooms/${roomId}/messages?dir=b&limit=100&to=${middle.body.end}&filter=${onlyMessages}`,
      bob,
    );
    expect((stop.body.chunk as ClientEvent[]).map((e) => e.content.body)).toEqual(
      Array.from({ length: 10 }, (_, i) => `m${199 - i}`),
    );
    expect(stop.body.end).toBeUndefined();

    // A sync token (a /sync prev_batch or next_batch) works as `from` too.
    const { ctx } = hs.internals;
    const syncToken = formatSyncToken({ ...(await ctx.store.positions()), typing: 0, presence: 0 });
    const fromSync = await get(
      `/rooms/${roomId}/messages?dir=b&limit=2&from=${syncToken}&filter=${onlyMessages}`,
      bob,
    );
    expect(fromSync.body.start).toBe(syncToken);
    expect((fromSync.body.chunk as ClientEvent[]).map((e) => e.content.body)).toEqual(['m199', 'm198']);
    const afterSync = await get(`/rooms/${roomId}/messages?dir=f&from=${syncToken}`, bob);
    expect(afterSync.body.chunk).toEqual([]);
    expect(afterSync.body.end).toBeUndefined();

    // Without a type filter the room's creation events are there too, oldest first going forwards.
    const all = await get(`/rooms/${roomId}/messages?dir=f&limit=3`, bob);
    expect((all.body.chunk as ClientEvent[])[0]?.type).toBe('m.room.create');
    // limit 0 returns nothing but a token to go on from.
    const none = await get(`/rooms/${roomId}/messages?dir=b&limit=0`, bob);
    expect(none.body.chunk).toEqual([]);
    expect(typeof none.body.end).toBe('string');
  });

  it('answers malformed /messages and /context requests with Matrix errors', async () => {
    hs = await createTestHomeserver();
    const alice = await hs.createUser('alice');
    const eve = await hs.createUser('eve');
    const roomId = await roomWith(hs, alice);
    const eventId = await sendText(hs, alice, roomId, 'x');
    const cases: [string, TestUser, number, string][] = [
      [`/rooms/${roomId}/messages`, alice, 400, 'M_MISSING_PARAM'],
      [`/rooms/${roomId}/messages?dir=x`, alice, 400, 'M_INVALID_PARAM'],
      [`/rooms/${roomId}/messages?dir=b&limit=-1`, alice, 400, 'M_INVALID_PARAM'],
      [`/rooms/${roomId}/messages?dir=b&limit=ten`, alice, 400, 'M_INVALID_PARAM'],
      [`/rooms/${roomId}/messages?dir=b&from=garbage`, alice, 400, 'M_INVALID_PARAM'],
      [`/rooms/${roomId}/messages?dir=b&from=t1`, alice, 400, 'M_INVALID_PARAM'],
      [`/rooms/${roomId}/messages?dir=b&from=s1_2`, alice, 400, 'M_INVALID_PARAM'],
      [`/rooms/${roomId}/messages?dir=f&to=nope`, alice, 400, 'M_INVALID_PARAM'],
      [`/rooms/${roomId}/messages?dir=b&filter=%7Bnope`, alice, 400, 'M_INVALID_PARAM'],
      [
        `/rooms/${roomId}/messages?dir=b&filter=${encodeURIComponent('{"limit":"x"}')}`,
        alice,
        400,
        'M_INVALID_PARAM',
      ],
      [`/rooms/${roomId}/messages?dir=b`, eve, 403, 'M_FORBIDDEN'],
      [`/rooms/bad/messages?dir=b`, alice, 400, 'M_INVALID_PARAM'],
      [`/rooms/${roomId}/context/${eventId}?limit=-2`, alice, 400, 'M_INVALID_PARAM'],
      [`/rooms/${roomId}/context/${eventId}?filter=%5B%5D`, alice, 400, 'M_INVALID_PARAM'],
      [`/rooms/${roomId}/context/${UNKNOWN_EVENT}`, alice, 404, 'M_NOT_FOUND'],
      [`/rooms/${roomId}/context/${eventId}`, eve, 403, 'M_FORBIDDEN'],
    ];
    for (const [path, user, status, errcode] of cases) {
      const res = await get(path, user);
      expect([path, res.status, res.body.errcode]).toEqual([path, status, errcode]);
    }
    const noToken = await get(`/rooms/${roomId}/messages?dir=b`, undefined);
    expect([noToken.status, noToken.body.errcode]).toEqual([401, 'M_MISSING_TOKEN']);
  });

  it('lazy-loads the members of the senders in /messages and /context', async () => {
    hs = await createTestHomeserver();
    const alice = await hs.createUser('alice');
    const bob = await hs.createUser('bob');
    const carol = await hs.createUser('carol');
    const roomId = await roomWith(hs, alice, [bob, carol]);
    for (let i = 0; i < 5; i++) await sendText(hs, alice, roomId, `old${i}`);
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) ids.push(await sendText(hs, i % 2 ? bob : carol, roomId, `new${i}`));
    const lazy = encodeURIComponent(JSON.stringify({ lazy_load_members: true, types: ['m.room.message'] }));

    const page = await get(`/rooms/${roomId}/messages?dir=b&limit=6&filter=${lazy}`, alice);
    const senders = new Set((page.body.chunk as ClientEvent[]).map((e) => e.sender));
    expect(senders).toEqual(new Set([bob.userId, carol.userId]));
    const state = page.body.state as ClientEvent[];
    expect(state.map((e) => e.state_key).sort()).toEqual([bob.userId, carol.userId].sort());
    expect(state.every((e) => e.type === 'm.room.member' && e.content.membership === 'join')).toBe(true);
    // Without lazy loading, no state section.
    const plain = await get(`/rooms/${roomId}/messages?dir=b&limit=6`, alice);
    expect(plain.body.state).toBeUndefined();

    const context = await get(`/rooms/${roomId}/context/${ids[3]}?limit=2&filter=${lazy}`, alice);
    expect((context.body.event as ClientEvent).event_id).toBe(ids[3]);
    expect((context.body.events_before as ClientEvent[]).map((e) => e.event_id)).toEqual([ids[2]]);
    expect((context.body.events_after as ClientEvent[]).map((e) => e.event_id)).toEqual([ids[4]]);
    const contextState = (context.body.state as ClientEvent[]).map((e) => e.state_key).sort();
    expect(contextState).toEqual([bob.userId, carol.userId].sort());
  });

  it('gives /context tokens that continue in /messages, and the state at the last event', async () => {
    hs = await createTestHomeserver();
    const alice = await hs.createUser('alice');
    const roomId = await roomWith(hs, alice, [], { preset: 'public_chat', name: 'Ctx' });
    const ids: string[] = [];
    for (let i = 0; i < 12; i++) ids.push(await sendText(hs, alice, roomId, `c${i}`));
    const res = await get(`/rooms/${roomId}/context/${ids[6]}?limit=4`, alice);
    expect(res.status).toBe(200);
    expect((res.body.events_before as ClientEvent[]).map((e) => e.content.body)).toEqual(['c5', 'c4']);
    expect((res.body.events_after as ClientEvent[]).map((e) => e.content.body)).toEqual(['c7', 'c8']);
    const state = res.body.state as ClientEvent[];
    expect(state.some((e) => e.type === 'm.room.name' && e.content.name === 'Ctx')).toBe(true);
    const before = await get(`/rooms/${roomId}/messages?dir=b&limit=2&from=${res.body.start}`, alice);
    expect((before.body.chunk as ClientEvent[]).map((e) => e.content.body)).toEqual(['c3', 'c2']);
    const after = await get(`/rooms/${roomId}/messages?dir=f&limit=2&from=${res.body.end}`, alice);
    expect((after.body.chunk as ClientEvent[]).map((e) => e.content.body)).toEqual(['c9', 'c10']);
    // limit 0 still returns the event itself.
    const zero = await get(`/rooms/${roomId}/context/${ids[6]}?limit=0`, alice);
    expect((zero.body.event as ClientEvent).event_id).toBe(ids[6]);
    expect(zero.body.events_before).toEqual([]);
    expect(zero.body.events_after).toEqual([]);
  });

  it('honours history visibility and shows departed users the room as they left it', async () => {
    hs = await createTestHomeserver();
    const alice = await hs.createUser('alice');
    const bob = await hs.createUser('bob');
    const eve = await hs.createUser('eve');
    const roomId = await roomWith(hs, alice, [], {
      preset: 'public_chat',
      name: 'Before',
      initial_state: [{ type: 'm.room.history_visibility', content: { history_visibility: 'joined' } }],
    });
    const { rooms } = hs.internals;
    const hidden = await sendText(hs, alice, roomId, 'before bob');
    await rooms.join(bob.userId, roomId);
    const seen = await sendText(hs, alice, roomId, 'while bob is here');
    await rooms.leave(bob.userId, roomId);
    const afterLeave = await sendText(hs, alice, roomId, 'after bob left');
    await rooms.setState(alice.userId, roomId, 'm.room.name', '', { name: 'After' });

    const bodies = async (user: TestUser) =>
      (
        (
          await get(
            `/rooms/${roomId}/messages?dir=b&limit=100&filter=${encodeURIComponent('{"types":["m.room.message"]}')}`,
            user,
          )
        ).body.chunk as ClientEvent[]
      ).map((e) => e.content.body);
    expect(await bodies(alice)).toEqual(['after bob left', 'while bob is here', 'before bob']);
    expect(await bodies(bob)).toEqual(['while bob is here']);

    expect((await get(`/rooms/${roomId}/event/${seen}`, bob)).status).toBe(200);
    for (const id of [hidden, afterLeave]) {
      const res = await get(`/rooms/${roomId}/event/${id}`, bob);
      expect([res.status, res.body.errcode]).toEqual([404, 'M_NOT_FOUND']);
    }
    // The state as Bob left it: the old name, Bob's own leave.
    expect((await get(`/rooms/${roomId}/state/m.room.name`, bob)).body).toEqual({ name: 'Before' });
    expect((await get(`/rooms/${roomId}/state/m.room.name`, alice)).body).toEqual({ name: 'After' });
    const bobState = (await hs.call('GET', `${V3}/rooms/${roomId}/state`, { token: bob.accessToken }))
      .body as unknown as ClientEvent[];
    expect(bobState.find((e) => e.type === 'm.room.name')?.content).toEqual({ name: 'Before' });
    const members = (await get(`/rooms/${roomId}/members`, bob)).body.chunk as ClientEvent[];
    expect(members.find((e) => e.state_key === bob.userId)?.content.membership).toBe('leave');
    // joined_members is for members only.
    expect((await get(`/rooms/${roomId}/joined_members`, bob)).status).toBe(403);
    // Going forwards stops at the departure.
    const forward = await get(`/rooms/${roomId}/messages?dir=f&limit=100`, bob);
    const forwardBodies = (forward.body.chunk as ClientEvent[]).map((e) => e.content.body).filter(Boolean);
    expect(forwardBodies).toEqual(['while bob is here']);

    // Eve was never in the room.
    expect((await get(`/rooms/${roomId}/messages?dir=b`, eve)).status).toBe(403);

    // A world-readable room can be read by anyone.
    const open = await roomWith(hs, alice, [], {
      preset: 'public_chat',
      initial_state: [
        { type: 'm.room.history_visibility', content: { history_visibility: 'world_readable' } },
      ],
    });
    await sendText(hs, alice, open, 'public words');
    const peek = await get(`/rooms/${open}/messages?dir=b&limit=1`, eve);
    expect([peek.status, (peek.body.chunk as ClientEvent[])[0]?.content.body]).toEqual([200, 'public words']);
    expect((await get(`/rooms/${open}/state`, eve)).status).toBe(200);
  });
});
