/**
 * The spec's Server-Server API as data the tests can carry: for each operation of the Matrix
 * spec's OpenAPI files (`data/api/server-server/*.yaml`), its method, path and the JSON schemas
 * of its request body and of each response, every `$ref` resolved inline (a recursive schema
 * is cut at its second appearance on one path and left open). Prose (`description`, `title`)
 * is dropped: the table holds the shape of the wire format, which is a fact about the API.
 *
 * The committed table (`test/data/spec/server-server.json`) is what the federation wire-format
 * tests validate bodies against, so a clone runs them with no copy of the spec beside it.
 *
 *   npm run spec:schemas -- --spec ../shared/matrix-spec/data/api/server-server --version v1.19
 */
import { readFileSync } from 'node:fs';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import { parseJson } from '../src/core/json.ts';
import { createYamlFiles, isObj, type Obj, writeTableFromArgs, yamlOperations } from './spec-yaml.ts';

export interface SchemaOperation {
  operationId: string;
  file: string;
  method: string;
  /** Full path template, base path included: `/_matrix/federation/v1/send/{txnId}`. */
  path: string;
  /** The request body's JSON schema, when the operation takes one. */
  request?: unknown;
  /** Each response's JSON schema by status code (`"200"`), when it has a JSON body. */
  responses: Record<string, unknown>;
}

export interface SchemaTable {
  source: { spec: string; version: string; licence: string; files: string };
  operations: SchemaOperation[];
}

export const SERVER_SERVER_TABLE = new URL('../test/data/spec/server-server.json', import.meta.url);

export function readSchemaTable(file: URL | string = SERVER_SERVER_TABLE): SchemaTable {
  return parseJson(readFileSync(file, 'utf8'), { loneSurrogates: 'allow' }) as SchemaTable;
}

/** Keywords that carry prose or examples, not shape. */
const DROPPED = new Set([
  'description',
  'title',
  'example',
  'examples',
  'x-addedInMatrixVersion',
  'x-changedInMatrixVersion',
]);

function createInliner() {
  const { load, target } = createYamlFiles();
  /** `node` with every `$ref` replaced by what it names; `seen` guards recursion. */
  const inline = (node: unknown, file: string, seen: readonly string[] = []): unknown => {
    if (Array.isArray(node)) return node.map((x) => inline(x, file, seen));
    if (!isObj(node)) return node;
    if (typeof node.$ref === 'string') {
      const { node: found, file: at } = target(node.$ref, file);
      const key = `${at}#${node.$ref.split('#')[1] ?? ''}`;
      if (seen.includes(key)) return {};
      const rest = Object.fromEntries(Object.entries(node).filter(([k]) => k !== '$ref'));
      const resolved = inline(found, at, [...seen, key]);
      return Object.keys(rest).length > 0 && isObj(resolved)
        ? { ...resolved, ...(inline(rest, file, seen) as Obj) }
        : resolved;
    }
    const out: Obj = {};
    for (const [k, v] of Object.entries(node)) {
      if (DROPPED.has(k)) continue;
      // Under `properties` / `patternProperties` the keys are names, not keywords.
      if (k === 'properties' || k === 'patternProperties') {
        out[k] = Object.fromEntries(
          Object.entries(isObj(v) ? v : {}).map(([name, s]) => [name, inline(s, file, seen)]),
        );
      } else {
        out[k] = inline(v, file, seen);
      }
    }
    return out;
  };
  return { load, inline, target };
}

const METHODS = ['get', 'put', 'post', 'delete'] as const;

export function readServerServerYaml(specDir: string, version: string): SchemaTable {
  const { load, inline, target } = createInliner();
  const operations: SchemaOperation[] = [];
  for (const { name, file, method, path, operationId, op } of yamlOperations(specDir, load, METHODS)) {
    const entry: SchemaOperation = {
      operationId,
      file: name,
      method: method.toUpperCase(),
      path,
      responses: {},
    };
    const body =
      isObj(op.requestBody) && typeof op.requestBody.$ref === 'string'
        ? target(op.requestBody.$ref, file).node
        : op.requestBody;
    const json = isObj(body) && isObj(body.content) ? body.content['application/json'] : undefined;
    if (isObj(json) && json.schema !== undefined) entry.request = inline(json.schema, file);
    for (const [status, raw] of Object.entries(isObj(op.responses) ? op.responses : {})) {
      const response = isObj(raw) && typeof raw.$ref === 'string' ? target(raw.$ref, file).node : raw;
      const content =
        isObj(response) && isObj(response.content) ? response.content['application/json'] : undefined;
      if (isObj(content) && content.schema !== undefined)
        entry.responses[status] = inline(content.schema, file);
    }
    operations.push(entry);
  }
  return {
    source: {
      spec: 'Matrix Server-Server API, data/api/server-server/*.yaml of the matrix-org/matrix-spec repository',
      version,
      licence: 'Apache-2.0 (the Matrix specification); this table holds facts derived from it',
      files: 'scripts/spec-schemas.ts wrote this file; do not edit by hand',
    },
    operations,
  };
}

if (import.meta.main) {
  writeTableFromArgs(
    process.argv.slice(2),
    { specDir: '../shared/matrix-spec/data/api/server-server', out: SERVER_SERVER_TABLE },
    readServerServerYaml,
  );
}

// --- validation ------------------------------------------------------------------------------

/**
 * Checks wire bodies against the table: `check(method, path, 'request' | status, body)` gives
 * the schema's complaints (empty when the body fits). `path` is the operation's template as
 * the table spells it (`/_matrix/federation/v1/send/{txnId}`).
 */
export function createWireChecker(table: SchemaTable = readSchemaTable()) {
  // OpenAPI 3.1 schemas are JSON Schema 2020-12 with extra keywords (`x-…`, `format`s of its
  // own): not strict, so those are ignored rather than refused.
  const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
  const compiled = new Map<string, ValidateFunction>();
  return (method: string, path: string, which: 'request' | string, body: unknown): string[] => {
    const op = table.operations.find((o) => o.method === method && o.path === path);
    if (!op) throw new Error(`no operation ${method} ${path} in the spec table`);
    const schema = which === 'request' ? op.request : op.responses[which];
    if (schema === undefined) throw new Error(`${method} ${path} has no ${which} schema in the spec table`);
    const key = `${method} ${path} ${which}`;
    let validate = compiled.get(key);
    if (!validate) {
      validate = ajv.compile(schema as object);
      compiled.set(key, validate);
    }
    if (validate(body)) return [];
    return (validate.errors ?? []).map((e) => `${e.instancePath || '(body)'} ${e.message ?? 'is invalid'}`);
  };
}
