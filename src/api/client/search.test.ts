import { afterEach, describe, expect, it } from 'vitest';
import { roomsTestbed, roomWith, sendText, type TestHomeserver, type TestUser } from './testing.ts';

let hs: TestHomeserver | undefined;
afterEach(async () => {
  await hs?.close();
  hs = undefined;
});

type Results = {
  results: {
    rank: number;
    result: { event_id: string; room_id: string };
    context?: Record<string, unknown>;
  }[];
  count: number;
  highlights: string[];
  next_batch?: string;
  groups?: Record<string, Record<string, { results: string[] }>>;
  state?: Record<string, unknown[]>;
};

async function search(user: TestUser, criteria: Record<string, unknown>, nextBatch?: string) {
  const path = `/_matrix/client/v3/search${nextBatch ? `?next_batch=${encodeURIComponent(nextBatch)}` : ''}`;
  const res = await (hs as TestHomeserver).call('POST', path, {
    token: user.accessToken,
    body: { search_categories: { room_events: criteria } },
  });
  return {
    status: res.status,
    body: res.body,
    events: (res.body.search_categories as { room_events: Results })?.room_events,
  };
}

describe('POST /search', () => {
  it('finds messages holding every word in rooms the user may see, by rank or recent, paged', async () => {
    const bed = await roomsTestbed('alice', 'bob', 'carol');
    hs = bed.hs;
    const [alice, bob, carol] = bed.users as [TestUser, TestUser, TestUser];
    const shared = await roomWith(hs, alice, [bob]);
    const secret = await roomWith(hs, carol, [], { preset: 'private_chat' });
    const ids: string[] = [];
    for (const body of [
      'Lunch at noon?',
      'lunch lunch LUNCH at the usual place',
      'no lunch today',
      'dinner instead',
    ])
      ids.push(await sendText(hs, alice, shared, body));
    await sendText(hs, carol, secret, 'lunch plans nobody else sees');

    const ranked = await search(bob, { search_term: 'LUNCH', order_by: 'rank' });
    expect(ranked.status).toBe(200);
    expect(ranked.events?.results.map((r) => r.result.event_id)[0]).toBe(ids[1]); // most occurrences
    expect(ranked.events?.results).toHaveLength(3);
    expect(ranked.events?.count).toBe(3);
    expect(ranked.events?.highlights).toEqual(['lunch']);
    expect(JSON.stringify(ranked.body)).not.toContain('nobody else sees');

    const recent = await search(bob, { search_term: 'lunch', order_by: 'recent', filter: { limit: 2 } });
    expect(recent.events?.results.map((r) => r.result.event_id)).toEqual([ids[2], ids[1]]);
    const more = await search(
      bob,
      { search_term: 'lunch', order_by: 'recent', filter: { limit: 2 } },
      recent.events?.next_batch,
    );
    expect(more.events?.results.map((r) => r.result.event_id)).toEqual([ids[0]]);
    expect(more.events?.next_batch).toBeUndefined();

    const both = await search(bob, { search_term: 'lunch noon' });
    expect(both.events?.results.map((r) => r.result.event_id)).toEqual([ids[0]]);

    const grouped = await search(bob, {
      search_term: 'lunch',
      groupings: { group_by: [{ key: 'room_id' }] },
      include_state: true,
      event_context: { before_limit: 1, after_limit: 1, include_profile: true },
      order_by: 'recent',
    });
    expect(grouped.events?.groups?.room_id?.[shared]?.results).toHaveLength(3);
    expect(grouped.events?.state?.[shared]?.length).toBeGreaterThan(0);
    const context = grouped.events?.results[1]?.context as Record<
      string,
      unknown[] | Record<string, unknown>
    >;
    expect((context.events_before as unknown[]).length).toBe(1);
    expect((context.events_after as unknown[]).length).toBe(1);
    expect(Object.keys(context.profile_info as object)).toContain(alice.userId);

    // Redacted: gone from the results.
    await hs.internals.rooms.redact({
      sender: alice.userId,
      deviceId: alice.deviceId,
      roomId: shared,
      eventId: ids[0] as string,
    });
    const after = await search(bob, { search_term: 'noon' });
    expect(after.events?.results).toEqual([]);
  });

  it('answers malformed requests with Matrix errors', async () => {
    const bed = await roomsTestbed('alice');
    hs = bed.hs;
    const [alice] = bed.users as [TestUser];
    const noTerm = await hs.call('POST', '/_matrix/client/v3/search', {
      token: alice.accessToken,
      body: { search_categories: { room_events: {} } },
    });
    expect([noTerm.status, noTerm.body.errcode]).toEqual([400, 'M_MISSING_PARAM']);
    const badToken = await search(alice, { search_term: 'x', order_by: 'rank' }, 'recent:5');
    expect([badToken.status, badToken.body.errcode]).toEqual([400, 'M_INVALID_PARAM']);
    const noAuth = await hs.call('POST', '/_matrix/client/v3/search', { body: { search_categories: {} } });
    expect(noAuth.status).toBe(401);
  });
});

describe('POST /user_directory/search', () => {
  it('finds users sharing a room or in public rooms, by ID or display name prefix, not strangers', async () => {
    const bed = await roomsTestbed('alice', 'bob', 'carol', 'dave');
    hs = bed.hs;
    const [alice, bob, carol, dave] = bed.users as [TestUser, TestUser, TestUser, TestUser];
    const shared = await roomWith(hs, alice, [bob]);
    const published = await roomWith(hs, carol, [], { preset: 'public_chat', visibility: 'public' });
    await roomWith(hs, dave, [], { preset: 'private_chat' });
    expect(shared).toBeTruthy();
    expect(published).toBeTruthy();
    const find = (term: string, limit?: number) =>
      (hs as TestHomeserver).call('POST', '/_matrix/client/v3/user_directory/search', {
        token: alice.accessToken,
        body: { search_term: term, ...(limit !== undefined ? { limit } : {}) },
      });
    const bobs = await find('bo');
    expect(bobs.status).toBe(200);
    expect(bobs.body.results).toEqual([expect.objectContaining({ user_id: bob.userId })]);
    expect((await find('carol')).body.results).toEqual([expect.objectContaining({ user_id: carol.userId })]);
    expect((await find('dave')).body.results).toEqual([]);
    const limited = await find('test', 1);
    expect(limited.body).toMatchObject({ limited: true });
    expect(limited.body.results).toHaveLength(1);
  });
});
