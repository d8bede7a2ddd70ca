/**
 * The set-up the federation tests share: Alice on a.test makes a room, Bob on b.test is ready
 * to join it through a.test.
 */
import { expect } from 'vitest';
import type { JsonObject } from '../../src/core/index.ts';
import type { FederatedNetwork } from '../../src/federation/testing.ts';
import type { TestHomeserver, TestUser } from '../../src/testing.ts';

/** A test homeserver of the network by name. */
export function serverIn(network: FederatedNetwork, name: string): TestHomeserver {
  const server = network.servers[name];
  if (!server) throw new Error(`no server ${name}`);
  return server.hs;
}

/**
 * Alice of a.test, Bob of b.test, and a room Alice made on a.test with `room` as the
 * `createRoom` body (default: a public chat), or made from the two users (to invite Bob).
 */
export async function aliceRoom(
  network: FederatedNetwork,
  room: JsonObject | ((users: { alice: TestUser; bob: TestUser }) => JsonObject) = { preset: 'public_chat' },
) {
  const a = serverIn(network, 'a.test');
  const b = serverIn(network, 'b.test');
  const alice = await a.createUser('alice');
  const bob = await b.createUser('bob');
  const created = await a.call('POST', '/_matrix/client/v3/createRoom', {
    token: alice.accessToken,
    body: typeof room === 'function' ? room({ alice, bob }) : room,
  });
  expect(created.status).toBe(200);
  return { a, b, alice, bob, roomId: created.body.room_id as string };
}

/** `user` of `server` joins `roomId` through `via` (`POST /join/{roomId}?via=`). */
export function joinVia(server: TestHomeserver, user: TestUser, roomId: string, via = 'a.test') {
  return server.call('POST', `/_matrix/client/v3/join/${encodeURIComponent(roomId)}?via=${via}`, {
    token: user.accessToken,
    body: {},
  });
}
