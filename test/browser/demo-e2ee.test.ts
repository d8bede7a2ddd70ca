/**
 * End-to-end encryption in the demo app, in Debian's headless Chromium: the homeserver runs in
 * the page's Service Worker and each tab's matrix-js-sdk encrypts with its Rust crypto (WASM,
 * keys in IndexedDB). Alice creates an encrypted room, Bob joins in another tab, and each
 * reads the other's messages, which arrived encrypted (the lock shows `isEncrypted()`).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  acceptInvite,
  addAccount,
  type DemoRun,
  invite,
  message,
  openTab,
  send,
  signUp,
  startDemo,
} from './testing-demo.ts';

const PASSWORD = 'correct horse battery staple';
const ROOM = 'Secret plans';

describe('the demo app in Chromium: an encrypted room', { timeout: 90_000 }, () => {
  let run: DemoRun;
  beforeAll(async () => {
    run = await startDemo();
  }, 120_000);
  afterAll(async () => {
    await run?.close();
  });

  it('two users exchange end-to-end encrypted messages through the Service Worker', async () => {
    const alicePage = await openTab(run);
    await signUp(alicePage, 'alice', PASSWORD);
    await alicePage.getByLabel('New room name').fill(ROOM);
    await alicePage.getByLabel('Encrypted').check();
    await alicePage.getByRole('button', { name: 'Create' }).click();
    await alicePage.getByRole('heading', { name: ROOM }).waitFor();

    const bobPage = await openTab(run);
    await addAccount(bobPage);
    const bob = await signUp(bobPage, 'bob', PASSWORD);
    await invite(alicePage, bob);
    await acceptInvite(bobPage, ROOM);
    // Alice's client shares the room key with Bob's device once it knows Bob joined.
    await alicePage.locator('.members li', { hasText: bob }).waitFor();

    await send(alicePage, 'Only Bob can read this.');
    await message(bobPage, 'Only Bob can read this.').waitFor({ timeout: 30_000 });
    await send(bobPage, 'And only Alice this.');
    await message(alicePage, 'And only Alice this.').waitFor({ timeout: 30_000 });
    for (const [page, text] of [
      [bobPage, 'Only Bob can read this.'],
      [alicePage, 'And only Alice this.'],
    ] as const) {
      await expect(
        page
          .locator('#timeline .message')
          .filter({ has: page.getByText(text, { exact: true }) })
          .locator('.lock')
          .count(),
      ).resolves.toBe(1);
    }
    expect(run.pageErrors).toEqual([]);
  });
});
