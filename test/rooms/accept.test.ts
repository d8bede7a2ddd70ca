/**
 * The accept step fed hand-made PDUs of another server, in every room version: what is
 * stored, and what a local client sees through /sync, /messages and /state.
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  getRoomVersion,
  type IdentifiedPdu,
  identify,
  type RoomVersion,
  roomVersions,
  signingKeyFromSeed,
  stateKey,
} from '../../src/core/index.ts';
import { webRandom } from '../../src/homeserver/context.ts';
import type { AcceptOutcome } from '../../src/homeserver/rooms/accept.ts';
import type { TestUser } from '../../src/homeserver/rooms/testing.ts';
import {
  currentAuthState,
  extremityEvents,
  member,
  message,
  type RemoteServer,
  remoteEvent,
  remoteServer,
} from '../../src/homeserver/rooms/testing-remote.ts';
import type { Services } from '../../src/homeserver/services.ts';
import { createTestHomeserver, type TestHomeserver } from '../../src/testing.ts';

let hs: TestHomeserver | undefined;
afterEach(async () => {
  await hs?.close();
  hs = undefined;
});

interface Room {
  hs: TestHomeserver;
  services: Services;
  remote: RemoteServer;
  alice: TestUser;
  bob: string;
  roomId: string;
  version: RoomVersion;
}

/**
 * A room of `versionId` made by local alice, public, with remote bob joined through an
 * accepted join of his server. Bob gets `bobLevel` through the initial power levels.
 */
async function roomWithRemoteMember(versionId: string, bobLevel = 0): Promise<Room> {
  const remote = await remoteServer();
  hs = await createTestHomeserver({ keyStore: remote.keyStore });
  const services = hs.internals;
  const alice = await hs.createUser('alice');
  const bob = remote.user('bob');
  const version = getRoomVersion(versionId);
  // v12 creators hold unlimited power and are not listed in `users` (rooms/v12.md).
  const users = version.privilegedCreators ? { [bob]: bobLevel } : { [alice.userId]: 100, [bob]: bobLevel };
  const { roomId } = await services.rooms.createRoom(alice.userId, {
    preset: 'public_chat',
    room_version: versionId,
    power_level_content_override: { users },
  });
  const join = await remoteEvent(remote, hs.store, version, roomId, member(bob, bob, 'join'));
  expect(await services.rooms.acceptRemote(roomId, [join.wire])).toEqual([
    { status: 'accepted', eventId: join.event.event_id, redacted: false },
  ]);
  expect((await hs.store.rooms.membership(roomId, bob))?.membership).toBe('join');
  return { hs, services, remote, alice, bob, roomId, version };
}

async function syncTimeline(room: Room): Promise<string[]> {
  const filter = JSON.stringify({ room: { timeline: { limit: 100 } } });
  const res = await room.hs.call('GET', `/_matrix/client/v3/sync?filter=${encodeURIComponent(filter)}`, {
    token: room.alice.accessToken,
  });
  expect(res.status).toBe(200);
  const joined = (
    res.body.rooms as { join: Record<string, { timeline: { events: { event_id: string }[] } }> }
  ).join[room.roomId];
  return (joined?.timeline.events ?? []).map((e) => e.event_id);
}

async function messages(room: Room): Promise<{ event_id: string; content: Record<string, unknown> }[]> {
  const res = await room.hs.call(
    'GET',
    `/_matrix/client/v3/rooms/${encodeURIComponent(room.roomId)}/messages?dir=b&limit=100`,
    { token: room.alice.accessToken },
  );
  expect(res.status).toBe(200);
  return res.body.chunk as { event_id: string; content: Record<string, unknown> }[];
}

async function topic(room: Room): Promise<unknown> {
  const res = await room.hs.call(
    'GET',
    `/_matrix/client/v3/rooms/${encodeURIComponent(room.roomId)}/state/m.room.topic`,
    { token: room.alice.accessToken },
  );
  expect(res.status).toBe(200);
  return res.body.topic;
}

const accept = (room: Room, ...pdus: Parameters<Services['rooms']['acceptRemote']>[1]) =>
  room.services.rooms.acceptRemote(room.roomId, pdus);

const VERSIONS = Object.keys(roomVersions);

