/**
 * The remaining client endpoints: reports, TURN credentials as coturn checks them, login
 * tokens, the deprecated /events and /initialSync, support contacts, SSO/OAuth answered as not
 * offered, devices' last_seen_ip, and HTTP pushers delivered to a push gateway on loopback
 * (node:http) — or, with no outgoing HTTP (a browser), stored and reported as not delivered.
 */
import { createHmac } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import type { JsonObject } from '../../core/canonical-json.ts';
import { parseJson } from '../../core/json.ts';
import { createTestHomeserver, type TestHomeserver } from '../../testing.ts';

const enc = encodeURIComponent;

describe('operator endpoints', () => {
  let hs: TestHomeserver;
  let gateway: Server | undefined;
  afterEach(async () => {
    await hs?.close();
    await new Promise((r) => (gateway ? gateway.close(r) : r(undefined)));
    gateway = undefined;
  });

  async function room(token: string) {
    const r = await hs.call('POST', '/_matrix/client/v3/createRoom', {
      token,
      body: { preset: 'public_chat' },
    });
    return r.body.room_id as string;
  }

  it('keeps reports of rooms, events and users; 404 for what the reporter cannot see', async () => {
    hs = await createTestHomeserver();
    const alice = await hs.createUser('alice');
    const bob = await hs.createUser('bob');
    const roomId = await room(alice.accessToken);
    const sent = await hs.call('PUT', `/_matrix/client/v3/rooms/${enc(roomId)}/send/m.room.message/1`, {
      token: alice.accessToken,
      body: { msgtype: 'm.text', body: 'spam' },
    });
    const eventId = sent.body.event_id as string;
    expect(
      (
        await hs.call('POST', `/_matrix/client/v3/rooms/${enc(roomId)}/report/${enc(eventId)}`, {
          token: alice.accessToken,
          body: { reason: 'spam', score: -100 },
        })
      ).status,
    ).toBe(200);
    expect(
      (
        await hs.call('POST', `/_matrix/client/v3/rooms/${enc(roomId)}/report`, {
          token: alice.accessToken,
          body: {},
        })
      ).status,
    ).toBe(200);
    expect(
      (
        await hs.call('POST', `/_matrix/client/v3/users/${enc(bob.userId)}/report`, {
          token: alice.accessToken,
          body: { reason: 'rude' },
        })
      ).status,
    ).toBe(200);
    // Bob is not in the room: it does not exist for him.
    const outsider = await hs.call('POST', `/_matrix/client/v3/rooms/${enc(roomId)}/report/${enc(eventId)}`, {
      token: bob.accessToken,
      body: { reason: 'x' },
    });
    expect(outsider).toMatchObject({ status: 404, body: { errcode: 'M_NOT_FOUND' } });
    const badScore = await hs.call('POST', `/_matrix/client/v3/rooms/${enc(roomId)}/report/${enc(eventId)}`, {
      token: alice.accessToken,
      body: { score: 5 },
    });
    expect(badScore.status).toBe(400);
    const nobody = await hs.call('POST', `/_matrix/client/v3/users/${enc('@nobody:test.localhost')}/report`, {
      token: alice.accessToken,
      body: {},
    });
    expect(nobody.status).toBe(404);
    const reports = await hs.store.operator.reports(10);
    expect(reports.map((r) => [r.roomId, r.eventId, r.targetUserId, r.reason, r.score])).toEqual([
      [null, null, bob.userId, 'rude', null],
      [roomId, null, null, null, null],
      [roomId, eventId, null, 'spam', -100],
    ]);
  });

  it('hands out TURN credentials coturn accepts (use-auth-secret), {} without TURN', async () => {
    hs = await createTestHomeserver({
      turn: {
        uris: ['turn:turn.example.org:3478?transport=udp'],
        sharedSecret: 'coturn-secret',
        ttlSeconds: 3600,
      },
    });
    const alice = await hs.createUser('alice');
    const turn = await hs.call('GET', '/_matrix/client/v3/voip/turnServer', { token: alice.accessToken });
    expect(turn.status).toBe(200);
    const username = turn.body.username as string;
    const [expiry, user] = [
      username.slice(0, username.indexOf(':')),
      username.slice(username.indexOf(':') + 1),
    ];
    expect(user).toBe(alice.userId);
    expect(Number(expiry)).toBeGreaterThan(Date.now() / 1000 + 3500);
    // coturn: password = base64(HMAC-SHA1(static-auth-secret, username)).
    expect(turn.body.password).toBe(createHmac('sha1', 'coturn-secret').update(username).digest('base64'));
    expect(turn.body).toMatchObject({ uris: ['turn:turn.example.org:3478?transport=udp'], ttl: 3600 });
    await hs.close();
    hs = await createTestHomeserver();
    const bob = await hs.createUser('bob');
    expect(
      (await hs.call('GET', '/_matrix/client/v3/voip/turnServer', { token: bob.accessToken })).body,
    ).toEqual({});
  });

  it('issues a login token after user-interactive auth; it logs in once', async () => {
    hs = await createTestHomeserver();
    const { userId } = await hs.admin.createUser('alice', 'alice-password-1');
    const login = await hs.call('POST', '/_matrix/client/v3/login', {
      body: {
        type: 'm.login.password',
        identifier: { type: 'm.id.user', user: 'alice' },
        password: 'alice-password-1',
      },
    });
    const token = login.body.access_token as string;
    const challenge = await hs.call('POST', '/_matrix/client/v1/login/get_token', { token, body: {} });
    expect(challenge.status).toBe(401);
    const issued = await hs.call('POST', '/_matrix/client/v1/login/get_token', {
      token,
      body: {
        auth: {
          type: 'm.login.password',
          session: challenge.body.session,
          identifier: { type: 'm.id.user', user: 'alice' },
          password: 'alice-password-1',
        },
      },
    });
    expect(issued.status).toBe(200);
    expect(issued.body.expires_in_ms).toBe(120_000);
    const flows = await hs.call('GET', '/_matrix/client/v3/login');
    expect(flows.body.flows).toContainEqual({ type: 'm.login.token', get_login_token: true });
    const viaToken = await hs.call('POST', '/_matrix/client/v3/login', {
      body: { type: 'm.login.token', token: issued.body.login_token },
    });
    expect(viaToken).toMatchObject({ status: 200, body: { user_id: userId } });
    const again = await hs.call('POST', '/_matrix/client/v3/login', {
      body: { type: 'm.login.token', token: issued.body.login_token },
    });
    expect(again).toMatchObject({ status: 403, body: { errcode: 'M_FORBIDDEN' } });
  });

  it('answers the deprecated /events, /events/{eventId}, /initialSync and /rooms/{roomId}/initialSync', async () => {
    hs = await createTestHomeserver({ maxSyncTimeoutMs: 200 });
    const alice = await hs.createUser('alice');
    const roomId = await room(alice.accessToken);
    const first = await hs.call('GET', '/_matrix/client/v3/events', { token: alice.accessToken });
    expect(first.body.chunk).toEqual([]);
    const sent = await hs.call('PUT', `/_matrix/client/v3/rooms/${enc(roomId)}/send/m.room.message/1`, {
      token: alice.accessToken,
      body: { msgtype: 'm.text', body: 'old style' },
    });
    const events = await hs.call(
      'GET',
      `/_matrix/client/v3/events?from=${enc(first.body.end as string)}&timeout=100`,
      {
        token: alice.accessToken,
      },
    );
    expect(events.body.chunk).toEqual([
      expect.objectContaining({
        event_id: sent.body.event_id,
        room_id: roomId,
        content: { msgtype: 'm.text', body: 'old style' },
      }),
    ]);
    const one = await hs.call('GET', `/_matrix/client/v3/events/${enc(sent.body.event_id as string)}`, {
      token: alice.accessToken,
    });
    expect(one.body).toMatchObject({ event_id: sent.body.event_id, room_id: roomId });
    const initial = await hs.call('GET', '/_matrix/client/v3/initialSync?limit=5', {
      token: alice.accessToken,
    });
    expect(initial.status).toBe(200);
    const rooms = initial.body.rooms as JsonObject[];
    expect(rooms).toHaveLength(1);
    expect(rooms[0]).toMatchObject({ room_id: roomId, membership: 'join' });
    expect((((rooms[0] as JsonObject).messages as JsonObject).chunk as JsonObject[]).at(-1)).toMatchObject({
      event_id: sent.body.event_id,
    });
    expect(typeof initial.body.end).toBe('string');
    const roomInitial = await hs.call('GET', `/_matrix/client/v3/rooms/${enc(roomId)}/initialSync`, {
      token: alice.accessToken,
    });
    expect(roomInitial.body).toMatchObject({ room_id: roomId, membership: 'join', visibility: 'public' });
    expect((roomInitial.body.state as JsonObject[]).some((e) => e.type === 'm.room.create')).toBe(true);
    const bob = await hs.createUser('bob');
    const hidden = await hs.call('GET', `/_matrix/client/v3/rooms/${enc(roomId)}/initialSync`, {
      token: bob.accessToken,
    });
    expect(hidden.status).toBe(403);
  });

  it('serves support contacts when configured; SSO, OAuth and a policy server are not offered', async () => {
    hs = await createTestHomeserver({
      support: {
        contacts: [{ role: 'm.role.admin', matrix_id: '@root:test.localhost' }],
        support_page: 'https://example.org/help',
      },
    });
    expect((await hs.call('GET', '/.well-known/matrix/support')).body).toEqual({
      contacts: [{ role: 'm.role.admin', matrix_id: '@root:test.localhost' }],
      support_page: 'https://example.org/help',
    });
    expect((await hs.call('GET', '/_matrix/client/v3/login/sso/redirect?redirectUrl=x')).status).toBe(404);
    expect((await hs.call('GET', '/_matrix/client/v1/auth_metadata')).body.errcode).toBe('M_UNRECOGNIZED');
    expect((await hs.call('GET', '/.well-known/matrix/policy_server')).status).toBe(404);
    await hs.close();
    hs = await createTestHomeserver();
    expect((await hs.call('GET', '/.well-known/matrix/support')).status).toBe(404);
  });

  it("keeps devices' last_seen_ip current", async () => {
    hs = await createTestHomeserver();
    const alice = await hs.createUser('alice');
    const ask = (ip: string) =>
      hs.fetch(
        new Request('http://test.localhost/_matrix/client/v3/account/whoami', {
          headers: { authorization: `Bearer ${alice.accessToken}` },
        }),
        { clientAddress: ip },
      );
    await ask('192.0.2.7');
    expect((await hs.store.accounts.getDevice(alice.userId, alice.deviceId))?.lastSeenIp).toBe('192.0.2.7');
    await ask('198.51.100.9');
    const device = await hs.call('GET', `/_matrix/client/v3/devices/${enc(alice.deviceId)}`, {
      token: alice.accessToken,
    });
    expect(device.body.last_seen_ip).toBe('198.51.100.9');
    expect(typeof device.body.last_seen_ts).toBe('number');
  });

  it('delivers HTTP pushers to a push gateway on loopback', async () => {
    const notes: JsonObject[] = [];
    gateway = createServer((req, res) => {
      let text = '';
      req.on('data', (c) => {
        text += c;
      });
      req.on('end', () => {
        notes.push(parseJson(text) as JsonObject);
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"rejected":[]}');
      });
    });
    await new Promise<void>((r) => gateway?.listen(0, '127.0.0.1', r));
    const port = (gateway.address() as { port: number }).port;
    hs = await createTestHomeserver({ outboundFetch: (request) => fetch(request) });
    const { pushDelivery } = hs.internals;
    pushDelivery.stop();
    await pushDelivery.step();
    const alice = await hs.createUser('alice');
    const bob = await hs.createUser('bob');
    const set = await hs.call('POST', '/_matrix/client/v3/pushers/set', {
      token: bob.accessToken,
      body: {
        kind: 'http',
        app_id: 'org.example.app',
        pushkey: 'bob-device-key',
        app_display_name: 'Example',
        device_display_name: 'Phone',
        lang: 'en',
        data: { url: `http://127.0.0.1:${port}/_matrix/push/v1/notify` },
      },
    });
    expect(set.status).toBe(200);
    const roomId = await room(alice.accessToken);
    await hs.call('POST', `/_matrix/client/v3/join/${enc(roomId)}`, { token: bob.accessToken, body: {} });
    await hs.call('PUT', `/_matrix/client/v3/rooms/${enc(roomId)}/send/m.room.message/1`, {
      token: alice.accessToken,
      body: { msgtype: 'm.text', body: 'ping bob' },
    });
    expect(await pushDelivery.step()).toBeGreaterThanOrEqual(1);
    const note = notes.map((n) => n.notification as JsonObject).find((n) => n.type === 'm.room.message');
    expect(note).toMatchObject({
      room_id: roomId,
      sender: alice.userId,
      content: { body: 'ping bob' },
      devices: [{ app_id: 'org.example.app', pushkey: 'bob-device-key' }],
    });
    expect(((note as JsonObject).counts as JsonObject).unread).toBeGreaterThanOrEqual(1);
    // Nothing is pushed twice.
    const count = notes.length;
    await pushDelivery.step();
    expect(notes.length).toBe(count);
  });

  it('without outgoing HTTP, stores pushers and reports them as not delivered', async () => {
    hs = await createTestHomeserver();
    const bob = await hs.createUser('bob');
    await hs.call('POST', '/_matrix/client/v3/pushers/set', {
      token: bob.accessToken,
      body: {
        kind: 'http',
        app_id: 'org.example.app',
        pushkey: 'k',
        app_display_name: 'Example',
        device_display_name: 'Phone',
        lang: 'en',
        data: { url: 'https://push.example.org/_matrix/push/v1/notify' },
      },
    });
    const list = await hs.call('GET', '/_matrix/client/v3/pushers', { token: bob.accessToken });
    expect(list.body.pushers).toEqual([
      expect.objectContaining({ pushkey: 'k', 'io.hearth.delivered': false }),
    ]);
    expect(hs.internals.pushDelivery.delivering).toBe(false);
  });
});
