/**
 * A real bridge against `hearth serve` (issue 14, "Bridges"): matrix-appservice-bridge, the
 * library most Matrix bridges are built on, unmodified, with Hearth started as an operator
 * would — `hearth serve --config hearth.yaml` whose `appservice` key names the bridge's
 * registration file. The bridge registers a virtual user (`m.login.application_service`),
 * is invited, receives the invite and then a message in its namespace as transactions
 * (`PUT /_matrix/app/v1/transactions/{txnId}`), and answers in the room as that user
 * (`as_token` with `?user_id=`). Its exclusive namespaces are closed to ordinary users, and
 * its third-party protocol is what `/thirdparty/protocols` lists.
 *
 * The one thing not loaded is the bridge's end-to-end encryption: its native module
 * (@matrix-org/matrix-sdk-crypto-nodejs) has no binary for this machine, and matrix-bot-sdk
 * requires it at load time even when encryption is off. It is stood in for by an empty
 * module before the bridge loads; no crypto code path is used by this test.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Serve, startServe, stopServe } from './serve.ts';

const require = createRequire(import.meta.url);
const cryptoModule = require.resolve('@matrix-org/matrix-sdk-crypto-nodejs');
require.cache[cryptoModule] ??= {
  id: cryptoModule,
  filename: cryptoModule,
  loaded: true,
  exports: {},
} as unknown as NodeJS.Module;
const { Bridge } = require('matrix-appservice-bridge') as typeof import('matrix-appservice-bridge');
const { AppService } = require('matrix-appservice') as typeof import('matrix-appservice');

const SERVER = 'bridge.test';
const AS_TOKEN = 'as-token-echo-bridge-0123456789';
const HS_TOKEN = 'hs-token-echo-bridge-0123456789';

type Call = (
  method: string,
  path: string,
  opts?: { token?: string; body?: unknown },
) => Promise<{
  status: number;
  body: Record<string, unknown>;
}>;

describe('matrix-appservice-bridge against hearth serve --config', () => {
  let dir: string;
  let serve: Serve;
  let bridge: InstanceType<typeof Bridge>;
  let firstListener: Server | undefined;
  let call: Call;
  const seen: { type: string; sender: string; body?: unknown }[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hearth-bridge-'));
    // The bridge's HTTP side first, on a port of the system's choosing: its URL goes in the
    // registration file the homeserver reads at start.
    const appservice = new AppService({ homeserverToken: HS_TOKEN });
    await appservice.listen(0, '127.0.0.1', 10);
    firstListener = (appservice as unknown as { server: Server }).server;
    const port = (firstListener.address() as { port: number }).port;
    const registration = join(dir, 'echo-registration.yaml');
    writeFileSync(
      registration,
      [
        'id: echo',
        `url: http://127.0.0.1:${port}`,
        `as_token: ${AS_TOKEN}`,
        `hs_token: ${HS_TOKEN}`,
        'sender_localpart: echobot',
        'namespaces:',
        '  users:',
        '    - exclusive: true',
        `      regex: "@echo_.*:${SERVER.replace('.', '\\\\.')}"`,
        '  aliases:',
        '    - exclusive: true',
        `      regex: "#echo_.*:${SERVER.replace('.', '\\\\.')}"`,
        '  rooms: []',
        'rate_limited: false',
        'receive_ephemeral: true',
        'protocols: [echo]',
        '',
      ].join('\n'),
    );
    const config = join(dir, 'hearth.yaml');
    writeFileSync(
      config,
      [
        '# hearth serve --config: flags as keys, plus what flags do not carry',
        'appservice:',
        '  - echo-registration.yaml',
        'federation: off',
        'default_room_version: "10"',
        'rate_limits:',
        '  message: { per_second: 100, burst: 100 }',
        '  register: { per_second: 100, burst: 100 }',
        '',
      ].join('\n'),
    );
    serve = await startServe(join(dir, 'data'), SERVER, ['--config', config]);
    call = async (method, path, opts = {}) => {
      const res = await fetch(`${serve.url}${path}`, {
        method,
        headers: {
          ...(opts.token ? { Authorization: `Bearer ${opts.token}` } : {}),
          ...(opts.body !== undefined ? { 'Content-Type': 'application/json' } : {}),
        },
        ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}),
      });
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : {} };
    };

    bridge = new Bridge({
      homeserverUrl: serve.url,
      domain: SERVER,
      registration,
      disableStores: true,
      disableContext: true,
      controller: {
        onUserQuery: () => ({}),
        onEvent: async (request) => {
          const event = request.getData() as {
            type: string;
            sender: string;
            room_id: string;
            state_key?: string;
            content: { membership?: string; body?: string };
          };
          seen.push({ type: event.type, sender: event.sender, body: event.content.body });
          if (event.type === 'm.room.member' && event.content.membership === 'invite' && event.state_key) {
            await bridge.getIntent(event.state_key).join(event.room_id);
          } else if (event.type === 'm.room.message' && !event.sender.startsWith('@echo_')) {
            await bridge
              .getIntent(`@echo_alice:${SERVER}`)
              .sendText(event.room_id, `echo: ${String(event.content.body)}`);
          }
        },
        thirdPartyLookup: {
          protocols: ['echo'],
          getProtocol: async () => ({
            user_fields: ['name'],
            location_fields: ['channel'],
            icon: 'mxc://bridge.test/echo',
            field_types: {
              name: { regexp: '.+', placeholder: 'someone' },
              channel: { regexp: '#.+', placeholder: '#lobby' },
            },
            instances: [{ desc: 'Echo', network_id: 'echo', fields: {} }],
          }),
          getLocation: async () => [],
          getUser: async (_protocol: string, fields: Record<string, string>) => [
            { userid: `@echo_${fields.name}:${SERVER}`, protocol: 'echo', fields },
          ],
        },
      },
    });
    await bridge.initialise();
    await bridge.listen(0, '127.0.0.1', 10, appservice);
  }, 60_000);

  afterAll(async () => {
    await bridge?.close().catch(() => undefined);
    await new Promise((resolve) => (firstListener ? firstListener.close(resolve) : resolve(undefined)));
    if (serve) await stopServe(serve.child);
    rmSync(dir, { recursive: true, force: true });
  });

  async function register(username: string) {
    const first = await call('POST', '/_matrix/client/v3/register', {
      body: { username, password: `${username}-password-1` },
    });
    return call('POST', '/_matrix/client/v3/register', {
      body: {
        username,
        password: `${username}-password-1`,
        auth: { type: 'm.login.dummy', session: first.body.session },
      },
    });
  }

  it('registers a virtual user, gets the invite and a message, and answers in the room', async () => {
    // The bridge registers its virtual user with its as_token (m.login.application_service).
    await bridge.getIntent(`@echo_alice:${SERVER}`).ensureRegistered();
    const virtual = await call(
      'GET',
      `/_matrix/client/v3/profile/${encodeURIComponent(`@echo_alice:${SERVER}`)}`,
    );
    expect(virtual.status).toBe(200);

    const alice = (await register('alice')).body;
    const token = alice.access_token as string;
    const room = await call('POST', '/_matrix/client/v3/createRoom', {
      token,
      body: { name: 'Bridged', invite: [`@echo_alice:${SERVER}`] },
    });
    expect(room.status).toBe(200);
    const roomId = room.body.room_id as string;
    // default_room_version from the configuration file.
    const create = await call(
      'GET',
      `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/state/m.room.create/`,
      { token },
    );
    expect(create.body.room_version).toBe('10');

    // The invite reaches the bridge as a transaction; it joins as its virtual user.
    await waitFor(async () => {
      const m = await call(
        'GET',
        `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/state/m.room.member/${encodeURIComponent(`@echo_alice:${SERVER}`)}`,
        { token },
      );
      return m.body.membership === 'join';
    });

    const sent = await call(
      'PUT',
      `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/t1`,
      {
        token,
        body: { msgtype: 'm.text', body: 'hello bridge' },
      },
    );
    expect(sent.status).toBe(200);
    const echoed = await waitFor(async () => {
      const msgs = await call(
        'GET',
        `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/messages?dir=b&limit=10`,
        { token },
      );
      return (msgs.body.chunk as { sender: string; content: { body?: string } }[]).find(
        (e) => e.sender === `@echo_alice:${SERVER}` && e.content.body === 'echo: hello bridge',
      );
    });
    expect(echoed).toBeDefined();
    expect(seen).toContainEqual({
      type: 'm.room.message',
      sender: alice.user_id as string,
      body: 'hello bridge',
    });
    expect(seen.some((e) => e.type === 'm.room.member')).toBe(true);
  }, 60_000);

  it('closes the exclusive namespaces to everyone else', async () => {
    const taken = await call('POST', '/_matrix/client/v3/register', {
      body: { username: 'echo_mallory', password: 'mallory-password-1' },
    });
    expect(taken).toMatchObject({ status: 400, body: { errcode: 'M_EXCLUSIVE' } });
    const bob = (await register('bob')).body;
    const room = await call('POST', '/_matrix/client/v3/createRoom', {
      token: bob.access_token as string,
      body: { room_alias_name: 'echo_lobby' },
    });
    expect(room).toMatchObject({ status: 400, body: { errcode: 'M_EXCLUSIVE' } });
    // The application service may not step outside its namespaces either.
    const outside = await call('POST', '/_matrix/client/v3/register', {
      token: AS_TOKEN,
      body: { type: 'm.login.application_service', username: 'not_echo' },
    });
    expect(outside).toMatchObject({ status: 400, body: { errcode: 'M_EXCLUSIVE' } });
    const masquerade = await call(
      'GET',
      `/_matrix/client/v3/account/whoami?user_id=${encodeURIComponent(bob.user_id as string)}`,
      {
        token: AS_TOKEN,
      },
    );
    expect(masquerade.status).toBe(403);
    const asSelf = await call('GET', '/_matrix/client/v3/account/whoami', { token: AS_TOKEN });
    expect(asSelf.body.user_id).toBe(`@echobot:${SERVER}`);
  });

  it('lists the bridge protocol and forwards third-party lookups to it', async () => {
    const carol = (await register('carol')).body;
    const token = carol.access_token as string;
    const protocols = await call('GET', '/_matrix/client/v3/thirdparty/protocols', { token });
    expect(protocols.status).toBe(200);
    expect(protocols.body.echo).toMatchObject({ user_fields: ['name'], location_fields: ['channel'] });
    const users = await call('GET', '/_matrix/client/v3/thirdparty/user/echo?name=dora', { token });
    expect(users.status).toBe(200);
    expect(users.body).toEqual([
      { userid: `@echo_dora:${SERVER}`, protocol: 'echo', fields: { name: 'dora' } },
    ]);
    const unknown = await call('GET', '/_matrix/client/v3/thirdparty/protocol/irc', { token });
    expect(unknown.status).toBe(404);
  });
});

async function waitFor<T>(probe: () => Promise<T | false | undefined>, ms = 20_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > until) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 100));
  }
}
