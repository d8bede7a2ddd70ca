/**
 * Hostile input to every room, membership and directory endpoint through the whole homeserver
 * (`hs.fetch`): each answer must be a well-formed Matrix response, never a 500 or a logged error.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createTestHomeserver } from '../../testing.ts';
import { fullPaths } from '../endpoint.ts';
import { checkMatrixResponse, fillTemplate, hostileBody } from '../testing-fuzz.ts';
import { roomsEndpoints } from './rooms.ts';

/** Bodies built from the fields these endpoints read, with random JSON values. */
const roomBody = fc
  .dictionary(
    fc.constantFrom(
      'visibility',
      'room_alias_name',
      'name',
      'topic',
      'invite',
      'invite_3pid',
      'room_version',
      'creation_content',
      'initial_state',
      'preset',
      'is_direct',
      'power_level_content_override',
      'user_id',
      'reason',
      'room_id',
      'membership',
      'filter',
      'limit',
      'since',
      'third_party_signed',
      'medium',
      'address',
      'id_server',
      'id_access_token',
    ),
    fc.oneof(
      fc.jsonValue({ maxDepth: 3 }),
      fc.constantFrom(
        '@alice:fuzz.localhost',
        '@x:elsewhere',
        '!r:fuzz.localhost',
        '#a:fuzz.localhost',
        '1',
        '12',
        'public_chat',
      ),
      fc.constant([
        { type: 'm.room.name', content: { name: 1 } },
        { type: 'm.room.member', state_key: 'x', content: {} },
      ]),
    ),
  )
  .map((o) => JSON.stringify(o));

describe('fuzz: room endpoints never fail on client input', () => {
  it('every endpoint, with hostile paths and bodies', async () => {
    const errors: string[] = [];
    const logger = {
      debug() {},
      info() {},
      warn() {},
      error: (message: string, fields?: Record<string, unknown>) =>
        errors.push(`${message} ${JSON.stringify(fields)}`),
    };
    // A clock that moves a second per reading keeps the rate limiter out of the way.
    let now = Date.now();
    const hs = await createTestHomeserver({
      serverName: 'fuzz.localhost',
      logger,
      clock: { now: () => (now += 1000) },
    });
    const services = hs.internals;
    const alice = await hs.createUser('alice');
    const { roomId } = await services.rooms.createRoom(alice.userId, {
      preset: 'public_chat',
      room_alias_name: 'a',
    });
    const { eventId } = await services.rooms.sendEvent({
      sender: alice.userId,
      roomId,
      type: 'm.room.message',
      content: {},
    });
    const values = [
      roomId,
      '!unknown:fuzz.localhost',
      '#a:fuzz.localhost',
      eventId,
      'm.room.name',
      '',
      '%',
      '@alice:fuzz.localhost',
      'x'.repeat(300),
    ];
    const bodies = [
      ...fc.sample(hostileBody, { numRuns: 15, seed: 7 }),
      ...fc.sample(roomBody, { numRuns: 25, seed: 8 }),
    ];
    const seen = new Map<string, number>();
    let requests = 0;
    let i = 0;
    for (const e of roomsEndpoints(services)) {
      for (const template of fullPaths(e)) {
        for (const body of e.method === 'GET' || e.method === 'DELETE' ? [undefined] : bodies) {
          const path = fillTemplate(template, () => values[i++ % values.length] as string);
          const res = await hs.fetch(
            new Request(`http://fuzz.localhost${path}`, {
              method: e.method,
              headers: { Authorization: `Bearer ${alice.accessToken}` },
              body: body ?? null,
            }),
          );
          const { status, body: answer } = await checkMatrixResponse(res, `${e.method} ${path}`);
          const key = `${status} ${String(answer?.errcode ?? '')}`;
          seen.set(key, (seen.get(key) ?? 0) + 1);
          requests++;
        }
      }
    }
    // The requests reach the handlers: successes and their own refusals, not only router errors.
    for (const key of ['200 ', '400 M_BAD_JSON', '403 M_FORBIDDEN', '404 M_NOT_FOUND']) {
      expect(seen.get(key) ?? 0, key).toBeGreaterThan(5);
    }
    expect(seen.get('429 M_LIMIT_EXCEEDED')).toBeUndefined();
    expect(requests).toBeGreaterThan(500);
    expect(errors).toEqual([]);
    await hs.close();
  }, 120_000);
});