describe.each(VERSIONS)('room version %s: events from another server', (versionId) => {
  it('stores valid ones for clients, drops forged ones, redacts on a wrong hash, rejects unauthorised ones', async () => {
    const room = await roomWithRemoteMember(versionId);
    const { remote, bob, roomId, version } = room;
    const store = room.hs.store;

    // Valid: stored, in the timeline, in /sync and /messages.
    const hello = await remoteEvent(remote, store, version, roomId, message(bob, 'hello from afar'));
    expect(await accept(room, hello.wire)).toEqual([
      { status: 'accepted', eventId: hello.event.event_id, redacted: false },
    ]);
    expect(await syncTimeline(room)).toContain(hello.event.event_id);
    const chunk = await messages(room);
    expect(chunk.find((e) => e.event_id === hello.event.event_id)?.content.body).toBe('hello from afar');
    expect((await store.rooms.forwardExtremities(roomId)).map((e) => e.eventId)).toEqual([
      hello.event.event_id,
    ]);
    // Events of remote servers are not sent back out; a local event goes to bob's server.
    expect(await store.federation.outbox(remote.name, 10)).toEqual([]);
    const { eventId: local } = await room.services.rooms.sendEvent({
      sender: room.alice.userId,
      roomId,
      type: 'm.room.message',
      content: { msgtype: 'm.text', body: 'hi bob' },
    });
    expect(
      (await store.federation.outbox(remote.name, 10)).map((row) => row.kind === 'pdu' && row.eventId),
    ).toEqual([local]);

    // Bad signature: signed with a key that is not the server's. Dropped, nothing stored.
    const impostor = await signingKeyFromSeed(webRandom.bytes(32), 'r1');
    const forged = await remoteEvent(remote, store, version, roomId, message(bob, 'forged'), {
      key: impostor,
    });
    const [dropped] = await accept(room, forged.wire);
    expect(dropped?.status).toBe('dropped');
    expect(await store.rooms.getEvent(forged.event.event_id)).toBeNull();
    // A server whose keys nobody knows is no better.
    const stranger = await remoteServer('stranger.example');
    const unknownKey = await remoteEvent(stranger, store, version, roomId, message(bob, 'who am I'));
    expect((await accept(room, unknownKey.wire))[0]?.status).toBe('dropped');

    // Wrong content hash (content changed after signing; the signature covers only the
    // redacted form): kept, but only redacted.
    const tampered = await remoteEvent(remote, store, version, roomId, message(bob, 'original'));
    const altered = { ...tampered.wire, content: { msgtype: 'm.text', body: 'altered' } };
    const [redacted] = await accept(room, altered);
    expect(redacted).toMatchObject({ status: 'accepted', redacted: true });
    const storedRedacted = await store.rooms.getEvent((redacted as { eventId: string }).eventId);
    expect(storedRedacted?.event.content).toEqual({});
    expect((redacted as { eventId: string }).eventId).toBe(identify(altered, version).event_id);
    expect(
      (await messages(room)).find((e) => e.event_id === storedRedacted?.event.event_id)?.content,
    ).toEqual({});

    // Failing auth against its own auth events: bob (level 0) sets the power levels.
    const positions = await store.positions();
    const state = await currentAuthState(store, roomId);
    const powerLevels = state.get(stateKey('m.room.power_levels', '')) as IdentifiedPdu;
    const grab = await remoteEvent(remote, store, version, roomId, {
      sender: bob,
      type: 'm.room.power_levels',
      stateKey: '',
      content: { ...powerLevels.content, users: { [bob]: 100 } },
    });
    const [rejected] = await accept(room, grab.wire);
    expect(rejected).toMatchObject({ status: 'rejected', eventId: grab.event.event_id });
    const storedRejected = await store.rooms.getEvent(grab.event.event_id);
    expect(storedRejected?.rejected).toMatch(/power level|not allowed|permission|below|level/i);
    expect(storedRejected?.stream).toBeNull();
    expect((await store.rooms.currentStateEvent(roomId, 'm.room.power_levels', ''))?.event.event_id).toBe(
      powerLevels.event_id,
    );
    expect((await store.positions()).events).toBe(positions.events);
    expect(await syncTimeline(room)).not.toContain(grab.event.event_id);
  });

  it('rejects an event its auth events allow but the state before it does not, and soft-fails a ban evasion', async () => {
    const room = await roomWithRemoteMember(versionId);
    const { remote, bob, roomId, version } = room;
    const store = room.hs.store;
    const beforeBan = await extremityEvents(store, roomId);
    const stateBeforeBan = await currentAuthState(store, roomId);

    // Alice bans bob.
    await room.services.rooms.ban(room.alice.userId, roomId, bob);
    expect((await store.rooms.membership(roomId, bob))?.membership).toBe('ban');
    const afterBan = await extremityEvents(store, roomId);

    // Cites his old join as auth event but follows the ban: the state before it refuses it.
    const late = await remoteEvent(remote, store, version, roomId, message(bob, 'am I still here?'), {
      prevEvents: afterBan,
      state: stateBeforeBan,
    });
    const [rejected] = await accept(room, late.wire);
    expect(rejected).toMatchObject({ status: 'rejected' });
    expect((rejected as { reason: string }).reason).toMatch(/join|member|banned/i);
    expect((await store.rooms.getEvent(late.event.event_id))?.rejected).not.toBeNull();

    // Built on the DAG before the ban (server-server-api.md "Soft failure", the example):
    // authorised there, not by the current state. Stored, but no client sees it, and it is
    // no forward extremity.
    const evasion = await remoteEvent(remote, store, version, roomId, message(bob, 'evading'), {
      prevEvents: beforeBan,
      state: stateBeforeBan,
    });
    expect(await accept(room, evasion.wire)).toEqual([
      { status: 'soft_failed', eventId: evasion.event.event_id, redacted: false },
    ]);
    const stored = await store.rooms.getEvent(evasion.event.event_id);
    expect(stored?.softFailed).toBe(true);
    expect(stored?.stream).toBeNull();
    expect(await store.rooms.stateAt(evasion.event.event_id, 'before')).not.toBeNull();
    expect((await store.rooms.forwardExtremities(roomId)).map((e) => e.eventId)).toEqual(
      afterBan.map((e) => e.event_id),
    );
    expect(await syncTimeline(room)).not.toContain(evasion.event.event_id);
    expect((await messages(room)).map((e) => e.event_id)).not.toContain(evasion.event.event_id);

    // Sent again: known, nothing more happens.
    expect(await accept(room, evasion.wire)).toEqual([{ status: 'known', eventId: evasion.event.event_id }]);
  });

  it('resolves the state of concurrent branches with the room version’s algorithm', async () => {
    const room = await roomWithRemoteMember(versionId, 50);
    const { remote, bob, roomId, version } = room;
    const store = room.hs.store;
    const base = await extremityEvents(store, roomId);
    const baseState = await currentAuthState(store, roomId);
    const now = Date.now();
    const setTopic = (text: string) => ({
      sender: bob,
      type: 'm.room.topic',
      stateKey: '',
      content: { topic: text },
    });

    // Branch one: a topic, later by the clock, shallower.
    const one = await remoteEvent(remote, store, version, roomId, setTopic('one'), {
      prevEvents: base,
      state: baseState,
      ts: now + 2000,
    });
    // Branch two: a message then a topic, earlier by the clock, deeper.
    const between = await remoteEvent(remote, store, version, roomId, message(bob, 'meanwhile'), {
      prevEvents: base,
      state: baseState,
      ts: now + 500,
    });
    const two = await remoteEvent(remote, store, version, roomId, setTopic('two'), {
      prevEvents: [between.event],
      state: baseState,
      ts: now + 1000,
    });
    const outcomes = await accept(room, one.wire, between.wire, two.wire);
    expect(outcomes.map((o: AcceptOutcome) => o.status)).toEqual(['accepted', 'accepted', 'accepted']);
    expect(new Set((await store.rooms.forwardExtremities(roomId)).map((e) => e.eventId))).toEqual(
      new Set([one.event.event_id, two.event.event_id]),
    );

    // v1 keeps the deeper event of a conflict; v2 and later order same-mainline events by
    // origin_server_ts and apply them in turn, so the later one stands.
    const expected = version.stateRes === 'v1' ? 'two' : 'one';
    expect(await topic(room)).toBe(expected);

    // One event after both branches: its state before is their resolution.
    const merge = await remoteEvent(remote, store, version, roomId, message(bob, 'merged'), {
      prevEvents: [one.event, two.event],
      state: await currentAuthState(store, roomId),
      ts: now + 3000,
    });
    expect((await accept(room, merge.wire))[0]?.status).toBe('accepted');
    const before = await store.rooms.stateAt(merge.event.event_id, 'before');
    const winner = expected === 'one' ? one : two;
    expect(before?.get(stateKey('m.room.topic', ''))).toBe(winner.event.event_id);
    expect((await store.rooms.forwardExtremities(roomId)).map((e) => e.eventId)).toEqual([
      merge.event.event_id,
    ]);
    expect(await topic(room)).toBe(expected);
    expect(await syncTimeline(room)).toEqual(
      expect.arrayContaining([merge.event.event_id, between.event.event_id]),
    );

    // A local send builds on the merge, and the topic clients see stays the resolved one.
    await room.services.rooms.sendEvent({
      sender: room.alice.userId,
      roomId,
      type: 'm.room.message',
      content: { msgtype: 'm.text', body: 'after the merge' },
    });
    expect(await topic(room)).toBe(expected);
  });
});

