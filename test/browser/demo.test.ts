/**
 * The demo app, end to end through its UI: Debian's headless Chromium (playwright-core)
 * opens the built demo on loopback, where the homeserver runs in the page's Service Worker.
 * A person signs up and chats; a reload keeps the session and the history; a second tab
 * signs up a second user and the two chat live; a fresh tab scrolls back through older
 * messages; a screenshot is taken and checked to show the conversation; log out and in;
 * a backup is exported and imported back from the menu.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  acceptInvite,
  addAccount,
  createRoom,
  type DemoRun,
  invite,
  message,
  openMenu,
  openTab,
  pngSize,
  send,
  signUp,
  startDemo,
} from './testing-demo.ts';

const PASSWORD = 'correct horse battery staple';
const ROOM = 'Hearth demo';
const VIEWPORT = { width: 1180, height: 760 };

// Each step drives a browser through a few round trips; on a loaded two-core CI box that takes a while.
describe('the demo app in Chromium', { timeout: 60_000 }, () => {
  let run: DemoRun;
  let alicePage: Page;
  let bobPage: Page;
  let alice: string;
  let bob: string;
  const shots = mkdtempSync(join(tmpdir(), 'hearth-demo-shots-'));

  beforeAll(async () => {
    run = await startDemo({ viewport: VIEWPORT });
  }, 120_000);
  afterAll(async () => {
    await run?.close();
    rmSync(shots, { recursive: true, force: true });
  });

  it('signs up through the UI, creates a room and sends messages', async () => {
    alicePage = await openTab(run);
    alice = await signUp(alicePage, 'alice', PASSWORD);
    // The homeserver is the Service Worker, not the in-page fallback.
    const worker = await alicePage.evaluate(() => navigator.serviceWorker.controller?.scriptURL);
    expect(worker).toBe(`${run.url}sw.js?server_name=${encodeURIComponent(new URL(run.url).host)}`);
    const serverName = await alicePage.locator('#server-name').textContent();
    expect(serverName).toBe(new URL(run.url).host);
    expect(alice).toBe(`@alice:${serverName}`);

    await createRoom(alicePage, ROOM);
    for (const text of ['Hello from my own homeserver!', 'It runs in a Service Worker.'])
      await send(alicePage, text);
    await expect(alicePage.locator('#timeline').textContent()).resolves.toMatch(
      /alice created the room[\s\S]*Hello from my own homeserver![\s\S]*It runs in a Service Worker\./,
    );
  });

  it('keeps the session and the history across a reload', async () => {
    await alicePage.reload();
    await message(alicePage, 'It runs in a Service Worker.').waitFor();
    expect(await alicePage.locator('.me').textContent()).toBe(alice);
    expect(await alicePage.getByRole('heading', { level: 2 }).textContent()).toBe(ROOM);
    await expect(message(alicePage, 'Hello from my own homeserver!').count()).resolves.toBe(1);
  });

  it('lets two users in two tabs of one origin chat live', async () => {
    // A new tab opens signed in as the last account; "Add account" signs up a second one there.
    bobPage = await openTab(run);
    expect(await bobPage.locator('.me').textContent()).toBe(alice);
    await addAccount(bobPage);
    bob = await signUp(bobPage, 'bob', PASSWORD);
    expect(bob).toBe(`@bob:${new URL(run.url).host}`);

    await invite(alicePage, bob);
    await acceptInvite(bobPage, ROOM);
    await message(bobPage, 'It runs in a Service Worker.').waitFor();

    await send(bobPage, 'Hi Alice, Bob here, in the other tab.');
    await message(alicePage, 'Hi Alice, Bob here, in the other tab.').waitFor({ timeout: 10_000 });
    await send(alicePage, 'Hi Bob! Same homeserver, two users.');
    await message(bobPage, 'Hi Bob! Same homeserver, two users.').waitFor({ timeout: 10_000 });

    // The first tab is still Alice: each tab keeps its own account.
    expect(await alicePage.locator('.me').textContent()).toBe(alice);
    await alicePage.getByRole('button', { name: 'Members' }).click();
    const members = await alicePage.locator('.members li').allTextContents();
    expect(members.join('\n')).toContain(alice);
    expect(members.join('\n')).toContain(bob);
  });

  it('takes a screenshot that shows the timeline with the messages', async () => {
    const expected = [
      'Hello from my own homeserver!',
      'It runs in a Service Worker.',
      'Hi Alice, Bob here, in the other tab.',
      'Hi Bob! Same homeserver, two users.',
    ];
    // The text on screen when the picture is taken, read from the same DOM.
    const timelineText = await alicePage.locator('#timeline').textContent();
    const path = join(shots, 'timeline.png');
    await alicePage.screenshot({ path });
    const png = readFileSync(path);
    for (const text of expected) expect(timelineText).toContain(text);
    // Every message row is inside the visible part of the timeline (not scrolled away).
    const box = await alicePage.locator('#timeline').boundingBox();
    if (!box) throw new Error('the timeline is not on screen');
    for (const text of expected) {
      const row = await message(alicePage, text).boundingBox();
      if (!row) throw new Error(`${text} is not on screen`);
      expect(row.y).toBeGreaterThanOrEqual(box.y);
      expect(row.y + row.height).toBeLessThanOrEqual(box.y + box.height);
    }
    expect(pngSize(png)).toEqual(VIEWPORT);
    // A blank or one-colour page compresses to a few kilobytes; a chat with text does not.
    expect(png.byteLength).toBeGreaterThan(20_000);
    // The timeline region alone, too: it must differ from an empty timeline of the same size.
    const region = await alicePage.locator('#timeline').screenshot();
    writeFileSync(join(shots, 'timeline-region.png'), region);
    expect(pngSize(region).width).toBe(Math.round(box.width));
    expect(region.byteLength).toBeGreaterThan(8_000);
  });

  it('scrolls back through older messages in a fresh tab', async () => {
    // 40 more messages: more than the first sync brings (30 events), so the start needs pagination.
    for (let i = 1; i <= 40; i++) await send(bobPage, `count ${i}`);
    await message(alicePage, 'count 40').waitFor();

    const fresh = await openTab(run);
    await message(fresh, 'count 40').waitFor();
    expect(await message(fresh, 'Hello from my own homeserver!').count()).toBe(0);
    for (
      let guard = 0;
      guard < 10 && (await message(fresh, 'Hello from my own homeserver!').count()) === 0;
      guard++
    ) {
      await fresh.locator('#timeline').evaluate((el) => el.scrollTo({ top: 0 }));
      await fresh.waitForTimeout(300);
    }
    await message(fresh, 'Hello from my own homeserver!').waitFor();
    await fresh.getByText('This is the start of the room.').waitFor();
    const bodies = await fresh.locator('#timeline .message .body').allTextContents();
    expect(bodies.filter((b) => b.startsWith('count '))).toEqual(
      Array.from({ length: 40 }, (_, i) => `count ${i + 1}`),
    );
    expect(bodies.indexOf('Hello from my own homeserver!')).toBe(0);
    await fresh.close();
  });

  it('logs out, and signs back in with the password', async () => {
    await openMenu(bobPage);
    await bobPage.getByRole('button', { name: 'Log out' }).click();
    await bobPage.getByText('Signed out.').waitFor();
    await bobPage.getByLabel('Username').fill('bob');
    await bobPage.getByLabel('Password').fill(PASSWORD);
    await bobPage.getByRole('button', { name: 'Sign in' }).click();
    await message(bobPage, 'count 40').waitFor();
    expect(await bobPage.locator('.me').textContent()).toBe(bob);
    await bobPage.close();
  });

  it('exports a backup and imports it back from the menu', async () => {
    await openMenu(alicePage);
    const [download] = await Promise.all([
      alicePage.waitForEvent('download'),
      alicePage.getByRole('button', { name: 'Export backup' }).click(),
    ]);
    const backup = join(shots, download.suggestedFilename());
    await download.saveAs(backup);
    expect(readFileSync(backup).byteLength).toBeGreaterThan(1000);

    await send(alicePage, 'Sent after the export');
    const otherTab = await openTab(run);
    await message(otherTab, 'Sent after the export').waitFor();
    alicePage.once('dialog', (dialog) => dialog.accept());
    await openMenu(alicePage);
    const [chooser] = await Promise.all([
      alicePage.waitForEvent('filechooser'),
      alicePage.getByText('Import backup…').click(),
    ]);
    const reloaded = [alicePage.waitForEvent('load'), otherTab.waitForEvent('load')];
    await chooser.setFiles(backup);
    // Both tabs reload: the one that imported, and the other one, told over a BroadcastChannel.
    await Promise.all(reloaded);
    // The homeserver is the one in the backup: the history up to the export, not what came after.
    await message(alicePage, 'count 40').waitFor();
    expect(await message(alicePage, 'Sent after the export').count()).toBe(0);
    expect(await alicePage.locator('.me').textContent()).toBe(alice);
    await message(otherTab, 'count 40').waitFor();
    expect(await message(otherTab, 'Sent after the export').count()).toBe(0);
    await otherTab.close();
  });

  it("shows the owner's admin panel: users, rooms, storage used; deactivates a user", async () => {
    await openMenu(alicePage);
    await alicePage.getByRole('button', { name: 'Admin panel' }).click();
    const panel = alicePage.locator('.admin-panel');
    await panel.waitFor();
    await expect(panel.locator('.admin-storage').textContent()).resolves.toMatch(
      /Storage used: [\d.]+ MiB of/,
    );
    await panel.locator('.admin-room', { hasText: ROOM }).waitFor();
    const bobRow = panel.locator('.admin-user', { hasText: bob });
    await bobRow.waitFor();
    expect(await panel.locator('.admin-user', { hasText: alice }).getByRole('button').isDisabled()).toBe(
      true,
    );
    alicePage.once('dialog', (dialog) => void dialog.accept());
    await bobRow.getByRole('button', { name: 'Deactivate' }).click();
    await panel.locator('.admin-user', { hasText: `${bob} (deactivated)` }).waitFor();
    // The homeserver itself says so: Bob's session no longer works.
    const whoami = await alicePage.evaluate(async (userId) => {
      const sessions = JSON.parse(localStorage.getItem('hearth-demo.sessions') ?? '{}') as Record<
        string,
        { accessToken?: string }
      >;
      const token = sessions[userId]?.accessToken;
      const res = await fetch('/_matrix/client/v3/account/whoami', {
        headers: { Authorization: `Bearer ${token}` },
      });
      return res.status;
    }, bob);
    expect(whoami).toBe(401);
    await panel.getByRole('button', { name: 'Close' }).click();
  });

  it('threw no uncaught error in any page', () => {
    expect(run.pageErrors).toEqual([]);
  });
});
