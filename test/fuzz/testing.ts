/**
 * What the spec says a request looks like, for the whole-homeserver fuzz test: for each
 * Client-Server operation of `data/api/client-server/*.yaml`, its request body's properties
 * (name, JSON types), an example body, and its query parameters — so hostile requests can be
 * built from plausible ones, one field made wrong at a time.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parse } from 'yaml';

export interface SpecProperty {
  name: string;
  /** JSON types the schema allows (`string`, `integer`, `object` …); empty when it does not say. */
  types: string[];
}

export interface SpecQueryParam {
  name: string;
  required: boolean;
  types: string[];
  enum: unknown[] | undefined;
  example: unknown;
}

export interface SpecRequest {
  operationIds: string[];
  /** Top-level properties of the JSON body (several operations on one path: merged). */
  properties: SpecProperty[];
  /** An example body from the spec (or built from property examples), if any. */
  example: Record<string, unknown> | undefined;
  query: SpecQueryParam[];
}

type Json = unknown;
type Obj = Record<string, unknown>;

const isObj = (x: unknown): x is Obj => typeof x === 'object' && x !== null && !Array.isArray(x);

/** YAML files with `$ref` resolution (relative files and JSON pointers), read once each. */
function createResolver() {
  const files = new Map<string, Json>();
  const load = (file: string): Json => {
    let doc = files.get(file);
    if (doc === undefined) {
      doc = parse(readFileSync(file, 'utf8')) as Json;
      files.set(file, doc);
    }
    return doc;
  };
  /** Follow `$ref`s at the top of `node` (not inside it); returns the node and its file. */
  const deref = (node: Json, file: string, depth = 0): { node: Json; file: string } => {
    if (!isObj(node) || typeof node.$ref !== 'string' || depth > 20) return { node, file };
    const [path, pointer] = node.$ref.split('#') as [string, string | undefined];
    const target = path === '' ? file : resolve(dirname(file), path);
    let value: Json = load(target);
    for (const part of (pointer ?? '').split('/').filter(Boolean)) {
      value = isObj(value) ? value[part.replace(/~1/g, '/').replace(/~0/g, '~')] : undefined;
    }
    return deref(value, target, depth + 1);
  };
  return { load, deref };
}

const typesOf = (schema: Json): string[] => {
  if (!isObj(schema)) return [];
  const t = schema.type;
  if (typeof t === 'string') return [t];
  if (Array.isArray(t)) return t.filter((x): x is string => typeof x === 'string');
  if (isObj(schema.properties) || isObj(schema.additionalProperties)) return ['object'];
  return [];
};

/** Path key shared by an endpoint and a spec operation: no prefix, parameters unnamed. */
export function routeKey(method: string, path: string): string {
  const bare = path
    .replace(/^\/_matrix\/client\/(r0|v1|v3|unstable)(?=\/)/, '')
    .replace(/\{[^}]*\}/g, '{}')
    .replace(/\/$/, '');
  return `${method.toUpperCase()} ${bare}`;
}

/** Every operation's request shape, by `routeKey`. */
export function readSpecRequests(specDir: string): Map<string, SpecRequest> {
  const { load, deref } = createResolver();
  const out = new Map<string, SpecRequest>();
  for (const name of readdirSync(specDir)
    .filter((f) => f.endsWith('.yaml'))
    .sort()) {
    const file = join(specDir, name);
    const doc = load(file);
    if (!isObj(doc) || !isObj(doc.paths)) continue;
    const base = (doc.servers as { variables?: { basePath?: { default?: string } } }[] | undefined)?.[0]
      ?.variables?.basePath?.default;
    for (const [path, item] of Object.entries(doc.paths)) {
      if (!isObj(item)) continue;
      for (const method of ['get', 'put', 'post', 'delete']) {
        const op = item[method];
        if (!isObj(op)) continue;
        const key = routeKey(method, (base ?? '') + path.trim());
        const entry = out.get(key) ?? { operationIds: [], properties: [], example: undefined, query: [] };
        entry.operationIds.push(String(op.operationId));
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
          entry.query.push({
            name: p.name,
            required: p.required === true,
            types: typesOf(schema),
            enum: isObj(schema) && Array.isArray(schema.enum) ? schema.enum : undefined,
            example: p.example ?? (isObj(schema) ? schema.example : undefined),
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
          entry.example ??= exampleBody(content, schemas, deref);
        }
        out.set(key, entry);
      }
    }
  }
  return out;
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
