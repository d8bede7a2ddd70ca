/**
 * The browser homeserver's lifecycle in Node, on fake-indexeddb: requests racing start-up,
 * the owner's controls, and reset/import replacing the homeserver under running requests.
 * The same code runs in Chromium's Service Worker in test/browser/.
 */
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb';
import { describe, expect, it } from 'vitest';
import { P2P_KEY_ID, p2pSigningKey } from '../core/p2p-identity.ts';
import { createBrowserHomeserver } from './browser-homeserver.ts';

const SERVER = 'browser.test';

function make(indexedDB = new IDBFactory(), databaseName = 'hearth') {
  return createBrowserHomeserver({
    serverName: SERVER,
    indexedDB,
    IDBKeyRange,
    databaseName,
    passwordIterations: 1000,
  });
}

async function login(hs: ReturnType<typeof make>, user: string, password: string) {
  const response = await hs.fetch(
    new Request(`http://${SERVER}/_matrix/client/v3/login`, {
      method: 'POST',
      body: JSON.stringify({ type: 'm.login.password', identifier: { type: 'm.id.user', user }, password }),
    }),
  );
  return { status: response.status, body: (await response.json()) as Record<string, string> };
}

async function send(hs: ReturnType<typeof make>, token: string, roomId: string, body: string) {
  const response = await hs.fetch(
    new Request(
      `http://${SERVER}/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/${crypto.randomUUID()}`,
      {
        method: 'PUT',
        headers: { authorization: `Bearer ${token}` },
        body: JSON.stringify({ msgtype: 'm.text', body }),
      },
    ),
  );
  expect(response.status).toBe(200);
}

async function bodies(hs: ReturnType<typeof make>, token: string, roomId: string): Promise<string[]> {
  const response = await hs.fetch(
    new Request(
      `http://${SERVER}/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/messages?dir=f&limit=100`,
      {
        headers: { authorization: `Bearer ${token}` },
      },
    ),
  );
  const chunk = ((await response.json()) as { chunk: { type: string; content: { body?: string } }[] }).chunk;
  return chunk.filter((e) => e.type === 'm.room.message').map((e) => e.content.body as string);
}

