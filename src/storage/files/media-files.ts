/**
 * Media bytes as files under `--data` (Node), the rows in the database holding only their
 * description: `hearth serve --data DIR` keeps `DIR/media/<origin>/<id[0..2]>/<id>`. Uploads
 * are streamed to disk and downloads streamed from it (a file-backed Blob), so a file is never
 * whole in the JS heap. Rows whose bytes are in the database (older stores, imported backups)
 * are still served from there.
 *
 * Crash safety, with no scan of the media at start-up. Every change of a file goes through a
 * marker in `DIR/media/tmp/`, named after the media it concerns:
 *
 *   upload:  write tmp/<marker> → fsync it and tmp/ → hard-link it as the final file → fsync
 *            that directory → commit the row → unlink the marker.
 *   delete:  hard-link the final file as tmp/<marker> → fsync tmp/ → delete the row → unlink
 *            the final file, then the marker.
 *
 * So the row is committed only once its file is durable, and whatever a crash interrupts
 * leaves a marker. On open, each marker is settled by the row: a committed row keeps its file
 * (the marker goes); no committed row means the final file, if it is the marker's own (same
 * inode), goes with the marker. Nothing is left without a row, and no row without its file.
 * A marker names the process that made it: one made by another process still running (a second
 * `hearth serve` on the same `--data`) is its work in progress and is left to it.
 */
