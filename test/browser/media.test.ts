/**
 * Media through the Service Worker homeserver in Debian's headless Chromium: the page uploads
 * a PNG and a JPEG with plain `fetch` to `/_matrix/media/v3/upload` (the worker answers, the
 * bytes are Blobs in IndexedDB), downloads them, and asks for thumbnails, which the worker
 * makes with `createImageBitmap` + `OffscreenCanvas`. Authenticated media without a token and
 * an upload 1 MiB over the worker's limit (`max_upload_size`, 2 MiB) are refused.
 */
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { imageSize, sampleImage } from '../../src/hosts/testing-media.ts';
import { type Browser, buildTestSite, launch, type PageGlobals, type TestSite } from './testing-sw.ts';

const MiB = 1024 * 1024;

describe('media through the Service Worker homeserver in Chromium', () => {
  let site: TestSite;
  let browser: Browser;
  let page: Page;

  beforeAll(async () => {
    site = await buildTestSite(false);
    browser = await launch(site);
    page = await browser.open();
    const mode = await page.evaluate(async (limit) => {
      const w = window as unknown as PageGlobals;
      w.handle = await w.hearth.registerHomeserver({ workerUrl: `/sw.js?max_upload_size=${limit}` });
      return w.handle.mode;
    }, 2 * MiB);
    expect(mode).toBe('service-worker');
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    site?.remove();
  });

  it('uploads, downloads and thumbnails a PNG and a JPEG; refuses no token and 1 MiB over the limit', async () => {
    const png = await sampleImage(640, 480, 'png');
    const jpeg = await sampleImage(640, 480, 'jpeg');
    const result = await page.evaluate(
      async ({ images, over }) => {
        const w = window as unknown as PageGlobals;
        const token = await w.mx.register('mediauser', 'correct horse battery staple');
        const auth = { authorization: `Bearer ${token}` };
        const bytesOf = async (r: Response) => Array.from(new Uint8Array(await r.arrayBuffer()));
        const config = await (await fetch('/_matrix/client/v1/media/config', { headers: auth })).json();
        const out = [];
        for (const image of images) {
          const up = await fetch(`/_matrix/media/v3/upload?filename=photo.${image.format}`, {
            method: 'POST',
            headers: { ...auth, 'content-type': `image/${image.format}` },
            body: new Uint8Array(image.bytes),
          });
          const uri = (await up.json()).content_uri as string;
          const path = uri.slice('mxc://'.length);
          const down = await fetch(`/_matrix/client/v1/media/download/${path}`, { headers: auth });
          const crop = await fetch(
            `/_matrix/client/v1/media/thumbnail/${path}?width=64&height=64&method=crop`,
            {
              headers: auth,
            },
          );
          const scale = await fetch(`/_matrix/client/v1/media/thumbnail/${path}?width=320&height=240`, {
            headers: auth,
          });
          const anonymous = await fetch(`/_matrix/client/v1/media/download/${path}`);
          out.push({
            uri,
            download: {
              status: down.status,
              type: down.headers.get('content-type'),
              disposition: down.headers.get('content-disposition'),
              bytes: await bytesOf(down),
            },
            crop: { status: crop.status, type: crop.headers.get('content-type'), bytes: await bytesOf(crop) },
            scale: { status: scale.status, bytes: await bytesOf(scale) },
            anonymous: { status: anonymous.status, body: await anonymous.json() },
          });
        }
        const tooBig = await fetch('/_matrix/media/v3/upload', {
          method: 'POST',
          headers: { ...auth, 'content-type': 'application/octet-stream' },
          body: new Uint8Array(over),
        });
        return { config, out, tooBig: { status: tooBig.status, body: await tooBig.json() } };
      },
      {
        images: [
          { format: 'png', bytes: Array.from(png) },
          { format: 'jpeg', bytes: Array.from(jpeg) },
        ],
        over: 3 * MiB,
      },
    );
    expect(result.config).toEqual({ 'm.upload.size': 2 * MiB });
    for (const [i, [format, original]] of (
      [
        ['png', png],
        ['jpeg', jpeg],
      ] as const
    ).entries()) {
      const r = result.out[i];
      if (!r) throw new Error(`no result for ${format}`);
      expect(r.uri).toMatch(/^mxc:\/\/127\.0\.0\.1(:\d+)?\/[A-Za-z0-9]+$/);
      expect(r.download.status).toBe(200);
      expect(r.download.type).toBe(`image/${format}`);
      expect(r.download.disposition).toBe(`inline; filename="photo.${format}"`);
      expect(new Uint8Array(r.download.bytes)).toEqual(original);
      expect(r.crop.status).toBe(200);
      expect(r.crop.type).toBe(`image/${format}`);
      expect(await imageSize(new Uint8Array(r.crop.bytes))).toEqual({ format, width: 64, height: 64 });
      expect(await imageSize(new Uint8Array(r.scale.bytes))).toMatchObject({ width: 320, height: 240 });
      expect(r.anonymous).toMatchObject({ status: 401, body: { errcode: 'M_MISSING_TOKEN' } });
    }
    expect(result.tooBig).toMatchObject({ status: 413, body: { errcode: 'M_TOO_LARGE' } });
    expect(browser.errors).toEqual([]);
  }, 60_000);
});