describe.each(['1', '12'])('room version %s: gaps and redactions from another server', (versionId) => {
  it('stores nothing of an event whose prev events are unknown, until they arrive', async () => {
    const room = await roomWithRemoteMember(versionId);
    const { remote, bob, roomId, version } = room;
    const store = room.hs.store;
    const first = await remoteEvent(remote, store, version, roomId, message(bob, 'first'));
    const second = await remoteEvent(remote, store, version, roomId, message(bob, 'second'), {
      prevEvents: [first.event],
    });
    expect(await accept(room, second.wire)).toEqual([
      { status: 'missing', eventId: second.event.event_id, missing: [first.event.event_id] },
    ]);
    expect(await store.rooms.getEvent(second.event.event_id)).toBeNull();
    // Alice's long-poll wakes when they land.
    const { notifier } = room.hs.internals.ctx;
    const woken = notifier.wait(room.alice.userId, new Set([roomId]), notifier.version, 5000);
    expect((await accept(room, first.wire, second.wire)).map((o) => o.status)).toEqual([
      'accepted',
      'accepted',
    ]);
    expect(await woken).toBe(true);
    expect((await syncTimeline(room)).slice(-2)).toEqual([first.event.event_id, second.event.event_id]);
  });

  it('applies a redaction from the sender’s own server, and not one from a user without the power', async () => {
    const room = await roomWithRemoteMember(versionId);
    const { remote, bob, roomId, version } = room;
    const store = room.hs.store;
    const said = await remoteEvent(remote, store, version, roomId, message(bob, 'oops'));
    await accept(room, said.wire);
    const redaction = await remoteEvent(remote, store, version, roomId, {
      sender: bob,
      type: 'm.room.redaction',
      content: {},
      redacts: said.event.event_id,
    });
    expect((await accept(room, redaction.wire))[0]?.status).toBe('accepted');
    const target = await store.rooms.getEvent(said.event.event_id);
    expect(target?.event.content).toEqual({});
    expect(target?.redactedBy).toBe(redaction.event.event_id);

    // Alice's message, redacted by bob (power 0): from v3 the redaction is accepted as an
    // event but the target stays (rooms/v3.md "Handling redactions"); in v1 the auth rules
    // reject it outright.
    const { eventId: hers } = await room.services.rooms.sendEvent({
      sender: room.alice.userId,
      roomId,
      type: 'm.room.message',
      content: { msgtype: 'm.text', body: 'mine' },
    });
    const overreach = await remoteEvent(remote, store, version, roomId, {
      sender: bob,
      type: 'm.room.redaction',
      content: {},
      redacts: hers,
    });
    const [outcome] = await accept(room, overreach.wire);
    expect(outcome?.status).toBe(version.redactionsCheckedLater ? 'accepted' : 'rejected');
    expect((await store.rooms.getEvent(hers))?.event.content).toEqual({ msgtype: 'm.text', body: 'mine' });
  });
});

