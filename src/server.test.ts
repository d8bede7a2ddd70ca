import { afterEach, describe, expect, it } from 'vitest';
import { createNotifier } from './homeserver/notifier.ts';
import { createTestHomeserver, type TestHomeserver } from './testing.ts';

describe('createHomeserver', () => {
  let hs: TestHomeserver | undefined;
  afterEach(async () => {
    await hs?.close();
    hs = undefined;
  });

  it('answers /versions and keeps one signing key across reopen of the same store', async () => {
    hs = await createTestHomeserver();
    const versions = await hs.call('GET', '/_matrix/client/versions');
    expect(versions.status).toBe(200);
    expect(versions.body.versions).toContain('v1.16');
    const first = hs.internals.ctx.signingKey;
    const second = await hs.store.federation.putSecretOnce('signing_key_seed', new Uint8Array(32));
    expect(second).not.toEqual(new Uint8Array(32));
    expect(first.keyId).toMatch(/^ed25519:a_[a-zA-Z0-9_]+$/);
  });

  it('authenticates tokens from the store and refuses unknown ones', async () => {
    hs = await createTestHomeserver();
    const bad = await hs.call('GET', '/_matrix/client/versions', { token: 'nope' });
    expect(bad.status).toBe(401);
    expect(bad.body.errcode).toBe('M_UNKNOWN_TOKEN');
    const alice = await hs.createUser('alice');
    const good = await hs.call('GET', '/_matrix/client/versions', { token: alice.accessToken });
    expect(good.status).toBe(200);
  });

  it('answers 503 after close instead of touching a closed store', async () => {
    hs = await createTestHomeserver();
    await hs.close();
    const response = await hs.fetch(new Request('http://test.localhost/_matrix/client/versions'));
    expect(response.status).toBe(503);
    expect((await response.json()).errcode).toBe('M_UNKNOWN');
    hs = undefined;
  });
});

describe('notifier', () => {
  it('wakes a waiter for its user or rooms, not for others', async () => {
    const n = createNotifier();
    const v = n.version;
    const waiting = n.wait('@a:x', new Set(['!r:x']), v, 5_000);
    n.notify({ rooms: ['!other:x'] });
    n.notify({ rooms: ['!r:x'] });
    expect(await waiting).toBe(true);
  });

  it('does not lose a change made between reading the version and waiting', async () => {
    const n = createNotifier();
    const v = n.version;
    n.notify({ users: ['@a:x'] });
    expect(await n.wait('@a:x', new Set(), v, 5_000)).toBe(true);
    expect(await n.wait('@a:x', new Set(), n.version, 10)).toBe(false);
  });

  it('wakes every waiter for a change that names everyone, one waiting or one starting late', async () => {
    const n = createNotifier();
    const before = n.version;
    const waiting = n.wait('@a:x', new Set(['!r:x']), before, 5_000);
    const elsewhere = n.wait('@b:x', new Set(), before, 5_000);
    n.notify({ everyone: true });
    expect(await waiting).toBe(true);
    expect(await elsewhere).toBe(true);
    expect(await n.wait('@c:x', new Set(), before, 5_000)).toBe(true);
    // Nothing named in the hint: a woken pass reads what it shows from the store.
    expect(n.changesSince(before)).toEqual({ rooms: new Set(), events: [] });
    expect(await n.wait('@c:x', new Set(), n.version, 10)).toBe(false);
  });

  it('ends on abort', async () => {
    const n = createNotifier();
    const ac = new AbortController();
    const waiting = n.wait('@a:x', new Set(), n.version, 60_000, ac.signal);
    ac.abort();
    expect(await waiting).toBe(false);
  });
});
