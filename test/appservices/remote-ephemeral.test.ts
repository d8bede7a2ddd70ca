/**
 * What reaches a bridge from other servers and from to-device messaging (MSC2409): the
 * presence of a remote user sharing a room with the bridge's users arrives as an `m.presence`
 * ephemeral event, and to-device messages for the bridge's users — sent over federation or by
 * a local user — arrive under `de.sorunome.msc2409.to_device`, each naming its user and device.
 * A registration that does not ask for ephemeral events gets none of these.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { JsonObject } from '../../src/core/canonical-json.ts';
import { parseJson } from '../../src/core/json.ts';
import type { FederatedNetwork, FederatedServer } from '../../src/federation/testing.ts';
import { deliver, fetchingServers, joinLocally } from '../../src/federation/testing-rooms.ts';
import { parseRegistration } from '../../src/homeserver/appservices/registration.ts';

let net: FederatedNetwork | undefined;
afterEach(async () => {
  await net?.close();
  net = undefined;
});

const registration = (id: string, ephemeral: boolean) =>
  parseRegistration({
    id,
    url: `http://${id}.invalid`,
    as_token: `${id}-as`,
    hs_token: `${id}-hs`,
    sender_localpart: `${id}bot`,
    namespaces: { users: [{ exclusive: true, regex: `@${id}_.*:b\\.test` }] },
    ...(ephemeral ? { 'de.sorunome.msc2409.push_ephemeral': true } : {}),
  });

describe('application services and what comes from elsewhere', () => {
  it("pushes a remote user's presence and its users' to-device messages, local or remote", async () => {
    const bodies: { host: string; body: JsonObject }[] = [];
    net = await fetchingServers(['a.test', 'b.test'], undefined, {
      appservices: [registration('irc', true), registration('quiet', false)],
      outboundFetch: async (request) => {
        const url = new URL(request.url);
        if (url.pathname.startsWith('/_matrix/app/v1/transactions/'))
          bodies.push({ host: url.hostname, body: parseJson(await request.text()) as JsonObject });
        return Response.json({});
      },
    });
    const a = net.servers['a.test'] as FederatedServer;
    const b = net.servers['b.test'] as FederatedServer;
    for (const server of [a, b]) server.services.appservices.stop(); // driven by hand below
    const alice = await a.hs.createUser('alice');
    const bob = await b.hs.createUser('bob');
    const register = async (token: string, username: string) => {
      const res = await b.hs.call('POST', '/_matrix/client/v3/register', {
        token,
        body: { type: 'm.login.application_service', username },
      });
      expect(res.status).toBe(200);
      return res.body as { user_id: string; device_id: string };
    };
    const ircUser = await register('irc-as', 'irc_carol');
    const quietUser = await register('quiet-as', 'quiet_dan');
    const { roomId } = await a.services.rooms.createRoom(alice.userId, { preset: 'public_chat' });
    await deliver(a, b, roomId);
    for (const user of [ircUser.user_id, quietUser.user_id, bob.userId]) await joinLocally(b, roomId, user);
    await b.services.appservices.follow(); // the follower starts at the present

    await b.services.transactions.receive('a.test', 'p1', {
      edus: [
        {
          edu_type: 'm.presence',
          content: {
            push: [{ user_id: alice.userId, presence: 'online', status_msg: 'hello', last_active_ago: 5 }],
          },
        },
        {
          edu_type: 'm.direct_to_device',
          content: {
            sender: alice.userId,
            type: 'm.room_key_request',
            message_id: 'm1',
            messages: {
              [ircUser.user_id]: { '*': { from: 'far' } },
              [quietUser.user_id]: { [quietUser.device_id]: { from: 'far' } },
            },
          },
        },
      ],
    });
    const sent = await b.hs.call('PUT', `/_matrix/client/v3/sendToDevice/m.test/t1`, {
      token: bob.accessToken,
      body: { messages: { [ircUser.user_id]: { [ircUser.device_id]: { from: 'near' } } } },
    });
    expect(sent.status).toBe(200);
    await b.services.appservices.follow();
    await b.services.appservices.deliver();

    const irc = bodies.filter((r) => r.host === 'irc.invalid').map((r) => r.body);
    const ephemeral = irc.flatMap((body) => (body['de.sorunome.msc2409.ephemeral'] as JsonObject[]) ?? []);
    expect(ephemeral.filter((e) => e.type === 'm.presence')).toEqual([
      {
        type: 'm.presence',
        sender: alice.userId,
        content: expect.objectContaining({ presence: 'online', status_msg: 'hello' }),
      },
    ]);
    expect(irc.flatMap((body) => (body['de.sorunome.msc2409.to_device'] as JsonObject[]) ?? [])).toEqual([
      {
        type: 'm.room_key_request',
        sender: alice.userId,
        content: { from: 'far' },
        to_user_id: ircUser.user_id,
        to_device_id: ircUser.device_id,
      },
      {
        type: 'm.test',
        sender: bob.userId,
        content: { from: 'near' },
        to_user_id: ircUser.user_id,
        to_device_id: ircUser.device_id,
      },
    ]);
    // The service that did not ask gets neither.
    for (const { body } of bodies.filter((r) => r.host === 'quiet.invalid')) {
      expect(body['de.sorunome.msc2409.ephemeral']).toBeUndefined();
      expect(body['de.sorunome.msc2409.to_device']).toBeUndefined();
    }
  });
});
