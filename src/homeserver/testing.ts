/**
 * Test support for the homeserver's own tests: the services on a fresh in-memory store
 * (fake-indexeddb behind the real IndexedDB backend — no hand-rolled store), with no HTTP in
 * between. Built by `startServices`, as `createHomeserver` builds them, so a homeserver test
 * never imports the layers above it (src/api, src/server.ts).
 */
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb';
import { openIndexedDbStore } from '../storage/indexeddb/index.ts';
import type { Store } from '../storage/store.ts';
import { type Clock, type HomeserverContext, randomString, webRandom } from './context.ts';
import type { Services } from './services.ts';
import { type ServicesOptions, startServices } from './start.ts';

export interface TestUser {
  userId: string;
  deviceId: string;
  accessToken: string;
}

export interface TestServices {
  readonly serverName: string;
  readonly store: Store;
  /** The services and their context. */
  readonly internals: Services & { ctx: HomeserverContext };
  /** Creates a user with a device and access token (no password), whatever the registration policy. */
  createUser(localpart: string): Promise<TestUser>;
  close(): Promise<void>;
}

export function openTestStore(): Promise<Store> {
  return openIndexedDbStore({
    indexedDB: new IDBFactory(),
    IDBKeyRange,
    name: `hearth-test-${randomString(webRandom, 8)}`,
  });
}

/** Registration open and cheap password hashes unless `options` say otherwise. */
export async function createTestServices(options: Partial<ServicesOptions> = {}): Promise<TestServices> {
  const store = await openTestStore();
  const serverName = options.serverName ?? 'test.localhost';
  const { ctx, services } = await startServices(store, {
    registration: 'open',
    passwordIterations: 1000,
    ...options,
    serverName,
  });
  return {
    serverName,
    store,
    internals: { ...services, ctx },
    createUser: (localpart) => createTestUser(services, localpart),
    close: () => store.close(),
  };
}

/** A user with one device and its access token, made through the accounts service. */
export async function createTestUser(
  services: Pick<Services, 'accounts'>,
  localpart: string,
): Promise<TestUser> {
  const { userId, session } = await services.accounts.createUser({ localpart, login: true });
  if (!session) throw new Error('createUser with login gave no session');
  return { userId, deviceId: session.deviceId, accessToken: session.accessToken };
}

/** A clock tests move by hand. */
export function manualClock(
  start = 1_700_000_000_000,
): Clock & { advance(ms: number): void; set(ms: number): void } {
  let now = start;
  return {
    now: () => now,
    advance(ms) {
      now += ms;
    },
    set(ms) {
      now = ms;
    },
  };
}

/** Two one-time keys and a fallback key (all `signed_curve25519`) for a device, straight into `store`. */
export async function addTestKeys(store: Store, userId: string, deviceId: string): Promise<void> {
  await store.e2ee.addOneTimeKeys(userId, deviceId, [
    { algorithm: 'signed_curve25519', keyId: 'AAAA', key: { key: 'a' } },
    { algorithm: 'signed_curve25519', keyId: 'AAAB', key: { key: 'b' } },
  ]);
  await store.e2ee.putFallbackKey(userId, deviceId, {
    algorithm: 'signed_curve25519',
    keyId: 'FFFF',
    key: { key: 'f' },
  });
}