async function room(hs: ReturnType<typeof make>, token: string): Promise<string> {
  const response = await hs.fetch(
    new Request(`http://${SERVER}/_matrix/client/v3/createRoom`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}` },
      body: '{}',
    }),
  );
  return ((await response.json()) as { room_id: string }).room_id;
}

describe('createBrowserHomeserver', () => {
  it('answers a request sent the moment it is created', async () => {
    const hs = make();
    const response = await hs.fetch(new Request(`http://${SERVER}/_matrix/client/versions`));
    expect(response.status).toBe(200);
    expect(((await response.json()) as { versions: string[] }).versions.length).toBeGreaterThan(0);
    expect(await hs.control.status()).toMatchObject({ ready: true, serverName: SERVER });
    await hs.close();
  });

  it('creates the owner’s account whatever the registration policy, once', async () => {
    const hs = createBrowserHomeserver({
      serverName: SERVER,
      indexedDB: new IDBFactory(),
      IDBKeyRange,
      registration: 'closed',
      passwordIterations: 1000,
    });
    expect(await hs.control.createAccount('Owner', 'pass-word')).toEqual({ userId: `@owner:${SERVER}` });
    expect((await login(hs, 'owner', 'pass-word')).status).toBe(200);
    expect((await login(hs, 'owner', 'wrong')).status).toBe(403);
    await expect(hs.control.createAccount('owner', 'again')).rejects.toThrow(/already exists/);
    await expect(hs.control.createAccount('bad name!', 'x')).rejects.toThrow();
    await hs.close();
  });

  it('resets to an empty homeserver, ending a running /sync instead of waiting for it', async () => {
    const indexedDB = new IDBFactory();
    const hs = make(indexedDB);
    await hs.control.createAccount('alice', 'pw');
    const { body } = await login(hs, 'alice', 'pw');
    const first = (await (
      await hs.fetch(
        new Request(`http://${SERVER}/_matrix/client/v3/sync`, {
          headers: { authorization: `Bearer ${body.access_token}` },
        }),
      )
    ).json()) as { next_batch: string };
    const started = Date.now();
    const polling = hs.fetch(
      new Request(`http://${SERVER}/_matrix/client/v3/sync?timeout=20000&since=${first.next_batch}`, {
        headers: { authorization: `Bearer ${body.access_token}` },
      }),
    );
    await new Promise((resolve) => setTimeout(resolve, 50));
    await hs.control.reset();
    expect(Date.now() - started).toBeLessThan(5_000);
    await polling.catch(() => undefined);
    // The account, its token and its key are gone; the server answers as a new one.
    expect((await login(hs, 'alice', 'pw')).status).toBe(403);
    const whoami = await hs.fetch(
      new Request(`http://${SERVER}/_matrix/client/v3/account/whoami`, {
        headers: { authorization: `Bearer ${body.access_token}` },
      }),
    );
    expect(whoami.status).toBe(401);
    expect(await hs.control.status()).toMatchObject({ ready: true });
    await hs.close();
  });

  it('exports, resets and imports back the same history; a wrong file changes nothing', async () => {
    const hs = make();
    await hs.control.createAccount('alice', 'pw');
    const token = (await login(hs, 'alice', 'pw')).body.access_token as string;
    const roomId = await room(hs, token);
    for (const text of ['one', 'two', 'three']) await send(hs, token, roomId, text);
    const backup = await hs.control.exportBackup();
    await hs.control.reset();
    expect((await login(hs, 'alice', 'pw')).status).toBe(403);

    await expect(hs.control.importBackup(new Blob(['not a backup\n']))).rejects.toMatchObject({
      code: 'NOT_A_BACKUP',
    });
    await hs.control.importBackup(backup);
    // The old access token works again: tokens are part of the backup.
    expect(await bodies(hs, token, roomId)).toEqual(['one', 'two', 'three']);
    await send(hs, token, roomId, 'four');

    const other = createBrowserHomeserver({
      serverName: 'other.test',
      indexedDB: new IDBFactory(),
      IDBKeyRange,
    });
    await expect(other.control.importBackup(backup)).rejects.toMatchObject({ code: 'SERVER_MISMATCH' });
    await other.close();
    expect(await bodies(hs, token, roomId)).toEqual(['one', 'two', 'three', 'four']);
    await hs.close();
  });

  it('ends a /sync long-poll at maxSyncTimeoutMs whatever the client asks (a worker must not hang)', async () => {
    const hs = createBrowserHomeserver({
      serverName: SERVER,
      indexedDB: new IDBFactory(),
      IDBKeyRange,
      maxSyncTimeoutMs: 300,
      passwordIterations: 1000,
    });
    await hs.control.createAccount('alice', 'pw');
    const token = (await login(hs, 'alice', 'pw')).body.access_token as string;
    const auth = { authorization: `Bearer ${token}` };
    const first = (await (
      await hs.fetch(new Request(`http://${SERVER}/_matrix/client/v3/sync`, { headers: auth }))
    ).json()) as { next_batch: string };
    const started = performance.now();
    const response = await hs.fetch(
      new Request(`http://${SERVER}/_matrix/client/v3/sync?timeout=60000&since=${first.next_batch}`, {
        headers: auth,
      }),
    );
    const took = performance.now() - started;
    expect(response.status).toBe(200);
    expect(took).toBeGreaterThanOrEqual(250);
    expect(took).toBeLessThan(5_000);
    await hs.close();
  });

  it('in P2P mode is named by its key, the same name on every start, and signs with ed25519:p2p', async () => {
    const indexedDB = new IDBFactory();
    const p2p = () =>
      createBrowserHomeserver({
        p2p: true,
        indexedDB,
        IDBKeyRange,
        passwordIterations: 1000,
        thumbnailer: null,
      });
    const first = p2p();
    const status = await first.control.status();
    expect(status.ready).toBe(true);
    expect(status.serverName).toMatch(/^[0-9a-f]{64}$/);
    const identity = await first.control.p2pIdentity();
    expect(identity.serverName).toBe(status.serverName);
    // The name is the seed's own public key.
    expect((await p2pSigningKey(identity.seed)).serverName).toBe(status.serverName);
    expect(await first.control.createAccount('alice', 'pw')).toEqual({
      userId: `@alice:${status.serverName}`,
    });
    const keys = await first.fetch(new Request(`https://${status.serverName}/_matrix/key/v2/server`));
    const body = (await keys.json()) as { server_name: string; verify_keys: Record<string, unknown> };
    expect(body.server_name).toBe(status.serverName);
    expect(Object.keys(body.verify_keys)).toEqual([P2P_KEY_ID]);
    await first.close();

    const second = p2p();
    expect((await second.control.status()).serverName).toBe(status.serverName);
    expect((await login(second, 'alice', 'pw')).status).toBe(200);
    await second.close();
    // Another browser (another database) is another server.
    const other = createBrowserHomeserver({ p2p: true, indexedDB: new IDBFactory(), IDBKeyRange });
    expect((await other.control.status()).serverName).not.toBe(status.serverName);
    await other.close();
  });

  it('gives its seed only in P2P mode', async () => {
    const hs = make();
    await expect(hs.control.p2pIdentity()).rejects.toThrow(/not in P2P mode/);
    await hs.close();
  });

  it('keeps everything across a restart on the same database (a stopped worker)', async () => {
    const indexedDB = new IDBFactory();
    const first = make(indexedDB);
    await first.control.createAccount('alice', 'pw');
    const token = (await login(first, 'alice', 'pw')).body.access_token as string;
    const roomId = await room(first, token);
    await send(first, token, roomId, 'before the restart');
    await first.close();
    const second = make(indexedDB);
    expect(await bodies(second, token, roomId)).toEqual(['before the restart']);
    await second.close();
  });
});
