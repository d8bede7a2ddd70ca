/**
 * Restricted rooms across servers (server-server-api.md "Restricted rooms"): a user of b.test
 * joins a room of a.test open to the members of a space only once they are in the space; a.test
 * names one of its members in `join_authorised_via_users_server` at make_join and signs the
 * join at send_join; the spec's refusals otherwise (403, M_UNABLE_TO_AUTHORISE_JOIN,
 * M_UNABLE_TO_GRANT_JOIN), passed on to the client.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createFederatedServers, type FederatedNetwork } from '../../src/federation/testing.ts';
import type { TestHomeserver } from '../../src/testing.ts';

let net: FederatedNetwork | undefined;
afterEach(async () => {
  await net?.close();
  net = undefined;
});

const enc = encodeURIComponent;

async function createRoom(hs: TestHomeserver, token: string, body: Record<string, unknown>) {
  const created = await hs.call('POST', '/_matrix/client/v3/createRoom', { token, body });
  expect(created.status).toBe(200);
  return created.body.room_id as string;
}

const restrictedTo = (roomId: string, extra: Record<string, unknown>[] = []) => ({
  room_version: '10',
  preset: 'private_chat',
  initial_state: [
    {
      type: 'm.room.join_rules',
      state_key: '',
      content: { join_rule: 'restricted', allow: [{ type: 'm.room_membership', room_id: roomId }] },
    },
    ...extra,
  ],
});

describe('restricted rooms over federation', () => {
  it('admits a remote member of the space only, with the resident naming and signing the join', async () => {
    net = await createFederatedServers(['a.test', 'b.test']);
    const a = net.servers['a.test']?.hs as TestHomeserver;
    const b = net.servers['b.test']?.hs as TestHomeserver;
    const alice = await a.createUser('alice');
    const bob = await b.createUser('bob');
    const space = await createRoom(a, alice.accessToken, { preset: 'public_chat', room_version: '10' });
    const roomId = await createRoom(a, alice.accessToken, restrictedTo(space));
    const join = (room: string) =>
      b.call('POST', `/_matrix/client/v3/join/${enc(room)}?via=a.test`, { token: bob.accessToken, body: {} });

    const refused = await join(roomId);
    expect([refused.status, refused.body.errcode]).toEqual([403, 'M_FORBIDDEN']);
    expect(await b.store.rooms.membership(roomId, bob.userId)).toBeNull();

    expect((await join(space)).status).toBe(200);
    const joined = await join(roomId);
    expect(joined.body).toEqual({ room_id: roomId });
    const row = await a.store.rooms.membership(roomId, bob.userId);
    expect(row?.membership).toBe('join');
    const stored = await a.store.rooms.getEvent(row?.eventId as string);
    expect(stored?.event.content.join_authorised_via_users_server).toBe(alice.userId);
    expect(Object.keys(stored?.event.signatures ?? {}).sort()).toEqual(['a.test', 'b.test']);
    // b.test keeps the join as a.test signed it.
    const onB = await b.store.rooms.getEvent(row?.eventId as string);
    expect(Object.keys(onB?.event.signatures ?? {}).sort()).toEqual(['a.test', 'b.test']);
  });

  it('answers M_UNABLE_TO_AUTHORISE_JOIN and M_UNABLE_TO_GRANT_JOIN when it cannot decide or sign', async () => {
    net = await createFederatedServers(['a.test', 'b.test']);
    const a = net.servers['a.test']?.hs as TestHomeserver;
    const b = net.servers['b.test']?.hs as TestHomeserver;
    const alice = await a.createUser('alice');
    const bob = await b.createUser('bob');
    const unknownTo = await createRoom(a, alice.accessToken, restrictedTo('!elsewhere:c.test'));
    const space = await createRoom(a, alice.accessToken, { preset: 'public_chat', room_version: '10' });
    // Nobody may invite: nobody can authorise a join.
    const noInviter = await createRoom(a, alice.accessToken, restrictedTo(space));
    const demoted = await a.call(
      'PUT',
      `/_matrix/client/v3/rooms/${enc(noInviter)}/state/m.room.power_levels/`,
      {
        token: alice.accessToken,
        body: { invite: 100, users: { [alice.userId]: 50 } },
      },
    );
    expect(demoted.status).toBe(200);
    const join = (room: string) =>
      b.call('POST', `/_matrix/client/v3/join/${enc(room)}?via=a.test`, { token: bob.accessToken, body: {} });
    const unable = await join(unknownTo);
    expect([unable.status, unable.body.errcode]).toEqual([400, 'M_UNABLE_TO_AUTHORISE_JOIN']);
    expect((await join(space)).status).toBe(200);
    const cannotGrant = await join(noInviter);
    expect([cannotGrant.status, cannotGrant.body.errcode]).toEqual([400, 'M_UNABLE_TO_GRANT_JOIN']);
    expect(await b.store.rooms.membership(noInviter, bob.userId)).toBeNull();
  });
});
