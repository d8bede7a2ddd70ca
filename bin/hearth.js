#!/usr/bin/env node
/**
 * The `hearth` command as installed (`bin` in package.json) and as `npm run hearth` runs it:
 * built JavaScript (`dist/cli/cli.js`), so a start does not type-strip the TypeScript
 * sources. In a clone the build is made on demand: when it is missing or older than a source
 * file (a walk of `src/`), `scripts/build.ts` rebuilds it first; a published package carries
 * the build and no sources.
 *
 * The walk's file system calls run in Node's thread pool while the build loads (most of a
 * start): when the sources turn out newer, the fresh build is loaded in its place.
 */
import { existsSync, statSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const root = join(import.meta.dirname, '..');
const built = join(root, 'dist/cli/cli.js');
const sources = join(root, 'src');

/** The newest modification time of a TypeScript source under `dir` (tests excluded). */
async function newestSource(dir) {
  const times = await Promise.all(
    (await readdir(dir, { withFileTypes: true })).map((entry) => {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) return newestSource(path);
      if (entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts'))
        return stat(path).then((s) => s.mtimeMs);
      return 0;
    }),
  );
  return Math.max(0, ...times);
}

const builtTime = existsSync(built) ? statSync(built).mtimeMs : undefined;
const newest = existsSync(sources) ? newestSource(sources) : Promise.resolve(0);
// Loading starts now; a failed load is only reported when that build is the one used.
const loading = builtTime === undefined ? undefined : import(pathToFileURL(built).href);
loading?.catch(() => undefined);
let cli;
if (builtTime === undefined || (await newest) > builtTime) {
  process.stderr.write('hearth: building dist/cli/cli.js from the sources (once per change)…\n');
  const { buildCli } = await import('../scripts/build.ts');
  await buildCli();
  cli = await import(`${pathToFileURL(built).href}?built=${statSync(built).mtimeMs}`);
} else {
  cli = await loading;
}
process.exitCode = await cli.main(process.argv.slice(2));
