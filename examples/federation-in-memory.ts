/**
 * Two homeservers in one process, federating over the in-memory transport: each publishes
 * its signing key, and a request signed by one is authenticated by the other (which fetches
 * and caches the signer's key). Over the network the same code runs on the HTTPS transport
 * (`createNodeHttpsTransport` in src/transport/https/node.ts). Run:
 * `node examples/federation-in-memory.ts`.
 */
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb';
import { createFederation } from '../src/federation/index.ts';
import { openIndexedDbStore } from '../src/index.ts';
import { startHomeserver } from '../src/server.ts';
import { createMemoryNetwork } from '../src/transport/memory.ts';

const network = createMemoryNetwork();

/** A homeserver and its internals (the example reaches past `fetch` to make a signed request itself). */
function server(serverName: string) {
  const { homeserver: hs, internals } = startHomeserver({
    serverName,
    registration: 'open',
    store: () => openIndexedDbStore({ indexedDB: new IDBFactory(), IDBKeyRange, name: serverName }),
    federation: { transport: network.transport(serverName) },
  });
  network.serve(serverName, hs.fetch);
  return Object.assign(hs, { internals });
}

const a = server('a.localhost');
const b = server('b.localhost');

// Alice registers on B (the open registration flow is a single dummy stage).
const register = await b.fetch(
  new Request('http://b.localhost/_matrix/client/v3/register', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'alice', password: 'correct horse', auth: { type: 'm.login.dummy' } }),
  }),
);
console.log('alice registered on b.localhost:', register.status);

// A asks B for alice's profile with an X-Matrix signed request.
const { client, keys } = createFederation((await a.internals()).ctx, {
  transport: network.transport('a.localhost'),
});
console.log(
  'profile, as A sees it:',
  await client.request('b.localhost', {
    method: 'GET',
    target: '/_matrix/federation/v1/query/profile?user_id=%40alice%3Ab.localhost',
  }),
);

// A has B's key now too, checked against B's own signature on it.
const bKey = (await b.internals()).ctx.signingKey;
console.log(
  'B key known to A:',
  (await keys.verifyKeys('b.localhost', [bKey.keyId], Date.now())).has(bKey.keyId),
);
console.log(
  'requests on the network:',
  network.log.map((r) => `${r.from} → ${r.to} ${r.method} ${r.target}`),
);

await Promise.all([a.close(), b.close()]);
