import { afterEach, describe, expect, it } from 'vitest';
import type { JsonObject } from '../../core/canonical-json.ts';
import { roomsTestbed, roomWith, sendText, type TestHomeserver, type TestUser } from './testing.ts';

let hs: TestHomeserver | undefined;
afterEach(async () => {
  await hs?.close();
  hs = undefined;
});

const rel = (relType: string, eventId: string, extra: JsonObject = {}): JsonObject => ({
  'm.relates_to': { rel_type: relType, event_id: eventId, ...extra },
});

async function send(user: TestUser, roomId: string, type: string, content: JsonObject) {
  const { eventId } = await (hs as TestHomeserver).internals.rooms.sendEvent({
    sender: user.userId,
    deviceId: user.deviceId,
    roomId,
    type,
    content,
  });
  return eventId;
}

const get = (path: string, user: TestUser) =>
  (hs as TestHomeserver).call('GET', path, { token: user.accessToken });
const ids = (body: Record<string, unknown>) => (body.chunk as { event_id: string }[]).map((e) => e.event_id);
const relationsOf = (event: unknown) =>
  (event as { unsigned: Record<string, unknown> }).unsigned['m.relations'] as
    | Record<string, Record<string, unknown>>
    | undefined;

describe('relations, threads and bundled aggregations', () => {
  it('bundles the latest valid edit, thread summary and references wherever the event is served', async () => {
    const bed = await roomsTestbed('alice', 'bob', 'eve');
    hs = bed.hs;
    const [alice, bob, eve] = bed.users as [TestUser, TestUser, TestUser];
    const roomId = await roomWith(hs, alice, [bob]);
    const root = await sendText(hs, alice, roomId, 'original');
    const edit1 = await send(alice, roomId, 'm.room.message', {
      body: '* first',
      'm.new_content': { body: 'first', msgtype: 'm.text' },
      ...rel('m.replace', root),
    });
    const edit2 = await send(alice, roomId, 'm.room.message', {
      body: '* second',
      'm.new_content': { body: 'second', msgtype: 'm.text' },
      ...rel('m.replace', root),
    });
    // Bob may not edit Alice's message: ignored in the aggregation.
    await send(bob, roomId, 'm.room.message', {
      body: '* hijack',
      'm.new_content': { body: 'hijack', msgtype: 'm.text' },
      ...rel('m.replace', root),
    });
    const reply1 = await send(bob, roomId, 'm.room.message', { body: 'in thread', ...rel('m.thread', root) });
    const reply2 = await send(bob, roomId, 'm.room.message', { body: 'again', ...rel('m.thread', root) });
    const ref = await send(bob, roomId, 'm.key.verification.done', rel('m.reference', root));
    expect(edit1).not.toBe(edit2);

    const event = await get(`/_matrix/client/v3/rooms/${roomId}/event/${root}`, alice);
    expect(event.status).toBe(200);
    const bundled = relationsOf(event.body);
    expect((event.body.content as { body: string }).body).toBe('original'); // content left intact (v1.7)
    expect(bundled?.['m.replace']?.event_id).toBe(edit2);
    expect(bundled?.['m.thread']).toMatchObject({ count: 2, current_user_participated: true });
    expect(bundled?.['m.thread']?.latest_event).toMatchObject({ event_id: reply2 });
    expect(bundled?.['m.reference']).toEqual({ chunk: [{ event_id: ref }] });

    // Bob replied: participated. Eve joins later and has not.
    const asBob = relationsOf((await get(`/_matrix/client/v3/rooms/${roomId}/event/${root}`, bob)).body);
    expect(asBob?.['m.thread']?.current_user_participated).toBe(true);
    await hs.internals.rooms.join(eve.userId, roomId);
    const messages = await get(`/_matrix/client/v3/rooms/${roomId}/messages?dir=b&limit=50`, eve);
    const inMessages = (messages.body.chunk as { event_id: string }[]).find((e) => e.event_id === root);
    expect(relationsOf(inMessages)?.['m.thread']?.current_user_participated).toBe(false);
    const context = await get(`/_matrix/client/v3/rooms/${roomId}/context/${root}?limit=2`, alice);
    expect(relationsOf(context.body.event)?.['m.replace']?.event_id).toBe(edit2);
    const filter = encodeURIComponent(JSON.stringify({ room: { timeline: { limit: 50 } } }));
    const sync = await get(`/_matrix/client/v3/sync?filter=${filter}`, alice);
    const timeline = (sync.body as { rooms: { join: Record<string, { timeline: { events: unknown[] } }> } })
      .rooms.join[roomId]?.timeline.events as { event_id: string }[];
    const synced = timeline.find((e) => e.event_id === root);
    expect(relationsOf(synced)?.['m.thread']?.count).toBe(2);

    // /relations: all children newest first, by type, by type and event type, paged both ways.
    const all = await get(`/_matrix/client/v1/rooms/${roomId}/relations/${root}`, alice);
    expect(all.status).toBe(200);
    expect(ids(all.body)).toHaveLength(5); // DEFAULT_RELATIONS_LIMIT
    const threads = await get(`/_matrix/client/v1/rooms/${roomId}/relations/${root}/m.thread?limit=1`, alice);
    expect(ids(threads.body)).toEqual([reply2]);
    const more = await get(
      `/_matrix/client/v1/rooms/${roomId}/relations/${root}/m.thread?limit=1&from=${threads.body.next_batch}`,
      alice,
    );
    expect(ids(more.body)).toEqual([reply1]);
    expect(more.body.next_batch).toBeUndefined();
    const forward = await get(`/_matrix/client/v1/rooms/${roomId}/relations/${root}/m.replace?dir=f`, alice);
    expect(ids(forward.body).slice(0, 2)).toEqual([edit1, edit2]);
    const typed = await get(
      `/_matrix/client/v1/rooms/${roomId}/relations/${root}/m.reference/m.key.verification.done`,
      alice,
    );
    expect(ids(typed.body)).toEqual([ref]);
    const none = await get(`/_matrix/client/v1/rooms/${roomId}/relations/${root}/m.reference/m.other`, alice);
    expect(ids(none.body)).toEqual([]);

    // Recursion: a reaction to a thread reply relates to the root indirectly.
    const reaction = await send(alice, roomId, 'm.reaction', rel('m.annotation', reply1, { key: '👍' }));
    const deep = await get(
      `/_matrix/client/v1/rooms/${roomId}/relations/${root}?recurse=true&limit=50`,
      alice,
    );
    expect(ids(deep.body)).toContain(reaction);
    expect(deep.body.recursion_depth).toBe(3);
    const shallow = await get(`/_matrix/client/v1/rooms/${roomId}/relations/${root}?limit=50`, alice);
    expect(ids(shallow.body)).not.toContain(reaction);
  });

  it('bundles only edits and thread replies the viewer may see: history visibility, ignored users, no redacted edit', async () => {
    const bed = await roomsTestbed('alice', 'bob', 'carol', 'dave');
    hs = bed.hs;
    const server = hs;
    const [alice, bob, carol, dave] = bed.users as [TestUser, TestUser, TestUser, TestUser];
    const roomId = await roomWith(hs, alice, [bob, carol, dave]);
    const edit = (text: string, of: string) =>
      send(alice, roomId, 'm.room.message', {
        body: `* ${text}`,
        'm.new_content': { body: text, msgtype: 'm.text' },
        ...rel('m.replace', of),
      });
    const bundledFor = async (user: TestUser, eventId: string) => {
      const res = await get(`/_matrix/client/v3/rooms/${roomId}/event/${eventId}`, user);
      expect(res.status).toBe(200);
      return relationsOf(res.body);
    };
    const root = await sendText(hs, alice, roomId, 'original');
    const early = await edit('while bob was here', root);
    const replyEarly = await send(alice, roomId, 'm.room.message', { body: 'one', ...rel('m.thread', root) });

    // Bob leaves: what Alice does afterwards is not his to see (shared history ends at his leave).
    const left = await server.call('POST', `/_matrix/client/v3/rooms/${roomId}/leave`, {
      token: bob.accessToken,
      body: {},
    });
    expect(left.status).toBe(200);
    const late = await edit('after bob left', root);
    const replyLate = await send(alice, roomId, 'm.room.message', { body: 'two', ...rel('m.thread', root) });
    const asBob = await bundledFor(bob, root);
    expect(asBob?.['m.replace']?.event_id).toBe(early);
    expect(asBob?.['m.thread']).toMatchObject({ count: 1, latest_event: { event_id: replyEarly } });
    const asAlice = await bundledFor(alice, root);
    expect(asAlice?.['m.replace']?.event_id).toBe(late);
    expect(asAlice?.['m.thread']).toMatchObject({ count: 2, latest_event: { event_id: replyLate } });

    // Carol ignores Dave: his reply, the latest, is not the one she is shown.
    const ignore = await server.call(
      'PUT',
      `/_matrix/client/v3/user/${encodeURIComponent(carol.userId)}/account_data/m.ignored_user_list`,
      {
        token: carol.accessToken,
        body: { ignored_users: { [dave.userId]: {} } },
      },
    );
    expect(ignore.status).toBe(200);
    const fromDave = await send(dave, roomId, 'm.room.message', { body: 'three', ...rel('m.thread', root) });
    expect((await bundledFor(carol, root))?.['m.thread']).toMatchObject({
      count: 2,
      latest_event: { event_id: replyLate },
    });
    expect((await bundledFor(alice, root))?.['m.thread']).toMatchObject({
      count: 3,
      latest_event: { event_id: fromDave },
    });

    // A redacted edit is no edit: the one before it is bundled again.
    const latest = await edit('redacted soon', root);
    expect((await bundledFor(carol, root))?.['m.replace']?.event_id).toBe(latest);
    const redact = await server.call('PUT', `/_matrix/client/v3/rooms/${roomId}/redact/${latest}/r1`, {
      token: alice.accessToken,
      body: {},
    });
    expect(redact.status).toBe(200);
    expect((await bundledFor(carol, root))?.['m.replace']?.event_id).toBe(late);
  });

  it('lists threads by latest activity, all or participated, and refuses outsiders', async () => {
    const bed = await roomsTestbed('alice', 'bob', 'mallory');
    hs = bed.hs;
    const [alice, bob, mallory] = bed.users as [TestUser, TestUser, TestUser];
    const roomId = await roomWith(hs, alice, [bob]);
    const rootA = await sendText(hs, alice, roomId, 'A');
    const rootB = await sendText(hs, bob, roomId, 'B');
    const rootC = await sendText(hs, bob, roomId, 'C');
    await send(bob, roomId, 'm.room.message', { body: 'a1', ...rel('m.thread', rootA) });
    await send(bob, roomId, 'm.room.message', { body: 'c1', ...rel('m.thread', rootC) });
    await send(bob, roomId, 'm.room.message', { body: 'b1', ...rel('m.thread', rootB) });

    const all = await get(`/_matrix/client/v1/rooms/${roomId}/threads`, alice);
    expect(all.status).toBe(200);
    expect(ids(all.body)).toEqual([rootB, rootC, rootA]);
    expect(relationsOf((all.body.chunk as unknown[])[0])?.['m.thread']?.count).toBe(1);
    const first = await get(`/_matrix/client/v1/rooms/${roomId}/threads?limit=2`, alice);
    expect(ids(first.body)).toEqual([rootB, rootC]);
    const rest = await get(
      `/_matrix/client/v1/rooms/${roomId}/threads?limit=2&from=${first.body.next_batch}`,
      alice,
    );
    expect(ids(rest.body)).toEqual([rootA]);
    expect(rest.body.next_batch).toBeUndefined();
    // Alice only sent root A.
    const mine = await get(`/_matrix/client/v1/rooms/${roomId}/threads?include=participated`, alice);
    expect(ids(mine.body)).toEqual([rootA]);

    expect((await get(`/_matrix/client/v1/rooms/${roomId}/threads`, mallory)).status).toBe(403);
    expect((await get(`/_matrix/client/v1/rooms/${roomId}/relations/${rootA}`, mallory)).body.errcode).toBe(
      'M_FORBIDDEN',
    );
    const unknown = await get(`/_matrix/client/v1/rooms/${roomId}/relations/$nothing:test.localhost`, alice);
    expect([unknown.status, unknown.body.errcode]).toEqual([404, 'M_NOT_FOUND']);
    const badToken = await get(`/_matrix/client/v1/rooms/${roomId}/threads?from=nonsense`, alice);
    expect([badToken.status, badToken.body.errcode]).toEqual([400, 'M_INVALID_PARAM']);
    const badInclude = await get(`/_matrix/client/v1/rooms/${roomId}/threads?include=some`, alice);
    expect(badInclude.status).toBe(400);
  });
});
