/**
 * Media benchmarks (issue 12): upload and download throughput of 1 MiB files through
 * `hs.fetch` (in-process, as the Service Worker host calls it) and over loopback HTTP (as
 * `hearth serve` is reached), on the in-memory store (fake-indexeddb) and on SQLite (a file,
 * WAL, synchronous=FULL: `hearth serve --data`). Each beside, in the same run, the store's
 * own write and read of the same bytes (`store.media.putMedia` / `getMediaAsKept` and reading
 * the bytes out) — over loopback, behind a bare `node:http` server doing only that, so both
 * pay the same transport.
 *
 *   node bench/media.ts
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb';
import { serveHttp } from '../src/hosts/node.ts';
import { openIndexedDbStore } from '../src/storage/indexeddb/index.ts';
import { openSqliteStore } from '../src/storage/sqlite/index.ts';
import type { Store } from '../src/storage/store.ts';
import { startBenchHomeserver } from './bench-homeserver.ts';
import { type BenchRow, printTable, rates2 } from './harness.ts';

const SERVER_NAME = 'bench.localhost';
const SIZE = 1024 * 1024;
const MS = 3000;

/** The raw store behind bare `node:http`: POST stores the body, GET /{mediaId} answers its bytes. */
async function bareStoreServer(
  store: Store,
  userId: string,
): Promise<{ url: string; close(): Promise<void> }> {
  let n = 0;
  const server = createServer(async (req, res) => {
    if (req.method === 'POST') {
      // The body as this store takes it: streamed when it writes files, else gathered.
      let body: Uint8Array | ReadableStream<Uint8Array>;
      if (store.media.keeps === 'stream') body = Readable.toWeb(req) as ReadableStream<Uint8Array>;
      else {
        const chunks: Buffer[] = [];
        for await (const chunk of req) chunks.push(chunk as Buffer);
        body = new Uint8Array(Buffer.concat(chunks));
      }
      const mediaId = `bare${n++}`;
      await store.media.putMedia(
        {
          origin: SERVER_NAME,
          mediaId,
          contentType: 'application/octet-stream',
          uploadName: null,
          userId,
          createdAt: Date.now(),
        },
        body,
      );
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ media_id: mediaId }));
      return;
    }
    const got = await store.media.getMediaAsKept(SERVER_NAME, (req.url ?? '/').slice(1));
    if (!got) {
      res.writeHead(404, { 'content-length': 0 });
      res.end();
      return;
    }
    res.writeHead(200, { 'content-length': got.info.size });
    // A Blob (IndexedDB, files) is streamed out as a host would; bytes are written at once.
    if (got.data instanceof Blob) await pipeline(Readable.fromWeb(got.data.stream() as never), res);
    else res.end(got.data);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/**
 * Reads a response body to its end and counts it, without gathering it into one buffer: what
 * a host does with a download (the Service Worker hands the stream to the browser; Node
 * writes it to the socket piece by piece).
 */
async function drain(res: Response): Promise<number> {
  if (!res.body) return 0;
  const reader = res.body.getReader();
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return total;
    total += value.byteLength;
  }
}

