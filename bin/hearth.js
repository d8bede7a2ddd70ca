#!/usr/bin/env node
/**
 * The `hearth` command as installed (`bin` in package.json) and as `npm run hearth` runs it:
 * built JavaScript (`dist/cli/cli.js`), so a start does not type-strip the TypeScript
 * sources. In a clone the build is made on demand: when it is missing or older than a source
 * file (a walk of `src/`, a few milliseconds), `scripts/build.ts` rebuilds it first; a
 * published package carries the build and no sources.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
const built = join(root, 'dist/cli/cli.js');
const sources = join(root, 'src');

/** The newest modification time of a TypeScript source under `dir` (tests excluded). */
function newestSource(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(path));
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts'))
      newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

const stale = !existsSync(built) || (existsSync(sources) && newestSource(sources) > statSync(built).mtimeMs);
if (stale) {
  process.stderr.write('hearth: building dist/cli/cli.js from the sources (once per change)…\n');
  const { buildCli } = await import('../scripts/build.ts');
  await buildCli();
}
const { main } = await import(built);
process.exitCode = await main(process.argv.slice(2));
