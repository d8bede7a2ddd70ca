import { afterEach, describe, expect, it } from 'vitest';
import {
  checkAuthEventsShape,
  getRoomVersion,
  type IdentifiedPdu,
  isValidRoomId,
  referencedIds,
  roomIdFromCreateEvent,
  validatePdu,
  verifyEvent,
} from '../../core/index.ts';
import { createTestServices, manualClock, type TestServices } from '../testing.ts';
import { createRoomAs, roomsTestbed, stateContent, timelineOf } from './testing.ts';

let hs: TestServices | undefined;
afterEach(async () => {
  await hs?.close();
  hs = undefined;
});

/** Checks every event the way a receiving server would: schema, signature and hash, auth events. */
async function checkLikeARemoteServer(server: TestServices, events: IdentifiedPdu[], versionId: string) {
  const version = getRoomVersion(versionId);
  const { ctx } = server.internals;
  const keys = { [ctx.signingKey.keyId]: ctx.signingKey.publicKey };
  const byId = new Map(events.map((e) => [e.event_id, e]));
  for (const event of events) {
    const { event_id: _id, ...wire } = event;
    validatePdu(version.eventIdFormat === 'server' ? event : wire, version);
    const verified = await verifyEvent(event, version, (name) =>
      name === server.serverName ? keys : undefined,
    );
    expect(verified.redacted, `content hash of ${event.type}`).toBe(false);
    const authEvents = referencedIds(event.auth_events).map((id) => byId.get(id) as IdentifiedPdu);
    expect(checkAuthEventsShape(event, authEvents, version)).toEqual({ ok: true });
  }
}

