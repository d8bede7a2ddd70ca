/**
 * The whole conversation between two `hearth serve` processes over HTTPS on loopback (a CA
 * made at test time, `--federation-ca`), with matrix-js-sdk, unmodified, on each: Alice of A
 * invites Bob of B, Bob accepts (make_join/send_join over HTTPS), they talk both ways — then B
 * is stopped mid-conversation while Alice goes on, and started again on the same `--data`:
 * Bob's client, which kept running, gets every message A held for B, in order, once, and the
 * conversation goes on.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventType, type MatrixClient, type MatrixEvent, type Room } from 'matrix-js-sdk';
import { afterAll, describe, expect, it } from 'vitest';
import { register, startClient, until } from './js-sdk-scenario.ts';
import { type FederatingPair, startFederatingPair, stopServe } from './serve.ts';

let pair: FederatingPair | undefined;
const clients: MatrixClient[] = [];
const root = mkdtempSync(join(tmpdir(), 'hearth-fed-chat-'));
afterAll(async () => {
  for (const client of clients) client.stopClient();
  await pair?.close();
  rmSync(root, { recursive: true, force: true });
});

const bodies = (room: Room | null): string[] =>
  (room?.getLiveTimeline().getEvents() ?? [])
    .filter((e: MatrixEvent) => e.getType() === EventType.RoomMessage)
    .map((e: MatrixEvent) => e.getContent().body as string);

describe('two `hearth serve` processes: a conversation over HTTPS, one restarted in the middle', () => {
  it('invite, join, messages both ways, a restart of B with nothing lost', async () => {
    pair = await startFederatingPair(root);
    const { a, b } = pair;
    const target = (name: string) => ({ baseUrl: `https://${name}`, fetchFn: pair?.fetch as typeof fetch });
    const aliceCreds = await register(target(a.name), 'alice');
    const bobCreds = await register(target(b.name), 'bob');
    const alice = await startClient(target(a.name), aliceCreds);
    clients.push(alice);
    const bob = await startClient(target(b.name), bobCreds);
    clients.push(bob);
    const both = [alice, bob];

    const { room_id: roomId } = await alice.createRoom({ name: 'Over HTTPS', invite: [bobCreds.userId] });
    await until(
      both,
      () => bob.getRoom(roomId)?.getMyMembership() === 'invite',
      'Bob to see the invite',
      30_000,
    );
    await bob.joinRoom(roomId);
    await until(
      both,
      () => alice.getRoom(roomId)?.getMember(bobCreds.userId)?.membership === 'join',
      'Alice to see Bob join',
      30_000,
    );
    await alice.sendTextMessage(roomId, 'hello from A');
    await until(
      both,
      () => bodies(bob.getRoom(roomId)).includes('hello from A'),
      'Bob to hear Alice',
      30_000,
    );
    await bob.sendTextMessage(roomId, 'hello from B');
    await until(
      both,
      () => bodies(alice.getRoom(roomId)).includes('hello from B'),
      'Alice to hear Bob',
      30_000,
    );

    // B goes down mid-conversation; Alice goes on talking. A keeps what B is owed in its outbox.
    await stopServe(b.serve.child);
    const missed = ['while B was down 1', 'while B was down 2', 'while B was down 3'];
    for (const text of missed) await alice.sendTextMessage(roomId, text);
    // B comes back on the same data and port; its client, still running, reconnects.
    await pair.restart(b);
    await until(
      both,
      () => missed.every((text) => bodies(bob.getRoom(roomId)).includes(text)),
      'Bob to get what was sent while B was down',
      90_000,
    );
    await bob.sendTextMessage(roomId, 'back again');
    await until(
      both,
      () => bodies(alice.getRoom(roomId)).includes('back again'),
      'Alice to hear Bob again',
      60_000,
    );

    // In order, each once, on both sides.
    const expected = ['hello from A', 'hello from B', ...missed, 'back again'];
    expect(bodies(bob.getRoom(roomId))).toEqual(expected);
    expect(bodies(alice.getRoom(roomId))).toEqual(expected);
    // And what B's store serves after the restart matches, from the server's own answer.
    const messages = await pair.call(
      b.name,
      'GET',
      `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/messages?dir=b&limit=50`,
      { token: bobCreds.accessToken },
    );
    const served = (messages.body.chunk as { type: string; content: { body?: string } }[])
      .filter((e) => e.type === 'm.room.message')
      .map((e) => e.content.body)
      .reverse();
    expect(served).toEqual(expected);
  }, 240_000);
});
