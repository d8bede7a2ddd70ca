#!/usr/bin/env node
/**
 * The `hearth` command as installed (`bin` in package.json) and as `npm run hearth` runs it:
 * built JavaScript (`dist/cli/cli.cjs`), so a start does not type-strip the TypeScript
 * sources. In a clone the build is made on demand: when it is missing, or older than one of
 * the source files it was built from (listed beside it in `dist/cli/sources.txt`),
 * `scripts/build.ts` rebuilds it first; a published package carries the build and no sources.
 *
 * Reading that list and stat-ing its files costs less at each start than walking `src/`
 * (the walk's directory reads alone cost 5 MB of resident memory, for as long as the server
 * runs).
 *
 * The build runs from a V8 code cache kept beside it (`dist/cli/cli.cjs.<node>-<build>.cache`),
 * made shortly after a command has started: it holds the compiled code of every function the
 * start ran, so the next start compiles almost nothing. Node's own compile cache (in the
 * system's temporary directory; it serves the build's chunks loaded later) is made before a
 * module runs and holds little more than its top level. NODE_DISABLE_COMPILE_CACHE=1 turns
 * both off; `node --enable-source-maps` loads the build through `require`, whose stack traces
 * Node maps back to the sources.
 */

// An older Node (a system's Node 20, say) would fail further on with an error about the build
// or a missing built-in, naming neither the cause nor the fix.
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 12)) {
  process.stderr.write(
    `hearth needs Node 22.12 or later; this is Node ${process.versions.node}.\n` +
      'In a clone, `npm run hearth -- serve …` runs it with the Node 24 that `npm install` brought.\n',
  );
  process.exit(1);
}

// Built-ins through process.getBuiltinModule (Node ≥ 22.3), not `import`: an ES import of a
// built-in makes its module facade by reading every export, and node:fs's lazy exports then
// load its streams and fs/promises at every start.
const builtin = process.getBuiltinModule ?? (await import('node:module')).createRequire(import.meta.url);
const { existsSync, readFileSync, renameSync, statSync, writeFileSync } = builtin('node:fs');
const Module = builtin('node:module');
const { createRequire, enableCompileCache, flushCompileCache } = Module;
const { dirname } = builtin('node:path');
const vm = builtin('node:vm');

// Paths by concatenation: path.join normalizes each one, which a few hundred times costs a
// millisecond or two of every start; these are already clean.
const root = dirname(import.meta.dirname);
const built = `${root}/dist/cli/cli.cjs`;

/** Whether the build is missing or older than a source file it was made from (clones only). */
function stale() {
  const builtTime = statSync(built, { throwIfNoEntry: false })?.mtimeMs;
  if (builtTime === undefined) return true;
  if (!existsSync(`${root}/src`)) return false; // a published package: the build is all there is
  let list;
  try {
    list = readFileSync(`${root}/dist/cli/sources.txt`, 'utf8');
  } catch {
    return true; // a build from before the list existed
  }
  for (const file of list.split('\n')) {
    if (file === '') continue;
    // A listed file gone (renamed, deleted) changes what the build would hold too.
    const time = statSync(`${root}/${file}`, { throwIfNoEntry: false })?.mtimeMs ?? Number.POSITIVE_INFINITY;
    if (time > builtTime) return true;
  }
  return false;
}

/**
 * Runs the CommonJS build as Node's `require` would, but compiled with the code cache when
 * there is one for this very file (its inode and time in the cache's name: a rebuild is a new
 * file, and V8 itself only checks the source's length) and this Node. `saveCache` writes the
 * cache when there was none or V8 refused it, from what has been compiled so far.
 */
function load(file) {
  if (process.sourceMapsEnabled || process.env.NODE_DISABLE_COMPILE_CACHE) {
    return { cli: createRequire(import.meta.url)(file), saveCache() {} };
  }
  // Its inode and time name the cache (stat-ed first: a build replaced in between leaves a
  // cache named after the old file, which no later start looks for).
  const { ino, mtimeMs } = statSync(file);
  const cacheFile = `${file}.${process.version}-${process.arch}-${ino}-${mtimeMs}.cache`;
  // ASCII only: Node's UTF-8 read makes it a one-byte string without a Buffer in between.
  const source = readFileSync(file, 'utf8');
  let cachedData;
  try {
    cachedData = readFileSync(cacheFile);
  } catch {
    // none yet
  }
  // The wrapper on lines of its own, `lineOffset` taking them back: positions in stack traces
  // are the file's. A `#!` line becomes a comment of the same length.
  const body = source.startsWith('#!') ? `//${source.slice(2)}` : source;
  const script = new vm.Script(`(function (exports, require, module, __filename, __dirname) {\n${body}\n})`, {
    filename: file,
    lineOffset: -1,
    cachedData,
  });
  // A module of Node's own, in require's cache: the chunks loaded later (P2P, the relay)
  // `require('../cli.cjs')` and must find this one, not load a second copy.
  const module = new Module(file);
  module.filename = file;
  createRequire(file).cache[file] = module;
  script.runInThisContext()(module.exports, createRequire(file), module, file, dirname(file));
  module.loaded = true;
  // The closure below keeps what it names alive as long as the server runs: not the cache's
  // bytes (0.7 MB), which V8 has read by now.
  const cacheTaken = cachedData !== undefined && !script.cachedDataRejected;
  cachedData = undefined;
  const saveCache = () => {
    if (cacheTaken) return;
    const temporary = `${cacheFile}.${process.pid}.tmp`;
    try {
      writeFileSync(temporary, script.createCachedData());
      renameSync(temporary, cacheFile); // whole or not at all, whoever else writes it
    } catch {
      // A read-only installation: every start compiles what it runs, as before.
    }
  };
  return { cli: module.exports, saveCache };
}

enableCompileCache?.();
if (stale()) {
  process.stderr.write('hearth: building dist/cli/cli.cjs from the sources (once per change)…\n');
  // In a process of its own: the bundler's modules and heap (some 250 MB) would otherwise stay
  // resident for as long as the server this process goes on to run. Its output goes to stderr,
  // so a command's own output stays alone on stdout.
  const build = builtin('node:child_process').spawnSync(
    process.execPath,
    [`${root}/scripts/build.ts`, 'cli'],
    {
      stdio: ['ignore', 2, 2],
    },
  );
  if (build.status !== 0) {
    process.stderr.write(
      `hearth: the build failed (${build.error?.message ?? `exit ${build.status ?? build.signal}`})\n`,
    );
    process.exit(1);
  }
}
const { cli, saveCache } = load(built);
// Now, not at exit: a server is usually stopped by a signal, and a killed one writes nothing.
flushCompileCache?.();
process.exitCode = await cli.main(process.argv.slice(2), {
  // Half a second on, the first requests have compiled what they run too.
  onStarted: () => setTimeout(saveCache, 500).unref(),
});