describe.each(['1', '3', '12'])('room version %s: a redaction before its target', (versionId) => {
  it('is kept, and the target is stored redacted when it comes', async () => {
    const room = await roomWithRemoteMember(versionId);
    const { remote, bob, roomId, version } = room;
    const store = room.hs.store;
    // Built on the same extremities: neither cites the other, so either may come first.
    const said = await remoteEvent(remote, store, version, roomId, message(bob, 'taken back'));
    const redaction = await remoteEvent(remote, store, version, roomId, {
      sender: bob,
      type: 'm.room.redaction',
      content: version.redactsInContent ? { redacts: said.event.event_id } : {},
      ...(version.redactsInContent ? {} : { redacts: said.event.event_id }),
    });
    expect((await accept(room, redaction.wire))[0]?.status).toBe('accepted');
    expect(await store.rooms.pendingRedactions(said.event.event_id)).toEqual([redaction.event.event_id]);
    expect((await accept(room, said.wire))[0]).toMatchObject({
      status: 'accepted',
      eventId: said.event.event_id,
    });
    const target = await store.rooms.getEvent(said.event.event_id);
    expect(target?.event.content).toEqual({});
    expect(target?.redactedBy).toBe(redaction.event.event_id);
    expect(await syncTimeline(room)).toContain(said.event.event_id);
    expect(JSON.stringify(await store.rooms.timeline(roomId, { dir: 'f', limit: 100 }))).not.toContain(
      'taken back',
    );
    expect(await store.rooms.pendingRedactions(said.event.event_id)).toEqual([]);
  });
});

