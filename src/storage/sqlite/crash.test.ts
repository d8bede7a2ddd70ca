/**
 * Crash safety of the SQLite backend: a writer process is killed (SIGKILL) while it
 * writes; reopening finds every acknowledged event, and no event without its stream
 * position, state or outbox row — WAL and one transaction per operation at work.
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
async function runAndKill(path: string, tag: string, atLeast: number): Promise<Map<string, number>> {
  const acked = new Map<string, number>();
  await runUntilKilled(
    writer,
    [path, tag],
    (line) => {
      const [, id, stream] = line.split(' ');
      acked.set(id as string, Number(stream));
    },
    atLeast,
  );
  return acked;
}

describe('SQLite crash safety', () => {
  it('keeps every acknowledged write and shows no partial one after SIGKILL mid-write', async () => {
    const path = join(dir, 'crash.sqlite');
    const acknowledged = new Map<string, number>();
    for (const round of ['a', 'b', 'c']) {
      const acked = await runAndKill(path, round, 60);
      for (const [id, stream] of acked) acknowledged.set(id, stream);

      const store = await openSqliteStore({ path });
      try {
        const stored = await store.rooms.getEvents([...acknowledged.keys()]);
        expect([...acknowledged.keys()].filter((id) => !stored.has(id))).toEqual([]);
        for (const [id, stream] of acknowledged) expect(stored.get(id)?.stream).toBe(stream);

        // Every event that is visible is whole: gapless positions, state, outbox row.
        const { events } = await store.rooms.timeline('!crash:hearth.test', { dir: 'f', limit: 100_000 });
        const positions = await store.positions();
        expect(events.map((e) => e.stream)).toEqual([...Array(positions.events).keys()].map((i) => i + 1));
        const queued = new Set(
          (await store.federation.outbox('remote.test', 100_000)).map((item) =>
            item.kind === 'pdu' ? item.eventId : '',
          ),
        );
        let topic: string | undefined;
        for (const e of events) {
          const after = await store.rooms.stateAt(e.event.event_id, 'after');
          expect(after, e.event.event_id).not.toBeNull();
          if (e.event.type === 'm.room.topic') topic = e.event.event_id;
          expect(after?.get(stateKey('m.room.topic', ''))).toBe(topic);
          if (e.event.event_id !== '$create' && e.event.event_id !== '$join')
            expect(queued.has(e.event.event_id)).toBe(true);
        }
        const last = events[events.length - 1];
        expect((await store.rooms.forwardExtremities('!crash:hearth.test')).map((x) => x.eventId)).toEqual([
          last?.event.event_id,
        ]);
        expect(
          (await store.rooms.currentStateEvent('!crash:hearth.test', 'm.room.topic', ''))?.event.event_id,
        ).toBe(topic);
      } finally {
        await store.close();
      }
    }
    expect(acknowledged.size).toBeGreaterThanOrEqual(180);
  }, 120_000);
});
