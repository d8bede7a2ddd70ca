/**
 * Two browsers, each with its own homeserver in its Service Worker, federating browser to
 * browser over WebRTC: two Chromium profiles (separate storage, separate origins on
 * loopback), the shipped worker and page bundles in P2P mode, and a `hearth relay` in this
 * process on loopback for reservations and WebRTC signalling. Each step continues from the
 * one before: identity, invite and join, chat both ways, what the relay carries once WebRTC
 * is up, a Service Worker stopped mid-conversation, and a browser that closes and comes back.
 */
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRelay, type Relay } from '../../src/transport/libp2p/relay.ts';
import { nodeTransports } from '../../src/transport/libp2p/transports-node.ts';
import {
  type Browser,
  buildTestSite,
  launch,
  type PageGlobals,
  type TestSite,
  WEBRTC_LOOPBACK,
} from './testing-sw.ts';

const PASSWORD = 'correct horse battery staple';

/** Registers the P2P homeserver in `page`; resolves with its name once this tab leads. */
async function registerP2p(page: Page, relay: string): Promise<string> {
  return page.evaluate(
    async (relays) => {
      const w = window as unknown as PageGlobals;
      w.handle = await w.hearth.registerHomeserver({ workerUrl: '/sw.js', p2p: { relays } });
      await w.handle.p2p?.elected;
      return w.handle.serverName;
    },
    [relay],
  );
}

/** The leader's view of one peer (by server name), as this tab hears it. */
function peerState(page: Page, serverName: string) {
  return page.evaluate((name) => {
    const status = (window as unknown as PageGlobals).handle?.p2p?.status();
    const peer = status?.peers.find((p) => p.serverName === name);
    return peer ? { state: peer.state, via: peer.via } : null;
  }, serverName);
}

function texts(page: Page, token: string, roomId: string): Promise<string[]> {
  return page.evaluate(([t, r]) => (window as unknown as PageGlobals).mx.texts(t, r), [
    token,
    roomId,
  ] as const);
}

function send(page: Page, token: string, roomId: string, text: string): Promise<string> {
  return page.evaluate(([t, r, x]) => (window as unknown as PageGlobals).mx.send(t, r, x), [
    token,
    roomId,
    text,
  ] as const);
}

