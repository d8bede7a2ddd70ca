/**
 * A writer for the crash test: appends events to one room of the SQLite store at
 * `argv[2]` as fast as it can and prints `ack <event_id> <stream>` after each commit,
 * until it is killed. Run again on the same file, it continues the room. With a room count
 * `argv[4]` above 1 it writes that many rooms (`!crash-<n>:hearth.test`) at once, one chain
 * each, so concurrent writes share commits (group commit).
 */
import { openSqliteStore } from '../index.ts';

const path = process.argv[2] as string;
const tag = process.argv[3] ?? 'w';
const rooms = Number(process.argv[4] ?? 1);
const user = '@writer:hearth.test';
const store = await openSqliteStore({ path });

const event = (
  room: string,
  id: string,
  depth: number,
  prev: string[],
  extra: Record<string, unknown> = {},
) => ({
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

async function writeRoom(room: string, prefix: string): Promise<void> {
  let [head] = await store.rooms.forwardExtremities(room);
  if (!head) {
    const created = await store.rooms.persistEvents([
      {
        event: event(room, `$${prefix}create`, 1, [], {
          type: 'm.room.create',
          state_key: '',
          content: { room_version: '11' },
        }),
        stateBefore: { state: new Map() },
      },
      {
        event: event(room, `$${prefix}join`, 2, [`$${prefix}create`], {
          type: 'm.room.member',
          state_key: user,
          content: { membership: 'join' },
        }),
        stateBefore: { afterEvent: `$${prefix}create` },
      },
    ]);
    for (const r of created) process.stdout.write(`ack ${r.eventId} ${r.stream}\n`);
    [head] = await store.rooms.forwardExtremities(room);
  }
  let prev = head?.eventId as string;
  let depth = head?.depth as number;
  for (let i = 0; ; i++) {
    const id = `$${prefix}${tag}-${i}`;
    // Every fifth event changes state, so a torn write would also show as missing state.
    const extra = i % 5 === 0 ? { type: 'm.room.topic', state_key: '', content: { topic: id } } : {};
    const [result] = await store.rooms.persistEvents([
      {
        event: event(room, id, ++depth, [prev], extra),
        stateBefore: { afterEvent: prev },
        destinations: ['remote.test'],
      },
    ]);
    process.stdout.write(`ack ${id} ${result?.stream}\n`);
    prev = id;
  }
}

if (rooms === 1) await writeRoom('!crash:hearth.test', '');
else
  await Promise.all(Array.from({ length: rooms }, (_, n) => writeRoom(`!crash-${n}:hearth.test`, `${n}-`)));
