/**
 * Bundles for the edge hosts, made at test and bench time into a folder the caller owns
 * (nothing generated is committed): one self-contained ES module per entry, every dependency
 * inlined, checked to hold no Node-only or libp2p module (the edge hosts federate over HTTPS
 * only). Used by test/edge/*.test.ts, bench/edge.ts and wasm-bindings/build.ts.
 */
import { statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { build, type Plugin } from 'vite';

const root = resolve(import.meta.dirname, '..');

/** What no edge bundle may hold: a module of Node's, a Node host, libp2p, fake-indexeddb. */
const EDGE_FORBIDDEN: readonly [RegExp, string][] = [
  [/^node:|\0node:/, 'a Node built-in'],
  [/src\/hosts\/(node|cli|thumbnailer-node)\.ts$/, 'a Node host'],
  [/src\/storage\/sqlite\/index\.ts$/, 'the node:sqlite driver'],
  [/src\/transport\/https\/node\.ts$/, 'the Node HTTPS transport'],
  [/libp2p|src\/transport\/libp2p\//, 'libp2p (edge hosts federate over HTTPS only)'],
  [/fake-indexeddb/, 'fake-indexeddb'],
];

export interface EdgeBundle {
  /** The bundle's path. */
  file: string;
  bytes: number;
  /** Source modules in it (repository-relative where inside the repository). */
  modules: string[];
}

/**
 * Bundles `entry` (a repository-relative path) into `outDir/<name>.js`. `external` keeps
 * imports a runtime provides (`node:sqlite` for Deno and Bun, the component's `wasi:` and
 * host interfaces). Throws when the bundle holds a forbidden module not in `allow`.
 */
export async function bundleEdge(
  entry: string,
  outDir: string,
  name: string,
  options: { external?: (id: string) => boolean; allow?: readonly RegExp[]; minify?: boolean } = {},
): Promise<EdgeBundle> {
  let modules: string[] = [];
  const record: Plugin = {
    name: 'hearth-edge-modules',
    generateBundle(_options, bundle) {
      for (const output of Object.values(bundle))
        if (output.type === 'chunk') modules.push(...Object.keys(output.modules));
    },
  };
  await build({
    configFile: false,
    root,
    logLevel: 'error',
    plugins: [record],
    build: {
      target: 'es2023',
      outDir,
      emptyOutDir: false,
      minify: options.minify ?? false,
      reportCompressedSize: false,
      lib: { entry: resolve(root, entry), formats: ['es'], fileName: () => `${name}.js` },
      rolldownOptions: {
        checks: { bundlerTimings: false },
        external: options.external ?? (() => false),
        output: { codeSplitting: false },
      },
    },
  });
  modules = modules.map((id) => {
    const clean = id.replace(/^\0/, '');
    return clean.startsWith(root) ? relative(root, clean) : clean;
  });
  const found: string[] = [];
  for (const id of modules)
    for (const [pattern, what] of EDGE_FORBIDDEN)
      if (pattern.test(id) && !options.allow?.some((ok) => ok.test(id))) found.push(`${id}: ${what}`);
  if (found.length > 0) throw new Error(`the ${name} bundle holds modules it must not:\n${found.join('\n')}`);
  const file = join(outDir, `${name}.js`);
  return { file, bytes: statSync(file).size, modules };
}

/** The Cloudflare Workers bundle: the Worker and its Durable Object class. */
export function bundleWorkerd(outDir: string): Promise<EdgeBundle> {
  return bundleEdge('src/hosts/workers.ts', outDir, 'hearth-workerd');
}
