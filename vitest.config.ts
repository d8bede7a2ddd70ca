import { playwright } from '@vitest/browser-playwright';
import { defineConfig } from 'vitest/config';
import { CHROMIUM_ARGS, chromiumPath } from './scripts/chromium.ts';

/**
 * Debian's Chromium for the browser project, installed by `scripts/ensure-chromium.sh`
 * when missing (a fresh CI machine). If that fails, the browser tests fail to launch with
 * the reason printed; the Node tests still run.
 */
function chromium(): string {
  try {
    return chromiumPath();
  } catch {
    return '/usr/bin/chromium';
  }
}

export default defineConfig({
  test: {
    // Two cores on CI: keep workers to what the machine has.
    maxWorkers: 2,
    testTimeout: 30_000,
    projects: [
      {
        extends: true,
        test: {
          name: 'node',
          include: ['src/**/*.test.ts', 'test/**/*.test.ts', 'web/**/*.test.ts'],
          exclude: ['**/node_modules/**', '**/*.browser.test.ts'],
        },
      },
      {
        // `*.browser.test.ts` run in headless Chromium: real IndexedDB, the Service Worker host.
        extends: true,
        test: {
          name: 'chromium',
          include: ['src/**/*.browser.test.ts', 'test/**/*.browser.test.ts'],
          browser: {
            enabled: true,
            headless: true,
            screenshotFailures: false,
            instances: [{ browser: 'chromium' }],
            provider: playwright({
              launchOptions: {
                executablePath: chromium(),
                // Playwright gives each launch a fresh temporary profile; nothing reaches past loopback.
                args: [...CHROMIUM_ARGS],
              },
            }),
          },
        },
      },
    ],
  },
});
