/**
 * The long-polls one send wakes format its event once between them (pass.ts `formatEvents`,
 * issue 13) — but only what every one of them sees alike: the sender's own pass keeps its
 * `transaction_id`, and an event with relations (edits, threads: aggregations as each viewer
 * may see them) is formatted per viewer. Real store (SQLite), real services.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { JsonObject } from '../../core/canonical-json.ts';
import { createStore } from '../../storage/create-store.ts';
import { openSqliteEngine } from '../../storage/sqlite/index.ts';
import { startServices } from '../start.ts';
import { createTestUser, manualClock, type TestUser } from '../testing.ts';
import type { SyncResponse } from './index.ts';

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

async function roomWithWaiters(waiters: number) {
  const store = createStore(await openSqliteEngine({ path: ':memory:' }));
  closers.push(() => store.close());
  const { services, ctx } = await startServices(store, {
    serverName: 'format.localhost',
    registration: 'open',
    passwordIterations: 1000,
    clock: manualClock(),
  });
  const owner = await createTestUser(services, 'owner');
  const { roomId } = await services.rooms.createRoom(owner.userId, { preset: 'public_chat' });
  const members: TestUser[] = [];
  for (let i = 0; i < waiters; i++) {
    const member = await createTestUser(services, `member${i}`);
    await services.rooms.join(member.userId, roomId);
    members.push(member);
  }
  const quiet = (body: SyncResponse) =>
    Object.keys(body.rooms.join).length === 0 &&
    body.presence.events.length === 0 &&
    body.device_lists.changed.length === 0 &&
    body.account_data.events.length === 0;
  /** A token past everything the user has to hear about so far (the others' joins, presence). */
  const tokenOf = async (user: TestUser) => {
    let body = await services.sync.sync({ userId: user.userId, deviceId: user.deviceId });
    for (let k = 0; k < 8; k++) {
      body = await services.sync.sync({
        userId: user.userId,
        deviceId: user.deviceId,
        since: body.next_batch,
      });
      if (quiet(body)) return body.next_batch;
    }
    throw new Error(`${user.userId} still has news`);
  };
  /** Every user in `users` long-polls from a fresh token; `act` then runs; their answers. */
  const wake = async (users: TestUser[], act: () => Promise<unknown>) => {
    // Twice: each user's first sync shows them online to the others, who then have news.
    for (const user of users) await tokenOf(user);
    const tokens: string[] = [];
    for (const user of users) tokens.push(await tokenOf(user));
    let parked = 0;
    const wait = ctx.notifier.wait;
    ctx.notifier.wait = (...args) => {
      parked++;
      return wait.apply(ctx.notifier, args);
    };
    try {
      const answers = users.map((user, i) =>
        services.sync.sync({
          userId: user.userId,
          deviceId: user.deviceId,
          since: tokens[i],
          timeoutMs: 20_000,
        }),
      );
      while (parked < users.length) await new Promise((resolve) => setTimeout(resolve, 1));
      await act();
      return await Promise.all(answers);
    } finally {
      ctx.notifier.wait = wait;
    }
  };
  const timeline = (body: SyncResponse) => body.rooms.join[roomId]?.timeline.events as JsonObject[];
  return { services, owner, members, roomId, wake, tokenOf, timeline };
}

describe('formatted events shared by the passes of one wake', () => {
  it('are one formatting for the members, while the sender still gets its transaction_id', async () => {
    const { services, owner, members, roomId, wake, timeline } = await roomWithWaiters(3);
    const [ownerAnswer, ...memberAnswers] = await wake([owner, ...members], () =>
      services.rooms.sendEvent({
        sender: owner.userId,
        deviceId: owner.deviceId,
        txnId: 'txn-1',
        roomId,
        type: 'm.room.message',
        content: { msgtype: 'm.text', body: 'hello all' },
      }),
    );
    const own = timeline(ownerAnswer as SyncResponse);
    expect(own).toHaveLength(1);
    expect((own[0] as JsonObject).unsigned).toMatchObject({ transaction_id: 'txn-1' });
    const shown = memberAnswers.map((answer) => timeline(answer)[0] as JsonObject);
    for (const event of shown) {
      expect(event.content).toEqual({ msgtype: 'm.text', body: 'hello all' });
      expect((event.unsigned as JsonObject).transaction_id).toBeUndefined();
    }
    // The members' answers hold the very same formatted event: formatted once.
    expect(shown[1]).toBe(shown[0]);
    expect(shown[2]).toBe(shown[0]);
    expect(own[0]).not.toBe(shown[0]);
  });

  it('are formatted per viewer when an event has relations (aggregations differ by viewer)', async () => {
    const { services, owner, members, roomId, tokenOf, timeline } = await roomWithWaiters(2);
    for (const member of members) await tokenOf(member);
    const tokens: string[] = [];
    for (const member of members) tokens.push(await tokenOf(member));
    const root = await services.rooms.sendEvent({
      sender: owner.userId,
      roomId,
      type: 'm.room.message',
      content: { msgtype: 'm.text', body: 'root' },
    });
    await services.rooms.sendEvent({
      sender: owner.userId,
      roomId,
      type: 'm.room.message',
      content: {
        msgtype: 'm.text',
        body: 'reply',
        'm.relates_to': { rel_type: 'm.thread', event_id: root.eventId },
      },
    });
    // Both members read the same page from the same position, one after the other (the clock
    // stands still, nothing is notified between): the root carries its thread, which each
    // viewer may see differently, so it is formatted for each.
    const answers = [];
    for (const [i, member] of members.entries())
      answers.push(
        await services.sync.sync({ userId: member.userId, deviceId: member.deviceId, since: tokens[i] }),
      );
    const roots = answers.map((answer) => timeline(answer).find((e) => e.event_id === root.eventId));
    for (const shown of roots)
      expect(shown?.unsigned).toMatchObject({
        'm.relations': { 'm.thread': expect.objectContaining({ count: 1 }) },
      });
    expect(roots[1]).toEqual(roots[0]);
    expect(roots[1]).not.toBe(roots[0]);
  });
});
