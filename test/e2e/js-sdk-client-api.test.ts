/**
 * matrix-js-sdk, unmodified, drives the rest of the client API (issue 14) against Hearth in
 * process: an edit, a thread reply and a reaction (with the SDK applying the bundled edit and
 * listing threads), server-side search, a space's hierarchy and a room summary, a room upgrade
 * followed through its tombstone, jumping to a date, and the notifications list.
 */
import {
  Direction,
  EventType,
  type MatrixClient,
  Method,
  MsgType,
  RelationType,
  ThreadFilterType,
} from 'matrix-js-sdk';
import { describe, expect, it } from 'vitest';
import { createTestHomeserver } from '../../src/testing.ts';
import { register, startClient, type Target, until } from './js-sdk-scenario.ts';

describe('matrix-js-sdk drives relations, search, spaces, upgrades and notifications', () => {
  it('runs the scenario', async () => {
    const hs = await createTestHomeserver({ serverName: 'api.test' });
    const target: Target = {
      baseUrl: 'http://api.test',
      fetchFn: ((input: RequestInfo | URL, init?: RequestInit) =>
        hs.fetch(new Request(input, init))) as typeof fetch,
    };
    const clients: MatrixClient[] = [];
    try {
      const aliceCreds = await register(target, 'alice');
      const bobCreds = await register(target, 'bob');
      const alice = await startClient(target, aliceCreds);
      const bob = await startClient(target, bobCreds);
      clients.push(alice, bob);

      const { room_id: roomId } = await alice.createRoom({ name: 'Kitchen', preset: 'public_chat' as never });
      await bob.joinRoom(roomId);
      await until(
        clients,
        () => alice.getRoom(roomId)?.getMember(bobCreds.userId)?.membership === 'join',
        'Bob joined',
      );

      // --- relations: an edit, a thread reply, a reaction ---------------------------------------
      const { event_id: root } = await alice.sendTextMessage(roomId, 'soup of the day: tomato');
      await alice.sendEvent(roomId, EventType.RoomMessage, {
        msgtype: MsgType.Text,
        body: '* soup of the day: leek',
        'm.new_content': { msgtype: MsgType.Text, body: 'soup of the day: leek' },
        'm.relates_to': { rel_type: RelationType.Replace, event_id: root },
      });
      const { event_id: reply } = await bob.sendMessage(roomId, root, {
        msgtype: 'm.text',
        body: 'leek, really?',
        'm.relates_to': {
          rel_type: RelationType.Thread,
          event_id: root,
          is_falling_back: true,
          'm.in_reply_to': { event_id: root },
        },
      } as never);
      await bob.sendEvent(roomId, EventType.Reaction, {
        'm.relates_to': { rel_type: RelationType.Annotation, event_id: root, key: '🍲' },
      });

      const edits = await bob.relations(roomId, root, RelationType.Replace, EventType.RoomMessage);
      expect(edits.events.map((e) => e.getContent()['m.new_content']?.body)).toEqual([
        'soup of the day: leek',
      ]);
      const reactions = await bob.relations(roomId, root, RelationType.Annotation, EventType.Reaction);
      expect(reactions.events.map((e) => e.getRelation()?.key)).toEqual(['🍲']);
      const thread = await bob.relations(roomId, root, RelationType.Thread);
      expect(thread.events.map((e) => e.getId())).toEqual([reply]);

      // The SDK shows the edit in place of the original.
      await until(
        clients,
        () => bob.getRoom(roomId)?.findEventById(root)?.getContent().body === 'soup of the day: leek',
        'Bob to see the edit applied',
      );
      // The server bundles the edit and the thread summary.
      const fetched = await bob.fetchRoomEvent(roomId, root);
      const bundled = (fetched.unsigned as Record<string, Record<string, Record<string, unknown>>>)[
        'm.relations'
      ];
      expect(bundled?.[RelationType.Replace]?.event_id).toBeTruthy();
      expect(bundled?.[RelationType.Thread]).toMatchObject({ count: 1, current_user_participated: true });
      const threads = await alice.createThreadListMessagesRequest(
        roomId,
        null,
        10,
        Direction.Backward,
        ThreadFilterType.All,
      );
      expect(threads.chunk.map((e) => e.event_id)).toEqual([root]);
      const mine = await alice.createThreadListMessagesRequest(
        roomId,
        null,
        10,
        Direction.Backward,
        ThreadFilterType.My,
      );
      expect(mine.chunk.map((e) => e.event_id)).toEqual([root]); // Alice sent the root

      // --- search and the user directory ------------------------------------------------------------
      for (const body of ['bread is ready', 'soup and bread tonight', 'no dessert'])
        await alice.sendTextMessage(roomId, body);
      const found = await bob.searchRoomEvents({ term: 'bread' });
      expect(found.results.map((r) => r.context.getEvent().getContent().body).sort()).toEqual([
        'bread is ready',
        'soup and bread tonight',
      ]);
      expect(found.highlights).toContain('bread');
      const both = await bob.searchRoomEvents({ term: 'soup bread' });
      expect(both.results.map((r) => r.context.getEvent().getContent().body)).toEqual([
        'soup and bread tonight',
      ]);
      const users = await bob.searchUserDirectory({ term: 'ali' });
      expect(users.results.map((u) => u.user_id)).toEqual([aliceCreds.userId]);

      // --- spaces --------------------------------------------------------------------------------------
      const { room_id: space } = await alice.createRoom({
        name: 'House',
        preset: 'public_chat' as never,
        creation_content: { type: 'm.space' },
      });
      await alice.sendStateEvent(
        space,
        'm.space.child' as never,
        { via: ['api.test'], suggested: true } as never,
        roomId,
      );
      const hierarchy = await bob.getRoomHierarchy(space, 10, 1, false);
      expect(hierarchy.rooms.map((r) => r.room_id)).toEqual([space, roomId]);
      expect(hierarchy.rooms[0]).toMatchObject({ room_type: 'm.space', name: 'House' });
      const summary = await bob.getRoomSummary(roomId);
      expect(summary).toMatchObject({ room_id: roomId, name: 'Kitchen', membership: 'join' });

      // --- jumping to a date -------------------------------------------------------------------------
      const at = await bob.timestampToEvent(roomId, 0, Direction.Forward);
      expect(at.event_id).toMatch(/^\$/);

      // --- notifications: Bob is mentioned ----------------------------------------------------------
      const { event_id: mention } = await alice.sendMessage(roomId, {
        msgtype: 'm.text',
        body: 'Bob: dinner!',
        'm.mentions': { user_ids: [bobCreds.userId] },
      } as never);
      const notifications = await bob.http.authedRequest<{
        notifications: { event: { event_id: string } }[];
      }>(Method.Get, '/notifications', { only: 'highlight' });
      expect(notifications.notifications.map((n) => n.event.event_id)).toEqual([mention]);

      // --- a room upgrade, followed through the tombstone ----------------------------------------
      const { replacement_room: next } = await alice.upgradeRoom(roomId, '12');
      await until(
        clients,
        () => bob.getRoom(roomId)?.currentState.getStateEvents(EventType.RoomTombstone, '') != null,
        'Bob to see the tombstone',
      );
      const tombstone = bob.getRoom(roomId)?.currentState.getStateEvents(EventType.RoomTombstone, '');
      expect(tombstone?.getContent().replacement_room).toBe(next);
      await bob.joinRoom(next);
      await until(clients, () => bob.getRoom(next)?.getMyMembership() === 'join', 'Bob in the new room');
      expect(bob.getRoom(next)?.findPredecessor()?.roomId).toBe(roomId);
      expect(bob.getRoom(next)?.name).toBe('Kitchen');
    } finally {
      for (const c of clients) c.stopClient();
      await hs.close();
    }
  }, 120_000);
});