describe('two browsers federating over WebRTC through a local hearth relay', { timeout: 90_000 }, () => {
  let site: TestSite;
  let relay: Relay;
  let relayAddress: string;
  const browsers: Browser[] = [];
  let alicePage: Page;
  let bobPage: Page;
  let aliceServer: string;
  let bobServer: string;
  let aliceToken: string;
  let bobToken: string;
  let roomId: string;
  const conversation: string[] = [];

  beforeAll(async () => {
    site = await buildTestSite();
    relay = await createRelay({ transports: nodeTransports({ webRTC: false }) });
    // Browsers reach a relay over WebSockets.
    relayAddress = relay.addresses().find((a) => a.includes('/ws/')) as string;
    for (let i = 0; i < 2; i++) browsers.push(await launch(site, WEBRTC_LOOPBACK));
  }, 120_000);
  afterAll(async () => {
    for (const browser of browsers) await browser.close();
    await relay?.close();
    site?.remove();
  });

  it('gives each browser a homeserver named by its own key, with a reservation on the relay', async () => {
    const [alice, bob] = browsers as [Browser, Browser];
    expect(alice.origin).not.toBe(bob.origin);
    alicePage = await alice.open();
    bobPage = await bob.open();
    aliceServer = await registerP2p(alicePage, relayAddress);
    bobServer = await registerP2p(bobPage, relayAddress);
    expect(aliceServer).toMatch(/^[0-9a-f]{64}$/);
    expect(bobServer).toMatch(/^[0-9a-f]{64}$/);
    expect(aliceServer).not.toBe(bobServer);
    // The worker, not this page, answers the Matrix API; it named itself after its key.
    expect(await alicePage.evaluate(() => (window as unknown as PageGlobals).handle?.status())).toMatchObject(
      { ready: true, mode: 'service-worker', serverName: aliceServer },
    );
    // Reachable through the relay once the leader holds a reservation there.
    for (const page of [alicePage, bobPage]) {
      await expect
        .poll(
          () =>
            page.evaluate(
              () =>
                (window as unknown as PageGlobals).handle?.p2p
                  ?.status()
                  ?.addresses.some((a) => a.includes('/p2p-circuit')) ?? false,
            ),
          { timeout: 20_000 },
        )
        .toBe(true);
    }
    aliceToken = await alicePage.evaluate(
      (p) => (window as unknown as PageGlobals).mx.register('alice', p),
      PASSWORD,
    );
    bobToken = await bobPage.evaluate(
      (p) => (window as unknown as PageGlobals).mx.register('bob', p),
      PASSWORD,
    );
  });

  it('invites @bob:<hex> from the other browser; bob joins; they chat both ways over WebRTC', async () => {
    const bobId = `@bob:${bobServer}`;
    roomId = await alicePage.evaluate(
      ([token, invitee]) =>
        (window as unknown as PageGlobals).mx.createRoom(token, {
          name: 'Across browsers',
          invite: [invitee],
        }),
      [aliceToken, bobId] as const,
    );
    // The invite reached bob's worker through both leaders' nodes.
    await expect
      .poll(
        () =>
          bobPage.evaluate(
            async ([token, room]) =>
              Object.keys(
                (await (window as unknown as PageGlobals).mx.sync(token)).rooms?.invite ?? {},
              ).includes(room),
            [bobToken, roomId] as const,
          ),
        { timeout: 30_000 },
      )
      .toBe(true);
    await bobPage.evaluate(([token, room]) => (window as unknown as PageGlobals).mx.join(token, room), [
      bobToken,
      roomId,
    ] as const);
    for (const [page, token, text] of [
      [alicePage, aliceToken, 'Hello from the first browser'],
      [bobPage, bobToken, 'Hello back from the second'],
      [alicePage, aliceToken, 'No server between us but a relay for introductions'],
    ] as const) {
      await send(page, token, roomId, text);
      conversation.push(text);
      await expect
        .poll(() => texts(alicePage, aliceToken, roomId), { timeout: 30_000 })
        .toEqual(conversation);
      await expect.poll(() => texts(bobPage, bobToken, roomId), { timeout: 30_000 }).toEqual(conversation);
    }
    // Browser to browser: each leader sees the other as a direct WebRTC peer.
    await expect
      .poll(() => peerState(alicePage, bobServer), { timeout: 20_000 })
      .toEqual({
        state: 'direct',
        via: 'webrtc',
      });
    await expect
      .poll(() => peerState(bobPage, aliceServer), { timeout: 20_000 })
      .toEqual({
        state: 'direct',
        via: 'webrtc',
      });
  });

  it('carries the conversation off the relay once WebRTC is up (its byte counters)', async () => {
    const before = relay.stats();
    const filler = '…'.padEnd(2_000, '.');
    // A conversation: each answers once the other's message is there (messages sent at the
    // same moment would be concurrent, and each server may order them its own way).
    for (let i = 0; i < 10; i++) {
      const [page, token, other, otherToken] =
        i % 2 === 0 ? [alicePage, aliceToken, bobPage, bobToken] : [bobPage, bobToken, alicePage, aliceToken];
      const text = `message ${i} ${filler}`;
      await send(page, token, roomId, text);
      conversation.push(text);
      await expect.poll(() => texts(other, otherToken, roomId), { timeout: 30_000 }).toEqual(conversation);
    }
    const after = relay.stats();
    // 10 signed transactions of over 2 KB each went between the browsers, over 20 KB: had a
    // single one gone through the relay, it would have forwarded more than 2 KB. What it did
    // forward on the circuits still open is libp2p's own small talk (identify, pings).
    expect(after.relayedBytes - before.relayedBytes).toBeLessThan(2_000);
    expect(after.sentBytes - before.sentBytes).toBeLessThan(4_000);
  });

  it('loses nothing when a Service Worker is stopped mid-conversation', async () => {
    for (const [browser, page, token, other, otherToken, text] of [
      [browsers[1], bobPage, bobToken, alicePage, aliceToken, 'to a stopped worker'],
      [browsers[0], alicePage, aliceToken, bobPage, bobToken, 'from a restarted worker'],
    ] as const) {
      const workers = await (browser as Browser).workers(page);
      await workers.stopAll();
      // Stopped: the one sends to it (its leader wakes it), then it sends (the page wakes it).
      await send(other, otherToken, roomId, `${text} (in)`);
      conversation.push(`${text} (in)`);
      await expect.poll(() => texts(page, token, roomId), { timeout: 30_000 }).toEqual(conversation);
      await workers.stopAll();
      await send(page, token, roomId, `${text} (out)`);
      conversation.push(`${text} (out)`);
      await expect.poll(() => texts(other, otherToken, roomId), { timeout: 30_000 }).toEqual(conversation);
      await workers.detach();
    }
  });

  it('catches up a browser that was closed while the other sent', async () => {
    const [, bob] = browsers as [Browser, Browser];
    await bobPage.close();
    await expect
      .poll(() => peerState(alicePage, bobServer), { timeout: 20_000 })
      .not.toMatchObject({
        state: 'direct',
      });
    const missed = ['while you were away', 'one more', 'and a last one'];
    for (const text of missed) {
      await send(alicePage, aliceToken, roomId, text);
      conversation.push(text);
    }
    bobPage = await bob.open();
    expect(await registerP2p(bobPage, relayAddress)).toBe(bobServer);
    await expect.poll(() => texts(bobPage, bobToken, roomId), { timeout: 45_000 }).toEqual(conversation);
    expect(browsers.flatMap((b) => b.errors)).toEqual([]);
  });
});