async function benchOn(label: string, store: Store): Promise<BenchRow[]> {
  const { homeserver: hs, internals } = startBenchHomeserver(SERVER_NAME, store);
  const { services } = await internals();
  const { userId, session } = await services.accounts.createUser({ localpart: 'bench', login: true });
  const token = session?.accessToken ?? '';
  const bytes = new Uint8Array(SIZE).map((_, i) => (i * 7) % 251);
  // What a client uploads: a file is a Blob (a browser's File); Request streams it without a copy.
  const file = new Blob([bytes]);
  const mib = SIZE / (1024 * 1024);
  const rows: BenchRow[] = [];
  let n = 0;
  const rawWrite = () =>
    store.media.putMedia(
      {
        origin: SERVER_NAME,
        mediaId: `raw${n++}`,
        contentType: 'application/octet-stream',
        uploadName: null,
        userId,
        createdAt: Date.now(),
      },
      bytes,
    );
  const rawRead = async (mediaId: string) => {
    const got = await store.media.getMediaAsKept(SERVER_NAME, mediaId);
    const data = got?.data instanceof Blob ? await got.data.arrayBuffer() : got?.data;
    if (data?.byteLength !== SIZE) throw new Error('short read');
  };

  const http = await serveHttp(hs.fetch, { port: 0 });
  const bare = await bareStoreServer(store, userId);
  const bareWrite = async () => {
    const res = await fetch(bare.url, { method: 'POST', body: file });
    return ((await res.json()) as { media_id: string }).media_id;
  };
  const bareRead = async (mediaId: string) => {
    const res = await fetch(`${bare.url}/${mediaId}`);
    if ((await drain(res)) !== SIZE) throw new Error('short read');
  };
  try {
    for (const [transport, base, call, write, read, writeName, readName] of [
      [
        'in-process',
        `http://${SERVER_NAME}`,
        (r: Request) => hs.fetch(r),
        rawWrite,
        rawRead,
        'store.media.putMedia',
        'store.media.getMediaAsKept + read',
      ],
      [
        'loopback HTTP',
        http.url,
        (r: Request) => fetch(r),
        bareWrite,
        bareRead,
        'bare node:http + putMedia',
        'bare node:http + getMediaAsKept',
      ],
    ] as const) {
      const upload = async () => {
        const res = await call(
          new Request(`${base}/_matrix/media/v3/upload`, {
            method: 'POST',
            headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' },
            body: file,
          }),
        );
        const body = (await res.json()) as { content_uri?: string };
        if (!body.content_uri) throw new Error(`upload failed: ${JSON.stringify(body)}`);
        return body.content_uri;
      };
      const [up, rawUp] = await rates2(upload, write, MS);
      rows.push({
        name: `${label}, ${transport}: upload 1 MiB`,
        value: up * mib,
        unit: 'MiB/s',
        baselineName: writeName,
        baselineValue: rawUp * mib,
        ratio: up / rawUp,
      });

      const uri = await upload();
      const path = uri.slice('mxc://'.length);
      const mediaId = path.slice(path.indexOf('/') + 1);
      const download = async () => {
        const res = await call(
          new Request(`${base}/_matrix/client/v1/media/download/${path}`, {
            headers: { authorization: `Bearer ${token}` },
          }),
        );
        if ((await drain(res)) !== SIZE) throw new Error('short download');
      };
      const rawId = transport === 'in-process' ? mediaId : await bareWrite();
      const [down, rawDown] = await rates2(download, () => read(rawId), MS);
      rows.push({
        name: `${label}, ${transport}: download 1 MiB`,
        value: down * mib,
        unit: 'MiB/s',
        baselineName: readName,
        baselineValue: rawDown * mib,
        ratio: down / rawDown,
      });
    }
  } finally {
    await bare.close();
    await http.close();
    await hs.close();
  }
  return rows;
}

export async function mediaBench(): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  rows.push(
    ...(await benchOn(
      'memory',
      await openIndexedDbStore({ indexedDB: new IDBFactory(), IDBKeyRange, name: 'bench-media' }),
    )),
  );
  const dir = mkdtempSync(join(tmpdir(), 'hearth-bench-media-'));
  try {
    rows.push(...(await benchOn('SQLite', await openSqliteStore({ path: join(dir, 'hearth.sqlite') }))));
    // What `hearth serve --data` runs: the rows in SQLite, the bytes as files beside it.
    rows.push(
      ...(await benchOn(
        'SQLite + media files',
        await openSqliteStore({ path: join(dir, 'files.sqlite'), mediaDir: join(dir, 'media') }),
      )),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}

if (import.meta.main) {
  printTable(
    'media: upload and download beside the store write and read of the same bytes',
    await mediaBench(),
  );
}
