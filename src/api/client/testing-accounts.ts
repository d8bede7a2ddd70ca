/**
 * Test helpers for the account endpoints: requests with a chosen client address (each
 * request gets its own unless one is given, so tests about something else never trip the
 * per-address rate limits on /register and /login), a settable clock, and the full
 * registration dance in one call.
 */

import { parseJson } from '../../core/json.ts';
import { manualClock } from '../../homeserver/testing.ts';
import type { HomeserverOptions } from '../../server.ts';
import { createTestHomeserver, type TestHomeserver } from '../../testing.ts';

export interface Reply {
  status: number;
  body: Record<string, unknown>;
}

export interface AccountsTestHomeserver extends TestHomeserver {
  /** Like `call`, from client address `ip` (a fresh one per request when absent). */
  req(
    method: string,
    path: string,
    options?: { token?: string; body?: unknown; ip?: string },
  ): Promise<Reply>;
  /** Registers through POST /register (UIA with m.login.dummy). */
  register(
    username: string,
    password: string,
    extra?: Record<string, unknown>,
  ): Promise<{ userId: string; accessToken: string; deviceId: string }>;
  /** Logs in through POST /login with a password. */
  login(
    user: string,
    password: string,
    extra?: Record<string, unknown>,
  ): Promise<{ userId: string; accessToken: string; deviceId: string }>;
  /** The clock the homeserver reads; tests move it. */
  clock: ReturnType<typeof manualClock>;
}

let addresses = 0;

export async function accountsHomeserver(
  options: Partial<HomeserverOptions> = {},
): Promise<AccountsTestHomeserver> {
  const clock = manualClock();
  const hs = await createTestHomeserver({ clock, ...options });

  const req: AccountsTestHomeserver['req'] = async (method, path, opts = {}) => {
    const headers: Record<string, string> = {};
    if (opts.token) headers.authorization = `Bearer ${opts.token}`;
    let body: string | undefined;
    if (opts.body !== undefined) {
      body = typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body);
      headers['content-type'] = 'application/json';
    }
    const ip = opts.ip ?? `10.${(addresses >> 16) & 255}.${(addresses >> 8) & 255}.${addresses++ & 255}`;
    const response = await hs.fetch(
      new Request(`http://${hs.serverName}${path}`, { method, headers, body }),
      {
        clientAddress: ip,
      },
    );
    const text = await response.text();
    return {
      status: response.status,
      body: text
        ? (parseJson(text, { loneSurrogates: 'allow', maxDepth: 1024 }) as Record<string, unknown>)
        : {},
    };
  };

  const grant = (r: Reply, what: string) => {
    if (r.status !== 200) throw new Error(`${what} failed: ${r.status} ${JSON.stringify(r.body)}`);
    return {
      userId: r.body.user_id as string,
      accessToken: r.body.access_token as string,
      deviceId: r.body.device_id as string,
    };
  };

  return Object.assign(hs, {
    req,
    clock,
    async register(username: string, password: string, extra: Record<string, unknown> = {}) {
      const first = await req('POST', '/_matrix/client/v3/register', {
        body: { username, password, ...extra },
      });
      if (first.status !== 401)
        throw new Error(`expected a UIA challenge, got ${first.status} ${JSON.stringify(first.body)}`);
      const second = await req('POST', '/_matrix/client/v3/register', {
        body: { username, password, ...extra, auth: { type: 'm.login.dummy', session: first.body.session } },
      });
      return grant(second, 'registration');
    },
    async login(user: string, password: string, extra: Record<string, unknown> = {}) {
      const r = await req('POST', '/_matrix/client/v3/login', {
        body: { type: 'm.login.password', identifier: { type: 'm.id.user', user }, password, ...extra },
      });
      return grant(r, 'login');
    },
  });
}
