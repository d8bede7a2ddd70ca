import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { defineConfig, type InlineConfig, type Plugin } from 'vite';

/**
 * Hearth's builds. `npm run build` (scripts/build.ts) runs each of them, then the demo
 * (web/vite.config.ts) and the type declarations, and fails on any warning:
 *
 * - `libraryConfig` → `dist/lib/`: ESM for `hearth`, `hearth/core`, `hearth/page`, `hearth/sw`
 *   (the package's subpath exports). Dependencies stay imports (the app's bundler shares
 *   them); `node:` modules stay external and are reached only from Node-only entry points.
 * - `workerBundleConfig` → `dist/browser/hearth-sw.js`: the ready-made Service Worker script,
 *   one self-contained classic script (a worker loads no chunks, and classic scripts run as
 *   Service Workers in every browser), dependencies included, minified.
 * - `pageBundleConfig` → `dist/browser/hearth-page.js`: `registerHomeserver` as one ES module
 *   for pages without a bundler; the in-page fallback homeserver is a separate chunk that
 *   only pages without Service Workers load.
 *
 * `vite build` alone builds the library.
 */
const root = import.meta.dirname;
const src = (path: string) => resolve(root, 'src', path);
const packageJson = JSON.parse(readFileSync(resolve(root, 'package.json'), 'utf8')) as {
  dependencies?: Record<string, string>;
};
const dependencies = Object.keys(packageJson.dependencies ?? {});
/** The browsers Hearth targets: Service Workers with ES2023 (Chromium ≥ 110, Firefox ≥ 115, Safari ≥ 16.4). */
const target = 'es2023';
/**
 * Rolldown's slow-plugin notices measure the machine's load, not the code: on a busy CI box
 * they would make the no-warnings rule of `npm run build` a coin toss.
 */
const checks = { bundlerTimings: false };

export function libraryConfig(outDir = resolve(root, 'dist/lib')): InlineConfig {
  return {
    configFile: false,
    root,
    logLevel: 'warn',
    build: {
      target,
      outDir,
      emptyOutDir: true,
      sourcemap: true,
      minify: false,
      reportCompressedSize: false,
      lib: {
        entry: {
          index: src('index.ts'),
          core: src('core/index.ts'),
          page: src('hosts/page.ts'),
          sw: src('hosts/service-worker.ts'),
        },
        formats: ['es'],
      },
      rolldownOptions: {
        checks,
        external: (id) =>
          id.startsWith('node:') || dependencies.some((dep) => id === dep || id.startsWith(`${dep}/`)),
      },
    },
  };
}

/**
 * Packages every `hearth serve` loads, bundled into the CLI: resolving and loading a dozen
 * package files (and a CommonJS one through Node's CommonJS loader) costs more at each start
 * than parsing their code. The rest stay imports: loaded only when asked for (libp2p, sharp,
 * fake-indexeddb, YAML) or native.
 */
const CLI_BUNDLED = ['@noble/', 'fast-json-stable-stringify'];

/**
 * `cliConfig` → `dist/cli/cli.cjs`: the `hearth` command as one CommonJS file for Node, so
 * `hearth serve` starts without type-stripping a few hundred TypeScript files at each start
 * (`bin/hearth.js` builds it on demand). Package imports stay imports, but for `CLI_BUNDLED`.
 *
 * CommonJS, not an ES module, for two reasons measured at start-up: `require('node:fs')`
 * hands back the module, where an ES import of a built-in builds its facade by reading every
 * export, which loads what the lazy ones hide (`fs.ReadStream` loads Node's streams and
 * `fs/promises`); and a script can be run from a V8 code cache made after the start
 * (`bin/hearth.js`), holding every function the start compiled, which Node's compile cache
 * of an ES module (made before it runs) does not.
 */
