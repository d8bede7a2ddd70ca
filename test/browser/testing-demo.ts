/**
 * Drives the demo app (web/) the way a person does, in Debian's headless Chromium through
 * playwright-core: build it, serve it on loopback, click and type. Shared by
 * test/browser/demo.test.ts and `npm run screenshot` (scripts/screenshot.ts).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { CHROMIUM_ARGS, chromiumPath } from '../../scripts/chromium.ts';
import { parseRelayArgs, startRelay } from '../../src/hosts/relay.ts';
import type { Relay } from '../../src/transport/libp2p/relay.ts';
import { type RunningStaticServer, serveStatic } from '../../web/server.ts';
import { WEBRTC_LOOPBACK } from './testing-sw.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const NODE = join(ROOT, 'node_modules', '.bin', 'node');

/** Builds the demo (web/vite.config.ts) into `outDir`. */
export function buildDemo(outDir: string): Promise<void> {
  const child = spawn(
    NODE,
    [
      join(ROOT, 'node_modules/vite/bin/vite.js'),
      'build',
      '--config',
      'web/vite.config.ts',
      '--outDir',
      outDir,
    ],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk));
  return new Promise((done, fail) => {
    child.once('error', fail);
    child.once('exit', (code) =>
      code === 0 ? done() : fail(new Error(`demo build failed (${code}):\n${output}`)),
    );
  });
}

export interface DemoRun {
  server: RunningStaticServer;
  context: BrowserContext;
  /** Loopback URL of the demo, ending in `/`. */
  url: string;
  /** Errors thrown in any page (uncaught exceptions): a test asserts there are none. */
  pageErrors: string[];
  /** With `p2p`: the hearth relay beside the demo, as `npm start` runs one. */
  relay?: Relay;
  /** Another browser profile on the same demo (its own storage, so its own homeserver). */
  newProfile(): Promise<BrowserContext>;
  close(): Promise<void>;
}

/**
 * Builds and serves the demo and opens Chromium on a fresh profile. Only loopback is ever
 * reached: the app's requests go to its own origin, where the Service Worker answers.
 */
export async function startDemo(
  options: {
    viewport?: { width: number; height: number };
    port?: number;
    /** Start a hearth relay beside the demo (as `npm start` does): the demo runs in P2P mode. */
    p2p?: boolean;
  } = {},
): Promise<DemoRun> {
  const viewport = options.viewport ?? { width: 1180, height: 760 };
  const work = mkdtempSync(join(tmpdir(), 'hearth-demo-'));
  const outDir = join(work, 'web');
  await buildDemo(outDir);
  const relay = options.p2p
    ? await startRelay(
        parseRelayArgs(['--port', '0', '--ws-port', '0', '--stats-seconds', '0', '--log-level', 'warn']),
      )
    : undefined;
  const relays = relay?.relay.addresses().filter((a) => a.includes('/ws/')) ?? [];
  const server = await serveStatic({ root: outDir, port: options.port ?? 0, relays });
  const pageErrors: string[] = [];
  const contexts: BrowserContext[] = [];
  const launch = async () => {
    const context = await chromium.launchPersistentContext(join(work, `profile-${contexts.length}`), {
      executablePath: chromiumPath(),
      headless: true,
      viewport,
      colorScheme: 'light',
      args: [...CHROMIUM_ARGS, ...(options.p2p ? (WEBRTC_LOOPBACK.args ?? []) : [])],
      ...(options.p2p ? { permissions: WEBRTC_LOOPBACK.permissions } : {}),
    });
    contexts.push(context);
    // Below the tests' own timeout, so a stuck step fails with Playwright's account of what it awaited.
    context.setDefaultTimeout(20_000);
    context.on('page', (page) => page.on('pageerror', (err) => pageErrors.push(err.message)));
    for (const page of context.pages()) page.on('pageerror', (err) => pageErrors.push(err.message));
    return context;
  };
  const context = await launch();
  return {
    server,
    context,
    url: `${server.url}/`,
    pageErrors,
    ...(relay ? { relay: relay.relay } : {}),
    newProfile: launch,
    async close() {
      for (const c of contexts) await c.close();
      await server.close();
      await relay?.stop();
      rmSync(work, { recursive: true, force: true });
    },
  };
}

/** Opens the demo in a new tab (of the first profile, or of `context`). */
export async function openTab(run: DemoRun, context = run.context): Promise<Page> {
  const page = await context.newPage();
  await page.goto(run.url);
  return page;
}

export async function signUp(page: Page, username: string, password: string): Promise<string> {
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign up' }).click();
  const me = page.locator('.me');
  await me.waitFor();
  return (await me.textContent()) ?? '';
}

/** Opens the top bar's menu (a `<details>`), unless it is open already. */
export async function openMenu(page: Page): Promise<void> {
  if ((await page.locator('details.menu').getAttribute('open')) === null)
    await page.locator('.menu summary').click();
}

/** Leaves this tab's account signed in elsewhere and shows the sign-in form here. */
export async function addAccount(page: Page): Promise<void> {
  await openMenu(page);
  await page.getByRole('button', { name: 'Add account' }).click();
  await page.getByLabel('Username').waitFor();
}

export async function createRoom(page: Page, name: string): Promise<void> {
  await page.getByLabel('New room name').fill(name);
  await page.getByRole('button', { name: 'Create' }).click();
  await page.getByRole('heading', { name }).waitFor();
}

/** Types a message and presses Enter; resolves once the server has accepted it (no longer pending). */
export async function send(page: Page, text: string): Promise<void> {
  await page.getByLabel('Message').fill(text);
  await page.getByLabel('Message').press('Enter');
  await message(page, text).waitFor();
  await page.locator('#timeline .message.pending').first().waitFor({ state: 'detached' });
}

/** The timeline row showing exactly `text`. */
export function message(page: Page, text: string) {
  return page.locator('#timeline .message .body').getByText(text, { exact: true });
}

export async function invite(page: Page, userId: string): Promise<void> {
  if (!(await page.locator('.members').isVisible()))
    await page.getByRole('button', { name: 'Members' }).click();
  await page.getByLabel('User ID to invite').fill(userId);
  await page.getByRole('button', { name: 'Invite', exact: true }).click();
  await page.locator('.members li', { hasText: userId }).waitFor();
}

export async function acceptInvite(page: Page, roomName: string): Promise<void> {
  await page.locator('.rooms li', { hasText: roomName }).getByRole('button', { name: 'Join' }).click();
  await page.getByRole('heading', { name: roomName }).waitFor();
  await page.getByLabel('Message').waitFor();
}

/** Width and height from a PNG's IHDR chunk (PNG spec §11.2.2), after checking the signature. */
export function pngSize(png: Uint8Array): { width: number; height: number } {
  const signature = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  if (!signature.every((byte, i) => png[i] === byte)) throw new Error('not a PNG');
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  if (new TextDecoder().decode(png.subarray(12, 16)) !== 'IHDR') throw new Error('PNG without IHDR first');
  return { width: view.getUint32(16), height: view.getUint32(20) };
}
