/**
 * Application-service delivery in detail, with the service's HTTP side a recording double
 * (the real-bridge test is test/e2e/appservice-bridge.test.ts): a refused transaction is
 * retried with the same txnId and the same events until the service takes it, nothing is
 * sent twice after that, ephemeral events come when asked, unknown aliases and users are
 * asked of the service, and ping reports the round trip.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { JsonObject } from '../../src/core/canonical-json.ts';
import { parseJson } from '../../src/core/json.ts';
import { parseRegistration } from '../../src/homeserver/appservices/registration.ts';
import { createTestHomeserver, type TestHomeserver } from '../../src/testing.ts';

const SERVER = 'test.localhost';

interface Received {
  method: string;
  path: string;
  auth: string | null;
  body: JsonObject | null;
}

function registration(extra: Record<string, unknown> = {}) {
  return parseRegistration({
    id: 'irc',
    url: 'http://bridge.invalid',
    as_token: 'as-secret',
    hs_token: 'hs-secret',
    sender_localpart: 'ircbot',
    namespaces: {
      users: [{ exclusive: true, regex: '@irc_.*' }],
      aliases: [{ exclusive: true, regex: '#irc_.*' }],
    },
    receive_ephemeral: true,
    ...extra,
  });
}

describe('application services', () => {
  let hs: TestHomeserver;
  afterEach(() => hs?.close());

  async function start(answer: (r: Received) => Response | Promise<Response>) {
    const received: Received[] = [];
    hs = await createTestHomeserver({
      appservices: [registration()],
      outboundFetch: async (request) => {
        const url = new URL(request.url);
        const text = await request.text();
        const r: Received = {
          method: request.method,
          path: url.pathname + url.search,
          auth: request.headers.get('authorization'),
          body: text ? (parseJson(text) as JsonObject) : null,
        };
        received.push(r);
        return answer(r);
      },
    });
    return received;
  }

  it('retries a refused transaction with the same ID and events, then sends each event once', async () => {
    let refuse = 2;
    const received = await start((r) =>
      r.path.startsWith('/_matrix/app/v1/transactions/') && refuse-- > 0
        ? Response.json({ errcode: 'M_UNKNOWN' }, { status: 503 })
        : Response.json({}),
    );
    const { appservices } = hs.internals;
    appservices.stop(); // driven by hand below
    // The first step starts the follower at the present: services hear of what happens next.
    await appservices.follow();
    const alice = await hs.createUser('alice');
    const ircUser = await hs.call('POST', '/_matrix/client/v3/register', {
      token: 'as-secret',
      body: { type: 'm.login.application_service', username: 'irc_bob', inhibit_login: true },
    });
    expect(ircUser.body.user_id).toBe(`@irc_bob:${SERVER}`);
    const room = await hs.call('POST', '/_matrix/client/v3/createRoom', {
      token: alice.accessToken,
      body: { invite: [`@irc_bob:${SERVER}`] },
    });
    const roomId = room.body.room_id as string;
    await appservices.follow();
    await hs.call('PUT', `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/1`, {
      token: alice.accessToken,
      body: { msgtype: 'm.text', body: 'hi irc' },
    });
    await appservices.follow();
    const txns = () => received.filter((r) => r.path.startsWith('/_matrix/app/v1/transactions/'));
    await appservices.deliver();
    expect(txns()).toHaveLength(1);
    // Backoff: an immediate second round sends nothing.
    await appservices.deliver();
    expect(txns()).toHaveLength(1);
    for (let i = 0; i < 50 && txns().length < 3; i++) {
      await new Promise((r) => setTimeout(r, 100));
      await appservices.deliver();
    }
    const sent = txns();
    expect(sent).toHaveLength(3);
    expect(new Set(sent.map((t) => t.path)).size).toBe(1);
    expect(sent[2]?.body).toEqual(sent[0]?.body);
    expect(sent[0]?.auth).toBe('Bearer hs-secret');
    const events = sent[0]?.body?.events as { type: string; content: { body?: string } }[];
    expect(events.some((e) => e.type === 'm.room.member')).toBe(true);
    expect(events.some((e) => e.content.body === 'hi irc')).toBe(true);
    // Taken: the queue is empty and stays so.
    await appservices.deliver();
    expect(txns()).toHaveLength(3);
    expect(await hs.store.operator.appserviceQueue('irc', 10)).toEqual([]);
  });

  it('sends typing and receipts as ephemeral events of rooms its users are in', async () => {
    const received = await start(() => Response.json({}));
    const { appservices } = hs.internals;
    appservices.stop();
    const alice = await hs.createUser('alice');
    await hs.call('POST', '/_matrix/client/v3/register', {
      token: 'as-secret',
      body: { type: 'm.login.application_service', username: 'irc_bob' },
    });
    const roomId = (
      await hs.call('POST', '/_matrix/client/v3/createRoom', {
        token: alice.accessToken,
        body: { preset: 'public_chat' },
      })
    ).body.room_id as string;
    const join = await hs.call(
      'POST',
      `/_matrix/client/v3/join/${encodeURIComponent(roomId)}?user_id=${encodeURIComponent(`@irc_bob:${SERVER}`)}`,
      { token: 'as-secret', body: {} },
    );
    expect(join.status).toBe(200);
    await hs.call(
      'PUT',
      `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/typing/${encodeURIComponent(alice.userId)}`,
      { token: alice.accessToken, body: { typing: true, timeout: 10_000 } },
    );
    await appservices.follow();
    await appservices.deliver();
    const bodies = received
      .filter((r) => r.path.startsWith('/_matrix/app/v1/transactions/'))
      .map((r) => r.body);
    const ephemeral = bodies.flatMap((b) => (b?.ephemeral as JsonObject[] | undefined) ?? []);
    expect(ephemeral).toContainEqual({
      type: 'm.typing',
      room_id: roomId,
      content: { user_ids: [alice.userId] },
    });
    expect(bodies.some((b) => Array.isArray(b?.['de.sorunome.msc2409.ephemeral']))).toBe(true);
  });

  it('asks the service about unknown aliases and users in its namespaces', async () => {
    const received = await start(async (r) => {
      if (r.path.startsWith('/_matrix/app/v1/rooms/')) {
        // The bridge makes the room and its alias, as bridges do, then says yes.
        const made = await hs.call(
          'POST',
          `/_matrix/client/v3/createRoom?user_id=${encodeURIComponent(`@ircbot:${SERVER}`)}`,
          {
            token: 'as-secret',
            body: { room_alias_name: 'irc_lobby' },
          },
        );
        return made.status === 200 ? Response.json({}) : Response.json({}, { status: 404 });
      }
      return Response.json({ errcode: 'M_NOT_FOUND' }, { status: 404 });
    });
    hs.internals.appservices.stop();
    const alice = await hs.createUser('alice');
    const found = await hs.call(
      'GET',
      `/_matrix/client/v3/directory/room/${encodeURIComponent(`#irc_lobby:${SERVER}`)}`,
      {
        token: alice.accessToken,
      },
    );
    expect(found.status).toBe(200);
    expect(
      received.some((r) => r.path === `/_matrix/app/v1/rooms/${encodeURIComponent(`#irc_lobby:${SERVER}`)}`),
    ).toBe(true);
    const user = await hs.call(
      'GET',
      `/_matrix/client/v3/profile/${encodeURIComponent(`@irc_nobody:${SERVER}`)}`,
      {
        token: alice.accessToken,
      },
    );
    expect(user.status).toBe(404);
    expect(received.some((r) => r.path.startsWith('/_matrix/app/v1/users/'))).toBe(true);
    // Outside every namespace, nobody is asked.
    const before = received.length;
    await hs.call('GET', `/_matrix/client/v3/directory/room/${encodeURIComponent(`#other:${SERVER}`)}`, {
      token: alice.accessToken,
    });
    expect(received.length).toBe(before);
  });

  it('pings the service for itself only', async () => {
    const received = await start((r) =>
      r.path === '/_matrix/app/v1/ping' ? Response.json({}) : Response.json({}, { status: 404 }),
    );
    hs.internals.appservices.stop();
    const ok = await hs.call('POST', '/_matrix/client/v1/appservice/irc/ping', {
      token: 'as-secret',
      body: { transaction_id: 'p1' },
    });
    expect(ok.status).toBe(200);
    expect(typeof ok.body.duration_ms).toBe('number');
    expect(received.find((r) => r.path === '/_matrix/app/v1/ping')?.body).toEqual({ transaction_id: 'p1' });
    const alice = await hs.createUser('alice');
    const other = await hs.call('POST', '/_matrix/client/v1/appservice/irc/ping', {
      token: alice.accessToken,
      body: {},
    });
    expect(other).toMatchObject({ status: 403, body: { errcode: 'M_FORBIDDEN' } });
  });

  it('refuses a registration file with a bad key, naming it', () => {
    expect(() => registration({ url: 'ftp://x' })).toThrow(/^url:/);
    expect(() => registration({ namespaces: { users: [{ regex: '(' }] } })).toThrow(
      /namespaces\.users\[0\]\.regex/,
    );
    expect(() => registration({ as_token: '' })).toThrow(/^as_token:/);
    expect(() => registration({ rate_limited: 'no' })).toThrow(/^rate_limited:/);
  });
});
