/**
 * `npm run screenshot`: builds the demo, plays a short conversation between two users in two
 * tabs of headless Chromium, and saves Alice's tab as docs/screenshot.png (the README's
 * picture). Run it again after a visible change to the demo.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  acceptInvite,
  addAccount,
  createRoom,
  invite,
  openTab,
  pngSize,
  send,
  signUp,
  startDemo,
} from '../test/browser/testing-demo.ts';

const OUT = resolve(import.meta.dirname, '../docs/screenshot.png');
const PASSWORD = 'correct horse battery staple';

// Port 8080, as `npm start` serves it, so the user IDs in the picture read as they will for the reader.
const run = await startDemo({ viewport: { width: 1280, height: 760 }, port: 8080 });
try {
  const alice = await openTab(run);
  await signUp(alice, 'alice', PASSWORD);
  await createRoom(alice, 'Kitchen table');
  await send(alice, 'Hello! This whole homeserver runs in my browser tab’s Service Worker.');

  const bob = await openTab(run);
  await addAccount(bob);
  const bobId = await signUp(bob, 'bob', PASSWORD);
  await invite(alice, bobId);
  await acceptInvite(bob, 'Kitchen table');
  await send(bob, 'Hi Alice! And the client is the real matrix-js-sdk?');
  await send(alice, 'Unmodified. Its base URL is just this page’s origin.');
  await send(alice, 'Reload, close the tab, come back: everything is still in IndexedDB.');
  await send(bob, 'Nice. Let me try an export of the backup.');
  await alice.locator('#timeline .message .body', { hasText: 'export of the backup' }).waitFor();

  const png = await alice.screenshot();
  const { width, height } = pngSize(png);
  mkdirSync(join(OUT, '..'), { recursive: true });
  writeFileSync(OUT, png);
  console.log(`saved ${OUT} (${width}×${height}, ${png.byteLength} bytes)`);
} finally {
  await run.close();
}
