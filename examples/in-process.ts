/**
 * A homeserver inside your own program, no HTTP server: `hs.fetch` answers the same
 * requests a client would send over the network. Run: `node examples/in-process.ts`.
 */
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb';
import { createHomeserver, openIndexedDbStore } from '../src/index.ts';

const hs = createHomeserver({
  serverName: 'example.localhost',
  registration: 'open',
  // In a browser pass `indexedDB`/`IDBKeyRange`; in Node, fake-indexeddb keeps it in memory.
  store: () => openIndexedDbStore({ indexedDB: new IDBFactory(), IDBKeyRange }),
});

async function call(method: string, path: string, body?: unknown, token?: string) {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await hs.fetch(
    new Request(`http://example.localhost${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    }),
  );
  return { status: res.status, json: await res.json() };
}

// Registration is user-interactive: the first call returns a session and the flows to complete.
const first = await call('POST', '/_matrix/client/v3/register', {
  username: 'ada',
  password: 'a long password',
});
const { json: account } = await call('POST', '/_matrix/client/v3/register', {
  username: 'ada',
  password: 'a long password',
  auth: { type: 'm.login.dummy', session: first.json.session },
});
const { json: room } = await call(
  'POST',
  '/_matrix/client/v3/createRoom',
  { name: 'Notes' },
  account.access_token,
);
await call(
  'PUT',
  `/_matrix/client/v3/rooms/${encodeURIComponent(room.room_id)}/send/m.room.message/1`,
  { msgtype: 'm.text', body: 'hello from in-process Hearth' },
  account.access_token,
);
const { json: sync } = await call('GET', '/_matrix/client/v3/sync', undefined, account.access_token);
const timeline = sync.rooms.join[room.room_id].timeline.events;
console.log(`${account.user_id} in ${room.room_id}: "${timeline.at(-1).content.body}"`);
await hs.close();
