/**
 * The in-page fallback in Chromium (service-worker.test.ts, two-writers.test.ts): the test
 * site in a browser without Service Workers, as a private window may be, and the homeserver
 * started in a tab.
 */
import type { Page } from 'playwright-core';
import { afterAll, beforeAll } from 'vitest';
import { type Browser, buildTestSite, launch, type PageGlobals, type TestSite } from './testing-sw.ts';

/** Builds the site and launches the browser for the calling `describe`; the browser once launched. */
export function withoutServiceWorkers(): () => Browser {
  let site: TestSite | undefined;
  let browser: Browser | undefined;
  beforeAll(async () => {
    site = await buildTestSite(false);
    browser = await launch(site, { initScript: 'delete Navigator.prototype.serviceWorker;' });
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    site?.remove();
  });
  return () => {
    if (!browser) throw new Error('the browser is not launched yet');
    return browser;
  };
}

/** Registers the homeserver in `page` (the page's own, here) and routes `window.mx` through it. */
export function startInPage(page: Page) {
  return page.evaluate(async () => {
    const w = window as unknown as PageGlobals;
    w.handle = await w.hearth.registerHomeserver({ workerUrl: '/sw.js' });
    w.mx.useFetch(w.handle.fetch);
    return { mode: w.handle.mode, reason: w.handle.fallbackReason, hasSw: 'serviceWorker' in navigator };
  });
}
