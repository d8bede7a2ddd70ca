import { afterEach, describe, expect, it } from 'vitest';
import { keepsNew } from '../../homeserver/e2ee/backup.ts';
import { createTestHomeserver, type TestHomeserver } from './testing.ts';

const RK = '/_matrix/client/v3/room_keys';
const ALG = 'm.megolm_backup.v1.curve25519-aes-sha2';
const ROOM = '!room:test.localhost';

const key = (first: number, forwarded: number, verified: boolean, tag = 'x') => ({
  first_message_index: first,
  forwarded_count: forwarded,
  is_verified: verified,
  session_data: { tag },
});

describe('server-side key backup', () => {
  let hs: TestHomeserver | undefined;
  afterEach(async () => {
    await hs?.close();
    hs = undefined;
  });

  it('keeps the better copy of a session, as the spec ranks them', () => {
    expect(keepsNew(key(5, 0, false), key(9, 9, true))).toBe(true);
    expect(keepsNew(key(0, 0, true), key(0, 0, false))).toBe(false);
    expect(keepsNew(key(5, 0, true), key(3, 9, true))).toBe(true);
    expect(keepsNew(key(3, 0, true), key(5, 0, true))).toBe(false);
    expect(keepsNew(key(3, 2, true), key(3, 1, true))).toBe(true);
    expect(keepsNew(key(3, 1, true), key(3, 1, true))).toBe(false);
  });

  it('creates, reads, updates and deletes versions, and keys at every granularity', async () => {
    hs = await createTestHomeserver();
    const alice = await hs.createUser('alice');
    const bob = await hs.createUser('bob');
    const token = alice.accessToken;
    const call = (method: string, path: string, body?: unknown, as = token) =>
      hs?.call(method, `${RK}${path}`, { token: as, ...(body === undefined ? {} : { body }) }) as Promise<{
        status: number;
        body: Record<string, unknown>;
      }>;

    expect((await call('GET', '/version')).body.errcode).toBe('M_NOT_FOUND');
    const v1 = (await call('POST', '/version', { algorithm: ALG, auth_data: { public_key: 'a' } })).body
      .version;
    expect(v1).toBe('1');
    expect((await call('GET', '/version')).body).toEqual({
      algorithm: ALG,
      auth_data: { public_key: 'a' },
      count: 0,
      etag: '0',
      version: '1',
    });

    // Keys at the three granularities.
    const put1 = await call('PUT', `/keys?version=1`, {
      rooms: { [ROOM]: { sessions: { s1: key(5, 0, false, 'one'), s2: key(0, 0, true, 'two') } } },
    });
    expect(put1.body).toEqual({ etag: '1', count: 2 });
    await call('PUT', `/keys/${ROOM}?version=1`, { sessions: { s3: key(0, 0, false, 'three') } });
    await call('PUT', `/keys/${ROOM}/s1?version=1`, key(2, 0, false, 'better'));
    // A worse copy is not kept.
    await call('PUT', `/keys/${ROOM}/s2?version=1`, key(0, 0, false, 'worse'));
    const all = await call('GET', `/keys?version=1`);
    const sessions = (
      all.body.rooms as Record<string, { sessions: Record<string, { session_data: unknown }> }>
    )[ROOM]?.sessions;
    expect(Object.fromEntries(Object.entries(sessions ?? {}).map(([id, s]) => [id, s.session_data]))).toEqual(
      {
        s1: { tag: 'better' },
        s2: { tag: 'two' },
        s3: { tag: 'three' },
      },
    );
    expect((await call('GET', `/keys/${ROOM}/s2?version=1`)).body).toEqual(key(0, 0, true, 'two'));
    expect((await call('GET', `/keys/!other:test.localhost?version=1`)).body).toEqual({ sessions: {} });
    expect((await call('GET', `/keys/${ROOM}/nope?version=1`)).body.errcode).toBe('M_NOT_FOUND');
    expect((await call('DELETE', `/keys/${ROOM}/s3?version=1`)).body).toMatchObject({ count: 2 });

    // Bob has no backup: Alice's is not his.
    expect((await call('GET', `/keys?version=1`, undefined, bob.accessToken)).body.errcode).toBe(
      'M_NOT_FOUND',
    );

    // A new version: the old one takes no more keys, and says which is current.
    const v2 = (await call('POST', '/version', { algorithm: ALG, auth_data: { public_key: 'b' } })).body
      .version;
    const stale = await call('PUT', `/keys/${ROOM}/s9?version=1`, key(0, 0, false));
    expect([stale.status, stale.body.errcode, stale.body.current_version]).toEqual([
      403,
      'M_WRONG_ROOM_KEYS_VERSION',
      v2,
    ]);
    expect((await call('GET', `/keys?version=1`)).status).toBe(200);

    // Updating: same algorithm only, the body's version must match the path.
    expect(
      (await call('PUT', `/version/${v2}`, { algorithm: ALG, auth_data: { public_key: 'c' } })).status,
    ).toBe(200);
    expect((await call('PUT', `/version/${v2}`, { algorithm: 'other', auth_data: {} })).body.errcode).toBe(
      'M_INVALID_PARAM',
    );
    expect(
      (await call('PUT', `/version/${v2}`, { algorithm: ALG, auth_data: {}, version: '1' })).body.errcode,
    ).toBe('M_INVALID_PARAM');
    expect((await call('GET', `/version/${v2}`)).body.auth_data).toEqual({ public_key: 'c' });

    // Deleting keys, then versions.
    expect((await call('DELETE', `/keys?version=1`)).body).toMatchObject({ count: 0 });
    expect((await call('DELETE', `/version/${v2}`)).status).toBe(200);
    expect((await call('GET', `/version/${v2}`)).body.errcode).toBe('M_NOT_FOUND');
    expect((await call('GET', '/version')).body.version).toBe('1');
    expect((await call('DELETE', '/version/99')).body.errcode).toBe('M_NOT_FOUND');
    expect((await call('PUT', `/keys?version=99`, { rooms: {} })).body.errcode).toBe('M_NOT_FOUND');
  });
});
