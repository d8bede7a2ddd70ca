/**
 * Properties of the authorization rules that hold for all inputs, checked with fast-check,
 * and the behaviour of `checkAuth`'s options and its never-throw contract.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { authStateOf, checkAuth, checkAuthEventsShape } from './auth.ts';
import type { JsonObject } from './canonical-json.ts';
import type { IdentifiedPdu } from './pdu.ts';
import { type RoomVersion, roomVersions } from './room-versions.ts';

const versions = Object.values(roomVersions);
const ALICE = '@alice:a.example';
const BOB = '@bob:b.example';
const CAROL = '@carol:c.example';

let counter = 0;
function pdu(
  version: RoomVersion,
  fields: { type: string; sender: string; state_key?: string; content?: JsonObject; prev?: string[] },
): IdentifiedPdu {
  const name = `e${++counter}`;
  const event: IdentifiedPdu = {
    event_id: version.eventIdFormat === 'server' ? `$${name}:a.example` : `$${name}`,
    room_id: version.roomIdFromCreateEvent ? '!create' : '!room:a.example',
    sender: fields.sender,
    origin_server_ts: 0,
    type: fields.type,
    content: fields.content ?? {},
    prev_events: fields.prev ?? [],
    auth_events: [],
    depth: 1,
    hashes: { sha256: '' },
    signatures: {},
  };
  if (fields.state_key !== undefined) event.state_key = fields.state_key;
  return event;
}

/** A room: alice created it; alice, bob and carol are joined; power levels from `users`. */
function room(version: RoomVersion, users: Record<string, number>, extra: JsonObject = {}) {
  const create = pdu(version, {
    type: 'm.room.create',
    sender: ALICE,
    state_key: '',
    content: { creator: ALICE },
  });
  if (version.roomIdFromCreateEvent) {
    delete create.room_id;
    create.event_id = '$create';
  }
  const member = (user: string) =>
    pdu(version, { type: 'm.room.member', sender: user, state_key: user, content: { membership: 'join' } });
  const powerLevels = pdu(version, {
    type: 'm.room.power_levels',
    sender: ALICE,
    state_key: '',
    content: { users, state_default: 0, ...extra },
  });
  return authStateOf([create, member(ALICE), member(BOB), member(CAROL), powerLevels]);
}

const level = fc.integer({ min: -1000, max: 1000 });
const anyVersion = fc.constantFrom(...versions);

describe('power level changes (property)', () => {
  it('no one raises their own level above their current level', () => {
    fc.assert(
      fc.property(
        anyVersion,
        fc.integer({ min: 0, max: 1000 }),
        fc.integer({ min: 1, max: 1000 }),
        (version, own, raise) => {
          const state = room(version, { [BOB]: own });
          const event = pdu(version, {
            type: 'm.room.power_levels',
            sender: BOB,
            state_key: '',
            content: { users: { [BOB]: own + raise }, state_default: 0 },
          });
          const result = checkAuth(event, state, version);
          return !result.ok && result.reason.includes(`cannot set ${BOB}`);
        },
      ),
    );
  });

  it('anyone may lower their own level (and nothing else changes)', () => {
    fc.assert(
      fc.property(anyVersion, level, fc.integer({ min: 0, max: 1000 }), (version, own, drop) => {
        const state = room(version, { [BOB]: own });
        const event = pdu(version, {
          type: 'm.room.power_levels',
          sender: BOB,
          state_key: '',
          content: { users: { [BOB]: own - drop }, state_default: 0 },
        });
        return checkAuth(event, state, version).ok === own >= 0;
      }),
    );
  });

  it('no one changes the level of another user at or above their own', () => {
    fc.assert(
      fc.property(anyVersion, level, fc.integer({ min: 0, max: 500 }), level, (version, own, above, to) => {
        const other = own + above;
        fc.pre(to !== other);
        const state = room(version, { [BOB]: own, [CAROL]: other });
        const event = pdu(version, {
          type: 'm.room.power_levels',
          sender: BOB,
          state_key: '',
          content: { users: { [BOB]: own, [CAROL]: to }, state_default: 0 },
        });
        return !checkAuth(event, state, version).ok;
      }),
    );
  });
});

