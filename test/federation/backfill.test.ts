/**
 * A user of b.test pages back past b.test's join to a room of a.test: b.test asks a.test for
 * the history (`/backfill`, signed, to a.test's real endpoint), stores it behind its timeline
 * and serves what history visibility lets the user see.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { type Pdu, stateKey, toWirePdu } from '../../src/core/index.ts';
import type { FederatedNetwork, FederatedServer } from '../../src/federation/testing.ts';
import { fetchingServers, say, timeline, versionOf } from '../../src/federation/testing-rooms.ts';
import { member, remoteEvent } from '../../src/homeserver/rooms/testing-remote.ts';
import type { TestUser } from '../../src/testing.ts';

let net: FederatedNetwork | undefined;
afterEach(async () => {
  await net?.close();
  net = undefined;
});

const enc = encodeURIComponent;

/**
 * alice@a.test's room with `history` visibility and five old messages; bob@b.test joins the
 * way a join's answer would bring the room: b.test gets the create event, the state at the
 * join and its auth chain as outliers, and the join on that state — none of the history.
 */
async function joinedLate(history: string, invite = false) {
  net = await fetchingServers(['a.test', 'b.test']);
  const a = net.servers['a.test'] as FederatedServer;
  const b = net.servers['b.test'] as FederatedServer;
  const alice = (await a.hs.createUser('alice')).userId;
  const bob: TestUser = await b.hs.createUser('bob');
  const { roomId } = await a.services.rooms.createRoom(alice, {
    preset: 'public_chat',
    initial_state: [
      { type: 'm.room.history_visibility', state_key: '', content: { history_visibility: history } },
    ],
  });
  for (let i = 0; i < 5; i++) await say(a, roomId, alice, `old ${i}`);
  if (invite) {
    await a.services.rooms.sendEvent({
      sender: alice,
      roomId,
      type: 'm.room.member',
      stateKey: bob.userId,
      content: { membership: 'invite' },
    });
    await say(a, roomId, alice, 'after the invite');
  }
  const version = await versionOf(a, roomId);
  const asB = {
    name: 'b.test',
    key: b.services.ctx.signingKey,
    keyStore: b.services.ctx.keys,
    user: (l: string) => `@${l}:b.test`,
  };
  const join = await remoteEvent(asB, a.hs.store, version, roomId, member(bob.userId, bob.userId, 'join'), {
    ts: net.clock.now(),
  });
  expect((await a.services.rooms.acceptRemote(roomId, [join.wire]))[0]?.status).toBe('accepted');

  const [create] = await timeline(a, roomId);
  // What a join's answer brings: the create event, the state and auth chain, as outliers.
  await b.hs.store.rooms.persistEvents([{ event: create?.event as never, outlier: true }]);
  const answer = await b.federation.client.request('a.test', {
    method: 'GET',
    target: `/_matrix/federation/v1/state/${enc(roomId)}?event_id=${enc(join.event.event_id)}`,
  });
  const outliers = [...(answer.auth_chain as Pdu[]), ...(answer.pdus as Pdu[])].sort(
    (x, y) => (x.depth as number) - (y.depth as number),
  );
  await b.services.rooms.acceptRemote(roomId, outliers, { placed: { outlier: true } });
  const state = (await a.hs.store.rooms.stateAt(join.event.event_id, 'before')) ?? new Map();
  expect((await b.services.rooms.acceptRemote(roomId, [join.wire], { placed: { state } }))[0]?.status).toBe(
    'accepted',
  );
  await say(a, roomId, alice, 'after the join');
  const latest = (await timeline(a, roomId)).at(-1);
  await b.services.rooms.acceptRemote(roomId, [toWirePdu(latest?.event as never, version)]);
  return { a, b, bob, roomId };
}

async function messageBodies(b: FederatedServer, bob: TestUser, roomId: string): Promise<string[]> {
  const res = await b.hs.call('GET', `/_matrix/client/v3/rooms/${enc(roomId)}/messages?dir=b&limit=30`, {
    token: bob.accessToken,
  });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  const chunk = res.body.chunk as { type: string; content: { body?: string } }[];
  return chunk.flatMap((e) => (e.type === 'm.room.message' && e.content.body ? [e.content.body] : []));
}

describe('paging back past the join', () => {
  it.each([
    ['shared', false, ['after the join', 'old 4', 'old 3', 'old 2', 'old 1', 'old 0']],
    ['world_readable', false, ['after the join', 'old 4', 'old 3', 'old 2', 'old 1', 'old 0']],
    ['invited', true, ['after the join', 'after the invite']],
    ['joined', false, ['after the join']],
  ] as const)(
    'history visibility %s: backfills from a server in the room and serves what the user may see',
    async (history, invite, seen) => {
      const { b, bob, roomId } = await joinedLate(history, invite);
      const before = (await timeline(b, roomId)).length;
      expect(await messageBodies(b, bob, roomId)).toEqual(seen);
      // The history is stored once, behind the timeline: no new /sync events, current state unmoved.
      const after = await timeline(b, roomId);
      expect(after.length).toBeGreaterThan(before);
      expect(new Set(after.map((e) => e.event.event_id)).size).toBe(after.length);
      const topic = await b.hs.store.rooms.currentState(roomId);
      expect(topic.get(stateKey('m.room.member', bob.userId))).toBeDefined();
      // Asking again changes nothing.
      expect(await messageBodies(b, bob, roomId)).toEqual(seen);
      expect((await timeline(b, roomId)).length).toBe(after.length);
    },
  );
});
