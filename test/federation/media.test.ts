/**
 * Media across servers (server-server-api "Content Repository"): a user of b.test downloads
 * and thumbnails media uploaded on a.test through b.test, which fetches it once over the
 * authenticated federation endpoint (a signed request, a `multipart/mixed` answer) and keeps
 * it — the second read is served with a.test off the network. The serving side refuses
 * unsigned requests and names only its own media; the fetching side follows a `Location`
 * part and falls back to the legacy endpoint for a server without federation media.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { encodeMultipart, multipartBoundary, parseMultipart } from '../../src/core/multipart.ts';
import { buildFederationRequest, type FederationRequest } from '../../src/federation/client.ts';
import { createRemoteMedia } from '../../src/federation/remote-media.ts';
import {
  createFederatedServers,
  type FederatedNetwork,
  type FederatedServer,
} from '../../src/federation/testing.ts';
import { thumbnailKey } from '../../src/homeserver/media/index.ts';
import { imageSize, sampleImage } from '../../src/hosts/testing-media.ts';
import { createNodeThumbnailer } from '../../src/hosts/thumbnailer-node.ts';
import type { TestHomeserver } from '../../src/testing.ts';

let net: FederatedNetwork | undefined;
afterEach(async () => {
  await net?.close();
  net = undefined;
});

async function upload(hs: TestHomeserver, token: string, bytes: Uint8Array, type: string, name: string) {
  const res = await hs.fetch(
    new Request(`http://${hs.serverName}/_matrix/media/v3/upload?filename=${name}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': type },
      body: bytes as Uint8Array<ArrayBuffer>,
    }),
  );
  expect(res.status).toBe(200);
  const uri = ((await res.json()) as { content_uri: string }).content_uri;
  return uri.slice(`mxc://${hs.serverName}/`.length);
}

const get = (hs: TestHomeserver, path: string, token?: string) =>
  hs.fetch(
    new Request(`http://${hs.serverName}${path}`, {
      headers: token ? { authorization: `Bearer ${token}` } : {},
    }),
  );

/** a.test and b.test with thumbnailers, Alice of a.test, Bob of b.test, and a PNG Alice uploaded. */
async function pngOnA(width: number, height: number, name: string) {
  net = await createFederatedServers(['a.test', 'b.test'], {
    homeserver: { thumbnailer: await createNodeThumbnailer() },
  });
  const a = net.servers['a.test']?.hs as TestHomeserver;
  const b = net.servers['b.test']?.hs as TestHomeserver;
  const alice = await a.createUser('alice');
  const bob = await b.createUser('bob');
  const png = await sampleImage(width, height, 'png');
  const mediaId = await upload(a, alice.accessToken, png, 'image/png', name);
  return { network: net, a, b, alice, bob, png, mediaId };
}