describe('kicks and bans (property)', () => {
  it('no one kicks or bans a user at or above their own level', () => {
    fc.assert(
      fc.property(
        anyVersion,
        level,
        fc.integer({ min: 0, max: 500 }),
        fc.constantFrom('leave', 'ban'),
        (version, own, above, membership) => {
          const state = room(version, { [BOB]: own, [CAROL]: own + above }, { kick: -1000, ban: -1000 });
          const event = pdu(version, {
            type: 'm.room.member',
            sender: BOB,
            state_key: CAROL,
            content: { membership },
          });
          return !checkAuth(event, state, version).ok;
        },
      ),
    );
  });

  it('a user above the target and at the kick/ban level may kick and ban', () => {
    fc.assert(
      fc.property(
        anyVersion,
        level,
        fc.integer({ min: 1, max: 500 }),
        fc.constantFrom('leave', 'ban'),
        (version, target, above, membership) => {
          const state = room(
            version,
            { [BOB]: target + above, [CAROL]: target },
            { kick: target, ban: target },
          );
          const event = pdu(version, {
            type: 'm.room.member',
            sender: BOB,
            state_key: CAROL,
            content: { membership },
          });
          return checkAuth(event, state, version).ok;
        },
      ),
    );
  });
});

describe('never throws', () => {
  const types = fc.constantFrom(
    'm.room.create',
    'm.room.member',
    'm.room.power_levels',
    'm.room.join_rules',
    'm.room.third_party_invite',
    'm.room.redaction',
    'm.room.aliases',
    'm.room.message',
  );
  const json = fc.jsonValue({ maxDepth: 3 }) as fc.Arbitrary<unknown>;
  const maybeContent = fc.oneof(
    fc.dictionary(
      fc.constantFrom(
        'membership',
        'users',
        'events',
        'ban',
        'third_party_invite',
        'join_rule',
        'creator',
        'additional_creators',
        'redacts',
        'join_authorised_via_users_server',
        'notifications',
        'm.federate',
      ),
      json,
    ),
    json,
  );
  const user = fc.constantFrom(ALICE, BOB, CAROL, 'not-a-user', '');
  const stateKeyArb = fc.oneof(fc.constant(undefined), fc.constant(''), user, json);
  const malformedEvent = fc.record({
    type: fc.oneof(types, json),
    sender: fc.oneof(user, json),
    state_key: stateKeyArb,
    content: maybeContent,
    prev_events: fc.oneof(fc.constant([]), json),
    auth_events: fc.oneof(fc.constant([]), json),
    room_id: fc.oneof(fc.constant('!room:a.example'), json),
    redacts: json,
    signatures: json,
  });

  it('checkAuth and checkAuthEventsShape return a result for arbitrary events and auth state', () => {
    fc.assert(
      fc.property(
        anyVersion,
        malformedEvent,
        fc.array(malformedEvent, { maxLength: 6 }),
        (version, raw, rawState) => {
          const event = { event_id: '$checked', ...raw } as unknown as IdentifiedPdu;
          const authEvents = rawState.map(
            (e, i) => ({ event_id: `$s${i}`, ...e }) as unknown as IdentifiedPdu,
          );
          const state = authStateOf(authEvents);
          const result = checkAuth(event, state, version);
          const shape = checkAuthEventsShape(event, authEvents, version);
          return (
            typeof result.ok === 'boolean' &&
            (result.ok || typeof result.reason === 'string') &&
            typeof shape.ok === 'boolean'
          );
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('turns a throwing callback into a rejection', () => {
    const version = roomVersions['12'] as RoomVersion;
    const state = room(version, {}, { kick: 0 });
    const event = pdu(version, {
      type: 'm.room.member',
      sender: CAROL,
      state_key: CAROL,
      content: { membership: 'join', join_authorised_via_users_server: ALICE },
    });
    const result = checkAuth(event, state, version, {
      isSignedBy: () => {
        throw new Error('boom');
      },
    });
    expect(result).toEqual({ ok: false, reason: 'authorization failed unexpectedly: boom' });
  });
});

describe('options', () => {
  const version = roomVersions['10'] as RoomVersion;
  const thirdPartyInvite = pdu(version, {
    type: 'm.room.third_party_invite',
    sender: ALICE,
    state_key: 'tok',
    content: { public_key: 'not a key' },
  });
  const invite = pdu(version, {
    type: 'm.room.member',
    sender: ALICE,
    state_key: '@grace:g.example',
    content: {
      membership: 'invite',
      third_party_invite: {
        signed: {
          mxid: '@grace:g.example',
          token: 'tok',
          signatures: { 'id.example': { 'ed25519:0': 'AAAA' } },
        },
      },
    },
  });
  const state = new Map(room(version, { [ALICE]: 100 }));
  for (const [key, event] of authStateOf([thirdPartyInvite])) state.set(key, event);

  it('verifyThirdPartyInviteSignature decides the signature part of a third-party invite', () => {
    expect(checkAuth(invite, state, version).ok).toBe(false);
    const seen: Array<[string, string]> = [];
    const result = checkAuth(invite, state, version, {
      verifyThirdPartyInviteSignature: (event, tpi) => {
        seen.push([event.event_id, tpi.event_id]);
        return true;
      },
    });
    expect(result).toEqual({ ok: true });
    expect(seen).toEqual([[invite.event_id, thirdPartyInvite.event_id]]);
  });

  it('isSignedBy decides the join_authorised_via_users_server signature', () => {
    const v10 = roomVersions['10'] as RoomVersion;
    const joinRules = pdu(v10, {
      type: 'm.room.join_rules',
      sender: ALICE,
      state_key: '',
      content: { join_rule: 'restricted' },
    });
    const restricted = new Map(room(v10, { [ALICE]: 100 }));
    for (const [key, event] of authStateOf([joinRules])) restricted.set(key, event);
    const join = pdu(v10, {
      type: 'm.room.member',
      sender: '@dave:d.example',
      state_key: '@dave:d.example',
      content: { membership: 'join', join_authorised_via_users_server: ALICE },
    });
    const asked: string[] = [];
    const signedBy = (answer: boolean) => (_event: IdentifiedPdu, server: string) => {
      asked.push(server);
      return answer;
    };
    expect(checkAuth(join, restricted, v10, { isSignedBy: signedBy(true) })).toEqual({ ok: true });
    expect(checkAuth(join, restricted, v10, { isSignedBy: signedBy(false) }).ok).toBe(false);
    expect(asked).toEqual(['a.example', 'a.example']);
  });
});

describe('authStateOf', () => {
  it('keys state events by (type, state_key), later ones winning, and skips non-state events', () => {
    const version = roomVersions['1'] as RoomVersion;
    const a = pdu(version, { type: 'm.room.topic', sender: ALICE, state_key: '' });
    const b = pdu(version, { type: 'm.room.topic', sender: ALICE, state_key: '' });
    const message = pdu(version, { type: 'm.room.message', sender: ALICE });
    const state = authStateOf([a, message, b]);
    expect([...state.values()]).toEqual([b]);
  });
});

describe('checkAuthEventsShape on malformed lists', () => {
  it('rejects auth_events that are not a list or hold malformed references', () => {
    const version = roomVersions['1'] as RoomVersion;
    const event = pdu(version, { type: 'm.room.message', sender: ALICE });
    expect(checkAuthEventsShape({ ...event, auth_events: 'x' as never }, [], version)).toEqual({
      ok: false,
      reason: '`auth_events` is not a list',
    });
    expect(checkAuthEventsShape({ ...event, auth_events: [null as never] }, [], version).ok).toBe(false);
    expect(checkAuthEventsShape({ ...event, auth_events: [[5 as never, {}]] }, [], version).ok).toBe(false);
  });
});
