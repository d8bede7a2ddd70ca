/**
 * Reading the Matrix spec's OpenAPI YAML, shared by the scripts that derive the tables the
 * tests carry (spec-table.ts for the Client-Server API, spec-schemas.ts for the Server-Server
 * API): files read once each, `$ref`s followed (relative files and JSON pointers), every
 * operation of a folder listed, and the command line that writes a table.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parse } from 'yaml';

export type Obj = Record<string, unknown>;
export const isObj = (x: unknown): x is Obj => typeof x === 'object' && x !== null && !Array.isArray(x);

/** YAML files read once each; `target` is what a `$ref` written in `file` names. */
export function createYamlFiles() {
  const files = new Map<string, unknown>();
  const load = (file: string): unknown => {
    let doc = files.get(file);
    if (doc === undefined) {
      doc = parse(readFileSync(file, 'utf8')) as unknown;
      files.set(file, doc);
    }
    return doc;
  };
  const target = (ref: string, file: string): { node: unknown; file: string } => {
    const [path, pointer] = ref.split('#') as [string, string | undefined];
    const at = path === '' ? file : resolve(dirname(file), path);
    let node = load(at);
    for (const part of (pointer ?? '').split('/').filter(Boolean)) {
      node = isObj(node) ? node[part.replace(/~1/g, '/').replace(/~0/g, '~')] : undefined;
    }
    return { node, file: at };
  };
  /** Follow `$ref`s at the top of `node` (not inside it); returns the node and its file. */
  const deref = (node: unknown, file: string, depth = 0): { node: unknown; file: string } => {
    if (!isObj(node) || typeof node.$ref !== 'string' || depth > 20) return { node, file };
    const found = target(node.$ref, file);
    return deref(found.node, found.file, depth + 1);
  };
  return { load, target, deref };
}

export interface YamlOperation {
  /** The YAML file's name (`room_send.yaml`) and path. */
  name: string;
  file: string;
  /** Lower case, as OpenAPI writes it. */
  method: string;
  /** Full path template, base path included. The spec writes `"/rooms/{roomId}/invite "` (trailing
   * space) to give one path two operations; the server sees one path, so it is trimmed. */
  path: string;
  operationId: string;
  item: Obj;
  op: Obj;
}

/** Every operation of every top-level YAML in `specDir` (definitions/ holds only schemas). */
export function* yamlOperations(
  specDir: string,
  load: (file: string) => unknown,
  methods: readonly string[],
): Generator<YamlOperation> {
  for (const name of readdirSync(specDir)
    .filter((f) => f.endsWith('.yaml'))
    .sort()) {
    const file = join(specDir, name);
    const doc = load(file);
    if (!isObj(doc) || !isObj(doc.paths)) continue;
    const base =
      (doc.servers as { variables?: { basePath?: { default?: string } } }[] | undefined)?.[0]?.variables
        ?.basePath?.default ?? '';
    for (const [path, item] of Object.entries(doc.paths)) {
      if (!isObj(item)) continue;
      for (const method of methods) {
        const op = item[method];
        if (!isObj(op)) continue;
        const operationId = typeof op.operationId === 'string' ? op.operationId : `${method} ${path}`;
        yield { name, file, method, path: base + path.trim(), operationId, item, op };
      }
    }
  }
}

/** `--spec DIR --version V --out FILE`: reads the spec folder and writes the table as JSON. */
export function writeTableFromArgs(
  argv: readonly string[],
  defaults: { specDir: string; out: URL },
  read: (specDir: string, version: string) => { operations: readonly unknown[] },
): void {
  const arg = (name: string) => {
    const at = argv.indexOf(name);
    return at >= 0 ? argv[at + 1] : undefined;
  };
  const specDir = resolve(arg('--spec') ?? defaults.specDir);
  const table = read(specDir, arg('--version') ?? 'unknown');
  const out = arg('--out') ?? defaults.out;
  writeFileSync(out, `${JSON.stringify(table, null, 2)}\n`);
  console.log(`${table.operations.length} operations from ${specDir} written to ${String(out)}`);
}
