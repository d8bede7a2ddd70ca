/** Conformance: the search index, thread list, relation summaries and notification list (schema v6). */
import { describe, expect, it } from 'vitest';
import { indexWords } from '../../core/search-text.ts';
import { ALICE, BOB, type ConformanceTarget, LinearRoom, ROOM, seedRoom, useStores } from './testing.ts';

const rooms = (...ids: string[]) => new Set(ids);

export function eventIndexTests(target: ConformanceTarget): void {
  const stores = useStores(target);

  describe('search index', () => {
    it('finds events holding every word, newest first, only in the rooms asked, paginated', async () => {
      const { store } = await stores.fresh();
      const room = await seedRoom(store, 0);
      const other = await seedRoom(store, 0, '!other:hearth.test');
      const sent = [
        room.message('The quick brown fox'),
        room.message('a lazy dog'),
        room.message('QUICK, the dog!'),
        other.message('quick dog elsewhere'),
        room.message('Quick foxes and dogs'),
        room.next({ type: 'm.room.topic', stateKey: '', content: { topic: 'dog topics' } }),
      ];
      for (const input of sent) await store.rooms.persistEvents([input]);
      const id = (i: number) => sent[i]?.event.event_id;
      const find = (words: string, roomIds: Set<string>, before?: number, limit = 10) =>
        store.rooms.searchEvents({ terms: indexWords(words), roomIds, limit, ...(before ? { before } : {}) });

      expect((await find('quick dog', rooms(ROOM))).hits.map((h) => h.eventId)).toEqual([id(2)]);
      expect((await find('dog', rooms(ROOM))).hits.map((h) => h.eventId)).toEqual([id(5), id(2), id(1)]);
      expect((await find('dog topics', rooms(ROOM))).hits.map((h) => h.eventId)).toEqual([id(5)]);
      expect((await find('dog', rooms(ROOM, '!other:hearth.test'))).hits.map((h) => h.eventId)).toEqual([
        id(5),
        id(3),
        id(2),
        id(1),
      ]);
      expect((await find('absent', rooms(ROOM))).hits).toEqual([]);
      const first = await find('quick', rooms(ROOM), undefined, 2);
      expect(first.hits.map((h) => h.eventId)).toEqual([id(4), id(2)]);
      expect(first.next).not.toBeNull();
      const second = await find('quick', rooms(ROOM), first.next as number, 2);
      expect(second.hits.map((h) => h.eventId)).toEqual([id(0)]);
    });

    it('forgets a redacted event’s words in the redaction’s transaction', async () => {
      const { store } = await stores.fresh();
      const room = await seedRoom(store, 0);
      const secret = room.message('launch codes');
      await store.rooms.persistEvents([secret]);
      const ask = () => store.rooms.searchEvents({ terms: ['launch'], roomIds: rooms(ROOM), limit: 5 });
      expect((await ask()).hits).toHaveLength(1);
      const redaction = room.next({ type: 'm.room.redaction', content: { redacts: secret.event.event_id } });
      await store.rooms.persistEvents([
        {
          ...redaction,
          redaction: { eventId: secret.event.event_id, redacted: { ...secret.event, content: {} } },
        },
      ]);
      expect((await ask()).hits).toEqual([]);
    });

    it('leaves rejected events out of the index', async () => {
      const { store } = await stores.fresh();
      const room = await seedRoom(store, 0);
      await store.rooms.persistEvents([{ ...room.message('forged words'), rejected: 'auth' }]);
      expect(
        (await store.rooms.searchEvents({ terms: ['forged'], roomIds: rooms(ROOM), limit: 5 })).hits,
      ).toEqual([]);
    });
  });

  describe('threads and relation summaries', () => {
    it('lists threads by latest reply, with participants and counts', async () => {
      const { store } = await stores.fresh();
      const room = await seedRoom(store, 2);
      const [rootA, rootB] = [room.message('root A'), room.message('root B')];
      await store.rooms.persistEvents([rootA, rootB]);
      const reply = (root: typeof rootA, sender: string) =>
        room.next({
          sender,
          content: { body: 'reply', 'm.relates_to': { rel_type: 'm.thread', event_id: root.event.event_id } },
        });
      const replies = [reply(rootA, ALICE), reply(rootB, BOB), reply(rootA, BOB)];
      for (const r of replies) await store.rooms.persistEvents([r]);
      const edit = room.next({
        content: {
          body: '* root B',
          'm.relates_to': { rel_type: 'm.replace', event_id: rootB.event.event_id },
        },
      });
      await store.rooms.persistEvents([edit]);

      const page = await store.rooms.threads(ROOM, { limit: 1 });
      expect(page.threads).toEqual([
        {
          rootId: rootA.event.event_id,
          latestEventId: replies[2]?.event.event_id,
          latest: expect.any(Number),
        },
      ]);
      const rest = await store.rooms.threads(ROOM, { before: page.next as number, limit: 5 });
      expect(rest.threads.map((t) => t.rootId)).toEqual([rootB.event.event_id]);
      expect(rest.next).toBeNull();
      const ids = [rootA.event.event_id, rootB.event.event_id];
      expect(await store.rooms.threadParticipants(ALICE, ids)).toEqual(new Set([rootA.event.event_id]));
      expect(await store.rooms.threadParticipants(BOB, ids)).toEqual(new Set(ids));

      const summaries = await store.rooms.relationSummaries([...ids, room.head as string]);
      expect(summaries.get(rootA.event.event_id)).toEqual({
        replace: [],
        thread: { count: 2, latestEventId: replies[2]?.event.event_id },
        references: [],
      });
      expect(summaries.get(rootB.event.event_id)?.replace).toEqual([edit.event.event_id]);
      expect(summaries.has(room.head as string)).toBe(false);
    });
  });

  describe('notification list', () => {
    it('merges rooms newest first, and keeps only highlights when asked', async () => {
      const { store } = await stores.fresh();
      const a = await seedRoom(store, 0);
      const b = new LinearRoom('!b:hearth.test');
      await store.rooms.persistEvents([b.create(), b.member(ALICE, 'join')]);
      const sent = [a.message('one'), b.message('two'), a.message('three')];
      for (const [i, input] of sent.entries())
        await store.rooms.persistEvents([{ ...input, notify: [{ userId: BOB, highlight: i === 1 }] }]);
      const all = await store.rooms.notificationsFor(BOB, [ROOM, '!b:hearth.test'], {
        limit: 10,
        highlightOnly: false,
      });
      expect(all.map((n) => n.eventId)).toEqual(sent.map((s) => s.event.event_id).reverse());
      const older = await store.rooms.notificationsFor(BOB, [ROOM, '!b:hearth.test'], {
        limit: 10,
        before: all[0]?.stream as number,
        highlightOnly: true,
      });
      expect(older.map((n) => [n.eventId, n.highlight])).toEqual([[sent[1]?.event.event_id, true]]);
    });
  });
}
