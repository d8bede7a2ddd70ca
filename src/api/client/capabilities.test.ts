import { afterEach, describe, expect, it } from 'vitest';
import { roomVersions } from '../../core/room-versions.ts';
import { createTestHomeserver, type TestHomeserver } from '../../testing.ts';

describe('GET /capabilities', () => {
  let hs: TestHomeserver | undefined;
  afterEach(async () => {
    await hs?.close();
    hs = undefined;
  });

  it('lists every room version with its stability and the configured default, on r0 and v3', async () => {
    hs = await createTestHomeserver({ defaultRoomVersion: '11' });
    const alice = await hs.createUser('alice');
    for (const version of ['r0', 'v3']) {
      const res = await hs.call('GET', `/_matrix/client/${version}/capabilities`, {
        token: alice.accessToken,
      });
      expect(res.status, version).toBe(200);
      const caps = res.body.capabilities as Record<string, Record<string, unknown>>;
      expect(caps['m.room_versions']).toEqual({
        default: '11',
        available: {
          '1': 'stable',
          '2': 'stable',
          '3': 'stable',
          '4': 'stable',
          '5': 'stable',
          '6': 'stable',
          '7': 'stable',
          '8': 'stable',
          '9': 'stable',
          '10': 'stable',
          '11': 'stable',
          '12': 'stable',
        },
      });
      expect(Object.keys(caps['m.room_versions']?.available as object)).toEqual(Object.keys(roomVersions));
      expect(caps).toMatchObject({
        'm.change_password': { enabled: true },
        'm.set_displayname': { enabled: true },
        'm.set_avatar_url': { enabled: true },
        'm.profile_fields': { enabled: true },
        'm.3pid_changes': { enabled: false },
        'm.get_login_token': { enabled: true },
      });
    }
  });

  it('advertises the version createRoom really uses', async () => {
    hs = await createTestHomeserver();
    const alice = await hs.createUser('alice');
    const { body } = await hs.call('GET', '/_matrix/client/v3/capabilities', { token: alice.accessToken });
    const advertised = (body.capabilities as Record<string, { default?: string }>)['m.room_versions']
      ?.default;
    const created = await hs.call('POST', '/_matrix/client/v3/createRoom', {
      token: alice.accessToken,
      body: {},
    });
    expect(created.status).toBe(200);
    const roomId = created.body.room_id as string;
    const create = await hs.call(
      'GET',
      `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/state/m.room.create`,
      {
        token: alice.accessToken,
      },
    );
    expect(create.body.room_version).toBe(advertised);
  });

  it('keeps its promises: profile fields can be set, the password endpoint exists, 3PID changes fail', async () => {
    hs = await createTestHomeserver();
    const alice = await hs.createUser('alice');
    const token = alice.accessToken;
    const profile = (key: string) => `/_matrix/client/v3/profile/${encodeURIComponent(alice.userId)}/${key}`;
    expect((await hs.call('PUT', profile('displayname'), { token, body: { displayname: 'A' } })).status).toBe(
      200,
    );
    const avatar = { avatar_url: 'mxc://test.localhost/abc' };
    expect((await hs.call('PUT', profile('avatar_url'), { token, body: avatar })).status).toBe(200);
    const custom = { 'org.example.job': 'x' };
    expect((await hs.call('PUT', profile('org.example.job'), { token, body: custom })).status).toBe(200);
    // The password change starts user-interactive auth rather than being unknown.
    const password = await hs.call('POST', '/_matrix/client/v3/account/password', {
      token,
      body: { new_password: 'new' },
    });
    expect(password.status).toBe(401);
    expect(password.body.flows).toBeInstanceOf(Array);
    const add = await hs.call('POST', '/_matrix/client/v3/account/3pid/add', {
      token,
      body: { client_secret: 's', sid: 'x' },
    });
    expect(add.status).toBe(403);
  });

  it('needs an access token', async () => {
    hs = await createTestHomeserver();
    const res = await hs.call('GET', '/_matrix/client/v3/capabilities');
    expect([res.status, res.body.errcode]).toEqual([401, 'M_MISSING_TOKEN']);
    const bad = await hs.call('GET', '/_matrix/client/v3/capabilities', { token: 'nope' });
    expect([bad.status, bad.body.errcode]).toEqual([401, 'M_UNKNOWN_TOKEN']);
  });
});
