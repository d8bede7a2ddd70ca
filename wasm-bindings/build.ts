/**
 * Builds the homeserver as a WASI 0.2 HTTP component into a folder the caller owns:
 *
 *   node wasm-bindings/build.ts OUT_DIR [hearth|hello]   → OUT_DIR/hearth.wasm (prints a JSON summary)
 *
 * 1. `src/hosts/wasi.ts` bundled into one ES module (scripts/edge-build.ts), the host interface
 *    and `wasi:` imports left to the component model.
 * 2. The WIT: `wit/world.wit` from this folder, and its `wasi:` dependencies pinned to 0.2.10
 *    (the version StarlingMonkey, componentize-js's engine, exports and imports): written from
 *    the WASI packages jco ships (0.2.12; the 0.2 interfaces these use are unchanged since
 *    0.2.0) with the version rewritten, so no copy of them is committed.
 * 3. componentize-js on the bundle and the world `hearth`.
 */
import { spawn } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
/** The wasi:http version StarlingMonkey (componentize-js 0.23) is built against. */
export const WASI_VERSION = '0.2.10';
const WASI_PACKAGES = ['cli', 'clocks', 'filesystem', 'http', 'io', 'random', 'sockets'];

export interface ComponentBuild {
  wasm: string;
  bytes: number;
  bundleBytes: number;
  ms: number;
}

function writeWit(outDir: string): string {
  const wit = join(outDir, 'wit');
  mkdirSync(join(wit, 'deps'), { recursive: true });
  cpSync(join(import.meta.dirname, 'wit', 'world.wit'), join(wit, 'world.wit'));
  const builtin = join(root, 'node_modules/@bytecodealliance/jco/lib/wit/builtin');
  for (const name of WASI_PACKAGES) {
    const text = readFileSync(join(builtin, '0.2.12', `wasi-${name}`, 'package.wit'), 'utf8');
    mkdirSync(join(wit, 'deps', name), { recursive: true });
    writeFileSync(join(wit, 'deps', name, 'package.wit'), text.replaceAll('@0.2.12', `@${WASI_VERSION}`));
  }
  return wit;
}

/** What can be built: the homeserver, or the bare handler the benchmarks compare it with. */
const COMPONENTS = {
  hearth: { entry: 'src/hosts/wasi.ts', world: 'hearth' },
  hello: { entry: 'wasm-bindings/hello.ts', world: 'hello' },
} as const;
export type ComponentName = keyof typeof COMPONENTS;

async function build(outDir: string, name: ComponentName): Promise<ComponentBuild> {
  const started = performance.now();
  mkdirSync(outDir, { recursive: true });
  const { bundleEdge } = await import('../scripts/edge-build.ts');
  const bundle = await bundleEdge(COMPONENTS[name].entry, outDir, `${name}-bundle`, {
    external: (id) => id.startsWith('hearth:') || id.startsWith('wasi:'),
  });
  const witPath = writeWit(outDir);
  const { componentize } = await import('@bytecodealliance/componentize-js');
  const { component } = await componentize({
    sourcePath: bundle.file,
    witPath,
    worldName: COMPONENTS[name].world,
  });
  const wasm = join(outDir, `${name}.wasm`);
  writeFileSync(wasm, component);
  return { wasm, bytes: statSync(wasm).size, bundleBytes: bundle.bytes, ms: performance.now() - started };
}

/** Builds in a child process (the resolve hook stays out of the caller's process). */
export function buildComponent(outDir: string, name: ComponentName = 'hearth'): Promise<ComponentBuild> {
  return new Promise((resolveBuild, reject) => {
    const child = spawn(join(root, 'node_modules/.bin/node'), [import.meta.filename, outDir, name], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    child.once('exit', (code) => {
      const line = out.trim().split('\n').at(-1) ?? '';
      if (code === 0 && line.startsWith('{')) resolveBuild(JSON.parse(line) as ComponentBuild);
      else reject(new Error(`the component build failed (${code}):\n${out}`));
    });
  });
}

if (import.meta.main) {
  const [outDir, name = 'hearth'] = process.argv.slice(2);
  if (!outDir || !(name in COMPONENTS)) {
    process.stderr.write('usage: node wasm-bindings/build.ts OUT_DIR [hearth|hello]\n');
    process.exit(2);
  }
  process.stdout.write(`${JSON.stringify(await build(resolve(outDir), name as ComponentName))}\n`);
}