describe('media over federation', () => {
  it('fetches remote media once over the multipart endpoint, keeps it, and thumbnails it', async () => {
    const { network, b, bob, png, mediaId } = await pngOnA(200, 100, 'photo.png');

    const first = await get(b, `/_matrix/client/v1/media/download/a.test/${mediaId}`, bob.accessToken);
    expect(first.status).toBe(200);
    expect(first.headers.get('content-type')).toBe('image/png');
    expect(first.headers.get('content-disposition')).toBe('inline; filename="photo.png"');
    expect(new Uint8Array(await first.arrayBuffer())).toEqual(png);
    expect(await b.store.media.getMediaInfo('a.test', mediaId)).toMatchObject({
      origin: 'a.test',
      contentType: 'image/png',
      uploadName: 'photo.png',
      size: png.byteLength,
    });

    // Media a.test never had is not found, and nothing is kept for it.
    const missing = await get(b, '/_matrix/client/v1/media/download/a.test/nosuchmedia', bob.accessToken);
    expect(missing.status).toBe(404);
    expect(await b.store.media.getMediaInfo('a.test', 'nosuchmedia')).toBeNull();

    // a.test leaves the network: b.test answers from what it kept.
    network.network.block('b.test', 'a.test');
    const again = await get(b, `/_matrix/client/v1/media/download/a.test/${mediaId}`, bob.accessToken);
    expect(new Uint8Array(await again.arrayBuffer())).toEqual(png);
    const thumb = await get(
      b,
      `/_matrix/client/v1/media/thumbnail/a.test/${mediaId}?width=50&height=50&method=crop`,
      bob.accessToken,
    );
    expect(thumb.status).toBe(200);
    expect(await imageSize(await thumb.arrayBuffer())).toMatchObject({ width: 50, height: 50 });
  });

  it('asks the origin for a remote thumbnail rather than fetching the original, and keeps it', async () => {
    const { network, b, bob, mediaId } = await pngOnA(300, 200, 'big.png');
    const path = `/_matrix/client/v1/media/thumbnail/a.test/${mediaId}?width=40&height=40&method=crop`;

    const thumb = await get(b, path, bob.accessToken);
    expect(thumb.status).toBe(200);
    expect(thumb.headers.get('content-type')).toBe('image/png');
    const bytes = new Uint8Array(await thumb.arrayBuffer());
    expect(await imageSize(bytes)).toMatchObject({ width: 40, height: 40 });
    // Made by a.test: b.test never fetched the original, and kept the thumbnail.
    expect(await b.store.media.getMediaInfo('a.test', mediaId)).toBeNull();
    const key = thumbnailKey('a.test', mediaId, { width: 40, height: 40, method: 'crop', animated: false });
    expect(await b.store.media.getMediaInfo(key.origin, key.mediaId)).toMatchObject({
      size: bytes.byteLength,
    });

    // a.test leaves: the same thumbnail is served from what b.test kept; another size, which
    // only a.test or the original could make, is a Matrix error, not a 500.
    network.network.block('b.test', 'a.test');
    const again = await get(b, path, bob.accessToken);
    expect(new Uint8Array(await again.arrayBuffer())).toEqual(bytes);
    const other = await get(b, path.replace('width=40', 'width=41'), bob.accessToken);
    expect(other.status).toBeGreaterThanOrEqual(400);
    expect(other.status).not.toBe(500);
    expect(((await other.json()) as { errcode: string }).errcode).toMatch(/^M_/);
  });

  it('serves its own media as two parts to signed requests only, and 404 for what it lacks', async () => {
    net = await createFederatedServers(['a.test', 'b.test'], {
      homeserver: { thumbnailer: await createNodeThumbnailer() },
    });
    const a = net.servers['a.test']?.hs as TestHomeserver;
    const fromB = net.servers['b.test']?.federation;
    if (!fromB) throw new Error('no b.test');
    const alice = await a.createUser('alice');
    const bytes = new TextEncoder().encode('line one\r\n--not a boundary\r\n\r\nend');
    const mediaId = await upload(a, alice.accessToken, bytes, 'text/plain', 'notes.txt');

    const res = await fromB.fetch('a.test', {
      method: 'GET',
      target: `/_matrix/federation/v1/media/download/${mediaId}`,
    });
    expect(res.status).toBe(200);
    const boundary = multipartBoundary(res.headers.get('content-type'));
    expect(res.headers.get('content-type')).toMatch(/^multipart\/mixed; boundary=/);
    const parts = parseMultipart(boundary as string, new Uint8Array(await res.arrayBuffer()));
    expect(parts.length).toBe(2);
    expect(parts[0]?.headers['content-type']).toBe('application/json');
    expect(new TextDecoder().decode(parts[0]?.body)).toBe('{}');
    expect(parts[1]?.headers['content-type']).toBe('text/plain');
    expect(parts[1]?.headers['content-disposition']).toBe('inline; filename="notes.txt"');
    expect(parts[1]?.body).toEqual(bytes);

    const png = await sampleImage(120, 80, 'png');
    const imageId = await upload(a, alice.accessToken, png, 'image/png', 'p.png');
    const thumb = await fromB.fetch('a.test', {
      method: 'GET',
      target: `/_matrix/federation/v1/media/thumbnail/${imageId}?width=32&height=32&method=crop`,
    });
    const thumbParts = parseMultipart(
      multipartBoundary(thumb.headers.get('content-type')) as string,
      new Uint8Array(await thumb.arrayBuffer()),
    );
    expect(thumbParts[1]?.headers['content-disposition']).toBe('inline; filename="thumbnail.png"');
    expect(await imageSize(thumbParts[1]?.body as Uint8Array)).toMatchObject({ width: 32, height: 32 });

    const unsigned = await fromB.fetch('a.test', {
      method: 'GET',
      target: `/_matrix/federation/v1/media/download/${mediaId}`,
      sign: false,
    });
    expect(unsigned.status).toBe(401);
    const unknown = await fromB.fetch('a.test', {
      method: 'GET',
      target: '/_matrix/federation/v1/media/download/nosuchmedia?timeout_ms=0',
    });
    expect([unknown.status, ((await unknown.json()) as { errcode: string }).errcode]).toEqual([
      404,
      'M_NOT_FOUND',
    ]);
    const badThumb = await fromB.fetch('a.test', {
      method: 'GET',
      target: `/_matrix/federation/v1/media/thumbnail/${imageId}?width=-1&height=32`,
    });
    expect(badThumb.status).toBe(400);
  });

  it('answers byte ranges of its multipart body, which is the same on every request', async () => {
    net = await createFederatedServers(['a.test', 'b.test']);
    const a = net.servers['a.test']?.hs as TestHomeserver;
    const b = net.servers['b.test'] as FederatedServer;
    const alice = await a.createUser('alice');
    const bytes = Uint8Array.from({ length: 100_000 }, (_, i) => i % 253);
    const mediaId = await upload(a, alice.accessToken, bytes, 'video/mp4', 'clip.mp4');
    const target = `/_matrix/federation/v1/media/download/${mediaId}`;
    const signed = async (headers: Record<string, string>) => {
      const request = await buildFederationRequest('b.test', b.services.ctx.signingKey, 'a.test', {
        method: 'GET',
        target,
      });
      for (const [name, value] of Object.entries(headers)) request.headers.set(name, value);
      return a.fetch(request);
    };

    const whole = await signed({});
    expect(whole.status).toBe(200);
    expect(whole.headers.get('accept-ranges')).toBe('bytes');
    const body = new Uint8Array(await whole.arrayBuffer());
    const size = body.byteLength;
    const parts = parseMultipart(multipartBoundary(whole.headers.get('content-type')) as string, body);
    expect(parts[1]?.body).toEqual(bytes);

    // A resumed download: the first part again, then the rest, adds up to the same body.
    const head = await signed({ range: 'bytes=0-49999' });
    expect(head.status).toBe(206);
    expect(head.headers.get('content-range')).toBe(`bytes 0-49999/${size}`);
    const rest = await signed({ range: 'bytes=50000-', 'if-range': whole.headers.get('etag') as string });
    expect(rest.status).toBe(206);
    expect(rest.headers.get('content-type')).toBe(whole.headers.get('content-type'));
    const joined = new Uint8Array(size);
    joined.set(new Uint8Array(await head.arrayBuffer()), 0);
    joined.set(new Uint8Array(await rest.arrayBuffer()), 50_000);
    expect(joined).toEqual(body);

    const past = await signed({ range: `bytes=${size}-` });
    expect([past.status, past.headers.get('content-range')]).toEqual([416, `bytes */${size}`]);
    // Signed by nobody: refused before any range is looked at.
    const unsigned = await a.fetch(
      new Request(`https://a.test${target}`, { headers: { range: 'bytes=0-1' } }),
    );
    expect(unsigned.status).toBe(401);
  });

  it("follows a Location part, falls back to a pre-1.11 server's legacy download, and bounds sizes", async () => {
    const asked: string[] = [];
    const mark = 'xyz';
    const multipart = (second: Record<string, string>, body = new Uint8Array(0)) =>
      new Response(
        encodeMultipart(mark, [
          { headers: { 'Content-Type': 'application/json' }, body: new TextEncoder().encode('{}') },
          { headers: second, body },
        ]),
        { headers: { 'content-type': `multipart/mixed; boundary="${mark}"` } },
      );
    const remote = createRemoteMedia({
      async fetch(destination: string, request: FederationRequest) {
        asked.push(
          `${destination} ${request.target.split('?')[0]} ${request.sign === false ? 'unsigned' : 'signed'}`,
        );
        if (destination === 'old.test' && request.target.startsWith('/_matrix/federation/'))
          return Response.json({ errcode: 'M_UNRECOGNIZED', error: 'Unrecognized request' }, { status: 404 });
        if (destination === 'old.test')
          return new Response('legacy bytes', {
            headers: {
              'content-type': 'text/plain',
              'content-disposition': "attachment; filename*=utf-8''caf%C3%A9.txt",
            },
          });
        if (request.target.includes('/big'))
          return multipart({ 'Content-Type': 'application/octet-stream' }, new Uint8Array(2048));
        return multipart({ Location: 'https://cdn.example/media/1' });
      },
      async fetchUrl(url) {
        asked.push(`GET ${url}`);
        return new Response('from the cdn', { headers: { 'content-type': 'text/plain' } });
      },
    });
    const options = { timeoutMs: 1000, maxBytes: 1024 };
    const viaLocation = await remote.fetchMedia('new.test', 'abc', options);
    expect(viaLocation).toMatchObject({ contentType: 'text/plain', uploadName: null });
    expect(new TextDecoder().decode(viaLocation?.data as Uint8Array)).toBe('from the cdn');
    const legacy = await remote.fetchMedia('old.test', 'def', options);
    expect(legacy?.uploadName).toBe('café.txt');
    expect(new TextDecoder().decode(legacy?.data as Uint8Array)).toBe('legacy bytes');
    const thumb = await remote.fetchThumbnail?.(
      'old.test',
      'def',
      { width: 32, height: 32, method: 'crop', animated: false },
      options,
    );
    expect(new TextDecoder().decode(thumb?.data as Uint8Array)).toBe('legacy bytes');
    await expect(remote.fetchMedia('new.test', 'big', options)).rejects.toMatchObject({
      status: 502,
      errcode: 'M_TOO_LARGE',
    });
    expect(asked).toEqual([
      'new.test /_matrix/federation/v1/media/download/abc signed',
      'GET https://cdn.example/media/1',
      'old.test /_matrix/federation/v1/media/download/def signed',
      'old.test /_matrix/media/v3/download/old.test/def unsigned',
      'old.test /_matrix/federation/v1/media/thumbnail/def signed',
      'old.test /_matrix/media/v3/thumbnail/old.test/def unsigned',
      'new.test /_matrix/federation/v1/media/download/big signed',
    ]);
  });
});
