/**
 * What the spec says a request looks like, for the whole-homeserver fuzz test: for each
 * Client-Server operation (from the committed spec table, `scripts/spec-table.ts`), its request
 * body's properties (name, JSON types), an example body, and its query parameters — so hostile
 * requests can be built from plausible ones, one field made wrong at a time.
 */
import {
  readSpecTable,
  type SpecProperty,
  type SpecQueryParam,
  type SpecTable,
} from '../../scripts/spec-table.ts';

export interface SpecRequest {
  operationIds: string[];
  /** Top-level properties of the JSON body (several operations on one path: merged). */
  properties: SpecProperty[];
  /** An example body from the spec (or built from property examples), if any. */
  example: Record<string, unknown> | undefined;
  query: SpecQueryParam[];
}

/**
 * Path key shared by an endpoint and a spec operation: no prefix (the media API keeps its
 * `/_matrix/media` base, without a version), parameters unnamed. Give it an endpoint's full
 * path (`fullPaths`).
 */
export function routeKey(method: string, path: string): string {
  const bare = path
    .replace(/^\/_matrix\/client\/(r0|v1|v3|unstable)(?=\/)/, '')
    .replace(/^\/_matrix\/media\/(r0|v1|v3)(?=\/)/, '/_matrix/media')
    .replace(/\{[^}]*\}/g, '{}')
    .replace(/\/$/, '');
  return `${method.toUpperCase()} ${bare}`;
}

/** Every operation's request shape, by `routeKey` (operations sharing a route merged). */
export function readSpecRequests(table: SpecTable = readSpecTable()): Map<string, SpecRequest> {
  const out = new Map<string, SpecRequest>();
  for (const op of table.operations) {
    const key = routeKey(op.method, op.path);
    const entry = out.get(key) ?? { operationIds: [], properties: [], example: undefined, query: [] };
    entry.operationIds.push(op.operationId);
    for (const q of op.query) if (!entry.query.some((x) => x.name === q.name)) entry.query.push(q);
    for (const p of op.properties)
      if (!entry.properties.some((x) => x.name === p.name)) entry.properties.push(p);
    entry.example ??= op.example === undefined ? undefined : structuredClone(op.example);
    out.set(key, entry);
  }
  return out;
}

export type { SpecProperty, SpecQueryParam };
