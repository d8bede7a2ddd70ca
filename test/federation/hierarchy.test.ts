/**
 * The space hierarchy across servers: a space on A names a room only B holds; A's client
 * `/hierarchy` and `/room_summary` ask B's federation `/hierarchy/{roomId}` (the child's `via`),
 * and B answers only what A may see.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createFederatedServers, type FederatedNetwork } from '../../src/federation/testing.ts';
import type { TestHomeserver } from '../../src/testing.ts';

let net: FederatedNetwork | undefined;
afterEach(async () => {
  await net?.close();
  net = undefined;
});

const server = (name: string): TestHomeserver => {
  const found = net?.servers[name];
  if (!found) throw new Error(`no server ${name}`);
  return found.hs;
};

describe('space hierarchy over federation', () => {
  it('describes a child room held only by another server, through its via', async () => {
    net = await createFederatedServers(['a.test', 'b.test']);
    const a = server('a.test');
    const b = server('b.test');
    const alice = await a.createUser('alice');
    const bob = await b.createUser('bob');
    const { roomId: space } = await a.internals.rooms.createRoom(alice.userId, {
      preset: 'public_chat',
      name: 'Space on A',
      creation_content: { type: 'm.space' },
    });
    const { roomId: remote } = await b.internals.rooms.createRoom(bob.userId, {
      preset: 'public_chat',
      name: 'Room on B',
      topic: 'only B holds it',
    });
    const { roomId: secret } = await b.internals.rooms.createRoom(bob.userId, {
      preset: 'private_chat',
      name: 'Hidden',
    });
    for (const child of [remote, secret])
      await a.internals.rooms.setState(alice.userId, space, 'm.space.child', child, { via: ['b.test'] });

    const res = await a.call('GET', `/_matrix/client/v1/rooms/${encodeURIComponent(space)}/hierarchy`, {
      token: alice.accessToken,
    });
    expect(res.status).toBe(200);
    const rooms = res.body.rooms as {
      room_id: string;
      name?: string;
      topic?: string;
      num_joined_members: number;
    }[];
    expect(rooms.map((r) => r.room_id)).toEqual([space, remote]); // B does not describe its private room to A
    expect(rooms[1]).toMatchObject({ name: 'Room on B', topic: 'only B holds it', num_joined_members: 1 });
    expect(await a.store.rooms.getRoom(remote)).toBeNull(); // described, not joined

    const summary = await a.call(
      'GET',
      `/_matrix/client/v1/room_summary/${encodeURIComponent(remote)}?via=b.test`,
      { token: alice.accessToken },
    );
    expect(summary.status).toBe(200);
    expect(summary.body).toMatchObject({ room_id: remote, name: 'Room on B', join_rule: 'public' });
    const hidden = await a.call(
      'GET',
      `/_matrix/client/v1/room_summary/${encodeURIComponent(secret)}?via=b.test`,
      {
        token: alice.accessToken,
      },
    );
    expect(hidden.status).toBe(404);
  });
});