export function cliConfig(outDir = resolve(root, 'dist/cli'), plugins: Plugin[] = []): InlineConfig {
  return {
    configFile: false,
    root,
    logLevel: 'warn',
    plugins,
    // `if (import.meta.main)` runs `node src/hosts/cli.ts` from the sources; the build is run by bin/hearth.js.
    define: { 'import.meta.main': 'false' },
    // Vite's SSR build leaves packages out unless named here.
    ssr: { noExternal: CLI_BUNDLED.map((name) => new RegExp(`^${name}`)) },
    build: {
      target: 'node22',
      outDir,
      emptyOutDir: true,
      minify: false,
      sourcemap: true,
      reportCompressedSize: false,
      ssr: true,
      rolldownOptions: {
        checks,
        input: { cli: src('hosts/cli.ts') },
        // ASCII only (other characters escaped): Node reads a pure-ASCII module as a one-byte
        // string, where one em dash in a comment would make it decode and keep the whole
        // file as UTF-16 — a fifth of the start-up's module loading.
        // Minified, names kept (stack traces still name functions; `node --enable-source-maps`
        // maps them back to the sources through the map beside the build): a third less code to
        // load, compile and keep at each start, -1.2 MB idle RSS, -18 ms of start-up CPU.
        output: {
          format: 'cjs',
          entryFileNames: '[name].cjs',
          chunkFileNames: 'assets/[name]-[hash].cjs',
          // Everything a start runs in the one file the code cache covers: left to itself, the
          // bundler puts what the entry shares with the P2P chunks (core crypto, noble) in a
          // chunk of its own, loaded by `require` at every start.
          codeSplitting: { groups: [{ name: 'cli', tags: ['$initial'] }] },
          // `import('sharp')` as `require`: bin/hearth.js runs the build as a script, where
          // `import()` would need Node's experimental vm loader (an ExperimentalWarning).
          dynamicImportInCjs: false,
          charset: 'ascii',
          comments: { jsdoc: false },
          minify: { compress: true, mangle: { keepNames: true }, codegen: { removeWhitespace: true } },
        },
        external: (id) =>
          id.startsWith('node:') || (!/^[./\0]/.test(id) && !CLI_BUNDLED.some((name) => id.startsWith(name))),
      },
    },
  };
}

export interface BundleOptions {
  outDir?: string;
  /** The worker script; default the ready-made one (`src/hosts/service-worker-script.ts`). */
  entry?: string;
  /** The file name in `outDir`; default `hearth-sw.js`. */
  fileName?: string;
  plugins?: Plugin[];
  /** Leave `outDir`'s other files alone (several bundles share one directory). */
  keepOutDir?: boolean;
}

/** The size (minified, KB) past which a bundle of the whole homeserver is reported as too big. */
const WHOLE_HOMESERVER_KB = 1024;

export function workerBundleConfig(options: BundleOptions = {}): InlineConfig {
  const fileName = options.fileName ?? 'hearth-sw.js';
  return {
    configFile: false,
    root,
    logLevel: 'warn',
    plugins: options.plugins ?? [],
    build: {
      target,
      outDir: options.outDir ?? resolve(root, 'dist/browser'),
      emptyOutDir: !options.keepOutDir,
      sourcemap: true,
      minify: true,
      reportCompressedSize: false,
      // The worker is the whole homeserver — client API, E2EE, media, sliding sync and the
      // federation client (~160 KB gzipped); `npm run build` prints its size to watch.
      chunkSizeWarningLimit: WHOLE_HOMESERVER_KB,
      lib: {
        entry: options.entry ?? src('hosts/service-worker-script.ts'),
        formats: ['iife'],
        name: 'hearthServiceWorker',
        fileName: () => fileName,
      },
      rolldownOptions: { checks },
    },
  };
}

export function pageBundleConfig(options: BundleOptions = {}): InlineConfig {
  return {
    configFile: false,
    root,
    logLevel: 'warn',
    plugins: options.plugins ?? [],
    build: {
      target,
      outDir: options.outDir ?? resolve(root, 'dist/browser'),
      emptyOutDir: !options.keepOutDir,
      sourcemap: true,
      // Not library mode: that keeps ES output's whitespace for the app's bundler; this one is
      // served to browsers as it is.
      minify: true,
      modulePreload: false,
      reportCompressedSize: false,
      // Its fallback chunk is the same homeserver, run in the page when no worker can be.
      chunkSizeWarningLimit: WHOLE_HOMESERVER_KB,
      rolldownOptions: {
        checks,
        input: { 'hearth-page': options.entry ?? src('hosts/page.ts') },
        preserveEntrySignatures: 'exports-only',
        output: { format: 'es', entryFileNames: '[name].js', chunkFileNames: 'hearth-[name]-[hash].js' },
      },
    },
  };
}

export default defineConfig(libraryConfig());
