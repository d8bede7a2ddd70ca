import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseJson } from '../../core/json.ts';
import { MatrixError } from '../../homeserver/errors.ts';
import { imageSize, sampleImage } from '../../hosts/testing-media.ts';
import { createNodeThumbnailer } from '../../hosts/thumbnailer-node.ts';
import type { HomeserverOptions } from '../../server.ts';
import { openSqliteStore } from '../../storage/sqlite/index.ts';
import { createTestHomeserver, type TestHomeserver, type TestUser } from './testing.ts';

const MiB = 1024 * 1024;

describe('media', () => {
  let hs: TestHomeserver | undefined;
  afterEach(async () => {
    await hs?.close();
    hs = undefined;
  });

  async function start(
    options: Partial<HomeserverOptions> = {},
  ): Promise<{ hs: TestHomeserver; alice: TestUser }> {
    hs = await createTestHomeserver({ thumbnailer: await createNodeThumbnailer(), ...options });
    return { hs, alice: await hs.createUser('alice') };
  }

  function send(
    server: TestHomeserver,
    method: string,
    path: string,
    options: { token?: string; body?: BodyInit; type?: string } = {},
  ): Promise<Response> {
    const headers: Record<string, string> = {};
    if (options.token) headers.authorization = `Bearer ${options.token}`;
    if (options.type) headers['content-type'] = options.type;
    return server.fetch(
      new Request(`http://${server.serverName}${path}`, { method, headers, body: options.body }),
    );
  }

  async function json(response: Response): Promise<Record<string, unknown>> {
    return parseJson(await response.text()) as Record<string, unknown>;
  }

  async function upload(
    server: TestHomeserver,
    user: TestUser,
    bytes: Uint8Array,
    type: string,
    filename?: string,
  ): Promise<{ serverName: string; mediaId: string }> {
    const query = filename ? `?filename=${encodeURIComponent(filename)}` : '';
    const res = await send(server, 'POST', `/_matrix/media/v3/upload${query}`, {
      token: user.accessToken,
      body: bytes as Uint8Array<ArrayBuffer>,
      type,
    });
    const body = await json(res);
    expect(res.status, JSON.stringify(body)).toBe(200);
    const match = /^mxc:\/\/([^/]+)\/([A-Za-z0-9_-]+)$/.exec(body.content_uri as string);
    if (!match) throw new Error(`not an mxc URI: ${String(body.content_uri)}`);
    return { serverName: match[1] as string, mediaId: match[2] as string };
  }

  it('uploads and downloads bytes with the spec headers, authenticated and through the deprecated path', async () => {
    const { hs, alice } = await start();
    const png = await sampleImage(40, 30, 'png');
    const { serverName, mediaId } = await upload(hs, alice, png, 'image/png', 'cat.png');
    expect(serverName).toBe(hs.serverName);

    const res = await send(hs, 'GET', `/_matrix/client/v1/media/download/${serverName}/${mediaId}`, {
      token: alice.accessToken,
    });
    expect(res.status).toBe(200);
    expect(new Uint8Array(await res.arrayBuffer())).toEqual(png);
    expect(res.headers.get('content-type')).toBe('image/png');
    expect(res.headers.get('content-length')).toBe(String(png.byteLength));
    expect(res.headers.get('content-disposition')).toBe('inline; filename="cat.png"');
    expect(res.headers.get('content-security-policy')).toContain('sandbox');
    expect(res.headers.get('cross-origin-resource-policy')).toBe('cross-origin');

    // The file name in the path overrides the uploaded one.
    const named = await send(
      hs,
      'GET',
      `/_matrix/client/v1/media/download/${serverName}/${mediaId}/dog.png`,
      {
        token: alice.accessToken,
      },
    );
    expect(named.headers.get('content-disposition')).toBe('inline; filename="dog.png"');

    // Deprecated, unauthenticated, still defined by the spec.
    for (const version of ['v3', 'r0']) {
      const old = await send(hs, 'GET', `/_matrix/media/${version}/download/${serverName}/${mediaId}`);
      expect(old.status).toBe(200);
      expect(new Uint8Array(await old.arrayBuffer())).toEqual(png);
    }
  });

  it('refuses authenticated media without a token', async () => {
    const { hs, alice } = await start();
    const { serverName, mediaId } = await upload(hs, alice, new Uint8Array([1, 2, 3]), 'text/plain');
    for (const path of [
      `/_matrix/client/v1/media/download/${serverName}/${mediaId}`,
      `/_matrix/client/v1/media/thumbnail/${serverName}/${mediaId}?width=32&height=32`,
      '/_matrix/client/v1/media/config',
      '/_matrix/client/v1/media/preview_url?url=https%3A%2F%2Fexample.org',
    ]) {
      const res = await send(hs, 'GET', path);
      expect([res.status, (await json(res)).errcode], path).toEqual([401, 'M_MISSING_TOKEN']);
    }
    const up = await send(hs, 'POST', '/_matrix/media/v3/upload', { body: 'x', type: 'text/plain' });
    expect([up.status, (await json(up)).errcode]).toEqual([401, 'M_MISSING_TOKEN']);
  });

  it("serves inline only the spec's safe types, and file names that cannot break the header", async () => {
    const { hs, alice } = await start();
    const html = await upload(
      hs,
      alice,
      new TextEncoder().encode('<script>alert(1)</script>'),
      'text/html',
      'x.html',
    );
    const res = await send(
      hs,
      'GET',
      `/_matrix/client/v1/media/download/${html.serverName}/${html.mediaId}`,
      {
        token: alice.accessToken,
      },
    );
    expect(res.headers.get('content-disposition')).toBe('attachment; filename="x.html"');
    expect(res.headers.get('content-type')).toBe('text/html');

    const text = await upload(
      hs,
      alice,
      new Uint8Array([104, 105]),
      'Text/Plain; charset=utf-8',
      'naïve "q".txt',
    );
    const got = await send(
      hs,
      'GET',
      `/_matrix/client/v1/media/download/${text.serverName}/${text.mediaId}`,
      {
        token: alice.accessToken,
      },
    );
    expect(got.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    expect(got.headers.get('content-disposition')).toBe("inline; filename*=utf-8''na%C3%AFve%20%22q%22.txt");

    // No or a malformed Content-Type is stored as octets, served as an attachment.
    const odd = await upload(hs, alice, new Uint8Array([0]), 'not a type');
    const oddRes = await send(
      hs,
      'GET',
      `/_matrix/client/v1/media/download/${odd.serverName}/${odd.mediaId}`,
      {
        token: alice.accessToken,
      },
    );
    expect(oddRes.headers.get('content-type')).toBe('application/octet-stream');
    expect(oddRes.headers.get('content-disposition')).toBe('attachment');
  });

  it('makes thumbnails of a PNG and a JPEG: crop to the box, scale covering it, never upscaled', async () => {
    const { hs, alice } = await start();
    for (const format of ['png', 'jpeg'] as const) {
      const { serverName, mediaId } = await upload(
        hs,
        alice,
        await sampleImage(800, 600, format),
        `image/${format}`,
      );
      const thumb = async (query: string) => {
        const res = await send(
          hs as TestHomeserver,
          'GET',
          `/_matrix/client/v1/media/thumbnail/${serverName}/${mediaId}?${query}`,
          { token: alice.accessToken },
        );
        expect(res.status, query).toBe(200);
        return { res, size: await imageSize(await res.arrayBuffer()) };
      };
      const crop = await thumb('width=96&height=96&method=crop');
      expect(crop.size).toEqual({ format, width: 96, height: 96 });
      expect(crop.res.headers.get('content-type')).toBe(`image/${format}`);
      expect(crop.res.headers.get('content-disposition')).toBe(
        `inline; filename="thumbnail.${format === 'png' ? 'png' : 'jpg'}"`,
      );
      // 320×240 box: the 4:3 image scales to exactly it.
      expect((await thumb('width=320&height=240&method=scale')).size).toMatchObject({
        width: 320,
        height: 240,
      });
      // A square box: both sides at least as asked, aspect kept.
      expect((await thumb('width=300&height=300&method=scale')).size).toMatchObject({
        width: 400,
        height: 300,
      });
      // Larger than the image: the original.
      expect((await thumb('width=1000&height=1000')).size).toMatchObject({ width: 800, height: 600 });
      // Deprecated path too.
      const old = await send(
        hs,
        'GET',
        `/_matrix/media/v3/thumbnail/${serverName}/${mediaId}?width=32&height=32&method=crop`,
      );
      expect((await imageSize(await old.arrayBuffer())).width).toBe(32);
    }
  });

  it('answers thumbnails of what is not an image with an error, and of images without a thumbnailer with the original', async () => {
    const { hs, alice } = await start({ thumbnailer: undefined });
    const png = await sampleImage(100, 100, 'png');
    const img = await upload(hs, alice, png, 'image/png');
    const res = await send(
      hs,
      'GET',
      `/_matrix/client/v1/media/thumbnail/${img.serverName}/${img.mediaId}?width=10&height=10`,
      {
        token: alice.accessToken,
      },
    );
    expect(res.status).toBe(200);
    expect(new Uint8Array(await res.arrayBuffer())).toEqual(png);
    const text = await upload(hs, alice, new Uint8Array([1]), 'text/plain');
    const bad = await send(
      hs,
      'GET',
      `/_matrix/client/v1/media/thumbnail/${text.serverName}/${text.mediaId}?width=10&height=10`,
      {
        token: alice.accessToken,
      },
    );
    expect([bad.status, (await json(bad)).errcode]).toEqual([400, 'M_UNKNOWN']);
  });

  it('refuses a corrupt image with 400, not a 500', async () => {
    const { hs, alice } = await start();
    const broken = await upload(hs, alice, new Uint8Array([0x89, 0x50, 0x4e, 0x47, 1, 2, 3]), 'image/png');
    const res = await send(
      hs,
      'GET',
      `/_matrix/client/v1/media/thumbnail/${broken.serverName}/${broken.mediaId}?width=10&height=10`,
      { token: alice.accessToken },
    );
    expect([res.status, (await json(res)).errcode]).toEqual([400, 'M_UNKNOWN']);
  });

  it('takes its upload limit from configuration: 1 MiB over it is 413 M_TOO_LARGE', async () => {
    const { hs, alice } = await start({ maxUploadBytes: 2 * MiB });
    const config = await send(hs, 'GET', '/_matrix/client/v1/media/config', { token: alice.accessToken });
    expect(await json(config)).toEqual({ 'm.upload.size': 2 * MiB });
    const old = await send(hs, 'GET', '/_matrix/media/v3/config', { token: alice.accessToken });
    expect(await json(old)).toEqual({ 'm.upload.size': 2 * MiB });

    await upload(hs, alice, new Uint8Array(2 * MiB), 'application/octet-stream');
    const res = await send(hs, 'POST', '/_matrix/media/v3/upload', {
      token: alice.accessToken,
      body: new Uint8Array(3 * MiB),
      type: 'application/octet-stream',
    });
    expect([res.status, (await json(res)).errcode]).toEqual([413, 'M_TOO_LARGE']);
  });

  it('on SQLite with media files, streams uploads to files, with or without a length, and stops one past the limit', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hearth-media-api-'));
    try {
      const mediaDir = join(dir, 'media');
      const store = await openSqliteStore({ path: join(dir, 'hearth.sqlite'), mediaDir });
      const { hs, alice } = await start({ store, maxUploadBytes: 2 * MiB });
      const chunked = (total: number) => {
        let sent = 0;
        return new ReadableStream<Uint8Array>({
          pull(controller) {
            if (sent >= total) return controller.close();
            const piece = new Uint8Array(Math.min(100_000, total - sent)).fill(sent % 251);
            sent += piece.byteLength;
            controller.enqueue(piece);
          },
        });
      };
      const stream = (path: string, total: number, method = 'POST') =>
        hs.fetch(
          new Request(`http://${hs.serverName}${path}`, {
            method,
            headers: {
              authorization: `Bearer ${alice.accessToken}`,
              'content-type': 'application/octet-stream',
            },
            body: chunked(total),
            duplex: 'half',
          } as RequestInit),
        );
      const expected = new Uint8Array(await new Response(chunked(1_500_000)).arrayBuffer());

      const up = await stream('/_matrix/media/v3/upload', 1_500_000);
      const uri = (await json(up)).content_uri as string;
      const mediaId = uri.slice(uri.lastIndexOf('/') + 1);
      expect(statSync(join(mediaDir, hs.serverName, mediaId.slice(0, 2), mediaId)).size).toBe(1_500_000);
      const down = await send(hs, 'GET', `/_matrix/client/v1/media/download/${hs.serverName}/${mediaId}`, {
        token: alice.accessToken,
      });
      expect(down.headers.get('content-length')).toBe('1500000');
      expect(new Uint8Array(await down.arrayBuffer())).toEqual(expected);

      const tooBig = await stream('/_matrix/media/v3/upload', 3 * MiB);
      expect([tooBig.status, (await json(tooBig)).errcode]).toEqual([413, 'M_TOO_LARGE']);
      expect(readdirSync(join(mediaDir, 'tmp'))).toEqual([]);

      const created = await json(
        await send(hs, 'POST', '/_matrix/media/v1/create', { token: alice.accessToken }),
      );
      const later = (created.content_uri as string).slice('mxc://'.length);
      const over = await stream(`/_matrix/media/v3/upload/${later}`, 3 * MiB, 'PUT');
      expect([over.status, (await json(over)).errcode]).toEqual([413, 'M_TOO_LARGE']);
      const put = await stream(`/_matrix/media/v3/upload/${later}`, 10, 'PUT');
      expect([put.status, await json(put)]).toEqual([200, {}]);
      const twice = await stream(`/_matrix/media/v3/upload/${later}`, 10, 'PUT');
      expect([twice.status, (await json(twice)).errcode]).toEqual([409, 'M_CANNOT_OVERWRITE_MEDIA']);
      const filled = await send(hs, 'GET', `/_matrix/client/v1/media/download/${later}`, {
        token: alice.accessToken,
      });
      expect((await filled.arrayBuffer()).byteLength).toBe(10);
      // Files and rows agree: the two uploads, nothing from the refused ones.
      const shards = readdirSync(join(mediaDir, hs.serverName));
      expect(shards.flatMap((shard) => readdirSync(join(mediaDir, hs.serverName, shard))).sort()).toEqual(
        [mediaId, later.slice(later.indexOf('/') + 1)].sort(),
      );
    } finally {
      await hs?.close();
      hs = undefined;
      rmSync(dir, { recursive: true, force: true });
    }
    // Real files with fsyncs and SQLite at synchronous=FULL: slow on a loaded machine.
  }, 120_000);

  it('creates an ID, uploads to it once, by its creator only; a download waits for it', async () => {
    const { hs, alice } = await start();
    const bob = await hs.createUser('bob');
    const created = await send(hs, 'POST', '/_matrix/media/v1/create', { token: alice.accessToken });
    const body = await json(created);
    expect(created.status).toBe(200);
    expect(body.unused_expires_at).toBeGreaterThan(Date.now());
    const [, serverName, mediaId] = /^mxc:\/\/([^/]+)\/(.+)$/.exec(body.content_uri as string) ?? [];
    const put = (user: TestUser, bytes: string) =>
      send(hs as TestHomeserver, 'PUT', `/_matrix/media/v3/upload/${serverName}/${mediaId}?filename=a.txt`, {
        token: user.accessToken,
        body: bytes,
        type: 'text/plain',
      });
    const download = (timeout: number) =>
      send(
        hs as TestHomeserver,
        'GET',
        `/_matrix/client/v1/media/download/${serverName}/${mediaId}?timeout_ms=${timeout}`,
        {
          token: alice.accessToken,
        },
      );

    const early = await download(0);
    expect([early.status, (await json(early)).errcode]).toEqual([504, 'M_NOT_YET_UPLOADED']);
    const bobPut = await put(bob, 'bob');
    expect([bobPut.status, (await json(bobPut)).errcode]).toEqual([403, 'M_FORBIDDEN']);

    const waiting = download(10_000);
    const ok = await put(alice, 'hello');
    expect([ok.status, await json(ok)]).toEqual([200, {}]);
    const waited = await waiting;
    expect(waited.status).toBe(200);
    expect(await waited.text()).toBe('hello');
    expect(waited.headers.get('content-disposition')).toBe('inline; filename="a.txt"');

    const again = await put(alice, 'again');
    expect([again.status, (await json(again)).errcode]).toEqual([409, 'M_CANNOT_OVERWRITE_MEDIA']);
    const unknown = await send(hs, 'PUT', `/_matrix/media/v3/upload/${serverName}/nope`, {
      token: alice.accessToken,
      body: 'x',
    });
    expect([unknown.status, (await json(unknown)).errcode]).toEqual([404, 'M_NOT_FOUND']);
  });

  it('answers unknown, remote and malformed media with Matrix errors; URL previews are off', async () => {
    const { hs, alice } = await start();
    const get = async (path: string) => {
      const res = await send(hs, 'GET', path, { token: alice.accessToken });
      return [res.status, (await json(res)).errcode];
    };
    expect(await get(`/_matrix/client/v1/media/download/${hs.serverName}/unknown`)).toEqual([
      404,
      'M_NOT_FOUND',
    ]);
    expect(await get('/_matrix/client/v1/media/download/other.example/abc')).toEqual([404, 'M_NOT_FOUND']);
    expect(await get('/_matrix/media/v3/download/other.example/abc?allow_remote=false')).toEqual([
      404,
      'M_NOT_FOUND',
    ]);
    expect(await get('/_matrix/client/v1/media/thumbnail/other.example/abc?width=1&height=1')).toEqual([
      404,
      'M_NOT_FOUND',
    ]);
    expect(await get(`/_matrix/client/v1/media/download/${hs.serverName}/a..b`)).toEqual([
      400,
      'M_INVALID_PARAM',
    ]);
    expect(await get('/_matrix/client/v1/media/download/bad%20server/abc')).toEqual([400, 'M_INVALID_PARAM']);
    expect(await get(`/_matrix/client/v1/media/thumbnail/${hs.serverName}/abc?width=0&height=1`)).toEqual([
      400,
      'M_INVALID_PARAM',
    ]);
    expect(await get('/_matrix/client/v1/media/preview_url?url=https%3A%2F%2Fexample.org')).toEqual([
      403,
      'M_FORBIDDEN',
    ]);
    expect(await get('/_matrix/media/v3/preview_url?url=https%3A%2F%2Fexample.org')).toEqual([
      403,
      'M_FORBIDDEN',
    ]);
  });

  it('asks federation for remote media through the remoteMedia hook', async () => {
    const asked: string[] = [];
    const { hs, alice } = await start({
      remoteMedia: {
        async fetchMedia(serverName, mediaId) {
          asked.push(`${serverName}/${mediaId}`);
          return mediaId === 'there'
            ? { contentType: 'text/plain', uploadName: null, data: new Blob(['far']) }
            : null;
        },
      },
    });
    const res = await send(hs, 'GET', '/_matrix/client/v1/media/download/other.example/there', {
      token: alice.accessToken,
    });
    expect(await res.text()).toBe('far');
    const missing = await send(hs, 'GET', '/_matrix/client/v1/media/download/other.example/gone', {
      token: alice.accessToken,
    });
    expect(missing.status).toBe(404);
    expect(asked).toEqual(['other.example/there', 'other.example/gone']);
  });

  it('makes a remote thumbnail here from the original only when the origin refuses to make one', async () => {
    const png = await sampleImage(100, 60, 'png');
    const asked: string[] = [];
    const { hs, alice } = await start({
      remoteMedia: {
        async fetchMedia(serverName, mediaId) {
          asked.push(`download ${serverName}/${mediaId}`);
          return mediaId === 'gone' ? null : { contentType: 'image/png', uploadName: null, data: png };
        },
        async fetchThumbnail(serverName, mediaId, want) {
          asked.push(`thumbnail ${serverName}/${mediaId} ${want.width}x${want.height}`);
          if (mediaId === 'made') return { contentType: 'image/png', data: await sampleImage(16, 16, 'png') };
          if (mediaId === 'html') return { contentType: 'text/html', data: new Blob(['<script>']) };
          if (mediaId === 'gone') return null;
          throw new MatrixError(400, 'M_UNKNOWN', 'Cannot generate a thumbnail of this content');
        },
      },
    });
    const thumb = (id: string) =>
      send(
        hs,
        'GET',
        `/_matrix/client/v1/media/thumbnail/other.example/${id}?width=32&height=32&method=crop`,
        {
          token: alice.accessToken,
        },
      );
    const made = await thumb('made');
    expect(await imageSize(await made.arrayBuffer())).toMatchObject({ width: 16, height: 16 });
    // Refused, or of a type a thumbnail may not have: made here from the original.
    for (const id of ['refused', 'html']) {
      const res = await thumb(id);
      expect(res.headers.get('content-type')).toBe('image/png');
      expect(await imageSize(await res.arrayBuffer())).toMatchObject({ width: 32, height: 32 });
    }
    expect((await thumb('gone')).status).toBe(404);
    // Kept: asked again, nobody is asked.
    await thumb('made');
    await thumb('refused');
    expect(asked).toEqual([
      'thumbnail other.example/made 32x32',
      'thumbnail other.example/refused 32x32',
      'download other.example/refused',
      'thumbnail other.example/html 32x32',
      'download other.example/html',
      'thumbnail other.example/gone 32x32',
    ]);
  });

  it('keeps media in backups: exported and imported with the rest', async () => {
    const { hs, alice } = await start();
    const png = await sampleImage(20, 20, 'png');
    const { serverName, mediaId } = await upload(hs, alice, png, 'image/png', 'a.png');
    // An ID reserved but not yet filled travels too, and can be filled after the import.
    const created = await json(
      await send(hs, 'POST', '/_matrix/media/v1/create', { token: alice.accessToken }),
    );
    const reserved = (created.content_uri as string).slice('mxc://'.length);
    const backup = await hs.admin.exportBackup();
    const other = await createTestHomeserver({ serverName: hs.serverName });
    try {
      await other.admin.importBackup(backup);
      const res = await send(other, 'GET', `/_matrix/media/v3/download/${serverName}/${mediaId}`);
      expect(res.status).toBe(200);
      expect(new Uint8Array(await res.arrayBuffer())).toEqual(png);
      expect(res.headers.get('content-disposition')).toBe('inline; filename="a.png"');
      const filled = await send(other, 'PUT', `/_matrix/media/v3/upload/${reserved}`, {
        token: alice.accessToken,
        body: 'later',
        type: 'text/plain',
      });
      expect(filled.status).toBe(200);
      const later = await send(other, 'GET', `/_matrix/media/v3/download/${reserved}`);
      expect(await later.text()).toBe('later');
    } finally {
      await other.close();
    }
  });
});
