/**
 * Test support for the whole homeserver: one on a fresh in-memory store (IndexedDB semantics
 * through fake-indexeddb — no hand-rolled store), requests in-process, and users created
 * through the accounts service so an area's tests do not depend on the registration
 * endpoint. Tests also get the internals (`store`, `internals`) no host is given, to check
 * what was really persisted.
 */
import { parseJson } from './core/json.ts';
import { createTestUser, openTestStore, type TestServices, type TestUser } from './homeserver/testing.ts';
import { type Homeserver, type HomeserverOptions, startHomeserver } from './server.ts';

export type { TestUser };

/** What `createTestServices` gives, and the homeserver's HTTP face in front of it. */
export interface TestHomeserver extends Homeserver, TestServices {
  /** Calls `fetch` with a JSON body and token; returns status and parsed body. */
  call(
    method: string,
    path: string,
    options?: { token?: string; body?: unknown; headers?: Record<string, string> },
  ): Promise<{ status: number; body: Record<string, unknown> }>;
  close(): Promise<void>;
}

export async function createTestHomeserver(
  options: Partial<HomeserverOptions> = {},
): Promise<TestHomeserver> {
  // A test may bring its own store (SQLite, media files; a P2P server's name comes from the
  // seed in its store); the default is in memory.
  const store =
    typeof options.store === 'function' ? await options.store() : (options.store ?? (await openTestStore()));
  const serverName = options.serverName ?? 'test.localhost';
  const { homeserver: hs, internals } = startHomeserver({
    serverName,
    registration: 'open',
    passwordIterations: 1000,
    ...options,
    store,
  });
  const { ctx, services } = await internals();
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
    serverName: hs.serverName,
    fetch: hs.fetch,
    close: hs.close,
    ready: hs.ready,
    admin: hs.admin,
    store,
    internals: { ...services, ctx },
    call,
    createUser: (localpart) => createTestUser(services, localpart),
  };
}
