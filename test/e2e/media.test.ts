/**
 * Media through `hearth serve` as a user runs it (a child process, SQLite and media files under `--data`,
 * `--max-upload-size 2M`): upload, download, thumbnails of a PNG and a JPEG made by sharp in
 * the server process, authenticated media refused without a token, and an upload 1 MiB over
 * the limit refused with 413 M_TOO_LARGE — then the same media read back after a restart.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseJson } from '../../src/core/json.ts';
import { imageSize, sampleImage } from '../../src/hosts/testing-media.ts';
import { startServe, stopServe } from './serve.ts';

const MiB = 1024 * 1024;

async function json(response: Response): Promise<Record<string, unknown>> {
  return parseJson(await response.text()) as Record<string, unknown>;
}

describe('media through `hearth serve --max-upload-size 2M`', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'hearth-media-serve-'));
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it('uploads, downloads and thumbnails a PNG and a JPEG; refuses no token and 1 MiB over the limit', async () => {
    let serve = await startServe(dataDir, 'media.test', ['--max-upload-size', '2M']);
    const uploaded: Array<{ path: string; bytes: Uint8Array }> = [];
    let token = '';
    try {
      const base = serve.url;
      const reg = await fetch(`${base}/_matrix/client/v3/register`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          username: 'alice',
          password: 'correct horse battery',
          auth: { type: 'm.login.dummy' },
        }),
      });
      token = (await json(reg)).access_token as string;
      const auth = { authorization: `Bearer ${token}` };

      const config = await fetch(`${base}/_matrix/client/v1/media/config`, { headers: auth });
      expect(await json(config)).toEqual({ 'm.upload.size': 2 * MiB });

      for (const format of ['png', 'jpeg'] as const) {
        const bytes = await sampleImage(640, 480, format);
        const up = await fetch(`${base}/_matrix/media/v3/upload?filename=photo.${format}`, {
          method: 'POST',
          headers: { ...auth, 'content-type': `image/${format}` },
          body: bytes as Uint8Array<ArrayBuffer>,
        });
        const uri = (await json(up)).content_uri as string;
        expect(uri).toMatch(/^mxc:\/\/media\.test\/[A-Za-z0-9]+$/);
        const path = uri.slice('mxc://'.length);
        uploaded.push({ path, bytes });

        const down = await fetch(`${base}/_matrix/client/v1/media/download/${path}`, { headers: auth });
        expect(down.status).toBe(200);
        expect(down.headers.get('content-type')).toBe(`image/${format}`);
        expect(down.headers.get('content-disposition')).toBe(`inline; filename="photo.${format}"`);
        expect(new Uint8Array(await down.arrayBuffer())).toEqual(bytes);

        const thumb = await fetch(
          `${base}/_matrix/client/v1/media/thumbnail/${path}?width=64&height=64&method=crop`,
          {
            headers: auth,
          },
        );
        expect(thumb.status).toBe(200);
        expect(await imageSize(await thumb.arrayBuffer())).toEqual({ format, width: 64, height: 64 });
        const scaled = await fetch(`${base}/_matrix/client/v1/media/thumbnail/${path}?width=320&height=240`, {
          headers: auth,
        });
        expect(await imageSize(await scaled.arrayBuffer())).toMatchObject({ width: 320, height: 240 });

        const anonymous = await fetch(`${base}/_matrix/client/v1/media/download/${path}`);
        expect([anonymous.status, (await json(anonymous)).errcode]).toEqual([401, 'M_MISSING_TOKEN']);
        const anonymousThumb = await fetch(
          `${base}/_matrix/client/v1/media/thumbnail/${path}?width=8&height=8`,
        );
        expect([anonymousThumb.status, (await json(anonymousThumb)).errcode]).toEqual([
          401,
          'M_MISSING_TOKEN',
        ]);
      }

      const tooBig = await fetch(`${base}/_matrix/media/v3/upload`, {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/octet-stream' },
        body: new Uint8Array(3 * MiB),
      });
      expect([tooBig.status, (await json(tooBig)).errcode]).toEqual([413, 'M_TOO_LARGE']);
      // The uploads are files under --data/media, one each, and nothing half written.
      const mediaDir = join(dataDir, 'media');
      expect(readdirSync(join(mediaDir, 'tmp'))).toEqual([]);
      for (const { path, bytes } of uploaded) {
        const mediaId = path.slice(path.indexOf('/') + 1);
        expect(readFileSync(join(mediaDir, 'media.test', mediaId.slice(0, 2), mediaId))).toEqual(
          Buffer.from(bytes),
        );
      }
      const noToken = await fetch(`${base}/_matrix/media/v3/upload`, { method: 'POST', body: 'x' });
      expect([noToken.status, (await json(noToken)).errcode]).toEqual([401, 'M_MISSING_TOKEN']);
    } finally {
      await stopServe(serve.child);
    }

    // The files under --data: a new process serves them.
    serve = await startServe(dataDir, 'media.test', ['--max-upload-size', '2M']);
    try {
      for (const { path, bytes } of uploaded) {
        const down = await fetch(`${serve.url}/_matrix/client/v1/media/download/${path}`, {
          headers: { authorization: `Bearer ${token}` },
        });
        expect(new Uint8Array(await down.arrayBuffer())).toEqual(bytes);
      }
    } finally {
      await stopServe(serve.child);
    }
  }, 60_000);
});
