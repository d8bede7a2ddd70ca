/**
 * Store-and-forward through a relay: two people never online at the same moment still get
 * each other's messages, and a relay that alters what it holds is caught by the signatures.
 */
import { describe, expect, it } from 'vitest';
import { type Pdu, type RoomVersion, roomVersions, verifyEvent } from '../../src/core/index.ts';
import { parseJson } from '../../src/core/json.ts';
import { P2P_KEY_ID, p2pVerifyKey } from '../../src/core/p2p-identity.ts';
import { createMailboxes, type Mailboxes } from '../../src/transport/libp2p/mailbox.ts';
import { relayTcpAddress, type TestP2pPeer } from '../../src/transport/libp2p/testing.ts';
import { aliceAndBob, p2pTestNetwork, sendText, texts } from './testing-room.ts';

const net = p2pTestNetwork();

/**
 * How many of the room messages' transactions `mailboxes` holds for `destination`, each
 * counted once: a hand-over retried after a lost answer may deposit one again (the receiver
 * takes a transaction once), and EDUs may travel beside them.
 */
function heldMessages(mailboxes: Mailboxes, destination: string): number {
  const targets = new Set<string>();
  for (const { item } of mailboxes.peek(destination, 1000)) {
    const held = parseJson(item) as { target: string; body: string };
    const body = parseJson(held.body) as { pdus: Array<{ type?: string }> };
    if (body.pdus.some((pdu) => pdu.type === 'm.room.message')) targets.add(held.target);
  }
  return targets.size;
}

async function pair(mailboxes: Mailboxes = createMailboxes()) {
  const relay = await net.relay({ mailboxes });
  const { a, b } = await net.pair({ relays: [relayTcpAddress(relay)], listen: [], webRTC: true });
  await expect.poll(() => relay.stats().announcedPeers, { timeout: 10_000 }).toBe(2);
  return { relay, mailboxes, a, b, ...(await aliceAndBob(a, b)) };
}

/** The IDs of a room's text messages, oldest first, as a client sees them. */
async function eventIds(peer: TestP2pPeer, token: string, roomId: string): Promise<string[]> {
  const res = await peer.hs.call(
    'GET',
    `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/messages?dir=b&limit=200`,
    { token },
  );
  return (res.body.chunk as { type: string; event_id: string }[])
    .filter((e) => e.type === 'm.room.message')
    .map((e) => e.event_id)
    .reverse();
}

const numbered = (n: number, from = 1) => Array.from({ length: n }, (_, i) => `message ${i + from}`);

describe('store-and-forward', () => {
  it('B offline, A sends 50, A goes offline, B comes online and gets all 50 from the relay, in order', async () => {
    const { relay, mailboxes, a, b, alice, bob, roomId } = await pair();
    await b.node.stop();
    for (const [i, text] of numbered(50).entries()) await sendText(a.hs, alice, roomId, text, `m${i}`);
    // A's outbox found B unreachable and handed every PDU to the relay.
    await expect.poll(() => heldMessages(mailboxes, b.serverName), { timeout: 30_000 }).toBe(50);
    // A deletes its rows once the relay has answered, just after the relay counts them.
    await expect.poll(async () => await a.hs.store.federation.outbox(b.serverName, 10)).toEqual([]);
    await a.node.stop();
    expect(await texts(b.hs, bob, roomId)).toEqual([]);

    await b.node.start();
    await expect.poll(() => texts(b.hs, bob, roomId), { timeout: 30_000 }).toEqual(numbered(50));
    // Handed over and acknowledged: the relay holds nothing more.
    await expect.poll(() => relay.stats().mailbox.items, { timeout: 30_000 }).toBe(0);
    // What B keeps is A's own events, whole and signed with the key A's name stands for.
    const ids = await eventIds(b, bob.accessToken, roomId);
    expect(ids).toHaveLength(50);
    const stored = await b.hs.store.rooms.getEvents(ids);
    const room = await b.hs.store.rooms.getRoom(roomId);
    const version = roomVersions[room?.roomVersion ?? ''] as RoomVersion;
    for (const id of ids) {
      const pdu = stored.get(id)?.event as Pdu;
      expect(pdu.origin ?? pdu.sender).toContain(a.serverName);
      const checked = await verifyEvent(pdu, version, (server) =>
        server === a.serverName ? new Map([[P2P_KEY_ID, p2pVerifyKey(server) as Uint8Array]]) : undefined,
      );
      expect(checked.redacted).toBe(false);
    }
  }, 120_000);

  it('a relay that alters a held transaction is caught: that PDU is refused, the rest applied', async () => {
    // A relay whose mailbox rewrites message 10 on its way out (the text, not the signatures).
    const honest = createMailboxes();
    const hostile: Mailboxes = {
      ...honest,
      peek: (destination, limit) =>
        honest.peek(destination, limit).map((entry) => ({
          ...entry,
          item: entry.item.replace('message 10\\"', 'message 10 (forged)\\"'),
        })),
    };
    const { relay, a, b, alice, bob, roomId } = await pair(hostile);
    await b.node.stop();
    for (const [i, text] of numbered(20).entries()) await sendText(a.hs, alice, roomId, text, `m${i}`);
    await expect.poll(() => heldMessages(honest, b.serverName), { timeout: 30_000 }).toBe(20);
    expect(honest.peek(b.serverName, 100).some((e) => e.item.includes('message 10'))).toBe(true);
    expect(hostile.peek(b.serverName, 100).some((e) => e.item.includes('message 10 (forged)'))).toBe(true);
    await a.node.stop();

    await b.node.start();
    // 1–9 applied; the forged 10 refused (its X-Matrix signature no longer verifies); 11–20 wait
    // on the missing 10, which only A can give.
    await expect.poll(() => texts(b.hs, bob, roomId), { timeout: 30_000 }).toEqual(numbered(9));
    await expect.poll(() => relay.stats().mailbox.items, { timeout: 30_000 }).toBe(0);
    expect(await texts(b.hs, bob, roomId)).not.toContain('message 10 (forged)');

    // A back online: its next message leads B to fetch the gap (get_missing_events) from A.
    await a.node.start();
    await sendText(a.hs, alice, roomId, 'back again', 'back');
    await expect
      .poll(() => texts(b.hs, bob, roomId), { timeout: 30_000 })
      .toEqual([...numbered(20), 'back again']);
  }, 120_000);
});
