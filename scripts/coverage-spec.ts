/**
 * Endpoint coverage against the spec: reads every Client-Server operation from the committed
 * spec table (`test/data/spec/client-server.json`; `--spec DIR` reads the spec's OpenAPI YAML
 * instead, see scripts/spec-table.ts), builds the real homeserver (on fake
 * IndexedDB), registers a user through the API, creates a room with an alias, sends a message
 * and defines a filter, then calls every operation once — its path filled with that user's own
 * IDs, the room, the real event ID, `{}` as the body of POST and PUT, the user's token — and
 * counts the operations that answer with anything but `M_UNRECOGNIZED` (404/405), i.e. that
 * exist. 4xx answers are fine (`{}` is rarely a valid body); the operations not answered are
 * listed.
 *
 *   npm run coverage:spec [-- --spec DIR] [-- --answered]
 *
 * Exits 1 if any operation answers 5xx: placeholder input is client input, and client input
 * must never produce a server error.
 */
import { resolve } from 'node:path';
import type { FetchHandler } from '../src/api/http.ts';
import { fillTemplate } from '../src/api/testing-fuzz.ts';
import { createTestHomeserver } from '../src/testing.ts';
import { readSpecTable, readSpecYaml } from './spec-table.ts';

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
  error: string | undefined;
  implemented: boolean;
  /** Left out on purpose: why, and whether the answer is the spec's "not here" error. */
  outOfScope?: { reason: string; answeredAsSpecified: boolean };
}

/**
 * Operations Hearth leaves out on purpose (issue 14: identity servers, third-party IDs, SSO
 * and OAuth stay out), each with its reason and the errcode the spec has for "not supported".
 */
const CREDS = { sid: 'coverage-sid', client_secret: 'coverage-secret' };
const EMAIL = { client_secret: 'coverage-secret', email: 'a@example.org', send_attempt: 1 };
const PHONE = {
  client_secret: 'coverage-secret',
  country: 'GB',
  phone_number: '7700900000',
  send_attempt: 1,
};
const IDENTITY = { id_server: 'id.example.org', id_access_token: 'coverage-token' };

export const OUT_OF_SCOPE: Readonly<Record<string, { reason: string; errcode: string; body?: object }>> = {
  'GET /_matrix/client/v3/account/3pid': {
    reason: 'third-party IDs: no e-mail or phone is ever bound (an empty list)',
    errcode: '',
  },
  'POST /_matrix/client/v3/account/3pid': {
    body: { three_pid_creds: { ...CREDS, ...IDENTITY } },
    reason: 'third-party IDs: binding goes through an identity server, which Hearth does not use',
    errcode: 'M_THREEPID_AUTH_FAILED',
  },
  'POST /_matrix/client/v3/account/3pid/add': {
    body: CREDS,
    reason: 'third-party IDs: no validation session can exist (no mailer or SMS gateway)',
    errcode: 'M_THREEPID_AUTH_FAILED',
  },
  'POST /_matrix/client/v3/account/3pid/bind': {
    body: { ...CREDS, ...IDENTITY },
    reason: 'identity servers: Hearth trusts none',
    errcode: 'M_SERVER_NOT_TRUSTED',
  },
  'POST /_matrix/client/v3/account/3pid/delete': {
    body: { medium: 'email', address: 'a@example.org' },
    reason: 'third-party IDs: none are ever bound; nothing to unbind anywhere ("no-support")',
    errcode: '',
  },
  'POST /_matrix/client/v3/account/3pid/unbind': {
    body: { medium: 'email', address: 'a@example.org', id_server: 'id.example.org' },
    reason: 'identity servers: Hearth trusts none; the answer says "no-support"',
    errcode: '',
  },
  'POST /_matrix/client/v3/account/3pid/email/requestToken': {
    body: EMAIL,
    reason: 'third-party IDs: no mailer',
    errcode: 'M_THREEPID_MEDIUM_NOT_SUPPORTED',
  },
  'POST /_matrix/client/v3/account/3pid/msisdn/requestToken': {
    body: PHONE,
    reason: 'third-party IDs: no SMS gateway',
    errcode: 'M_THREEPID_MEDIUM_NOT_SUPPORTED',
  },
  'POST /_matrix/client/v3/account/password/email/requestToken': {
    body: EMAIL,
    reason: 'password reset by e-mail: no mailer',
    errcode: 'M_THREEPID_NOT_FOUND',
  },
  'POST /_matrix/client/v3/account/password/msisdn/requestToken': {
    body: PHONE,
    reason: 'password reset by SMS: no SMS gateway',
    errcode: 'M_THREEPID_NOT_FOUND',
  },
  'POST /_matrix/client/v3/register/email/requestToken': {
    body: EMAIL,
    reason: 'registration by e-mail: no mailer',
    errcode: 'M_THREEPID_DENIED',
  },
  'POST /_matrix/client/v3/register/msisdn/requestToken': {
    body: PHONE,
    reason: 'registration by SMS: no SMS gateway',
    errcode: 'M_THREEPID_DENIED',
  },
  'GET /_matrix/client/v3/login/sso/redirect': {
    reason: 'single sign-on: no identity provider',
    errcode: 'M_NOT_FOUND',
  },
  'GET /_matrix/client/v3/login/sso/redirect/{idpId}': {
    reason: 'single sign-on: no identity provider',
    errcode: 'M_NOT_FOUND',
  },
  'GET /_matrix/client/v1/auth_metadata': {
    reason: 'OAuth 2.0 API: not offered (the spec: 404 M_UNRECOGNIZED)',
    errcode: 'M_UNRECOGNIZED',
  },
};

