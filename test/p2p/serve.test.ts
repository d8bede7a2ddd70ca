/**
 * `hearth serve --p2p --bootstrap ADDR` beside `hearth relay`, in-process, on loopback: two
 * servers named by their keys federate a room through the relay (WebRTC set up over it), and
 * clients talk to each over plain HTTP as to any homeserver.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { isP2pServerName } from '../../src/core/p2p-identity.ts';
import { parseServeArgs, serve } from '../../src/hosts/cli.ts';
import { parseRelayArgs, RELAY_USAGE, startRelay } from '../../src/hosts/relay.ts';

const stops: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const stop of stops.splice(0).reverse()) await stop();
});

type Json = Record<string, unknown>;

async function call(base: string, method: string, path: string, token?: string, body?: unknown) {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as Json };
}

async function register(base: string, username: string) {
  const body = { username, password: 'correct horse battery' };
  const first = await call(base, 'POST', '/_matrix/client/v3/register', undefined, body);
  const auth = { type: 'm.login.dummy', session: first.body.session };
  const done = await call(base, 'POST', '/_matrix/client/v3/register', undefined, { ...body, auth });
  expect(done.status).toBe(200);
  return done.body as { user_id: string; access_token: string };
}

describe('hearth serve --p2p and hearth relay', () => {
  it('documents the relay flags', () => {
    for (const flag of ['--port', '--ws-port', '--listen', '--key', '--max-reservations', '--mailbox-days']) {
      expect(RELAY_USAGE).toContain(flag);
    }
    expect(() => parseServeArgs(['--p2p', '--server-name', 'example.org'])).toThrow(/--server-name/);
    expect(() => parseServeArgs(['--bootstrap', 'example.org'])).toThrow(/multiaddr/);
  });

  it('two P2P servers federate a room through a relay', async () => {
    const relay = await startRelay(
      parseRelayArgs(['--port', '0', '--ws-port', '0', '--stats-seconds', '0', '--log-level', 'warn']),
    );
    stops.push(() => relay.stop());
    const bootstrap = relay.relay.addresses()[0] as string;
    const start = async () => {
      const running = await serve(
        parseServeArgs([
          '--port',
          '0',
          '--p2p',
          '--bootstrap',
          bootstrap,
          '--registration',
          'open',
          '--log-level',
          'warn',
        ]),
      );
      stops.push(() => running.stop());
      return running;
    };
    const a = await start();
    const b = await start();
    expect(isP2pServerName(a.serverName)).toBe(true);
    const alice = await register(a.url, 'alice');
    const bob = await register(b.url, 'bob');
    expect(bob.user_id).toBe(`@bob:${b.serverName}`);
    await expect.poll(() => relay.relay.stats().announcedPeers, { timeout: 10_000 }).toBe(2);

    const room = await call(a.url, 'POST', '/_matrix/client/v3/createRoom', alice.access_token, {
      preset: 'private_chat',
      invite: [bob.user_id],
    });
    expect(room.status).toBe(200);
    const roomId = room.body.room_id as string;
    const enc = encodeURIComponent;
    expect(
      (await call(b.url, 'POST', `/_matrix/client/v3/join/${enc(roomId)}`, bob.access_token, {})).status,
    ).toBe(200);
    await call(
      b.url,
      'PUT',
      `/_matrix/client/v3/rooms/${enc(roomId)}/send/m.room.message/1`,
      bob.access_token,
      {
        msgtype: 'm.text',
        body: 'hello over p2p',
      },
    );
    await expect
      .poll(
        async () => {
          const page = await call(
            a.url,
            'GET',
            `/_matrix/client/v3/rooms/${enc(roomId)}/messages?dir=b`,
            alice.access_token,
          );
          return (page.body.chunk as { type: string; content: { body?: string } }[])
            .filter((e) => e.type === 'm.room.message')
            .map((e) => e.content.body);
        },
        { timeout: 15_000 },
      )
      .toEqual(['hello over p2p']);
    expect(a.p2p?.libp2p.peer(b.serverName).state).toBe('direct');
  }, 60_000);
});
