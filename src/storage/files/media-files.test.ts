/**
 * Media as files under `--data`: streamed in, file-backed out, and crash-safe — a writer
 * killed with SIGKILL mid-upload or mid-delete, and every point of the protocol where a crash
 * can stop it, leave no file without a committed row and no row without its file.
 * (The whole Store conformance suite also runs on this media store: `sqlite/sqlite.test.ts`.)
 */
import { spawnSync } from 'node:child_process';
import { linkSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openSqliteStore } from '../sqlite/index.ts';
import type { Store } from '../store.ts';
import { runUntilKilled } from '../testing-kill.ts';

const root = mkdtempSync(join(tmpdir(), 'hearth-media-files-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const writer = join(import.meta.dirname, 'testdata/media-writer.ts');
const ORIGIN = 'hearth.test';
let n = 0;

async function openAt(): Promise<{ store: Store; path: string; mediaDir: string }> {
  const at = join(root, `s${++n}`);
  mkdirSync(at);
  const path = join(at, 'hearth.sqlite');
  const mediaDir = join(at, 'media');
  return { store: await openSqliteStore({ path, mediaDir }), path, mediaDir };
}

const info = (mediaId: string) => ({
  origin: ORIGIN,
  mediaId,
  contentType: 'application/octet-stream',
  uploadName: null,
  userId: '@a:hearth.test',
  createdAt: 1,
});

/** Every file under the media directory but tmp/, as `mediaId → size`. */
function files(mediaDir: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const origin of readdirSync(mediaDir)) {
    if (origin === 'tmp') continue;
    for (const shard of readdirSync(join(mediaDir, origin)))
      for (const id of readdirSync(join(mediaDir, origin, shard)))
        out.set(id, statSync(join(mediaDir, origin, shard, id)).size);
  }
  return out;
}

/** No marker left, and files and committed rows name the same media with the same sizes. */
async function expectConsistent(store: Store, mediaDir: string, ids: Iterable<string>): Promise<void> {
  expect(readdirSync(join(mediaDir, 'tmp'))).toEqual([]);
  const onDisk = files(mediaDir);
  for (const id of ids) {
    const got = await store.media.getMediaInfo(ORIGIN, id);
    if (got && got.pendingUntil === undefined) expect(onDisk.get(id), id).toBe(got.size);
    else expect(onDisk.has(id), id).toBe(false);
  }
  for (const id of onDisk.keys()) expect(await store.media.getMediaInfo(ORIGIN, id), id).not.toBeNull();
}

function pieces(count: number, size: number, failAt?: number): ReadableStream<Uint8Array> {
  let i = 0;
  return new ReadableStream({
    pull(controller) {
      if (i === failAt) return controller.error(new Error('the client went away'));
      if (i === count) return controller.close();
      controller.enqueue(new Uint8Array(size).fill(i++ % 256));
    },
  });
}

describe('media files', () => {
  it('streams an upload to a file, keeps only its description in the row, and reads it back from the file', async () => {
    const { store, mediaDir } = await openAt();
    try {
      expect(store.media.keeps).toBe('stream');
      const stored = await store.media.putMedia(info('big'), pieces(80, 65_536));
      expect(stored.size).toBe(80 * 65_536);
      expect(files(mediaDir).get('big')).toBe(80 * 65_536);
      const got = await store.media.getMediaAsKept(ORIGIN, 'big');
      if (!(got?.data instanceof Blob)) throw new Error('expected a file-backed Blob');
      const bytes = new Uint8Array(await got.data.arrayBuffer());
      expect(bytes.byteLength).toBe(80 * 65_536);
      expect(bytes[65_536 * 79]).toBe(79);
      // Deleted: the row and the file together.
      expect(await store.media.deleteMedia(ORIGIN, 'big')).toBe(true);
      expect(files(mediaDir).has('big')).toBe(false);
      await expectConsistent(store, mediaDir, ['big']);
    } finally {
      await store.close();
    }
  });

  it('stores nothing when the body fails half way, and refuses a second upload to a taken ID before reading it', async () => {
    const { store, mediaDir } = await openAt();
    try {
      await expect(store.media.putMedia(info('broken'), pieces(10, 1000, 5))).rejects.toThrow(
        'the client went away',
      );
      expect(await store.media.getMediaInfo(ORIGIN, 'broken')).toBeNull();
      await store.media.putMedia(info('taken'), new Uint8Array([1, 2, 3]));
      let pulled = false;
      const body = new ReadableStream(
        {
          pull() {
            pulled = true;
          },
        },
        { highWaterMark: 0 },
      );
      await expect(store.media.putMedia(info('taken'), body)).rejects.toMatchObject({ code: 'CONFLICT' });
      expect(pulled).toBe(false);
      await store.media.reserveMedia({
        origin: ORIGIN,
        mediaId: 'later',
        userId: 'u',
        createdAt: 1,
        pendingUntil: 9,
      });
      await expectConsistent(store, mediaDir, ['broken', 'taken', 'later']);
      expect(await (await store.media.getMedia(ORIGIN, 'taken'))?.data.arrayBuffer()).toEqual(
        new Uint8Array([1, 2, 3]).buffer,
      );
    } finally {
      await store.close();
    }
  });

  it('settles every point where a crash can stop an upload or a delete when it opens again', async () => {
    const { store, path, mediaDir } = await openAt();
    await store.media.putMedia(info('kept'), new Uint8Array([7]));
    await store.media.putMedia(info('deleting'), new Uint8Array([8]));
    await store.media.reserveMedia({
      origin: ORIGIN,
      mediaId: 'reserved',
      userId: 'u',
      createdAt: 1,
      pendingUntil: 9,
    });
    await store.close();
    const tmp = join(mediaDir, 'tmp');
    const final = (id: string) => join(mediaDir, ORIGIN, id.slice(0, 2), id);
    const marker = (id: string, tag: string) => join(tmp, `${ORIGIN}@${id}@${tag}`);
    // 1. Killed while writing: a partial marker.
    writeFileSync(marker('partial', 'a'), 'half');
    // 2. Killed after the link, before the commit: a final file with no row.
    mkdirSync(join(mediaDir, ORIGIN, 'or'), { recursive: true });
    writeFileSync(marker('orphan', 'b'), 'orphan');
    linkSync(marker('orphan', 'b'), final('orphan'));
    // 3. Killed after the commit, before the marker went: the row and its file stay.
    linkSync(final('kept'), marker('kept', 'c'));
    // 4. Killed filling a reservation before its commit: the reservation stays, the file goes.
    mkdirSync(join(mediaDir, ORIGIN, 're'), { recursive: true });
    writeFileSync(marker('reserved', 'd'), 'early');
    linkSync(marker('reserved', 'd'), final('reserved'));
    // 5. Killed deleting, after the row went and before the file did.
    linkSync(final('deleting'), marker('deleting', 'e'));
    const db = new (await import('node:sqlite')).DatabaseSync(path);
    db.prepare('DELETE FROM media WHERE media_id = ?').run('deleting');
    db.close();
    // 6. A marker that names nothing this store could hold.
    writeFileSync(join(tmp, 'garbage'), 'x');

    const again = await openSqliteStore({ path, mediaDir });
    try {
      await expectConsistent(again, mediaDir, ['partial', 'orphan', 'kept', 'reserved', 'deleting']);
      expect([...files(mediaDir).keys()]).toEqual(['kept']);
      expect(await (await again.media.getMedia(ORIGIN, 'kept'))?.data.arrayBuffer()).toEqual(
        new Uint8Array([7]).buffer,
      );
      expect(await again.media.getMediaInfo(ORIGIN, 'reserved')).toMatchObject({ pendingUntil: 9 });
      expect(await again.media.getMediaInfo(ORIGIN, 'orphan')).toBeNull();
    } finally {
      await again.close();
    }
  });

  it("leaves alone the markers of another process still running on the same directory, settles a gone one's", async () => {
    const { store, path, mediaDir } = await openAt();
    await store.close();
    const tmp = join(mediaDir, 'tmp');
    const final = (id: string) => join(mediaDir, ORIGIN, id.slice(0, 2), id);
    // Another `hearth serve` mid-upload: its file linked, its row not yet committed.
    const ended = spawnSync(process.execPath, ['-e', '0']).pid;
    for (const [id, pid] of [
      ['running', process.ppid],
      ['stopped', ended],
    ] as const) {
      mkdirSync(join(mediaDir, ORIGIN, id.slice(0, 2)), { recursive: true });
      writeFileSync(join(tmp, `${ORIGIN}@${id}@${pid}.x`), id);
      linkSync(join(tmp, `${ORIGIN}@${id}@${pid}.x`), final(id));
    }
    const again = await openSqliteStore({ path, mediaDir });
    try {
      expect(readdirSync(tmp)).toEqual([`${ORIGIN}@running@${process.ppid}.x`]);
      expect([...files(mediaDir).keys()]).toEqual(['running']);
    } finally {
      await again.close();
    }
  });

  it('after SIGKILL mid-upload or mid-delete, keeps every acknowledged file and leaves no orphan', async () => {
    const at = join(root, 'killed');
    mkdirSync(at);
    const path = join(at, 'hearth.sqlite');
    const mediaDir = join(at, 'media');
    const live = new Map<string, number>();
    const gone = new Set<string>();
    let lastPut = '';
    for (const round of ['a', 'b', 'c']) {
      await runUntilKilled(
        writer,
        [path, mediaDir, round],
        (line) => {
          const [what, id, size] = line.split(' ') as [string, string, string];
          if (what === 'put') {
            live.set(id, Number(size));
            lastPut = id;
          } else {
            live.delete(id);
            gone.add(id);
          }
        },
        12,
        15,
      );
      const store = await openSqliteStore({ path, mediaDir });
      try {
        for (const [id, size] of live) {
          const got = await store.media.getMedia(ORIGIN, id);
          // The writer deletes every third upload right after it: the last one acknowledged
          // may have been being deleted when the kill came — there or not, but whole.
          if (got === null && Number(id.slice(1)) % 3 === 2 && id === lastPut) {
            live.delete(id);
            continue;
          }
          expect(got?.info.size, id).toBe(size);
          expect(got?.data.size, id).toBe(size);
        }
        for (const id of gone) expect(await store.media.getMediaInfo(ORIGIN, id), id).toBeNull();
        // The IDs the writer may have been in the middle of, too.
        const touched = [...Array(200).keys()].map((i) => `${round}${i}`);
        await expectConsistent(store, mediaDir, [...live.keys(), ...gone, ...touched]);
      } finally {
        await store.close();
      }
    }
    // At least 12 acknowledged calls a round, a quarter of them deletes.
    expect(live.size + gone.size).toBeGreaterThanOrEqual(24);
  }, 120_000);

  it('backs file media up with its bytes and restores them into another store', async () => {
    const { store } = await openAt();
    const { store: target, mediaDir } = await openAt();
    try {
      await store.media.putMedia(info('pic'), new Uint8Array([1, 2, 3, 4]));
      await target.media.putMedia(info('stale'), new Uint8Array([9]));
      const backup = await store.exportBackup({ serverName: ORIGIN });
      await target.importBackup(backup, { serverName: ORIGIN });
      expect(await (await target.media.getMedia(ORIGIN, 'pic'))?.data.arrayBuffer()).toEqual(
        new Uint8Array([1, 2, 3, 4]).buffer,
      );
      // The import replaced every row: the file of the row it dropped went with it.
      // (Restored bytes are kept in the row, as the backup carries them.)
      expect(files(mediaDir).size).toBe(0);
      expect(readdirSync(join(mediaDir, 'tmp'))).toEqual([]);
    } finally {
      await store.close();
      await target.close();
    }
  });
});
