/**
 * matrix-js-sdk, unmodified, on three homeservers federating in one process (the in-memory
 * network of src/federation/testing.ts): a room on A, a user of B invited who accepts — a
 * join over federation — messages both ways, typing and receipts across servers, a leave and
 * a rejoin, and a user of C joining by alias.
 */
import { EventType, type MatrixClient, type MatrixEvent, type Room } from 'matrix-js-sdk';
import { afterEach, describe, expect, it } from 'vitest';
import { createFederatedServers, type FederatedNetwork } from '../../src/federation/testing.ts';
import type { TestHomeserver } from '../../src/testing.ts';
import { startClient, until } from './js-sdk-scenario.ts';

let net: FederatedNetwork | undefined;
const clients: MatrixClient[] = [];
afterEach(async () => {
  for (const client of clients.splice(0)) client.stopClient();
  await net?.close();
  net = undefined;
});

function hs(network: FederatedNetwork, name: string): TestHomeserver {
  const server = network.servers[name];
  if (!server) throw new Error(`no server ${name}`);
  return server.hs;
}

async function clientOn(server: TestHomeserver, localpart: string): Promise<MatrixClient> {
  const user = await server.createUser(localpart);
  const fetchFn = ((input: RequestInfo | URL, init?: RequestInit) =>
    server.fetch(new Request(input, init))) as typeof fetch;
  const client = await startClient(
    { baseUrl: `http://${server.serverName}`, fetchFn },
    { userId: user.userId, accessToken: user.accessToken, deviceId: user.deviceId },
  );
  clients.push(client);
  return client;
}

const bodies = (room: Room | null): string[] =>
  (room?.getLiveTimeline().getEvents() ?? [])
    .filter((e: MatrixEvent) => e.getType() === EventType.RoomMessage)
    .map((e: MatrixEvent) => e.getContent().body as string);

describe('matrix-js-sdk on three federating homeservers', () => {
  it('invite, join over federation, chat, typing, receipts, leave and rejoin, join by alias', async () => {
    net = await createFederatedServers(['a.test', 'b.test', 'c.test']);
    const alice = await clientOn(hs(net, 'a.test'), 'alice');
    const bob = await clientOn(hs(net, 'b.test'), 'bob');
    const carol = await clientOn(hs(net, 'c.test'), 'carol');
    const all = [alice, bob, carol];
    const aliceId = alice.getUserId() as string;
    const bobId = bob.getUserId() as string;

    const { room_id: roomId } = await alice.createRoom({
      name: 'Across servers',
      preset: 'public_chat' as never,
      room_alias_name: 'across',
      invite: [bobId],
    });
    await until(all, () => bob.getRoom(roomId)?.getMyMembership() === 'invite', 'Bob to see the invite');
    expect(bob.getRoom(roomId)?.name).toBe('Across servers');
    await bob.joinRoom(roomId);
    await until(all, () => bob.getRoom(roomId)?.getMyMembership() === 'join', 'Bob to be joined');
    await until(
      all,
      () => alice.getRoom(roomId)?.getMember(bobId)?.membership === 'join',
      'Alice to see Bob join',
    );
    expect(bob.getRoom(roomId)?.getMember(aliceId)?.membership).toBe('join');

    await alice.sendTextMessage(roomId, 'hello from A');
    await until(all, () => bodies(bob.getRoom(roomId)).includes('hello from A'), 'Bob to hear Alice');
    const { event_id: bobsEvent } = await bob.sendTextMessage(roomId, 'hello from B');
    await until(all, () => bodies(alice.getRoom(roomId)).includes('hello from B'), 'Alice to hear Bob');

    await alice.sendTyping(roomId, true, 20_000);
    await until(
      all,
      () => bob.getRoom(roomId)?.getMember(aliceId)?.typing === true,
      'Bob to see Alice typing',
    );
    await alice.sendTyping(roomId, false, 0);
    await until(
      all,
      () => bob.getRoom(roomId)?.getMember(aliceId)?.typing === false,
      'Bob to see Alice stop',
    );

    const seen = alice.getRoom(roomId)?.findEventById(bobsEvent);
    if (!seen) throw new Error("Alice lacks Bob's event");
    await alice.sendReadReceipt(seen);
    await until(
      all,
      () => bob.getRoom(roomId)?.getEventReadUpTo(aliceId) === bobsEvent,
      "Bob to see Alice's read receipt",
    );

    // Bob leaves, then comes back through A.
    await bob.leave(roomId);
    await until(
      all,
      () => alice.getRoom(roomId)?.getMember(bobId)?.membership === 'leave',
      'Alice to see Bob leave',
    );
    await alice.sendTextMessage(roomId, 'while Bob was away');
    await bob.joinRoom(roomId, { viaServers: ['a.test'] });
    await until(all, () => bob.getRoom(roomId)?.getMyMembership() === 'join', 'Bob to be joined again');
    await until(
      all,
      () => alice.getRoom(roomId)?.getMember(bobId)?.membership === 'join',
      'Alice to see Bob rejoin',
    );

    // Carol, of C, joins by alias; everyone hears her.
    const joined = await carol.joinRoom('#across:a.test');
    expect(joined.roomId).toBe(roomId);
    // A passes Carol's join on to B. (Until missing events are fetched — get_missing_events, the
    // inbound federation service's — B could not place a message of Carol's that overtook it.)
    await until(
      all,
      () => bob.getRoom(roomId)?.getMember(carol.getUserId() as string)?.membership === 'join',
      "Bob to see Carol's join",
    );
    await carol.sendTextMessage(roomId, 'hello from C');
    await until(all, () => bodies(alice.getRoom(roomId)).includes('hello from C'), 'Alice to hear Carol');
    await until(all, () => bodies(bob.getRoom(roomId)).includes('hello from C'), 'Bob to hear Carol');
  }, 120_000);
});
