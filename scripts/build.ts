/**
 * `npm run build`: every build of vite.config.ts, the demo (web/vite.config.ts) and the type
 * declarations, into dist/. Fails on any warning, and when the Service Worker bundle holds a
 * module it must not (page-only or Node-only code); prints each bundle's gzipped size.
 *
 *   node scripts/build.ts            everything
 *   node scripts/build.ts browser    only the worker and page bundles (what the browser tests use)
 *   node scripts/build.ts cli        only dist/cli/cli.cjs (what `bin/hearth.js` runs; it calls `buildCli`)
 *
 * The browser tests and `npm run bench` call `buildBrowserBundles` directly.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { build, type InlineConfig, type Plugin } from 'vite';
import { cliConfig, libraryConfig, pageBundleConfig, workerBundleConfig } from '../vite.config.ts';

const root = resolve(import.meta.dirname, '..');

/** Records the source modules rendered into each output file (for the checks below). */
function recordModules(into: Map<string, string[]>): Plugin {
  return {
    name: 'hearth-record-modules',
    generateBundle(_options, bundle) {
      for (const [fileName, output] of Object.entries(bundle)) {
        if (output.type === 'chunk') into.set(fileName, Object.keys(output.modules));
      }
    },
  };
}

/**
 * Modules the worker bundle must never contain: the page's code, libp2p (it runs in the
 * leader tab: a worker has no WebRTC), and anything of Node's (the worker has no `node:`
 * modules, and the browser's IndexedDB replaces fake-indexeddb and SQLite).
 */
