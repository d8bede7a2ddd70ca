/**
 * Hostile input against every account, device and profile endpoint, through the whole
 * homeserver: each answer must be a well-formed Matrix response (a UIA challenge counts: its
 * first 401 carries `flows` and no `errcode`, as the spec shows), never a 500 or a logged error.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Logger } from '../../homeserver/context.ts';
import type { Services } from '../../homeserver/services.ts';
import { type Endpoint, fullPaths } from '../endpoint.ts';
import { checkMatrixResponse, fillTemplate, hostileBody } from '../testing-fuzz.ts';
import { accountEndpoints } from './account.ts';
import { deviceEndpoints } from './devices.ts';
import { loginEndpoints } from './login.ts';
import { profileEndpoints } from './profile.ts';
import { registerEndpoints } from './register.ts';
import { type AccountsTestHomeserver, accountsHomeserver } from './testing-accounts.ts';

describe('fuzz: account endpoints', () => {
  let hs: AccountsTestHomeserver;
  let endpoints: Endpoint[];
  const errors: string[] = [];
  const logger: Logger = {
    debug() {},
    info() {},
    warn() {},
    error: (message, fields) => errors.push(`${message} ${JSON.stringify(fields)}`),
  };

  beforeAll(async () => {
    hs = await accountsHomeserver({ registration: 'open', guestAccess: true, logger });
    const services: Services = hs.internals;
    endpoints = [
      registerEndpoints,
      loginEndpoints,
      accountEndpoints,
      deviceEndpoints,
      profileEndpoints,
    ].flatMap((f) => f(services));
  });
  afterAll(() => hs.close());

  it('answers every endpoint, prefix, token and hostile body with a Matrix response', async () => {
    const alice = await hs.register('alice', 'pw');
    const guest = await hs.req('POST', '/_matrix/client/v3/register?kind=guest', { body: {} });
    const tokens = [undefined, alice.accessToken, guest.body.access_token as string, 'nobody'];
    const bodies = fc.sample(hostileBody, { numRuns: 12, seed: 7 });
    const values = (name: string) =>
      name === 'userId'
        ? alice.userId
        : name === 'keyName'
          ? 'displayname'
          : name === 'deviceId'
            ? alice.deviceId
            : 'x';
    let requests = 0;
    for (const e of endpoints) {
      for (const template of fullPaths(e)) {
        const path = fillTemplate(template, values);
        for (const token of tokens) {
          for (const body of e.method === 'GET' ? [undefined] : bodies) {
            const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
            const res = await hs.fetch(
              new Request(`http://test.localhost${path}`, { method: e.method, headers, body: body ?? null }),
              // Fresh addresses: the point is input handling, not the rate limiter.
              { clientAddress: `fuzz-${requests}` },
            );
            requests++;
            if (res.status === 401) {
              const json = (await res.clone().json()) as Record<string, unknown>;
              if (Array.isArray(json.flows)) {
                expect(typeof json.session).toBe('string');
                continue;
              }
            }
            const { status } = await checkMatrixResponse(res, e.method);
            expect(status).toBeLessThan(500);
          }
        }
      }
    }
    expect(requests).toBeGreaterThan(1000);
    expect(errors).toEqual([]);
  }, 120_000);
});
