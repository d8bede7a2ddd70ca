/**
 * Two `hearth serve` processes federating over HTTPS on loopback, each with a certificate from
 * a CA made at test time and trusted through `--federation-ca`: each answers the other's
 * signed profile and directory queries (fetching the other's key over HTTPS to check the
 * signature), and one restarted on the same `--data` comes back with the same key.
 *
 * The harness (`startFederatingPair` in serve.ts, over `startServe(dataDir, serverName,
 * extraArgs)`) also carries the whole conversation, with a restart in the middle
 * (federation-serve-chat.test.ts).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from 'matrix-js-sdk';
import { afterAll, describe, expect, it } from 'vitest';
import { type FederatingPair, startFederatingPair } from './serve.ts';

let pair: FederatingPair | undefined;
const root = mkdtempSync(join(tmpdir(), 'hearth-fed-'));
afterAll(async () => {
  await pair?.close();
  rmSync(root, { recursive: true, force: true });
});

type Json = Record<string, unknown>;

/** The SDK logs every request at info level. */
const quiet = { debug() {}, info() {}, log() {}, warn() {}, error() {}, trace() {}, getChild: () => quiet };

describe('two `hearth serve` processes federating over HTTPS', () => {
  it('fetch each other’s keys, answer signed queries across, and keep their key over a restart', async () => {
    // B delegates to itself: its /.well-known/matrix/server is served, A's is 404.
    pair = await startFederatingPair(root, (name, index) => (index === 1 ? ['--delegate-to', name] : []));
    const { a, b, call } = pair;
    const nameA = a.name;
    const nameB = b.name;
    const register = async (server: string, username: string) => {
      const body = { username, password: 'correct horse battery' };
      const first = await call(server, 'POST', '/_matrix/client/v3/register', { body });
      const auth = { type: 'm.login.dummy', session: first.body.session };
      const done = await call(server, 'POST', '/_matrix/client/v3/register', { body: { ...body, auth } });
      expect(done.status).toBe(200);
      return done.body as { user_id: string; access_token: string };
    };

    expect(a.serve.url).toBe(`https://127.0.0.1:${a.port}`);

    const alice = await register(nameB, 'alice');
    const bob = await register(nameA, 'bob');
    expect(alice.user_id).toBe(`@alice:${nameB}`);
    const name = (token: string, userId: string, displayname: string) =>
      call(
        userId.slice(userId.indexOf(':') + 1),
        'PUT',
        `/_matrix/client/v3/profile/${encodeURIComponent(userId)}/displayname`,
        {
          token,
          body: { displayname },
        },
      );
    expect((await name(alice.access_token, alice.user_id, 'Alice of B')).status).toBe(200);
    expect((await name(bob.access_token, bob.user_id, 'Bob of A')).status).toBe(200);
    const room = await call(nameB, 'POST', '/_matrix/client/v3/createRoom', {
      token: alice.access_token,
      body: { room_alias_name: 'lobby', visibility: 'public' },
    });
    expect(room.status).toBe(200);

    // A asks B (signed with A's key; B fetches it from A over HTTPS), and the other way.
    const profile = (server: string, token: string, userId: string) =>
      call(server, 'GET', `/_matrix/client/v3/profile/${encodeURIComponent(userId)}`, { token });
    expect(await profile(nameA, bob.access_token, alice.user_id)).toEqual({
      status: 200,
      body: { displayname: 'Alice of B' },
    });
    expect(await profile(nameB, alice.access_token, bob.user_id)).toEqual({
      status: 200,
      body: { displayname: 'Bob of A' },
    });
    // matrix-js-sdk, unmodified, on A over HTTPS (pair.fetch trusts the test CA) sees the same.
    const sdk = createClient({
      baseUrl: `https://${nameA}`,
      accessToken: bob.access_token,
      userId: bob.user_id,
      fetchFn: pair.fetch,
      logger: quiet as never,
    });
    expect(await sdk.getProfileInfo(alice.user_id)).toEqual({ displayname: 'Alice of B' });
    expect((await sdk.getRoomIdForAlias(`#lobby:${nameB}`)).room_id).toBe(room.body.room_id);

    const alias = encodeURIComponent(`#lobby:${nameB}`);
    const resolved = await call(nameA, 'GET', `/_matrix/client/v3/directory/room/${alias}`);
    expect(resolved).toEqual({ status: 200, body: { room_id: room.body.room_id, servers: [nameB] } });
    const missing = await call(
      nameA,
      'GET',
      `/_matrix/client/v3/directory/room/${encodeURIComponent(`#nope:${nameB}`)}`,
    );
    expect([missing.status, missing.body.errcode]).toEqual([404, 'M_NOT_FOUND']);

    // Each now holds the other's key, fetched over HTTPS: as notary it serves it countersigned.
    const ownKey = async (server: string) =>
      (await call(server, 'GET', '/_matrix/key/v2/server')).body.verify_keys as Json;
    const keyA = await ownKey(nameA);
    const keyB = await ownKey(nameB);
    const notarised = await call(nameA, 'GET', `/_matrix/key/v2/query/${nameB}`);
    const fromA = (notarised.body.server_keys as Json[])[0] as Json;
    expect(fromA.verify_keys).toEqual(keyB);
    expect(Object.keys(fromA.signatures as Json).sort()).toEqual([nameA, nameB].sort());
    const heldByB = (await call(nameB, 'GET', `/_matrix/key/v2/query/${nameA}`)).body.server_keys as Json[];
    expect(heldByB[0]?.verify_keys).toEqual(keyA);

    // Delegation, as the operator configured it on B.
    expect(await call(nameB, 'GET', '/.well-known/matrix/server')).toEqual({
      status: 200,
      body: { 'm.server': nameB },
    });
    expect((await call(nameA, 'GET', '/.well-known/matrix/server')).status).toBe(404);

    // B restarts on the same data and port: same key, and A's queries are answered again.
    await pair.restart(b);
    expect(await ownKey(nameB)).toEqual(keyB);
    expect((await profile(nameA, bob.access_token, alice.user_id)).body).toEqual({
      displayname: 'Alice of B',
    });
    expect((await profile(nameB, alice.access_token, bob.user_id)).body).toEqual({
      displayname: 'Bob of A',
    });
  }, 120_000);
});