/** Every operation of the spec table: the committed one, or one read from the spec's YAML. */
export function readOperations(specDir?: string): Operation[] {
  const table = specDir === undefined ? readSpecTable() : readSpecYaml(specDir, 'as read');
  return table.operations.map(({ file, operationId, method, path, deprecated }) => ({
    file,
    operationId,
    method,
    path,
    deprecated,
  }));
}

/** A real homeserver (fake IndexedDB), a registered user with a room, an event and a filter. */
export interface CoverageWorld {
  fetch: FetchHandler;
  origin: string;
  /** The user's token now (re-issued when an operation logged it out). */
  token(): string;
  /** Placeholder values for path parameters, by name: the user's own IDs, the room, the event. */
  values: Record<string, string>;
  /** Puts back what an operation may have undone: the token, the user's membership. */
  restore(): Promise<void>;
  close(): Promise<void>;
}

const PASSWORD = 'coverage-password';

export async function buildWorld(): Promise<CoverageWorld> {
  const serverName = 'coverage.localhost';
  const origin = `http://${serverName}`;
  const unlimited = { perSecond: 1e9, burst: 1e9 };
  const hs = await createTestHomeserver({
    serverName,
    registration: 'open',
    // Coverage is about which operations exist, not about waiting on long-polls or limits.
    maxSyncTimeoutMs: 50,
    rateLimits: { login: unlimited, register: unlimited, message: unlimited, default: unlimited },
  });
  const call = async (method: string, path: string, token: string | null, body?: unknown) => {
    const r = await hs.call(method, `/_matrix/client/v3${path}`, {
      ...(token ? { token } : {}),
      ...(body === undefined ? {} : { body }),
    });
    return r;
  };
  const must = async (method: string, path: string, token: string | null, body?: unknown) => {
    const r = await call(method, path, token, body);
    if (r.status !== 200) throw new Error(`set-up ${method} ${path} → ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  };

  // Register through the API (user-interactive auth, m.login.dummy), as a client would.
  const challenge = await call('POST', '/register', null, { username: 'coverage', password: PASSWORD });
  const registered = await must('POST', '/register', null, {
    username: 'coverage',
    password: PASSWORD,
    auth: { type: 'm.login.dummy', session: challenge.body.session },
  });
  const userId = registered.user_id as string;
  let token = registered.access_token as string;
  const deviceId = registered.device_id as string;
  const enc = encodeURIComponent;
  const roomId = (
    await must('POST', '/createRoom', token, {
      preset: 'public_chat',
      room_alias_name: 'coverage',
      name: 'Coverage',
    })
  ).room_id as string;
  const eventId = (
    await must('PUT', `/rooms/${enc(roomId)}/send/m.room.message/coverage-1`, token, {
      msgtype: 'm.text',
      body: 'hello',
    })
  ).event_id as string;
  const filterId = (await must('POST', `/user/${enc(userId)}/filter`, token, {})).filter_id as string;

  const values: Record<string, string> = {
    userId,
    roomId,
    roomIdOrAlias: roomId,
    roomAlias: `#coverage:${serverName}`,
    eventId,
    deviceId,
    filterId,
    serverName,
    eventType: 'm.room.message',
    stateKey: '',
    keyName: 'displayname',
    type: 'org.example.coverage',
    tag: 'u.coverage',
    receiptType: 'm.read',
    kind: 'override',
    ruleId: '.m.rule.master',
    relType: 'm.annotation',
    version: '1',
    sessionId: 'coverage-session',
    mediaId: 'coverage-media',
    fileName: 'file.txt',
    protocol: 'irc',
    networkId: 'irc',
    appserviceId: 'coverage-appservice',
    idpId: 'coverage-idp',
  };

  return {
    fetch: hs.fetch,
    origin,
    token: () => token,
    values,
    async restore() {
      if ((await call('GET', '/account/whoami', token)).status !== 200) {
        const login = await must('POST', '/login', null, {
          type: 'm.login.password',
          identifier: { type: 'm.id.user', user: userId },
          password: PASSWORD,
          device_id: deviceId,
        });
        token = login.access_token as string;
      }
      const member = await call('GET', `/rooms/${enc(roomId)}/state/m.room.member/${enc(userId)}`, token);
      if (member.status !== 200 || member.body.membership !== 'join')
        await must('POST', `/join/${enc(roomId)}`, token, {});
    },
    close: () => hs.close(),
  };
}

/** Call each operation once, with the world's placeholders and token, and classify the answer. */
export async function measureCoverage(
  world: CoverageWorld,
  ops: readonly Operation[],
): Promise<CoverageResult[]> {
  const results: CoverageResult[] = [];
  let txn = 0;
  for (const op of ops) {
    const headers: Record<string, string> = { Authorization: `Bearer ${world.token()}` };
    let body: string | undefined;
    if (op.method === 'POST' || op.method === 'PUT') {
      // Out-of-scope operations get a valid body: their answer must be "not supported", not a missing field.
      body = JSON.stringify(OUT_OF_SCOPE[`${op.method} ${op.path}`]?.body ?? {});
      headers['Content-Type'] = 'application/json';
    }
    const values: Record<string, string> = { ...world.values, txnId: `coverage-txn-${++txn}` };
    const path = fillTemplate(op.path, (name) => values[name] ?? 'x');
    const res = await world.fetch(new Request(world.origin + path, { method: op.method, headers, body }));
    let errcode: string | undefined;
    let error: string | undefined;
    try {
      const json = (await res.json()) as { errcode?: unknown; error?: unknown };
      if (typeof json?.errcode === 'string') errcode = json.errcode;
      if (typeof json?.error === 'string') error = json.error;
    } catch {
      // Not JSON (media, 204): certainly not M_UNRECOGNIZED.
    }
    const unrecognized = errcode === 'M_UNRECOGNIZED' && (res.status === 404 || res.status === 405);
    const scope = OUT_OF_SCOPE[`${op.method} ${op.path}`];
    results.push({
      ...op,
      status: res.status,
      errcode,
      error,
      implemented: !unrecognized,
      ...(scope
        ? {
            outOfScope: {
              reason: scope.reason,
              // '': the spec's answer here is a success (an empty list, "no-support").
              answeredAsSpecified: scope.errcode === '' ? res.status === 200 : errcode === scope.errcode,
            },
          }
        : {}),
    });
    // A logout, a leave, a password change …: the next operation should still find the user
    // signed in and in the room.
    if (res.status < 300) await world.restore();
  }
  return results;
}

/** The printed report and the exit code: 1 when any operation answered 5xx. */
export function report(
  results: readonly CoverageResult[],
  options: { answered?: boolean } = {},
): {
  text: string;
  exitCode: number;
} {
  const scoped = results.filter((r) => r.outOfScope);
  const implemented = results.filter((r) => r.implemented);
  const missing = results.filter((r) => !r.implemented && !r.outOfScope);
  const broken = results.filter((r) => r.status >= 500);
  const line = (r: CoverageResult) =>
    `  ${r.method.padEnd(6)} ${r.path}  → ${r.status}${r.errcode ? ` ${r.errcode}` : ''}  (${r.file}${r.deprecated ? ', deprecated' : ''})`;
  const out: string[] = [];
  if (options.answered) {
    out.push('Answering (not M_UNRECOGNIZED):', ...implemented.map(line), '');
  }
  out.push(`Not answered (404/405 M_UNRECOGNIZED), ${missing.length}:`, ...missing.map(line));
  out.push(
    '',
    `Out of scope, answered with the spec's "not supported" error, ${scoped.length}:`,
    ...scoped.map(
      (r) =>
        `${line(r)}  — ${r.outOfScope?.reason}${r.outOfScope?.answeredAsSpecified ? '' : '  [NOT THE SPECIFIED ANSWER]'}`,
    ),
  );
  const wrong = scoped.filter((r) => !r.outOfScope?.answeredAsSpecified);
  if (broken.length > 0) {
    out.push('', 'Server errors (must not happen):', ...broken.map((r) => `${line(r)}  ${r.error ?? ''}`));
  }
  const files = new Set(results.map((o) => o.file)).size;
  out.push(
    '',
    `${implemented.length} of ${results.length} Client-Server operations answer (from ${files} OpenAPI files)` +
      `; ${scoped.length} out of scope answer "not supported"` +
      (broken.length ? `; ${broken.length} answered 5xx` : '') +
      (wrong.length ? `; ${wrong.length} out-of-scope answered otherwise` : ''),
  );
  return { text: out.join('\n'), exitCode: broken.length > 0 || wrong.length > 0 ? 1 : 0 };
}

async function main(argv: string[]): Promise<number> {
  const specArg = argv[argv.indexOf('--spec') + 1];
  const ops = readOperations(argv.includes('--spec') && specArg ? resolve(specArg) : undefined);
  const world = await buildWorld();
  let results: CoverageResult[];
  try {
    results = await measureCoverage(world, ops);
  } finally {
    await world.close();
  }
  const { text, exitCode } = report(results, { answered: argv.includes('--answered') });
  console.log(text);
  return exitCode;
}

if (import.meta.main) {
  process.exitCode = await main(process.argv.slice(2));
}