describe.each(['2', '12'])('room version %s: after a rejected event', (versionId) => {
  it('accepts a later event that cites it, with the state from before it', async () => {
    const room = await roomWithRemoteMember(versionId);
    const { remote, bob, roomId, version } = room;
    const store = room.hs.store;
    const powerLevels = (await store.rooms.currentStateEvent(roomId, 'm.room.power_levels', ''))?.event;
    const grab = await remoteEvent(remote, store, version, roomId, {
      sender: bob,
      type: 'm.room.power_levels',
      stateKey: '',
      content: { ...powerLevels?.content, users: { [bob]: 100 } },
    });
    expect((await accept(room, grab.wire))[0]?.status).toBe('rejected');
    // "Rejection": later events may reference it if they pass the auth rules; the state used
    // is calculated as if the rejected event had not changed it.
    const after = await remoteEvent(remote, store, version, roomId, message(bob, 'never mind'), {
      prevEvents: [grab.event],
    });
    expect((await accept(room, after.wire))[0]?.status).toBe('accepted');
    const before = await store.rooms.stateAt(after.event.event_id, 'before');
    expect(before?.get(stateKey('m.room.power_levels', ''))).toBe(powerLevels?.event_id);
    expect((await store.rooms.forwardExtremities(roomId)).map((e) => e.eventId)).toContain(
      after.event.event_id,
    );
    expect(await syncTimeline(room)).toContain(after.event.event_id);
    expect(await syncTimeline(room)).not.toContain(grab.event.event_id);
  });
});

describe.each(['1', '10', '12'])('room version %s: a transaction of chained events', (versionId) => {
  // accept.ts writes a run of plain messages together, checking each against the store and
  // the ones before it not yet written: the outcome must be the same as one by one.
  it('is taken as if one event at a time: state, redactions, duplicates, gaps and forks on the way', async () => {
    const room = await roomWithRemoteMember(versionId, 50);
    const { remote, bob, roomId, version } = room;
    const store = room.hs.store;
    const make = (draft: Parameters<typeof remoteEvent>[4], ...prev: IdentifiedPdu[]) =>
      remoteEvent(remote, store, version, roomId, draft, prev.length > 0 ? { prevEvents: prev } : {});
    const m1 = await make(message(bob, 'one'));
    const m2 = await make(message(bob, 'two'), m1.event);
    const named = await make(
      { sender: bob, type: 'm.room.topic', stateKey: '', content: { topic: 'batched' } },
      m2.event,
    );
    const m3 = await make(message(bob, 'three'), named.event);
    const redaction = await make(
      { sender: bob, type: 'm.room.redaction', content: {}, redacts: m1.event.event_id },
      m3.event,
    );
    const m4 = await make(message(bob, 'four'), redaction.event);
    // A branch from m2, which the messages after it do not know of: the room forks.
    const side = await make(message(bob, 'side'), m2.event);
    const m5 = await make(message(bob, 'five'), m4.event);
    // On an event nobody has: not stored, named as missing.
    const ghost = await make(message(bob, 'ghost'));
    const orphan = await make(message(bob, 'orphan'), { ...ghost.event, event_id: '$ghost:remote' });

    const outcomes = await accept(
      room,
      m1.wire,
      m2.wire,
      named.wire,
      m3.wire,
      m2.wire,
      redaction.wire,
      m4.wire,
      side.wire,
      m5.wire,
      orphan.wire,
    );
    const ok = (e: { event: IdentifiedPdu }) => ({
      status: 'accepted',
      eventId: e.event.event_id,
      redacted: false,
    });
    expect(outcomes).toEqual([
      ok(m1),
      ok(m2),
      ok(named),
      ok(m3),
      { status: 'known', eventId: m2.event.event_id },
      ok(redaction),
      ok(m4),
      ok(side),
      ok(m5),
      { status: 'missing', eventId: orphan.event.event_id, missing: ['$ghost:remote'] },
    ]);
    expect(await topic(room)).toBe('batched');
    expect((await store.rooms.getEvent(m1.event.event_id))?.redactedBy).toBe(redaction.event.event_id);
    expect((await store.rooms.stateAt(m5.event.event_id, 'before'))?.get(stateKey('m.room.topic', ''))).toBe(
      named.event.event_id,
    );
    const heads = (await store.rooms.forwardExtremities(roomId)).map((e) => e.eventId).sort();
    expect(heads).toEqual([side.event.event_id, m5.event.event_id].sort());
    expect(await store.rooms.getEvent(orphan.event.event_id)).toBeNull();
    // Clients see them once each, in the order they came.
    const timeline = await syncTimeline(room);
    const ours = [m1, m2, named, m3, redaction, m4, side, m5].map((e) => e.event.event_id);
    expect(timeline.filter((id) => ours.includes(id))).toEqual(ours);
  });
});
