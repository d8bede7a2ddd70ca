/**
 * Test helpers: a homeserver on a fresh in-memory store (IndexedDB semantics through
 * fake-indexeddb — no hand-rolled store), and users created straight in the store so an
 * area's tests do not depend on the registration endpoint.
 */
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb';
import { parseJson } from './core/json.ts';
import { randomString, webRandom } from './homeserver/context.ts';
import { createHomeserver, type Homeserver, type HomeserverOptions } from './server.ts';
import { openIndexedDbStore } from './storage/indexeddb/index.ts';
import type { Store } from './storage/store.ts';

export interface TestHomeserver extends Homeserver {
  store: Store;
  /** Calls `fetch` with a JSON body and token; returns status and parsed body. */
  call(
    method: string,
    path: string,
    options?: { token?: string; body?: unknown; headers?: Record<string, string> },
  ): Promise<{ status: number; body: Record<string, unknown> }>;
  /** Creates a user with a device and access token directly in the store. */
  createUser(localpart: string): Promise<{ userId: string; deviceId: string; accessToken: string }>;
}

export async function createTestHomeserver(
  options: Partial<HomeserverOptions> = {},
): Promise<TestHomeserver> {
  const store = await openIndexedDbStore({
    indexedDB: new IDBFactory(),
    IDBKeyRange,
    name: `hearth-test-${randomString(webRandom, 8)}`,
  });
  const serverName = options.serverName ?? 'test.localhost';
  const hs = createHomeserver({
    serverName,
    registration: 'open',
    passwordIterations: 1000,
    ...options,
    store,
  });
  await hs.ready;
  const call: TestHomeserver['call'] = async (method, path, opts = {}) => {
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.token) headers.authorization = `Bearer ${opts.token}`;
    let body: string | undefined;
    if (opts.body !== undefined) {
      body = typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body);
      headers['content-type'] = 'application/json';
    }
    const response = await hs.fetch(new Request(`http://${serverName}${path}`, { method, headers, body }));
    const text = await response.text();
    return {
      status: response.status,
      body: text
        ? (parseJson(text, { loneSurrogates: 'allow', maxDepth: 1024 }) as Record<string, unknown>)
        : {},
    };
  };
  return {
    ...hs,
    fetch: hs.fetch,
    close: hs.close,
    ready: hs.ready,
    serverName: hs.serverName,
    store,
    call,
    async createUser(localpart) {
      const userId = `@${localpart}:${serverName}`;
      const deviceId = randomString(webRandom, 10);
      const accessToken = randomString(webRandom, 32);
      await store.accounts.createUser(
        { userId, passwordHash: null, createdAt: Date.now(), isGuest: false, userType: null },
        { profile: { displayname: localpart }, session: { userId, deviceId, accessToken, now: Date.now() } },
      );
      return { userId, deviceId, accessToken };
    },
  };
}
