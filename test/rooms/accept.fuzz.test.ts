/**
 * Hostile PDUs against the accept step: a valid event of another server with one field
 * removed or replaced by arbitrary JSON, in a v1 and a v12 room. Every answer is an outcome,
 * never an exception; a dropped event leaves the store untouched; whatever is stored is
 * not served unless it was accepted.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getRoomVersion, type JsonValue, type Pdu } from '../../src/core/index.ts';
import {
  member,
  message,
  type RemoteServer,
  remoteEvent,
  remoteServer,
} from '../../src/homeserver/rooms/testing-remote.ts';
import type { Services } from '../../src/homeserver/services.ts';
import { createTestHomeserver, type TestHomeserver } from '../../src/testing.ts';

const FIELDS = [
  'type',
  'sender',
  'room_id',
  'event_id',
  'state_key',
  'content',
  'prev_events',
  'auth_events',
  'depth',
  'origin_server_ts',
  'hashes',
  'signatures',
  'unsigned',
  'redacts',
];

/** Valid values in the wrong place, and JSON of every shape. */
const hostileValue: fc.Arbitrary<JsonValue | undefined> = fc.oneof(
  fc.constant(undefined),
  fc.constantFrom<JsonValue>(
    '',
    '$x:remote.example',
    '!elsewhere:remote.example',
    '@bob:remote.example',
    'm.room.member',
    [],
    [[]],
    ['$nope'],
    {},
    { membership: 'join' },
    { sha256: 'AAAA' },
    -1,
    2 ** 53,
    0.5,
    null,
    'x'.repeat(300),
  ),
  fc.jsonValue({ maxDepth: 3 }) as fc.Arbitrary<JsonValue>,
);

describe.each(['1', '12'])('fuzz: accept in room version %s', (versionId) => {
  let hs: TestHomeserver;
  let services: Services;
  let remote: RemoteServer;
  let roomId: string;
  let valid: Pdu;
  const version = getRoomVersion(versionId);

  beforeAll(async () => {
    remote = await remoteServer();
    hs = await createTestHomeserver({ keyStore: remote.keyStore });
    services = hs.internals;
    const alice = await hs.createUser('alice');
    ({ roomId } = await services.rooms.createRoom(alice.userId, {
      preset: 'public_chat',
      room_version: versionId,
    }));
    const bob = remote.user('bob');
    const join = await remoteEvent(remote, hs.store, version, roomId, member(bob, bob, 'join'));
    expect((await services.rooms.acceptRemote(roomId, [join.wire]))[0]?.status).toBe('accepted');
    valid = (await remoteEvent(remote, hs.store, version, roomId, message(bob, 'base'))).wire;
  });
  afterAll(async () => {
    await hs.close();
  });

  it('answers every mutation with an outcome and serves only accepted events', async () => {
    const statuses = new Map<string, number>();
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.constantFrom(...FIELDS), hostileValue), { minLength: 1, maxLength: 3 }),
        async (mutations) => {
          const pdu: Record<string, unknown> = structuredClone(valid);
          for (const [field, value] of mutations) {
            if (value === undefined) delete pdu[field];
            else pdu[field] = value;
          }
          const before = await hs.store.positions();
          const [outcome] = await services.rooms.acceptRemote(roomId, [pdu as Pdu]);
          expect(outcome).toBeDefined();
          const status = outcome?.status as string;
          statuses.set(status, (statuses.get(status) ?? 0) + 1);
          expect(['accepted', 'soft_failed', 'rejected', 'dropped', 'missing', 'known']).toContain(status);
          if (outcome?.status === 'dropped' || outcome?.status === 'missing') {
            expect(await hs.store.positions()).toEqual(before);
          }
          if (outcome && outcome.status !== 'dropped') {
            const stored = await hs.store.rooms.getEvent(outcome.eventId);
            if (outcome.status === 'rejected' || outcome.status === 'soft_failed')
              expect(stored?.stream).toBeNull();
            if (outcome.status === 'accepted') expect(stored?.stream).not.toBeNull();
          }
        },
      ),
      { numRuns: 120 },
    );
    // Most mutations break the format or a signature; the check above is not vacuous.
    expect(statuses.get('dropped') ?? 0).toBeGreaterThan(0);
  });
});
