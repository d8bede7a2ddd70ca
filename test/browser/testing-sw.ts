/**
 * What the Service Worker tests (service-worker.test.ts) and the browser bench
 * (bench/browser.ts) share: the shipped worker and page bundles built into a temporary site
 * with a test page, served from loopback by the demo's static server, and Debian's headless
 * Chromium on a fresh profile driven by playwright-core — nothing reaches past 127.0.0.1.
 */
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { type BrowserContext, type CDPSession, chromium, type Page } from 'playwright-core';
import { build, type Plugin } from 'vite';
import { buildBrowserBundles } from '../../scripts/build.ts';
import { CHROMIUM_ARGS, chromiumPath } from '../../scripts/chromium.ts';
import { workerBundleConfig } from '../../vite.config.ts';
import { type RunningStaticServer, serveStatic } from '../../web/server.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const FIXTURES = join(import.meta.dirname, 'fixtures');

/** Resolves `src/storage/schema.ts` to `fixtures/schema-next.ts` everywhere but in that file. */
function nextSchema(): Plugin {
  const real = join(ROOT, 'src/storage/schema.ts');
  const next = join(FIXTURES, 'schema-next.ts');
  return {
    name: 'hearth-test-next-schema',
    enforce: 'pre',
    async resolveId(source, importer, options) {
      if (!importer || importer === next) return null;
      const resolved = await this.resolve(source, importer, { ...options, skipSelf: true });
      return resolved?.id === real ? next : null;
    },
  };
}

export interface TestSite {
  dir: string;
  /** A build of the worker one schema version ahead (`sw-next.js`), for the update test. */
  nextWorker: string;
  /** Worker bundle's source modules. */
  workerModules: string[];
  remove(): void;
}

/**
 * The shipped bundles as a site: `/sw.js` (the worker), `/hearth-page.js` (+ chunk),
 * `/index.html` (the test page), and `/sw-next.js` when `withNext`.
 */
