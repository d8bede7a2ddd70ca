/** `hearth register-user`: through a server's shared secret, and directly on a data directory. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createHomeserver } from '../server.ts';
import { openSqliteStore } from '../storage/sqlite/index.ts';
import { createTestHomeserver } from '../testing.ts';
import { parseRegisterUserArgs, registerInDataDir, registerWithSharedSecret } from './register-user.ts';

const dir = mkdtempSync(join(tmpdir(), 'hearth-register-user-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('hearth register-user', () => {
  it('creates an admin on a running server with the shared secret; a wrong secret is refused', async () => {
    const hs = await createTestHomeserver({ registrationSharedSecret: 'the-secret' });
    try {
      const fetchFn = ((input: string, init?: RequestInit) =>
        hs.fetch(new Request(input, init))) as typeof fetch;
      const options = parseRegisterUserArgs([
        '-u',
        'root',
        '-p',
        'root-password-1',
        '-a',
        '-k',
        'the-secret',
        'http://test.localhost',
      ]);
      expect(await registerWithSharedSecret({ ...options, sharedSecret: 'the-secret' }, fetchFn)).toBe(
        '@root:test.localhost',
      );
      expect((await hs.store.accounts.getUser('@root:test.localhost'))?.admin).toBe(true);
      await expect(
        registerWithSharedSecret({ ...options, user: 'eve', sharedSecret: 'not-the-secret' }, fetchFn),
      ).rejects.toThrow(/403 M_FORBIDDEN/);
    } finally {
      await hs.close();
    }
  });

  it('creates users directly in a data directory, taking the server name from the users there', async () => {
    const data = join(dir, 'data');
    const first = await registerInDataDir({
      ...parseRegisterUserArgs([
        '-u',
        'alice',
        '-p',
        'alice-password-1',
        '--data',
        data,
        '--server-name',
        'example.org',
        '-a',
      ]),
      data,
    });
    expect(first).toBe('@alice:example.org');
    const second = await registerInDataDir({
      ...parseRegisterUserArgs(['-u', 'bob', '-p', 'bob-password-1', '--data', data]),
      data,
    });
    expect(second).toBe('@bob:example.org');
    const store = await openSqliteStore({ path: join(data, 'hearth.sqlite') });
    const hs = createHomeserver({ serverName: 'example.org', store, passwordIterations: 1000 });
    try {
      expect((await store.accounts.getUser('@alice:example.org'))?.admin).toBe(true);
      expect((await store.accounts.getUser('@bob:example.org'))?.admin).toBe(false);
      const login = await hs.fetch(
        new Request('http://example.org/_matrix/client/v3/login', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({
            type: 'm.login.password',
            identifier: { type: 'm.id.user', user: 'bob' },
            password: 'bob-password-1',
          }),
        }),
      );
      expect(login.status).toBe(200);
    } finally {
      await hs.close();
    }
  });

  it('needs a user, a password and a way in', () => {
    expect(() => parseRegisterUserArgs(['-p', 'x', '-k', 's'])).toThrow(/--user/);
    expect(() => parseRegisterUserArgs(['-u', 'x', '-p', 'y'])).toThrow(/--shared-secret/);
    expect(() => parseRegisterUserArgs(['-u', 'x', '-p', 'y', '-k', 's', '-a', '--no-admin'])).toThrow(
      /contradict/,
    );
  });
});
