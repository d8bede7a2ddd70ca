#!/usr/bin/env node
/**
 * The `hearth` command as installed (`bin` in package.json) and as `npm run hearth` runs it:
 * built JavaScript (`dist/cli/cli.js`), so a start does not type-strip the TypeScript
 * sources. In a clone the build is made on demand: when it is missing, or older than one of
 * the source files it was built from (listed beside it in `dist/cli/sources.txt`),
 * `scripts/build.ts` rebuilds it first; a published package carries the build and no sources.
 *
 * Reading that list and stat-ing its files costs less at each start than walking `src/`
 * (the walk's directory reads alone cost 5 MB of resident memory, for as long as the server
 * runs). Node's compile cache (in the system's temporary directory, outside the repository;
 * NODE_COMPILE_CACHE chooses another, NODE_DISABLE_COMPILE_CACHE=1 turns it off) keeps V8's
 * compiled code of the build between starts.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { enableCompileCache, flushCompileCache } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const root = join(import.meta.dirname, '..');
const built = join(root, 'dist/cli/cli.js');

/** Whether the build is missing or older than a source file it was made from (clones only). */
function stale() {
  const builtTime = statSync(built, { throwIfNoEntry: false })?.mtimeMs;
  if (builtTime === undefined) return true;
  if (!existsSync(join(root, 'src'))) return false; // a published package: the build is all there is
  let list;
  try {
    list = readFileSync(join(root, 'dist/cli/sources.txt'), 'utf8');
  } catch {
    return true; // a build from before the list existed
  }
  for (const file of list.split('\n')) {
    if (file === '') continue;
    // A listed file gone (renamed, deleted) changes what the build would hold too.
    const time = statSync(join(root, file), { throwIfNoEntry: false })?.mtimeMs ?? Number.POSITIVE_INFINITY;
    if (time > builtTime) return true;
  }
  return false;
}

enableCompileCache?.();
let cli;
if (stale()) {
  process.stderr.write('hearth: building dist/cli/cli.js from the sources (once per change)…\n');
  const { buildCli } = await import('../scripts/build.ts');
  await buildCli();
  cli = await import(`${pathToFileURL(built).href}?built=${statSync(built).mtimeMs}`);
} else {
  cli = await import(pathToFileURL(built).href);
}
// Now, not at exit: a server is usually stopped by a signal, and a killed one writes nothing.
flushCompileCache?.();
process.exitCode = await cli.main(process.argv.slice(2));