export async function buildTestSite(withNext = false): Promise<TestSite> {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-sw-site-'));
  const bundles = await buildBrowserBundles(dir, { workerFileName: 'sw.js' });
  copyFileSync(join(FIXTURES, 'index.html'), join(dir, 'index.html'));
  if (withNext) {
    await build({
      ...workerBundleConfig({
        outDir: dir,
        keepOutDir: true,
        fileName: 'sw-next.js',
        entry: join(FIXTURES, 'sw-next.ts'),
        plugins: [nextSchema()],
      }),
      logLevel: 'error',
    });
  }
  return {
    dir,
    nextWorker: join(dir, 'sw-next.js'),
    workerModules: bundles.modules.get('sw.js') ?? [],
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export interface Browser {
  context: BrowserContext;
  server: RunningStaticServer;
  /** `http://127.0.0.1:PORT` */
  origin: string;
  /** Errors thrown in pages and logged by any worker, for a test to assert there are none. */
  errors: string[];
  /** A new tab on the test page, with `window.hearth` and `window.mx` loaded. */
  open(): Promise<Page>;
  /** The Service Workers through DevTools, on a session attached to `page`. */
  workers(page: Page): Promise<Workers>;
  close(): Promise<void>;
}

export interface LaunchOptions {
  initScript?: string;
  /** Chromium flags beside `CHROMIUM_ARGS`. */
  args?: readonly string[];
  /** Permissions granted to every origin (WebRTC on loopback needs `camera` and `microphone`). */
  permissions?: string[];
}

/**
 * What WebRTC between two browsers on one machine needs: loopback candidates allowed, and
 * the media permissions without which Chromium hides local addresses behind mDNS names.
 */
export const WEBRTC_LOOPBACK: LaunchOptions = {
  args: ['--allow-loopback-in-peer-connection'],
  permissions: ['camera', 'microphone'],
};

export async function launch(site: TestSite, options: LaunchOptions = {}): Promise<Browser> {
  const server = await serveStatic({ root: site.dir });
  const profile = mkdtempSync(join(tmpdir(), 'hearth-sw-profile-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath(),
    headless: true,
    args: [...CHROMIUM_ARGS, ...(options.args ?? [])],
    ...(options.permissions ? { permissions: options.permissions } : {}),
  });
  const errors: string[] = [];
  const watch = (page: Page) => page.on('pageerror', (err) => errors.push(`page: ${err.message}`));
  context.on('page', watch);
  for (const page of context.pages()) watch(page);
  context.on('serviceworker', (worker) => {
    worker.on('console', (message) => {
      if (message.type() === 'error') errors.push(`worker: ${message.text()}`);
    });
  });
  if (options.initScript) await context.addInitScript(options.initScript);
  return {
    context,
    server,
    origin: server.url,
    errors,
    async open() {
      const page = await context.newPage();
      await page.goto(`${server.url}/`);
      await page.waitForFunction(() => 'mx' in window && 'hearth' in window);
      return page;
    },
    workers: (page) => devtoolsWorkers(context, page),
    async close() {
      await context.close();
      await server.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Service Workers as DevTools sees them (the `ServiceWorker` domain). */
export interface Workers {
  cdp: CDPSession;
  /** Running status of each worker version DevTools has reported. */
  readonly versions: Map<string, string>;
  /**
   * Stops every worker (`ServiceWorker.stopAllWorkers`) and resolves once DevTools reports
   * each version that was running as stopped.
   */
  stopAll(): Promise<void>;
  detach(): Promise<void>;
}

export async function devtoolsWorkers(context: BrowserContext, page: Page): Promise<Workers> {
  const cdp = await context.newCDPSession(page);
  const versions = new Map<string, string>();
  const listeners = new Set<() => void>();
  // Listening before `enable`, which reports every existing version.
  cdp.on('ServiceWorker.workerVersionUpdated', ({ versions: updates }) => {
    for (const v of updates) versions.set(v.versionId, v.runningStatus);
    for (const listener of listeners) listener();
  });
  await cdp.send('ServiceWorker.enable');
  return {
    cdp,
    versions,
    async stopAll() {
      // `enable` reports the versions in events that may trail its answer.
      const runningNow = () => [...versions].filter(([, status]) => status !== 'stopped').map(([id]) => id);
      for (let waited = 0; runningNow().length === 0 && waited < 5_000; waited += 50) {
        await new Promise((r) => setTimeout(r, 50));
      }
      const running = runningNow();
      if (running.length === 0) throw new Error('no Service Worker is running');
      const stopped = new Promise<void>((resolveStopped, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`workers ${running} did not stop within 10 s`)),
          10_000,
        );
        const check = () => {
          if (running.every((id) => versions.get(id) === 'stopped')) {
            clearTimeout(timer);
            listeners.delete(check);
            resolveStopped();
          }
        };
        listeners.add(check);
      });
      await cdp.send('ServiceWorker.stopAllWorkers');
      await stopped;
    },
    detach: () => cdp.detach(),
  };
}

/** Matrix JSON as the tests read it: shapes are asserted, not typed. */
// biome-ignore lint/suspicious/noExplicitAny: response bodies of many endpoints, checked by the assertions
type Json = any;

/** The test page's globals (fixtures/index.html), as `page.evaluate` callbacks see them. */
export type PageGlobals = {
  mx: {
    call(
      method: string,
      path: string,
      opts?: { token?: string; body?: unknown; base?: string },
    ): Promise<{ status: number; body: Json }>;
    useFetch(fn: typeof fetch): void;
    register(username: string, password: string): Promise<string>;
    login(user: string, password: string): Promise<string>;
    createRoom(token: string, body?: object): Promise<string>;
    join(token: string, roomId: string): Promise<void>;
    send(token: string, roomId: string, text: string): Promise<string>;
    history(token: string, roomId: string): Promise<Json[]>;
    texts(token: string, roomId: string): Promise<string[]>;
    sync(token: string, since?: string, timeout?: number): Promise<Json>;
    syncTexts(body: Json, roomId: string): string[];
  };
  hearth: typeof import('../../src/hosts/page.ts');
  handle?: import('../../src/hosts/page.ts').HomeserverHandle;
};
