/**
 * A woken pass takes the notifier's changes as a hint of where its news is (compute.ts
 * `readAhead`): reads it asks for ahead, shared under the keys it will ask them by. A hint is
 * never what is shown: a pass with a right, a partial or a wrong hint answers exactly as one
 * without, on the same store at the same moment.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { JsonObject } from '../../core/canonical-json.ts';
import type { RecentChanges } from '../notifier.ts';
import { createTestServices, manualClock, type TestServices } from '../testing.ts';
import { parseSyncToken } from '../tokens.ts';
import { computePass } from './compute.ts';
import { syncFilterView } from './filter-view.ts';
import { createSharedReads } from './shared.ts';

const opened: TestServices[] = [];
afterEach(async () => {
  for (const services of opened.splice(0)) await services.close();
});

async function room() {
  const services = await createTestServices({ clock: manualClock() });
  opened.push(services);
  const { internals } = services;
  const alice = await services.createUser('alice');
  const bob = await services.createUser('bob');
  const { roomId } = await internals.rooms.createRoom(alice.userId, { preset: 'public_chat' });
  const { roomId: other } = await internals.rooms.createRoom(alice.userId, { preset: 'public_chat' });
  await internals.rooms.join(bob.userId, roomId);
  const since = (await internals.sync.sync({ userId: bob.userId, deviceId: bob.deviceId })).next_batch;
  const send = async (sender: string, content: JsonObject, type = 'm.room.message') => {
    const { eventId } = await internals.rooms.sendEvent({ sender, roomId, type, content });
    const stored = await services.store.rooms.getEvent(eventId);
    return { roomId, eventId, stream: stored?.stream as number };
  };
  /** Bob's pass from `since`, with its own shared reads (nothing read before it is reused). */
  const pass = async (hint: RecentChanges | undefined, timelineLimit?: number) => {
    const ctx = internals.ctx;
    const result = await computePass({
      ctx,
      deps: { rooms: internals.rooms, shared: createSharedReads(ctx) },
      userId: bob.userId,
      deviceId: bob.deviceId,
      filter: syncFilterView(
        timelineLimit === undefined ? {} : { room: { timeline: { limit: timelineLimit } } },
      ),
      since: parseSyncToken(since) ?? undefined,
      fullState: false,
      stateField: 'state',
      ...(hint ? { hint } : {}),
    });
    return result.body;
  };
  return { alice, bob, roomId, other, send, pass };
}

describe('a woken pass with a hint', () => {
  it('answers as without one, whether the hint is right, partial or wrong', async () => {
    const { alice, bob, roomId, other, send, pass } = await room();
    const first = await send(alice.userId, { msgtype: 'm.text', body: 'one' });
    const reaction = await send(
      bob.userId,
      { 'm.relates_to': { rel_type: 'm.annotation', event_id: first.eventId, key: '👍' } },
      'm.reaction',
    );
    const topic = await send(alice.userId, { topic: 'news' }, 'm.room.topic');
    const last = await send(alice.userId, { msgtype: 'm.text', body: 'two' });
    const all = [first, reaction, topic, last];

    for (const limit of [undefined, 2]) {
      const plain = await pass(undefined, limit);
      const timeline = plain.rooms.join[roomId]?.timeline;
      expect(timeline?.events.length).toBe(limit ?? all.length);
      expect(timeline?.limited).toBe(limit !== undefined);
      const hints: RecentChanges[] = [
        // What the notifier would say.
        { rooms: new Set([roomId]), events: all },
        // Only the latest event, and an event this pass does not reach yet.
        { rooms: new Set([roomId]), events: [last, { roomId, eventId: '$later', stream: last.stream + 1 }] },
        // Events that are not the ones stored at those positions, and another room.
        {
          rooms: new Set([roomId, other]),
          events: all.map((e) => ({ ...e, eventId: `${e.eventId}x` })),
        },
        // Rooms only, one the user is not in.
        { rooms: new Set([other]), events: [{ roomId: other, eventId: '$elsewhere', stream: first.stream }] },
      ];
      for (const hint of hints) expect(await pass(hint, limit)).toEqual(plain);
    }
  });
});