import { randomBytes } from 'node:crypto';
import { openAsBlob } from 'node:fs';
import { link, mkdir, open, readdir, rm, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { mediaRowOf, mediaStore, toMediaInfo } from '../areas/media-federation.ts';
import type { Engine, Row } from '../engine.ts';
import { type MediaInfo, type MediaStore, StoreError } from '../store.ts';

/** The media IDs a file may be named after (the spec's rule for the media-id segment). */
const FILE_ID = /^[A-Za-z0-9_-]+$/;

/** Writes are gathered to this size before each `writev`: fewer thread-pool round trips. */
const WRITE_BATCH_BYTES = 1024 * 1024;

/** The media files of one store, with what `createStore` needs beside the `MediaStore`. */
export interface MediaFiles {
  readonly store: MediaStore;
  /** The bytes of file-backed media, for a backup; null when the row keeps them or is absent. */
  fileBlob(origin: string, mediaId: string): Promise<Blob | null>;
  /** Removes every file no committed row names (after a backup import replaced the rows). */
  sweep(): Promise<number>;
}

type Body = Uint8Array | Blob | ReadableStream<Uint8Array>;

/** A row whose bytes are in a file: no bytes in the row, not a reservation. */
function onFile(row: Row | undefined): boolean {
  return row !== undefined && row.data == null && typeof row.pending_until !== 'number';
}

async function fsyncDir(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Whether a marker's last part (`<pid>.<random>`; older markers have no pid) names another
 * process that is still running. A pid reused since only leaves a marker for a later start.
 */
function madeByAnotherLiveProcess(made: string | undefined): boolean {
  const pid = Number(made?.slice(0, made.indexOf('.')));
  if (!Number.isSafeInteger(pid) || pid <= 0 || pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it runs, as another user.
    return (err as { code?: unknown }).code === 'EPERM';
  }
}

const missing = (err: unknown) => (err as { code?: unknown })?.code === 'ENOENT';

/** Opens (creating) `dir` and settles what a crash left half done, before any other call. */
export async function openMediaFiles(engine: Engine, dir: string): Promise<MediaFiles> {
  const tmp = join(dir, 'tmp');
  await mkdir(tmp, { recursive: true });
  const made = new Set<string>();

  const originDir = (origin: string) => join(dir, encodeURIComponent(origin));
  const fileDir = (origin: string, mediaId: string) => join(originDir(origin), mediaId.slice(0, 2));
  const filePath = (origin: string, mediaId: string) => join(fileDir(origin, mediaId), mediaId);
  /** `<origin>@<mediaId>@<pid>.<random>`: `@` is escaped in the origin and absent from IDs. */
  const markerName = (origin: string, mediaId: string) =>
    `${encodeURIComponent(origin)}@${mediaId}@${process.pid}.${randomBytes(9).toString('base64url').replaceAll('@', '_')}`;

  function checkId(origin: unknown, mediaId: unknown): void {
    if (typeof origin !== 'string' || origin.length === 0)
      throw new StoreError('INVALID', 'origin must be a non-empty string');
    if (typeof mediaId !== 'string' || !FILE_ID.test(mediaId))
      throw new StoreError('INVALID', 'mediaId must be of A-Z, a-z, 0-9, _ and -');
  }

  const getRow = (origin: string, mediaId: string) =>
    engine.read(['media'], (tx) => tx.get('media', [origin, mediaId]));

  /** Settles one marker by its row (see the module comment). */
  async function settle(name: string): Promise<void> {
    const marker = join(tmp, name);
    const [encodedOrigin, mediaId, made] = name.split('@');
    if (madeByAnotherLiveProcess(made)) return;
    let origin: string | undefined;
    try {
      origin = decodeURIComponent(encodedOrigin ?? '');
    } catch {}
    if (origin && mediaId && FILE_ID.test(mediaId) && !onFile(await getRow(origin, mediaId))) {
      const final = filePath(origin, mediaId);
      const [a, b] = await Promise.all([stat(marker).catch(() => null), stat(final).catch(() => null)]);
      if (a && b && a.ino === b.ino && a.dev === b.dev) await unlink(final);
    }
    await rm(marker, { force: true });
  }

  for (const name of await readdir(tmp)) await settle(name);

  /**
   * Streams `data` into a new marker file, durable (file and tmp/ fsynced) when this resolves.
   * On any failure (the body's own error included, such as a size limit) the marker is gone.
   */
  async function writeMarker(
    origin: string,
    mediaId: string,
    data: Body,
  ): Promise<{ marker: string; size: number }> {
    const marker = join(tmp, markerName(origin, mediaId));
    const handle = await open(marker, 'wx');
    let size = 0;
    try {
      if (data instanceof Uint8Array) {
        await handle.writeFile(data);
        size = data.byteLength;
      } else {
        const reader = (data instanceof Blob ? data.stream() : data).getReader();
        let batch: Uint8Array[] = [];
        let batched = 0;
        const flush = async () => {
          if (batch.length === 0) return;
          await handle.writev(batch);
          batch = [];
          batched = 0;
        };
        try {
          for (;;) {
            const { done, value } = await reader.read();
            if (done) break;
            size += value.byteLength;
            batch.push(value);
            batched += value.byteLength;
            if (batched >= WRITE_BATCH_BYTES) await flush();
          }
        } catch (err) {
          reader.releaseLock();
          throw err;
        }
        await flush();
      }
      await handle.sync();
    } catch (err) {
      await handle.close().catch(() => undefined);
      await rm(marker, { force: true });
      throw err;
    }
    await handle.close();
    await fsyncDir(tmp);
    return { marker, size };
  }

  /** The marker hard-linked as the final file, durably; CONFLICT when a file is already there. */
  async function publish(origin: string, mediaId: string, marker: string): Promise<string> {
    const where = fileDir(origin, mediaId);
    if (!made.has(where)) {
      await mkdir(where, { recursive: true });
      made.add(where);
    }
    const final = join(where, mediaId);
    try {
      await link(marker, final);
    } catch (err) {
      await rm(marker, { force: true });
      if ((err as { code?: unknown })?.code === 'EEXIST')
        throw new StoreError('CONFLICT', `media ${origin}/${mediaId} already has content`);
      throw err;
    }
    await fsyncDir(where);
    return final;
  }

  /**
   * Writes the file, commits the row with `commit` (which may refuse), and tidies up: on a
   * refusal the file goes, on success the marker does.
   */
  async function store(
    info: Omit<MediaInfo, 'size' | 'pendingUntil'>,
    data: Body,
    commit: (row: Row) => Promise<void>,
  ): Promise<MediaInfo> {
    checkId(info?.origin, info?.mediaId);
    if (!(data instanceof Uint8Array) && !(data instanceof Blob) && !(data instanceof ReadableStream))
      throw new StoreError('INVALID', 'media data must be a Uint8Array, a Blob or a ReadableStream');
    const { origin, mediaId } = info;
    // Refused before the bytes are read when the ID is plainly taken.
    const before = await getRow(origin, mediaId);
    if (before && typeof before.pending_until !== 'number')
      throw new StoreError('CONFLICT', `media ${origin}/${mediaId} already has content`);
    const { marker, size } = await writeMarker(origin, mediaId, data);
    const final = await publish(origin, mediaId, marker);
    const row = mediaRowOf(info, size, null);
    try {
      await commit(row);
    } catch (err) {
      await unlink(final).catch(() => undefined);
      await rm(marker, { force: true });
      throw err;
    }
    await rm(marker, { force: true });
    return toMediaInfo(row);
  }

  async function kept(
    origin: string,
    mediaId: string,
  ): Promise<{ info: MediaInfo; data: Blob | Uint8Array } | null> {
    const row = await getRow(origin, mediaId);
    if (!row || typeof row.pending_until === 'number') return null;
    const info = toMediaInfo(row);
    if (!onFile(row)) return { info, data: row.data as Uint8Array };
    checkId(origin, mediaId);
    try {
      return { info, data: await openAsBlob(filePath(origin, mediaId), { type: info.contentType }) };
    } catch (err) {
      // Deleted between the row read and the open: as if the row had been read after.
      if (missing(err)) return null;
      throw err;
    }
  }

  const base = mediaStore(engine);

  const mediaFiles: MediaStore = {
    keeps: 'stream',

    putMedia: (info, data) =>
      store(info, data, (row) => engine.write(['media'], (tx) => tx.insert('media', row))),

    completeMedia: (info, data) =>
      store(info, data, (row) =>
        engine.write(['media'], async (tx) => {
          const reserved = await tx.get('media', [row.origin as string, row.media_id as string]);
          if (!reserved) throw new StoreError('NOT_FOUND', `no media ${info.origin}/${info.mediaId}`);
          if (typeof reserved.pending_until !== 'number')
            throw new StoreError('CONFLICT', `media ${info.origin}/${info.mediaId} already has content`);
          await tx.put('media', row);
        }),
      ),

    getMediaAsKept: kept,

    async getMedia(origin, mediaId) {
      const got = await kept(origin, mediaId);
      if (!got) return null;
      const data =
        got.data instanceof Blob
          ? got.data
          : new Blob([got.data as Uint8Array<ArrayBuffer>], { type: got.info.contentType });
      return { info: got.info, data };
    },

    getMediaInfo: base.getMediaInfo,
    reserveMedia: base.reserveMedia,

    async deleteMedia(origin, mediaId) {
      const row = await getRow(origin, mediaId);
      if (!row) return false;
      if (!onFile(row)) return base.deleteMedia(origin, mediaId);
      checkId(origin, mediaId);
      const final = filePath(origin, mediaId);
      const marker = join(tmp, markerName(origin, mediaId));
      try {
        await link(final, marker);
        await fsyncDir(tmp);
      } catch (err) {
        if (!missing(err)) throw err;
      }
      const deleted = await base.deleteMedia(origin, mediaId);
      if (deleted) await unlink(final).catch(() => undefined);
      await rm(marker, { force: true });
      return deleted;
    },
  };

  return {
    store: mediaFiles,

    async fileBlob(origin, mediaId) {
      const row = await getRow(origin, mediaId);
      if (!onFile(row)) return null;
      const got = await kept(origin, mediaId);
      return got?.data instanceof Blob ? got.data : null;
    },

    async sweep() {
      let removed = 0;
      for (const entry of await readdir(dir, { withFileTypes: true })) {
        if (!entry.isDirectory() || entry.name === 'tmp') continue;
        let origin: string;
        try {
          origin = decodeURIComponent(entry.name);
        } catch {
          continue;
        }
        for (const shard of await readdir(join(dir, entry.name))) {
          for (const mediaId of await readdir(join(dir, entry.name, shard))) {
            if (onFile(await getRow(origin, mediaId))) continue;
            await rm(join(dir, entry.name, shard, mediaId), { force: true });
            removed++;
          }
        }
      }
      return removed;
    },
  };
}
