/**
 * Deleted devices are announced to the servers sharing a room with their owner, one
 * `m.device_list_update` with `deleted: true` each (server-server-api.md "Device
 * Management"), through the durable outbox: a server that is unreachable when the devices go
 * hears of them when it is back.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { JsonObject } from '../../src/core/canonical-json.ts';
import type { FederatedNetwork, FederatedServer } from '../../src/federation/testing.ts';
import { deliver, fetchingServers, joinLocally } from '../../src/federation/testing-rooms.ts';

let net: FederatedNetwork | undefined;
afterEach(async () => {
  await net?.close();
  net = undefined;
});

const PASSWORD = 'correct horse battery staple';

describe('deleted devices over federation', () => {
  it('announces each deleted device with deleted: true, kept for a server that is away', async () => {
    net = await fetchingServers(['a.test', 'b.test']);
    const a = net.servers['a.test'] as FederatedServer;
    const b = net.servers['b.test'] as FederatedServer;
    const { userId } = await a.services.accounts.createUser({ localpart: 'alice', password: PASSWORD });
    const login = async () => {
      const res = await a.hs.call('POST', '/_matrix/client/v3/login', {
        body: {
          type: 'm.login.password',
          identifier: { type: 'm.id.user', user: 'alice' },
          password: PASSWORD,
        },
      });
      expect(res.status).toBe(200);
      return res.body as { device_id: string; access_token: string };
    };
    const [one, two, three] = [await login(), await login(), await login()];
    const bob = await b.hs.createUser('bob');
    const { roomId } = await a.services.rooms.createRoom(userId, { preset: 'public_chat' });
    await deliver(a, b, roomId);
    await joinLocally(b, roomId, bob.userId);
    await deliver(b, a, roomId);

    // b.test is away while two of Alice's devices go, one by itself and one with its siblings.
    net.network.block('a.test', 'b.test');
    const logout = await a.hs.call('POST', '/_matrix/client/v3/logout', { token: one.access_token });
    expect(logout.status).toBe(200);
    const deleted = await a.hs.call('POST', '/_matrix/client/v3/delete_devices', {
      token: three.access_token,
      body: {
        devices: [two.device_id],
        auth: {
          type: 'm.login.password',
          identifier: { type: 'm.id.user', user: 'alice' },
          password: PASSWORD,
        },
      },
    });
    expect(deleted.status).toBe(200);

    const updates = (await a.hs.store.federation.outbox('b.test', 1000))
      .flatMap((item) => (item.kind === 'edu' ? [item.edu] : []))
      .filter((edu) => edu.edu_type === 'm.device_list_update')
      .map((edu) => edu.content as JsonObject);
    const gone = updates.filter((u) => u.deleted === true);
    expect(gone.map((u) => u.device_id)).toEqual([one.device_id, two.device_id]);
    for (const update of gone) expect(update).toMatchObject({ user_id: userId, deleted: true });
    // Stream IDs keep rising across the updates, each naming the one before.
    const ids = updates.map((u) => u.stream_id as number);
    expect([...ids].sort((x, y) => x - y)).toEqual(ids);
    // The one device left is announced as it is, never as deleted.
    expect(updates.filter((u) => u.device_id === three.device_id).every((u) => u.deleted === false)).toBe(
      true,
    );
  });
});