const WORKER_FORBIDDEN: readonly [RegExp, string][] = [
  [/src\/hosts\/page(-fallback)?\.ts$/, 'page-only code'],
  [
    /src\/transport\/bridge\/(leader|tab|election|status|libp2p-leader)\.ts$/,
    "the leader tab's side of the bridge",
  ],
  [/src\/transport\/libp2p\//, 'libp2p (the leader tab runs it)'],
  [/node_modules\/(libp2p|@libp2p\/|@chainsafe\/|@multiformats\/)/, 'libp2p (the leader tab runs it)'],
  [/^node:|\0node:/, 'a Node built-in'],
  [/fake-indexeddb/, 'fake-indexeddb (Node test store)'],
  [/src\/storage\/sqlite\//, 'the SQLite backend'],
  [/src\/hosts\/(node|cli)\.ts$/, 'a Node host'],
  [/web\/server\.ts$/, "the demo's Node file server"],
];

export function forbiddenWorkerModules(modules: readonly string[]): string[] {
  const found: string[] = [];
  for (const id of modules) {
    const rel = relative(root, id.replace(/^\0/, ''));
    for (const [pattern, what] of WORKER_FORBIDDEN)
      if (pattern.test(rel) || pattern.test(id)) found.push(`${rel}: ${what}`);
  }
  return found;
}

export interface BrowserBundles {
  outDir: string;
  worker: string;
  page: string;
  /** Source modules per output file name. */
  modules: Map<string, string[]>;
}

/** Runs one vite build; resolves with the warnings it logged (vite logs through console). */
async function quietBuild(config: InlineConfig): Promise<string[]> {
  const warnings: string[] = [];
  const { warn, error } = console;
  console.warn = (...args: unknown[]) => {
    warnings.push(args.map(String).join(' '));
    warn(...args);
  };
  console.error = (...args: unknown[]) => {
    warnings.push(args.map(String).join(' '));
    error(...args);
  };
  try {
    await build(config);
  } finally {
    console.warn = warn;
    console.error = error;
  }
  return warnings;
}

/**
 * The Service Worker bundle (`hearth-sw.js`, or `workerFileName`) and the page bundle
 * (`hearth-page.js` + its fallback chunk) into `outDir`. Throws on a warning or a module the
 * worker must not carry.
 */
export async function buildBrowserBundles(
  outDir = join(root, 'dist/browser'),
  options: { workerEntry?: string; workerFileName?: string } = {},
): Promise<BrowserBundles> {
  const modules = new Map<string, string[]>();
  const worker = options.workerFileName ?? 'hearth-sw.js';
  const warnings = [
    ...(await quietBuild(
      workerBundleConfig({
        outDir,
        fileName: worker,
        plugins: [recordModules(modules)],
        ...(options.workerEntry ? { entry: options.workerEntry } : {}),
      }),
    )),
    ...(await quietBuild(pageBundleConfig({ outDir, keepOutDir: true, plugins: [recordModules(modules)] }))),
  ];
  if (warnings.length > 0)
    throw new Error(`the browser bundles built with warnings:\n${warnings.join('\n')}`);
  const bad = forbiddenWorkerModules(modules.get(worker) ?? []);
  if (bad.length > 0) throw new Error(`the worker bundle carries modules it must not:\n${bad.join('\n')}`);
  return { outDir, worker: join(outDir, worker), page: join(outDir, 'hearth-page.js'), modules };
}

export function gzipSize(path: string): number {
  return gzipSync(readFileSync(path)).byteLength;
}

function files(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .map((f) => join(dir, f))
    .filter((f) => statSync(f).isFile() && !f.endsWith('.map'));
}

function table(rows: [string, number, number][]): void {
  const kb = (n: number) => `${(n / 1024).toFixed(1)} KB`;
  for (const [name, raw, gz] of rows)
    console.log(`  ${name.padEnd(48)} ${kb(raw).padStart(10)} ${kb(gz).padStart(10)} gz`);
}

/**
 * The list of source files a CLI build was made from, beside it (one path a line, relative to
 * the repository): `bin/hearth.js` compares their modification times with the build's instead
 * of walking `src/` at each start. A file added later counts once a listed file imports it,
 * and that edit is newer than the build.
 */
export const CLI_SOURCES = 'sources.txt';

/**
 * Builds `dist/cli/cli.cjs` (vite.config.ts `cliConfig`) and its list of sources beside it,
 * then moves the directory in place, so a `hearth` started meanwhile finds either the old
 * build or the new one, never half of one.
 */
export async function buildCli(): Promise<string> {
  const dir = join(root, 'dist/cli');
  const building = `${dir}.${process.pid}.tmp`;
  const modules = new Map<string, string[]>();
  const warnings = await quietBuild(cliConfig(building, [recordModules(modules)]));
  if (warnings.length > 0) throw new Error(`the CLI build logged ${warnings.length} warning(s); fix them`);
  const sources = new Set<string>();
  for (const ids of modules.values()) {
    for (const id of ids) {
      const rel = relative(root, id.replace(/^\0/, '').split('?')[0] as string);
      if (!rel.startsWith('..') && !rel.startsWith('node_modules') && existsSync(join(root, rel)))
        sources.add(rel);
    }
  }
  writeFileSync(join(building, CLI_SOURCES), `${[...sources].sort().join('\n')}\n`);
  rmSync(dir, { recursive: true, force: true });
  renameSync(building, dir);
  return join(dir, 'cli.cjs');
}

async function main(what: string | undefined): Promise<void> {
  const started = performance.now();
  const dist = join(root, 'dist');
  if (what === 'cli') {
    console.log(`Built ${relative(root, await buildCli())}`);
    return;
  }
  await buildCli();
  const bundles = await buildBrowserBundles(join(dist, 'browser'));
  if (what !== 'browser') {
    const warnings = await quietBuild(libraryConfig(join(dist, 'lib')));
    const demo = join(root, 'web/vite.config.ts');
    if (existsSync(demo)) warnings.push(...(await quietBuild({ configFile: demo, logLevel: 'warn' })));
    if (warnings.length > 0) throw new Error(`the build logged ${warnings.length} warning(s); fix them`);
    const tsc = spawnSync(
      process.execPath,
      [join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'],
      {
        cwd: root,
        encoding: 'utf8',
      },
    );
    if (tsc.status !== 0) throw new Error(`type declarations failed:\n${tsc.stdout}${tsc.stderr}`);
  }
  console.log(`Built in ${((performance.now() - started) / 1000).toFixed(1)} s:`);
  const rows: [string, number, number][] = [];
  for (const dir of ['browser', 'lib', 'web', 'cli'].map((d) => join(dist, d)).filter(existsSync)) {
    for (const file of files(dir)) {
      if (!/\.(c?js|css|html)$/.test(file)) continue;
      rows.push([relative(root, file), statSync(file).size, gzipSize(file)]);
    }
  }
  table(rows);
  const workerModules = bundles.modules.get('hearth-sw.js') ?? [];
  console.log(`  worker bundle: ${workerModules.length} modules, none page-only or Node-only`);
}

if (import.meta.main) {
  main(process.argv[2]).catch((error: Error) => {
    console.error(error.message);
    process.exitCode = 1;
  });
}
