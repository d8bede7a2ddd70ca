/**
 * Test support: every federation request between test homeservers recorded with its answer,
 * and checked against the spec's request and response schemas (scripts/spec-schemas.ts).
 */
import { createWireChecker, readSchemaTable } from '../../scripts/spec-schemas.ts';
import { parseJson } from '../../src/core/json.ts';
import type { InboundHandler } from '../../src/transport/transport.ts';

export interface Exchange {
  to: string;
  method: string;
  path: string;
  request: unknown;
  status: number;
  response: unknown;
}

const table = readSchemaTable();
const check = createWireChecker(table);

/** Operations with literal segments first: `/query/directory` before `/query/{queryType}`. */
const byLiteralness = [...table.operations].sort(
  (x, y) => (x.path.match(/\{/g)?.length ?? 0) - (y.path.match(/\{/g)?.length ?? 0),
);

/** The spec operation a request path is an instance of, if any. */
function operationOf(method: string, path: string): string | undefined {
  for (const op of byLiteralness) {
    if (op.method !== method) continue;
    const pattern = new RegExp(`^${op.path.replace(/\{[^}]+\}/g, '[^/]+')}$`);
    if (pattern.test(path)) return op.path;
  }
  return undefined;
}

const readJson = (text: string): unknown =>
  text === '' ? undefined : parseJson(text, { loneSurrogates: 'allow', maxDepth: 1024 });

/**
 * A recorder to put in front of test servers (`createFederatedServers`'s `inbound`): every
 * federation request a server receives, with its answer, lands in `exchanges`.
 */
export function wireRecorder(): {
  exchanges: Exchange[];
  inbound: (name: string, handler: InboundHandler) => InboundHandler;
} {
  const exchanges: Exchange[] = [];
  return {
    exchanges,
    inbound: (name, handler) => async (request, info) => {
      const url = new URL(request.url);
      const body = request.method === 'GET' ? '' : await request.clone().text();
      const response = await handler(request, info);
      if (url.pathname.startsWith('/_matrix/federation/')) {
        exchanges.push({
          to: name,
          method: request.method,
          path: decodeURIComponent(url.pathname),
          request: readJson(body),
          status: response.status,
          response: readJson(await response.clone().text()),
        });
      }
      return response;
    },
  };
}

/** Schema violations of the recorded exchanges that the spec table covers (empty when all fit). */
export function wireViolations(exchanges: readonly Exchange[]): string[] {
  const problems: string[] = [];
  for (const ex of exchanges) {
    const path = operationOf(ex.method, ex.path);
    if (!path) continue;
    const op = table.operations.find((o) => o.method === ex.method && o.path === path);
    if (op?.request !== undefined && ex.request !== undefined) {
      for (const p of check(ex.method, path, 'request', ex.request))
        problems.push(`${ex.method} ${ex.path} request: ${p}`);
    }
    const status = String(ex.status);
    if (op?.responses[status] !== undefined) {
      for (const p of check(ex.method, path, status, ex.response))
        problems.push(`${ex.method} ${ex.path} ${status}: ${p}`);
    }
  }
  return problems;
}

/** The spec operations the exchanges were checked against (so a test sees its checks ran). */
export function checkedOperations(exchanges: readonly Exchange[]): string[] {
  return [...new Set(exchanges.flatMap((ex) => operationOf(ex.method, ex.path) ?? []).map((p) => p))].sort();
}