describe('createRoom', () => {
  it('applies every option, in the order the spec gives, in a v11 room', async () => {
    const t = await roomsTestbed('alice', 'bob', 'carol');
    hs = t.hs;
    const [alice, bob, carol] = t.users as [(typeof t.users)[0], (typeof t.users)[0], (typeof t.users)[0]];
    await hs.store.userData.updateProfile(bob.userId, { displayname: 'Bob B', avatar_url: 'mxc://x/bob' });
    const roomId = await createRoomAs(hs, alice, {
      room_version: '11',
      preset: 'public_chat',
      visibility: 'public',
      room_alias_name: 'pub',
      name: 'The Pub',
      topic: 'Happy hour',
      invite: [bob.userId, carol.userId],
      is_direct: true,
      creation_content: { 'm.federate': false, type: 'org.example.kind', creator: '@mallory:elsewhere' },
      initial_state: [
        { type: 'm.room.history_visibility', content: { history_visibility: 'joined' } },
        { type: 'm.room.encryption', state_key: '', content: { algorithm: 'm.megolm.v1.aes-sha2' } },
        { type: 'm.room.name', content: { name: 'overridden by name' } },
      ],
      power_level_content_override: { events_default: 10, users: { [alice.userId]: 100, [bob.userId]: 50 } },
    });
    const events = await timelineOf(hs, roomId);
    expect(events.map((e) => [e.type, e.state_key])).toEqual([
      ['m.room.create', ''],
      ['m.room.member', alice.userId],
      ['m.room.power_levels', ''],
      ['m.room.canonical_alias', ''],
      ['m.room.join_rules', ''],
      ['m.room.guest_access', ''],
      ['m.room.history_visibility', ''],
      ['m.room.encryption', ''],
      ['m.room.name', ''],
      ['m.room.topic', ''],
      ['m.room.member', bob.userId],
      ['m.room.member', carol.userId],
    ]);
    const [create, join, power] = events as [IdentifiedPdu, IdentifiedPdu, IdentifiedPdu];
    // v11: the sender is the creator; the client's `creator` is overwritten away.
    expect(create.content).toEqual({ room_version: '11', 'm.federate': false, type: 'org.example.kind' });
    expect(join.content).toEqual({ membership: 'join', displayname: 'alice' });
    expect(power.content.events_default).toBe(10);
    expect(power.content.users).toEqual({ [alice.userId]: 100, [bob.userId]: 50 });
    expect(power.content.invite).toBe(50);
    expect(await stateContent(hs, roomId, 'm.room.canonical_alias')).toEqual({
      alias: '#pub:test.localhost',
    });
    expect(await stateContent(hs, roomId, 'm.room.join_rules')).toEqual({ join_rule: 'public' });
    expect(await stateContent(hs, roomId, 'm.room.guest_access')).toEqual({ guest_access: 'forbidden' });
    expect(await stateContent(hs, roomId, 'm.room.history_visibility')).toEqual({
      history_visibility: 'joined',
    });
    expect(await stateContent(hs, roomId, 'm.room.name')).toEqual({ name: 'The Pub' });
    expect(await stateContent(hs, roomId, 'm.room.topic')).toEqual({
      topic: 'Happy hour',
      'm.topic': { 'm.text': [{ body: 'Happy hour', mimetype: 'text/plain' }] },
    });
    expect(await stateContent(hs, roomId, 'm.room.member', bob.userId)).toEqual({
      membership: 'invite',
      displayname: 'Bob B',
      avatar_url: 'mxc://x/bob',
      is_direct: true,
    });
    expect((await hs.store.rooms.getAlias('#pub:test.localhost'))?.roomId).toBe(roomId);
    expect((await hs.store.rooms.getRoom(roomId))?.published).toBe(true);
    expect((await hs.store.rooms.membership(roomId, carol.userId))?.membership).toBe('invite');
    await checkLikeARemoteServer(hs, events, '11');
  });

  it.each(['1', '3', '12'])('makes a valid, signed room of version %s', async (versionId) => {
    const t = await roomsTestbed('alice', 'bob');
    hs = t.hs;
    const [alice, bob] = t.users as [(typeof t.users)[0], (typeof t.users)[0]];
    const roomId = await createRoomAs(hs, alice, {
      room_version: versionId,
      preset: 'trusted_private_chat',
      invite: [bob.userId],
      name: 'n',
    });
    const events = await timelineOf(hs, roomId);
    const create = events[0] as IdentifiedPdu;
    const version = getRoomVersion(versionId);
    expect(create.content.room_version).toBe(versionId);
    const power = (await stateContent(hs, roomId, 'm.room.power_levels')) ?? {};
    if (versionId === '12') {
      // v12: room ID from the create event, no room_id on it, invitees of a trusted chat are creators.
      expect(create.room_id).toBeUndefined();
      expect(roomId).toBe(roomIdFromCreateEvent(create, version));
      expect(isValidRoomId(roomId, { format: 'hash' })).toBe(true);
      expect(create.content.additional_creators).toEqual([bob.userId]);
      expect(create.content.creator).toBeUndefined();
      expect(power.users).toEqual({});
      expect((power.events as Record<string, number>)['m.room.tombstone']).toBe(150);
    } else {
      expect(create.room_id).toBe(roomId);
      expect(roomId.endsWith(':test.localhost')).toBe(true);
      expect(create.content.creator).toBe(alice.userId);
      // trusted_private_chat: invitees get the creator's power level.
      expect(power.users).toEqual({ [alice.userId]: 100, [bob.userId]: 100 });
    }
    if (versionId === '1') {
      // v1: server-assigned event IDs and [id, {sha256}] references.
      for (const event of events) expect(event.event_id).toMatch(/^\$[A-Za-z0-9]+:test\.localhost$/);
      expect(Array.isArray(events[1]?.prev_events[0])).toBe(true);
    } else {
      expect(typeof events[1]?.prev_events[0]).toBe('string');
    }
    expect(await stateContent(hs, roomId, 'm.room.join_rules')).toEqual({ join_rule: 'invite' });
    expect(await stateContent(hs, roomId, 'm.room.guest_access')).toEqual({ guest_access: 'can_join' });
    expect(await stateContent(hs, roomId, 'm.room.history_visibility')).toEqual({
      history_visibility: 'shared',
    });
    expect((await hs.store.rooms.getRoom(roomId))?.published).toBe(false);
    await checkLikeARemoteServer(hs, events, versionId);
  });

  it('uses the configured default room version (12) and the private preset without options', async () => {
    const t = await roomsTestbed('alice');
    hs = t.hs;
    const roomId = await createRoomAs(hs, t.users[0] as (typeof t.users)[0]);
    expect((await hs.store.rooms.getRoom(roomId))?.roomVersion).toBe('12');
    expect(await stateContent(hs, roomId, 'm.room.join_rules')).toEqual({ join_rule: 'invite' });
  });
});

describe('v12 room IDs of rooms created in the same millisecond', () => {
  it('gives two identical creations by one user two rooms, one after the other or at once', async () => {
    const hs = await createTestServices({ clock: manualClock() });
    try {
      const alice = await hs.createUser('alice');
      const one = await createRoomAs(hs, alice, { room_version: '12', name: 'One' });
      const two = await createRoomAs(hs, alice, { room_version: '12', name: 'Two' });
      const [three, four] = await Promise.all([
        createRoomAs(hs, alice, { room_version: '12', name: 'Three' }),
        createRoomAs(hs, alice, { room_version: '12', name: 'Four' }),
      ]);
      expect(new Set([one, two, three, four]).size).toBe(4);
      for (const [roomId, name] of [
        [one, 'One'],
        [two, 'Two'],
        [three, 'Three'],
        [four, 'Four'],
      ] as const) {
        expect((await hs.store.rooms.currentStateEvent(roomId, 'm.room.name', ''))?.event.content).toEqual({
          name,
        });
      }
    } finally {
      await hs.close();
    }
  });
});
