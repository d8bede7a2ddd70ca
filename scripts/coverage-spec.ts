/**
 * Endpoint coverage against the spec: reads every Client-Server OpenAPI file in
 * `../shared/matrix-spec/data/api/client-server/`, calls the homeserver's fetch once per
 * operation (method + path, placeholder parameters, `{}` bodies, a bearer token) and lists the
 * operations that answer with anything but `M_UNRECOGNIZED` (404/405) — i.e. that exist.
 *
 *   npm run coverage:spec [-- --spec DIR] [-- --missing]
 *
 * Exits 1 if any operation answers 5xx: placeholder input is client input, and client input
 * must never produce a server error.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parse } from 'yaml';
import { discoveryEndpoints } from '../src/api/client/discovery.ts';
import { fillTemplate } from '../src/api/fuzzing.ts';
import { createRouter, type FetchHandler } from '../src/api/http.ts';

const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'] as const;

export interface Operation {
  file: string;
  operationId: string;
  method: string;
  /** Full path template, base path included: `/_matrix/client/v3/rooms/{roomId}/send/...` */
  path: string;
  deprecated: boolean;
}

export interface CoverageResult extends Operation {
  status: number;
  errcode: string | undefined;
  implemented: boolean;
}

interface OpenApiDoc {
  paths?: Record<string, Record<string, { operationId?: string; deprecated?: boolean }>>;
  servers?: Array<{ variables?: { basePath?: { default?: string } } }>;
}

/** Every operation of every top-level YAML in `specDir` (definitions/ holds only schemas). */
export async function readOperations(specDir: string): Promise<Operation[]> {
  const files = (await readdir(specDir)).filter((f) => f.endsWith('.yaml')).sort();
  const ops: Operation[] = [];
  for (const file of files) {
    const doc = parse(await readFile(join(specDir, file), 'utf8')) as OpenApiDoc;
    const base = doc.servers?.[0]?.variables?.basePath?.default ?? '';
    for (const [path, item] of Object.entries(doc.paths ?? {})) {
      for (const method of HTTP_METHODS) {
        const op = item[method];
        if (!op) continue;
        ops.push({
          file,
          operationId: op.operationId ?? `${method} ${path}`,
          method: method.toUpperCase(),
          // The spec writes `"/rooms/{roomId}/invite "` (trailing space) to give one path two
          // operations (invite a user / invite by third-party ID); the server sees one path.
          path: base + path.trim(),
          deprecated: op.deprecated === true,
        });
      }
    }
  }
  return ops;
}

/** Call each operation once and classify the answer. */
export async function measureCoverage(
  fetch: FetchHandler,
  ops: readonly Operation[],
  opts: { origin?: string; token?: string } = {},
): Promise<CoverageResult[]> {
  const origin = opts.origin ?? 'http://localhost:8008';
  const results: CoverageResult[] = [];
  for (const op of ops) {
    const headers: Record<string, string> = {};
    if (opts.token) headers.Authorization = `Bearer ${opts.token}`;
    let body: string | undefined;
    if (op.method === 'POST' || op.method === 'PUT') {
      body = '{}';
      headers['Content-Type'] = 'application/json';
    }
    const res = await fetch(
      new Request(origin + fillTemplate(op.path), { method: op.method, headers, body }),
    );
    let errcode: string | undefined;
    try {
      const json = (await res.json()) as { errcode?: unknown };
      if (typeof json?.errcode === 'string') errcode = json.errcode;
    } catch {
      // Not JSON (media, 204): certainly not M_UNRECOGNIZED.
    }
    const unrecognized = errcode === 'M_UNRECOGNIZED' && (res.status === 404 || res.status === 405);
    results.push({ ...op, status: res.status, errcode, implemented: !unrecognized });
  }
  return results;
}

/**
 * The homeserver measured. Until `createHomeserver` exists this is the router with the
 * endpoint areas written so far; the lead swaps in `createHomeserver(...).fetch` (with a
 * registered user's token) once it does.
 */
function buildHomeserver(): { fetch: FetchHandler; token: string } {
  const token = 'coverage-token';
  const fetch = createRouter({
    endpoints: [...discoveryEndpoints()],
    resolveToken: async (t) =>
      t === token ? { userId: '@coverage:localhost', deviceId: 'COVERAGE', isGuest: false } : null,
  });
  return { fetch, token };
}

async function main(argv: string[]): Promise<number> {
  const specArg = argv[argv.indexOf('--spec') + 1];
  const specDir = resolve(
    argv.includes('--spec') && specArg ? specArg : '../shared/matrix-spec/data/api/client-server',
  );
  const showMissing = argv.includes('--missing');
  const ops = await readOperations(specDir);
  const { fetch, token } = buildHomeserver();
  const results = await measureCoverage(fetch, ops, { token });

  const implemented = results.filter((r) => r.implemented);
  const broken = results.filter((r) => r.status >= 500);
  const line = (r: CoverageResult) =>
    `  ${r.method.padEnd(6)} ${r.path}  → ${r.status}${r.errcode ? ` ${r.errcode}` : ''}  (${r.file}${r.deprecated ? ', deprecated' : ''})`;

  console.log(`Answering (not M_UNRECOGNIZED):`);
  for (const r of implemented) console.log(line(r));
  if (showMissing) {
    console.log(`\nNot implemented (404/405 M_UNRECOGNIZED):`);
    for (const r of results.filter((x) => !x.implemented)) console.log(line(r));
  }
  if (broken.length > 0) {
    console.log(`\nServer errors (must not happen):`);
    for (const r of broken) console.log(line(r));
  }
  const files = new Set(ops.map((o) => o.file)).size;
  console.log(
    `\n${implemented.length} of ${results.length} Client-Server operations answer (from ${files} OpenAPI files)` +
      (broken.length ? `; ${broken.length} answered 5xx` : ''),
  );
  return broken.length > 0 ? 1 : 0;
}

if (import.meta.main) {
  process.exitCode = await main(process.argv.slice(2));
}
