import { resolve } from 'node:path';
import { build, defineConfig, type Plugin } from 'vite';
import { workerBundleConfig } from '../vite.config.ts';

/**
 * The demo app build: `web/` → `dist/web/` (index.html + hashed assets), then the Service
 * Worker (web/sw.ts) as one self-contained `dist/web/sw.js` through the library's worker
 * build: a worker script loads no chunks, and keeps a stable, uncached name at the origin's
 * root, where browsers look for its updates and from where it may control every page.
 *
 *   vite build --config web/vite.config.ts [--outDir DIR]
 */
function serviceWorker(): Plugin {
  let outDir = '';
  return {
    name: 'hearth-demo-service-worker',
    apply: 'build',
    configResolved(config) {
      outDir = resolve(config.root, config.build.outDir);
    },
    async closeBundle() {
      await build(
        workerBundleConfig({
          entry: resolve(import.meta.dirname, 'sw.ts'),
          outDir,
          fileName: 'sw.js',
          keepOutDir: true,
        }),
      );
    },
  };
}

export default defineConfig({
  root: import.meta.dirname,
  base: '/',
  build: {
    target: 'es2023',
    outDir: resolve(import.meta.dirname, '../dist/web'),
    emptyOutDir: true,
    sourcemap: true,
    // matrix-js-sdk is one ~720 kB chunk (minified; ~215 kB gzipped), loaded once and cached
    // (hashed name). Splitting it would not make the first load smaller.
    chunkSizeWarningLimit: 800,
    // Slow-plugin notices measure the machine's load, not the code: on a busy CI box they
    // would turn `npm run build`'s no-warnings rule into a coin toss.
    rolldownOptions: { checks: { bundlerTimings: false } },
  },
  plugins: [serviceWorker()],
});
