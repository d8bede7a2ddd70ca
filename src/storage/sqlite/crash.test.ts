/**
 * Crash safety of the SQLite backend: a writer process is killed (SIGKILL) while it
 * writes; reopening finds every acknowledged event, and no event without its stream
 * position, state or outbox row — WAL and one transaction per operation at work; and the
 * same with eight rooms written at once, whose writes share commits (group commit).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stateKey } from '../../core/pdu.ts';
import { runUntilKilled } from '../testing-kill.ts';
import { openSqliteStore } from './index.ts';

const dir = mkdtempSync(join(tmpdir(), 'hearth-crash-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const writer = join(import.meta.dirname, 'testdata/crash-writer.ts');

/** Runs the writer until it has acknowledged `atLeast` events, then kills it at a random moment. */
async function runAndKill(
  path: string,
  tag: string,
  atLeast: number,
  rooms: number,
): Promise<Map<string, number>> {
  const acked = new Map<string, number>();
  await runUntilKilled(
    writer,
    [path, tag, String(rooms)],
    (line) => {
      const [, id, stream] = line.split(' ');
      acked.set(id as string, Number(stream));
    },
    atLeast,
  );
  return acked;
}

/** Reopens the store: every acknowledged event is there, and every visible event is whole. */
async function checkStore(path: string, acknowledged: Map<string, number>, rooms: number): Promise<void> {
  const store = await openSqliteStore({ path });
  try {
    const stored = await store.rooms.getEvents([...acknowledged.keys()]);
    expect([...acknowledged.keys()].filter((id) => !stored.has(id))).toEqual([]);
    for (const [id, stream] of acknowledged) expect(stored.get(id)?.stream).toBe(stream);

    // Gapless positions across the rooms, and each event with its state and outbox row.
    const positions = await store.positions();
    const streams: number[] = [];
    const queued = new Set(
      (await store.federation.outbox('remote.test', 100_000)).map((item) =>
        item.kind === 'pdu' ? item.eventId : '',
      ),
    );
    const roomIds =
      rooms === 1
        ? [['!crash:hearth.test', '']]
        : Array.from({ length: rooms }, (_, n) => [`!crash-${n}:hearth.test`, `${n}-`]);
    for (const [roomId, prefix] of roomIds as [string, string][]) {
      const { events } = await store.rooms.timeline(roomId, { dir: 'f', limit: 100_000 });
      streams.push(...events.map((e) => e.stream as number));
      let topic: string | undefined;
      for (const e of events) {
        const after = await store.rooms.stateAt(e.event.event_id, 'after');
        expect(after, e.event.event_id).not.toBeNull();
        if (e.event.type === 'm.room.topic') topic = e.event.event_id;
        expect(after?.get(stateKey('m.room.topic', ''))).toBe(topic);
        if (e.event.event_id !== `$${prefix}create` && e.event.event_id !== `$${prefix}join`)
          expect(queued.has(e.event.event_id)).toBe(true);
      }
      const last = events[events.length - 1];
      expect((await store.rooms.forwardExtremities(roomId)).map((x) => x.eventId)).toEqual([
        last?.event.event_id,
      ]);
      expect((await store.rooms.currentStateEvent(roomId, 'm.room.topic', ''))?.event.event_id).toBe(topic);
    }
    expect(streams.sort((a, b) => a - b)).toEqual([...Array(positions.events).keys()].map((i) => i + 1));
  } finally {
    await store.close();
  }
}

/** Three rounds of writing and killing on one file, each checked on reopening. */
async function killRounds(file: string, atLeast: number, rooms: number): Promise<void> {
  const path = join(dir, file);
  const acknowledged = new Map<string, number>();
  for (const round of ['a', 'b', 'c']) {
    const acked = await runAndKill(path, round, atLeast, rooms);
    for (const [id, stream] of acked) acknowledged.set(id, stream);
    await checkStore(path, acknowledged, rooms);
  }
  expect(acknowledged.size).toBeGreaterThanOrEqual(3 * atLeast);
}

describe('SQLite crash safety', () => {
  it('keeps every acknowledged write and shows no partial one after SIGKILL mid-write', async () => {
    await killRounds('crash.sqlite', 60, 1);
  }, 120_000);

  it('keeps every acknowledged write of concurrent writers sharing commits (group commit)', async () => {
    await killRounds('crash-group.sqlite', 120, 8);
  }, 120_000);
});
