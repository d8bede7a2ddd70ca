/**
 * A writer for the crash test: appends events to one room of the SQLite store at
 * `argv[2]` as fast as it can and prints `ack <event_id> <stream>` after each commit,
 * until it is killed. Run again on the same file, it continues the room.
 */
import { openSqliteStore } from '../index.ts';

const path = process.argv[2] as string;
const tag = process.argv[3] ?? 'w';
const room = '!crash:hearth.test';
const user = '@writer:hearth.test';
const store = await openSqliteStore({ path });

const event = (id: string, depth: number, prev: string[], extra: Record<string, unknown> = {}) => ({
  event_id: id,
  room_id: room,
  sender: user,
  type: 'm.room.message',
  content: { msgtype: 'm.text', body: `event ${id}` },
  prev_events: prev,
  auth_events: [],
  depth,
  origin_server_ts: Date.now(),
  hashes: { sha256: 'x' },
  signatures: {},
  ...extra,
});

let [head] = await store.rooms.forwardExtremities(room);
if (!head) {
  const created = await store.rooms.persistEvents([
    {
      event: event('$create', 1, [], {
        type: 'm.room.create',
        state_key: '',
        content: { room_version: '11' },
      }),
      stateBefore: { state: new Map() },
    },
    {
      event: event('$join', 2, ['$create'], {
        type: 'm.room.member',
        state_key: user,
        content: { membership: 'join' },
      }),
      stateBefore: { afterEvent: '$create' },
    },
  ]);
  for (const r of created) process.stdout.write(`ack ${r.eventId} ${r.stream}\n`);
  [head] = await store.rooms.forwardExtremities(room);
}
let prev = head?.eventId as string;
let depth = head?.depth as number;
for (let i = 0; ; i++) {
  const id = `$${tag}-${i}`;
  // Every fifth event changes state, so a torn write would also show as missing state.
  const extra = i % 5 === 0 ? { type: 'm.room.topic', state_key: '', content: { topic: id } } : {};
  const [result] = await store.rooms.persistEvents([
    {
      event: event(id, ++depth, [prev], extra),
      stateBefore: { afterEvent: prev },
      destinations: ['remote.test'],
    },
  ]);
  process.stdout.write(`ack ${id} ${result?.stream}\n`);
  prev = id;
}
