/**
 * Two `hearth serve` processes federating over HTTPS on loopback, each with a certificate from
 * a CA made at test time and trusted through `--federation-ca`: each answers the other's
 * signed profile and directory queries (fetching the other's key over HTTPS to check the
 * signature), and one restarted on the same `--data` comes back with the same key.
 *
 * The harness (`startFederatingPair`-style: `startServe(dataDir, serverName, extraArgs)`) is
 * what the join/send conversation will run on once that handshake exists.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseJson } from '../../src/core/json.ts';
import { createNodeHttpsTransport } from '../../src/transport/https/node.ts';
import { createTestCa } from '../../src/transport/https/testing-tls.ts';
import { freePort, type Serve, startServe, stopServe } from './serve.ts';

const root = mkdtempSync(join(tmpdir(), 'hearth-fed-'));
const running: Serve[] = [];
afterAll(async () => {
  await Promise.all(running.map((s) => stopServe(s.child)));
  rmSync(root, { recursive: true, force: true });
});

/** The CA, one certificate for `localhost` and 127.0.0.1 (both servers), as files. */
function writeTls(): { cert: string; key: string; ca: string; caPem: string } {
  const ca = createTestCa();
  const leaf = ca.issue(['DNS:localhost', 'IP:127.0.0.1']);
  const files = { cert: join(root, 'tls.crt'), key: join(root, 'tls.key'), ca: join(root, 'ca.crt') };
  writeFileSync(files.cert, leaf.cert);
  writeFileSync(files.key, leaf.key, { mode: 0o600 });
  writeFileSync(files.ca, ca.cert);
  return { ...files, caPem: ca.cert };
}

type Json = Record<string, unknown>;

describe('two `hearth serve` processes federating over HTTPS', () => {
  it('fetch each other’s keys, answer signed queries across, and keep their key over a restart', async () => {
    const tls = writeTls();
    const [portA, portB] = [await freePort(), await freePort()];
    const nameA = `localhost:${portA}`;
    const nameB = `localhost:${portB}`;
    const start = async (name: string, port: number, extra: string[] = []) => {
      const serve = await startServe(join(root, name.replace(':', '-')), name, [
        '--port',
        String(port),
        '--tls-cert',
        tls.cert,
        '--tls-key',
        tls.key,
        '--federation-ca',
        tls.ca,
        ...extra,
      ]);
      running.push(serve);
      return serve;
    };
    // The test speaks HTTPS to both as any other server would: by server name, trusting the CA.
    const https = createNodeHttpsTransport({ ca: tls.caPem });
    const call = async (
      server: string,
      method: string,
      path: string,
      opts: { token?: string; body?: Json } = {},
    ) => {
      const headers = new Headers();
      if (opts.token) headers.set('authorization', `Bearer ${opts.token}`);
      if (opts.body) headers.set('content-type', 'application/json');
      const response = await https.send(
        server,
        new Request(`https://${server}${path}`, {
          method,
          headers,
          body: opts.body ? JSON.stringify(opts.body) : undefined,
        }),
      );
      const text = await response.text();
      return { status: response.status, body: (text ? parseJson(text) : {}) as Json };
    };
    const register = async (server: string, username: string) => {
      const body = { username, password: 'correct horse battery' };
      const first = await call(server, 'POST', '/_matrix/client/v3/register', { body });
      const auth = { type: 'm.login.dummy', session: first.body.session };
      const done = await call(server, 'POST', '/_matrix/client/v3/register', { body: { ...body, auth } });
      expect(done.status).toBe(200);
      return done.body as { user_id: string; access_token: string };
    };

    try {
      const a = await start(nameA, portA);
      let b = await start(nameB, portB, ['--delegate-to', nameB]);
      expect(a.url).toBe(`https://127.0.0.1:${portA}`);

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
      await stopServe(b.child);
      b = await start(nameB, portB);
      expect(await ownKey(nameB)).toEqual(keyB);
      expect((await profile(nameA, bob.access_token, alice.user_id)).body).toEqual({
        displayname: 'Alice of B',
      });
      expect((await profile(nameB, alice.access_token, bob.user_id)).body).toEqual({
        displayname: 'Bob of A',
      });
    } finally {
      https.close();
    }
  }, 120_000);
});
