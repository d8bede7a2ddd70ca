/**
 * `npm run screenshot`: builds the demo, plays a short conversation between two users in two
 * tabs of headless Chromium, and saves Alice's tab as docs/screenshot.png (the README's
 * picture); then two browsers, each with its own P2P homeserver, chatting over WebRTC through
 * the demo's relay, as docs/screenshot-p2p.png. Run it again after a visible change to the demo.
 * `npm run screenshot -- p2p` takes only the second.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  acceptInvite,
  addAccount,
  createRoom,
  invite,
  message,
  openTab,
  pngSize,
  send,
  signUp,
  startDemo,
} from '../test/browser/testing-demo.ts';

const OUT = resolve(import.meta.dirname, '../docs/screenshot.png');
const PASSWORD = 'correct horse battery staple';

const only = process.argv[2];

// Port 8080, as `npm start` serves it, so the user IDs in the picture read as they will for the reader.
const run =
  only === 'p2p' ? undefined : await startDemo({ viewport: { width: 1280, height: 760 }, port: 8080 });
if (run)
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

// Two browsers (two profiles: two homeservers), each in P2P mode, chatting over WebRTC through
// the relay the demo server starts — docs/screenshot-p2p.png, both windows side by side.
const P2P_OUT = resolve(import.meta.dirname, '../docs/screenshot-p2p.png');
const p2p = await startDemo({ viewport: { width: 820, height: 640 }, p2p: true });
try {
  const alice = await openTab(p2p);
  const bob = await openTab(p2p, await p2p.newProfile());
  await signUp(alice, 'alice', PASSWORD);
  const bobId = await signUp(bob, 'bob', PASSWORD);
  await createRoom(alice, 'Across two browsers');
  await invite(alice, bobId);
  await acceptInvite(bob, 'Across two browsers');
  const lines: [typeof alice, typeof alice, string][] = [
    [alice, bob, 'Hi Bob! My homeserver is in this browser, yours in that one.'],
    [bob, alice, 'And nothing between them but WebRTC. The relay only introduced us.'],
    [alice, bob, 'Every event signed by our own keys: our server names are those keys.'],
  ];
  for (const [from, to, text] of lines) {
    await send(from, text);
    await message(to, text).waitFor();
  }
  for (const page of [alice, bob]) await page.locator('.peers .state.direct').first().waitFor();
  const shots = [await alice.screenshot(), await bob.screenshot()];
  // Side by side, on a page of their own: no image library needed.
  const board = await p2p.context.newPage();
  await board.setViewportSize({ width: 1660, height: 660 });
  await board.setContent(
    `<body style="margin:0;background:#d8dde3;display:flex;gap:20px;padding:10px">${shots
      .map(
        (png) =>
          `<img style="box-shadow:0 2px 8px #0004" src="data:image/png;base64,${png.toString('base64')}">`,
      )
      .join('')}</body>`,
  );
  const png = await board.screenshot();
  const { width, height } = pngSize(png);
  writeFileSync(P2P_OUT, png);
  console.log(`saved ${P2P_OUT} (${width}×${height}, ${png.byteLength} bytes)`);
} finally {
  await p2p.close();
}
