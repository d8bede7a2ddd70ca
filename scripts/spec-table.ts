/**
 * The spec's Client-Server endpoint table as data the tests can carry: for each operation of
 * the Matrix spec's OpenAPI files (`data/api/client-server/*.yaml`) its method, path,
 * deprecation, query parameters (name, required, JSON types, enum, example), request-body
 * properties (name, JSON types) and an example body. Facts about the API, not the spec's prose.
 *
 * The committed table (`test/data/spec/client-server.json`) is what the route, coverage and fuzz
 * tests read, so a clone runs them with no copy of the spec beside it. Regenerate it from a
 * checkout of the spec with
 *
 *   npm run spec:table -- --spec ../shared/matrix-spec/data/api/client-server --version v1.19
 */
import { readFileSync } from 'node:fs';
import { parseJson } from '../src/core/json.ts';
import { createYamlFiles, isObj, type Obj, writeTableFromArgs, yamlOperations } from './spec-yaml.ts';

export interface SpecProperty {
  name: string;
  /** JSON types the schema allows (`string`, `integer`, `object` …); empty when it does not say. */
  types: string[];
}

export interface SpecQueryParam {
  name: string;
  required: boolean;
  types: string[];
  enum?: unknown[];
  example?: unknown;
}

export interface SpecOperation {
  operationId: string;
  /** The OpenAPI file it comes from (`room_send.yaml`). */
  file: string;
  method: string;
  /** Full path template, base path included: `/_matrix/client/v3/rooms/{roomId}/send/...` */
  path: string;
  deprecated: boolean;
  query: SpecQueryParam[];
  /** Top-level properties of the JSON body. */
  properties: SpecProperty[];
  /** An example body from the spec (or built from property examples), if any. */
  example?: Record<string, unknown>;
}

export interface SpecTable {
  /** Where the facts come from: the spec's version and licence. */
  source: { spec: string; version: string; licence: string; files: string };
  operations: SpecOperation[];
}

export const DEFAULT_TABLE = new URL('../test/data/spec/client-server.json', import.meta.url);

/** The committed table (or another written by this script). */
export function readSpecTable(file: URL | string = DEFAULT_TABLE): SpecTable {
  return parseJson(readFileSync(file, 'utf8'), { loneSurrogates: 'allow' }) as SpecTable;
}

const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'] as const;

type Json = unknown;

const typesOf = (schema: Json): string[] => {
  if (!isObj(schema)) return [];
  const t = schema.type;
  if (typeof t === 'string') return [t];
  if (Array.isArray(t)) return t.filter((x): x is string => typeof x === 'string');
  if (isObj(schema.properties) || isObj(schema.additionalProperties)) return ['object'];
  return [];
};

/** Every operation of every top-level YAML in `specDir`. */
export function readSpecYaml(specDir: string, version: string): SpecTable {
  const { load, deref } = createYamlFiles();
  const operations: SpecOperation[] = [];
  for (const { name, file, method, path, operationId, item, op } of yamlOperations(
    specDir,
    load,
    HTTP_METHODS,
  )) {
    const entry: SpecOperation = {
      operationId,
      file: name,
      method: method.toUpperCase(),
      path,
      deprecated: op.deprecated === true,
      query: [],
      properties: [],
    };
    // Query parameters, from the path item and the operation.
    const params = [
      ...(Array.isArray(item.parameters) ? item.parameters : []),
      ...(Array.isArray(op.parameters) ? op.parameters : []),
    ];
    for (const raw of params) {
      const p = deref(raw, file).node;
      if (!isObj(p) || p.in !== 'query' || typeof p.name !== 'string') continue;
      if (entry.query.some((q) => q.name === p.name)) continue;
      const schema = deref(p.schema, file).node;
      const example = p.example ?? (isObj(schema) ? schema.example : undefined);
      entry.query.push({
        name: p.name,
        required: p.required === true,
        types: typesOf(schema),
        ...(isObj(schema) && Array.isArray(schema.enum) ? { enum: schema.enum } : {}),
        ...(example !== undefined ? { example } : {}),
      });
    }
    // The JSON body.
    const body = deref(op.requestBody, file);
    const content =
      isObj(body.node) && isObj(body.node.content) ? body.node.content['application/json'] : undefined;
    if (isObj(content)) {
      const schemaRef = deref(content.schema, body.file);
      const schemas = flatten(schemaRef.node, schemaRef.file, deref);
      for (const { schema, file: schemaFile } of schemas) {
        if (!isObj(schema) || !isObj(schema.properties)) continue;
        for (const [prop, raw] of Object.entries(schema.properties)) {
          if (entry.properties.some((p) => p.name === prop)) continue;
          entry.properties.push({ name: prop, types: typesOf(deref(raw, schemaFile).node) });
        }
      }
      const example = exampleBody(content, schemas, deref);
      if (example) entry.example = example;
    }
    operations.push(entry);
  }
  return {
    source: {
      spec: 'Matrix Client-Server API, data/api/client-server/*.yaml of the matrix-org/matrix-spec repository',
      version,
      licence: 'Apache-2.0 (the Matrix specification); this table holds facts derived from it',
      files: 'scripts/spec-table.ts wrote this file; do not edit by hand',
    },
    operations,
  };
}

type Deref = (node: Json, file: string) => { node: Json; file: string };

/** The schema and the parts of its `allOf` / `oneOf` / `anyOf`, dereferenced. */
function flatten(schema: Json, file: string, deref: Deref, depth = 0): { schema: Json; file: string }[] {
  const out = [{ schema, file }];
  if (!isObj(schema) || depth > 5) return out;
  for (const key of ['allOf', 'oneOf', 'anyOf']) {
    const parts = schema[key];
    if (!Array.isArray(parts)) continue;
    for (const part of parts) {
      const r = deref(part, file);
      out.push(...flatten(r.node, r.file, deref, depth + 1));
    }
  }
  return out;
}

function exampleBody(content: Obj, schemas: { schema: Json; file: string }[], deref: Deref): Obj | undefined {
  const candidates: Json[] = [content.example];
  if (isObj(content.examples)) {
    for (const ex of Object.values(content.examples)) candidates.push(isObj(ex) ? ex.value : undefined);
  }
  for (const { schema } of schemas) {
    if (!isObj(schema)) continue;
    candidates.push(schema.example);
    if (Array.isArray(schema.examples)) candidates.push(schema.examples[0]);
  }
  for (const c of candidates) {
    const value = isObj(c) && typeof c.$ref === 'string' ? undefined : c;
    if (isObj(value)) return structuredClone(value);
  }
  // None given: assemble one from the properties' own examples.
  const built: Obj = {};
  for (const { schema, file } of schemas) {
    if (!isObj(schema) || !isObj(schema.properties)) continue;
    for (const [prop, raw] of Object.entries(schema.properties)) {
      const p = deref(raw, file).node;
      if (isObj(p) && p.example !== undefined && !(prop in built)) built[prop] = structuredClone(p.example);
    }
  }
  return Object.keys(built).length > 0 ? built : undefined;
}

if (import.meta.main) {
  writeTableFromArgs(
    process.argv.slice(2),
    { specDir: '../shared/matrix-spec/data/api/client-server', out: DEFAULT_TABLE },
    readSpecYaml,
  );
}
