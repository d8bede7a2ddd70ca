/**
 * `receivePdus` between real homeservers: a PDU whose past b.test lacks makes b.test ask
 * a.test — get_missing_events for a gap, the state before the PDU for a fork from before
 * what b.test holds — through signed requests to a.test's real endpoints.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { authStateOf, stateKey } from '../../src/core/index.ts';
import type { FederatedNetwork, FederatedServer } from '../../src/federation/testing.ts';
import { say, timeline, twoServerRoom, versionOf, wireEvents } from '../../src/federation/testing-rooms.ts';
import { remoteEvent } from '../../src/homeserver/rooms/testing-remote.ts';

let net: FederatedNetwork | undefined;
afterEach(async () => {
  await net?.close();
  net = undefined;
});

/** A room of alice@a.test that bob@b.test has joined; both servers hold all of it. */
async function sharedRoom() {
  const room = await twoServerRoom();
  net = room.net;
  return { ...room, alice: room.alice.userId, bob: room.bob.userId };
}

const ids = async (server: FederatedServer, roomId: string) =>
  (await timeline(server, roomId)).map((e) => e.event.event_id);

/** b.test misses `count` events of a.test, then gets one more: the gap closes, in order. */
async function catchUp(count: number) {
  const { a, b, alice, roomId } = await sharedRoom();
  const before = (await timeline(b, roomId)).length;
  for (let i = 0; i < count; i++) await say(a, roomId, alice, `missed ${i}`);
  const newest = await say(a, roomId, alice, 'newest');
  const [wire] = await wireEvents(a, roomId, (await timeline(a, roomId)).length - 1);
  const result = await b.services.federationInbound.receivePdus('a.test', roomId, [wire]);
  expect(result).toEqual(new Map([[newest, {}]]));
  const onA = await ids(a, roomId);
  const onB = await ids(b, roomId);
  // No hole, no duplicate, the same order.
  expect(onB).toEqual(onA);
  expect(new Set(onB).size).toBe(onB.length);
  expect(onB.length).toBe(before + count + 1);
  return { a, b, roomId };
}

describe('receivePdus', () => {
  it('closes a gap of 30 events with get_missing_events', async () => {
    await catchUp(30);
  });

  it('catches up after missing 200 events: one new event fills the gap in order', async () => {
    const { b, roomId } = await catchUp(200);
    // Sending it again changes nothing.
    const [again] = await wireEvents(b, roomId, (await timeline(b, roomId)).length - 1);
    const before = await ids(b, roomId);
    expect([...(await b.services.federationInbound.receivePdus('a.test', roomId, [again])).values()]).toEqual(
      [{}],
    );
    expect(await ids(b, roomId)).toEqual(before);
  }, 60_000);

  it('takes the state before a fork it cannot walk back to', async () => {
    const { a, b, alice, bob, roomId } = await sharedRoom();
    // Split: b.test's users talk, a.test changes the topic and talks on.
    for (let i = 0; i < 6; i++) await say(b, roomId, bob, `b ${i}`);
    await a.services.rooms.sendEvent({
      sender: alice,
      roomId,
      type: 'm.room.topic',
      stateKey: '',
      content: { topic: 'from a' },
    });
    for (let i = 0; i < 3; i++) await say(a, roomId, alice, `a ${i}`);
    const newest = await say(a, roomId, alice, 'newest of a');
    const [wire] = await wireEvents(a, roomId, (await timeline(a, roomId)).length - 1);
    const result = await b.services.federationInbound.receivePdus('a.test', roomId, [wire]);
    expect(result).toEqual(new Map([[newest, {}]]));
    // The fork's events older than b.test's own head were not walked to: the state was fetched.
    const stored = await b.hs.store.rooms.getEvent(newest);
    expect(stored?.stream).not.toBeNull();
    const topic = await b.hs.store.rooms.currentStateEvent(roomId, 'm.room.topic', '');
    expect(topic?.event.content.topic).toBe('from a');
    const heads = (await b.hs.store.rooms.forwardExtremities(roomId)).map((e) => e.eventId);
    expect(heads).toContain(newest);
    expect(heads).toHaveLength(2);
  });

  it('rejects an event whose auth chain cannot be had, and applies nothing', async () => {
    const { a, b, alice, roomId } = await sharedRoom();
    const version = await versionOf(a, roomId);
    // Signed by a.test, but citing a membership event nobody has.
    const asA = {
      name: 'a.test',
      key: a.services.ctx.signingKey,
      keyStore: a.services.ctx.keys,
      user: (l: string) => `@${l}:a.test`,
    };
    const state = new Map(
      authStateOf((await a.hs.store.rooms.currentStateEvents(roomId)).map((s) => s.event)),
    );
    const member = state.get(stateKey('m.room.member', alice));
    if (!member) throw new Error('alice is not a member');
    state.set(stateKey('m.room.member', alice), {
      ...member,
      event_id: `$${'B'.repeat(43)}`,
      content: { membership: 'join', displayname: 'ghost' },
    });
    const ghost = await remoteEvent(
      asA,
      a.hs.store,
      version,
      roomId,
      { sender: alice, type: 'm.room.topic', stateKey: '', content: { topic: 'forged' } },
      { state, ts: net?.clock.now() },
    );
    const before = await ids(b, roomId);
    const result = await b.services.federationInbound.receivePdus('a.test', roomId, [ghost.wire]);
    expect(result.get(ghost.event.event_id)?.error).toMatch(/^rejected/);
    expect(await b.hs.store.rooms.getEvent(ghost.event.event_id)).toBeNull();
    expect(await ids(b, roomId)).toEqual(before);
    expect(await b.hs.store.rooms.currentStateEvent(roomId, 'm.room.topic', '')).toBeNull();
  });
});
