/**
 * A writer for the media crash test: stores media in the SQLite store at `argv[2]` with its
 * files in `argv[3]` as fast as it can — uploads streamed in pieces, and every third one
 * deleted again — printing `put <id> <size>` / `del <id>` after each acknowledged call,
 * until it is killed.
 */
import { openSqliteStore } from '../../sqlite/index.ts';

const [path, mediaDir, tag = 'w'] = process.argv.slice(2) as [string, string, string?];
const store = await openSqliteStore({ path, mediaDir });

/** `size` bytes in pieces of 64 KiB, each piece after a turn of the event loop. */
function body(size: number, seed: number): ReadableStream<Uint8Array> {
  let sent = 0;
  return new ReadableStream({
    async pull(controller) {
      if (sent >= size) return controller.close();
      const piece = new Uint8Array(Math.min(65_536, size - sent)).fill(seed % 256);
      sent += piece.byteLength;
      await new Promise((resolve) => setImmediate(resolve));
      controller.enqueue(piece);
    },
  });
}

for (let i = 0; ; i++) {
  const mediaId = `${tag}${i}`;
  const size = 1 + ((i * 40_503) % 400_000);
  await store.media.putMedia(
    {
      origin: 'hearth.test',
      mediaId,
      contentType: 'application/octet-stream',
      uploadName: null,
      userId: '@writer:hearth.test',
      createdAt: i,
    },
    body(size, i),
  );
  process.stdout.write(`put ${mediaId} ${size}\n`);
  if (i % 3 === 2) {
    await store.media.deleteMedia('hearth.test', mediaId);
    process.stdout.write(`del ${mediaId}\n`);
  }
}
