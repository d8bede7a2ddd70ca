import { afterEach, describe, expect, it } from 'vitest';
import { type AccountsTestHomeserver, accountsHomeserver } from './testing-accounts.ts';

const profile = (userId: string, key?: string) =>
  `/_matrix/client/v3/profile/${encodeURIComponent(userId)}${key === undefined ? '' : `/${encodeURIComponent(key)}`}`;

describe('profiles', () => {
  let hs: AccountsTestHomeserver | undefined;
  afterEach(async () => {
    await hs?.close();
    hs = undefined;
  });
  const setup = async (options = {}) => {
    hs = await accountsHomeserver({ registration: 'open', ...options });
    const alice = await hs.register('alice', 'pw');
    const bob = await hs.register('bob', 'pw');
    return { hs, alice, bob };
  };

  it('sets and reads display name, avatar, m.tz and custom fields', async () => {
    const { hs, alice, bob } = await setup();
    const token = alice.accessToken;
    expect((await hs.req('GET', profile(alice.userId))).body).toEqual({ displayname: 'alice' });

    for (const [key, value] of [
      ['displayname', 'Alice A.'],
      ['avatar_url', 'mxc://test.localhost/abcDEF123'],
      ['m.tz', 'Europe/London'],
      ['org.example.pronouns', { en: 'she/her' }],
    ] as const) {
      const put = await hs.req('PUT', profile(alice.userId, key), { token, body: { [key]: value } });
      expect(put, key).toEqual({ status: 200, body: {} });
      // Anyone (even without a token) may read it, on both prefixes.
      const got = await hs.req('GET', profile(alice.userId, key).replace('/v3/', '/r0/'), {
        token: bob.accessToken,
      });
      expect(got.body).toEqual({ [key]: value });
    }
    expect((await hs.req('GET', profile(alice.userId))).body).toEqual({
      displayname: 'Alice A.',
      avatar_url: 'mxc://test.localhost/abcDEF123',
      'm.tz': 'Europe/London',
      'org.example.pronouns': { en: 'she/her' },
    });

    const del = await hs.req('DELETE', profile(alice.userId, 'org.example.pronouns'), { token });
    expect(del.status).toBe(200);
    const gone = await hs.req('GET', profile(alice.userId, 'org.example.pronouns'));
    expect(gone.status).toBe(404);
    expect(gone.body.errcode).toBe('M_NOT_FOUND');
    // The pre-v1.16 way to remove a name: set it to "".
    await hs.req('PUT', profile(alice.userId, 'displayname'), { token, body: { displayname: '' } });
    expect((await hs.req('GET', profile(alice.userId, 'displayname'))).status).toBe(404);
  });

  it("refuses changes to another user's profile and 404s for unknown or remote users", async () => {
    const { hs, alice, bob } = await setup();
    const r = await hs.req('PUT', profile(bob.userId, 'displayname'), {
      token: alice.accessToken,
      body: { displayname: 'Bobby' },
    });
    expect(r.status).toBe(403);
    expect(r.body.errcode).toBe('M_FORBIDDEN');
    const del = await hs.req('DELETE', profile(bob.userId, 'displayname'), { token: alice.accessToken });
    expect(del.status).toBe(403);
    expect((await hs.req('GET', profile(bob.userId, 'displayname'))).body).toEqual({ displayname: 'bob' });

    for (const userId of ['@nobody:test.localhost', '@alice:elsewhere.example']) {
      const missing = await hs.req('GET', profile(userId));
      expect(missing.status, userId).toBe(404);
      expect(missing.body.errcode).toBe('M_NOT_FOUND');
      expect((await hs.req('GET', profile(userId, 'displayname'))).status).toBe(404);
    }
    const invalid = await hs.req('GET', profile('not-a-user'));
    expect(invalid.status).toBe(400);
    expect(invalid.body.errcode).toBe('M_INVALID_PARAM');
    const unauthenticated = await hs.req('PUT', profile(alice.userId, 'displayname'), {
      body: { displayname: 'x' },
    });
    expect(unauthenticated.body.errcode).toBe('M_MISSING_TOKEN');
  });

  it('validates keys and values', async () => {
    const { hs, alice } = await setup();
    const token = alice.accessToken;
    const put = (key: string, body: unknown) => hs.req('PUT', profile(alice.userId, key), { token, body });
    const cases: [string, unknown, number, string][] = [
      ['displayname', {}, 400, 'M_MISSING_PARAM'],
      ['displayname', { avatar_url: 'mxc://a/b' }, 400, 'M_MISSING_PARAM'],
      ['displayname', { displayname: 5 }, 400, 'M_BAD_JSON'],
      ['displayname', { displayname: null }, 400, 'M_BAD_JSON'],
      ['displayname', { displayname: 'x'.repeat(257) }, 400, 'M_INVALID_PARAM'],
      ['avatar_url', { avatar_url: 'https://example.org/a.png' }, 400, 'M_INVALID_PARAM'],
      ['m.tz', { 'm.tz': 1 }, 400, 'M_BAD_JSON'],
      ['Bad.Key', { 'Bad.Key': 1 }, 400, 'M_INVALID_PARAM'],
      ['nonamespace', { nonamespace: 1 }, 400, 'M_INVALID_PARAM'],
      [`a.${'b'.repeat(260)}`, { [`a.${'b'.repeat(260)}`]: 1 }, 400, 'M_KEY_TOO_LARGE'],
      ['org.example.big', { 'org.example.big': 'x'.repeat(60_000) }, 200, ''],
      ['org.example.more', { 'org.example.more': 'y'.repeat(6_000) }, 400, 'M_PROFILE_TOO_LARGE'],
      ['displayname', '[1]', 400, 'M_BAD_JSON'],
      ['displayname', '{"displayname":', 400, 'M_NOT_JSON'],
    ];
    for (const [key, body, status, errcode] of cases) {
      const r = await put(key, body);
      expect(r.status, `${key} ${JSON.stringify(body).slice(0, 60)}`).toBe(status);
      if (errcode) expect(r.body.errcode, key).toBe(errcode);
    }
    expect((await hs.req('GET', profile(alice.userId, 'Bad.Key'))).body.errcode).toBe('M_INVALID_PARAM');
    expect((await hs.req('GET', profile(alice.userId))).body.displayname).toBe('alice');
  });

  it('lets guests change only their display name', async () => {
    hs = await accountsHomeserver({ registration: 'open', guestAccess: true });
    const r = await hs.req('POST', '/_matrix/client/v3/register?kind=guest', { body: {} });
    const guest = { userId: r.body.user_id as string, token: r.body.access_token as string };
    const name = await hs.req('PUT', profile(guest.userId, 'displayname'), {
      token: guest.token,
      body: { displayname: 'Visitor' },
    });
    expect(name.status).toBe(200);
    const avatar = await hs.req('PUT', profile(guest.userId, 'avatar_url'), {
      token: guest.token,
      body: { avatar_url: 'mxc://test.localhost/x' },
    });
    expect(avatar.status).toBe(403);
    expect(avatar.body.errcode).toBe('M_FORBIDDEN');
    expect((await hs.req('GET', profile(guest.userId))).body).toEqual({ displayname: 'Visitor' });
  });

  it('propagates name and avatar changes as m.room.member events into joined rooms only', async () => {
    const { hs, alice, bob } = await setup();
    const services = hs.internals;
    const { roomId: first } = await services.rooms.createRoom(alice.userId, { preset: 'public_chat' });
    hs.clock.advance(1);
    const { roomId: second } = await services.rooms.createRoom(bob.userId, { preset: 'public_chat' });
    await services.rooms.join(alice.userId, second);
    hs.clock.advance(1);
    const { roomId: left } = await services.rooms.createRoom(bob.userId, { preset: 'public_chat' });
    await services.rooms.join(alice.userId, left);
    await services.rooms.leave(alice.userId, left);
    const member = async (roomId: string) =>
      (await hs.store.rooms.currentStateEvent(roomId, 'm.room.member', alice.userId))?.event;
    const leftBefore = await member(left);

    const r = await hs.req('PUT', profile(alice.userId, 'displayname'), {
      token: alice.accessToken,
      body: { displayname: 'Alice Liddell' },
    });
    expect(r.status).toBe(200);
    for (const roomId of [first, second]) {
      const event = await member(roomId);
      expect(event?.content, roomId).toEqual({ membership: 'join', displayname: 'Alice Liddell' });
      expect(event?.sender).toBe(alice.userId);
    }
    expect((await member(left))?.event_id).toBe(leftBefore?.event_id);

    await hs.req('PUT', profile(alice.userId, 'avatar_url'), {
      token: alice.accessToken,
      body: { avatar_url: 'mxc://test.localhost/face' },
    });
    expect((await member(first))?.content).toEqual({
      membership: 'join',
      displayname: 'Alice Liddell',
      avatar_url: 'mxc://test.localhost/face',
    });

    // Setting the same value again sends nothing new.
    const before = (await member(second))?.event_id;
    await hs.req('PUT', profile(alice.userId, 'displayname'), {
      token: alice.accessToken,
      body: { displayname: 'Alice Liddell' },
    });
    expect((await member(second))?.event_id).toBe(before);

    // Removing the name removes it from the member events too.
    await hs.req('DELETE', profile(alice.userId, 'displayname'), { token: alice.accessToken });
    expect((await member(second))?.content).toEqual({
      membership: 'join',
      avatar_url: 'mxc://test.localhost/face',
    });

    // Custom fields are not propagated.
    const latest = (await member(first))?.event_id;
    await hs.req('PUT', profile(alice.userId, 'm.tz'), { token: alice.accessToken, body: { 'm.tz': 'UTC' } });
    expect((await member(first))?.event_id).toBe(latest);
  });
});
