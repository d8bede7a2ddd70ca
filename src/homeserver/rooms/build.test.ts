/**
 * buildEvent against the core: whatever shortcuts building takes, its events carry the ID
 * `computeEventId` gives, a content hash that checks and a signature `verifyEvent` accepts,
 * in every room version.
 */
import { describe, expect, it } from 'vitest';
import {
  checkContentHash,
  computeEventId,
  getRoomVersion,
  type IdentifiedPdu,
  roomVersions,
  signingKeyFromSeed,
  stateKey,
  toWirePdu,
  verifyEvent,
} from '../../core/index.ts';
import { webRandom } from '../context.ts';
import { buildEvent } from './build.ts';

describe.each(Object.keys(roomVersions))('buildEvent in room version %s', (versionId) => {
  it('makes events whose ID, hash and signature the core confirms', async () => {
    const version = getRoomVersion(versionId);
    const key = await signingKeyFromSeed(webRandom.bytes(32), 'b1');
    const tools = { serverName: 'build.example', signingKey: key, now: 1_700_000_000_000, random: webRandom };
    const alice = '@alice:build.example';
    const create = await buildEvent(
      {
        sender: alice,
        type: 'm.room.create',
        stateKey: '',
        content: { room_version: versionId, creator: alice },
      },
      {
        version,
        roomId: version.roomIdFromCreateEvent ? undefined : '!r:build.example',
        prevEvents: [],
        state: new Map(),
      },
      tools,
    );
    const roomId = version.roomIdFromCreateEvent ? `!${create.event_id.slice(1)}` : '!r:build.example';
    const state = new Map([[stateKey('m.room.create', ''), create]]);
    const join = await buildEvent(
      { sender: alice, type: 'm.room.member', stateKey: alice, content: { membership: 'join' } },
      { version, roomId, prevEvents: [create], state },
      tools,
    );
    const message = await buildEvent(
      { sender: alice, type: 'm.room.message', content: { body: 'hi', msgtype: 'm.text' } },
      // From v3 a prev event needs only its ID and depth.
      {
        version,
        roomId,
        prevEvents:
          version.eventIdFormat === 'server' ? [join] : [{ event_id: join.event_id, depth: join.depth }],
        state: new Map([...state, [stateKey('m.room.member', alice), join]]),
      },
      tools,
    );
    for (const event of [create, join, message] as IdentifiedPdu[]) {
      expect(event.event_id).toBe(computeEventId(toWirePdu(event, version), version));
      expect(checkContentHash(event, version)).toBe(true);
      const verified = await verifyEvent(toWirePdu(event, version), version, (server) =>
        server === 'build.example' ? { [key.keyId]: key.publicKey } : undefined,
      );
      expect(verified.redacted).toBe(false);
    }
    expect(message.prev_events.length).toBe(1);
    expect(message.depth).toBe(join.depth + 1);
  });
});
