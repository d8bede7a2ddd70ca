/**
 * The framing of `/matrix/federation/1` on real libp2p streams (two nodes on loopback TCP):
 * large bodies both ways with backpressure, bodies of a declared length taken without
 * waiting for the end of the stream, and the limits.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  exchange,
  FramingError,
  MAX_HEAD_BYTES,
  parseResponseHead,
  readHead,
  StreamReader,
  serveExchange,
  writeBytes,
  writeMessage,
} from './framing.ts';
import { createHearthNode, type HearthNode } from './node.ts';
import { nodeTransports } from './transports-node.ts';

const PROTOCOL = '/hearth/framing-test/1';
let server: HearthNode;
let client: HearthNode;

beforeAll(async () => {
  const make = (listen: string[]) =>
    createHearthNode({
      seed: crypto.getRandomValues(new Uint8Array(32)),
      transports: nodeTransports({ webRTC: false, webSockets: false }),
      listen,
    });
  server = await make(['/ip4/127.0.0.1/tcp/0']);
  client = await make([]);
  await server.handle(PROTOCOL, (stream) => {
    void serveExchange(
      stream,
      'https://test',
      { timeoutMs: 10_000, maxBodyBytes: 8 * 1024 * 1024 },
      async (request) => {
        const body = new Uint8Array(await request.arrayBuffer());
        // Echo the body back doubled, with the method and target in headers.
        const doubled = new Uint8Array(body.byteLength * 2);
        doubled.set(body);
        doubled.set(body, body.byteLength);
        return new Response(doubled, {
          status: 201,
          headers: {
            'x-method': request.method,
            'x-target': new URL(request.url).pathname + new URL(request.url).search,
          },
        });
      },
    );
  });
});
afterAll(async () => {
  await client?.stop();
  await server?.stop();
});

const open = () => client.dialProtocol(server.getMultiaddrs(), PROTOCOL);

describe('one HTTP exchange per stream', () => {
  it('carries method, target, headers and a 3 MiB body each way', async () => {
    const body = crypto.getRandomValues(new Uint8Array(64 * 1024)).slice();
    const big = new Uint8Array(3 * 1024 * 1024);
    for (let at = 0; at < big.length; at += body.length) big.set(body, at);
    const response = await exchange(
      await open(),
      {
        method: 'PUT',
        target: '/a/b?c=d',
        headers: new Headers({ 'x-hello': 'world' }),
        body: new Blob([big]).stream(),
      },
      { timeoutMs: 20_000, maxBodyBytes: 8 * 1024 * 1024 },
    );
    expect(response.status).toBe(201);
    expect(response.headers.get('x-method')).toBe('PUT');
    expect(response.headers.get('x-target')).toBe('/a/b?c=d');
    const back = new Uint8Array(await response.arrayBuffer());
    expect(back.byteLength).toBe(2 * big.byteLength);
    // Compared as bytes: a deep equality of 3 MiB element by element takes minutes.
    expect(Buffer.compare(back.subarray(0, big.byteLength), big)).toBe(0);
    expect(Buffer.compare(back.subarray(big.byteLength), big)).toBe(0);
  });

  it('takes a body of a declared length without waiting for the end, and declares its own', async () => {
    // The request's writable side stays open: only the content-length says where the body ends.
    const stream = await open();
    const reader = new StreamReader(stream);
    await writeMessage(stream, { method: 'PUT', target: '/len', headers: [['content-length', '5']] }, null);
    await writeBytes(stream, new TextEncoder().encode('hello'));
    const head = parseResponseHead(await readHead(reader));
    expect(head.status).toBe(201);
    // The answer was whole before it was sent, so it declares its length too.
    expect(head.headers.get('content-length')).toBe('10');
    expect(new TextDecoder().decode(await reader.readBody(10, 1024))).toBe('hellohello');
    await stream.close();

    // Through `exchange`: a whole body gets its length, and the answer is read by it.
    const response = await exchange(
      await open(),
      { method: 'PUT', target: '/', headers: new Headers(), body: new Blob(['abc']).stream() },
      { timeoutMs: 10_000, maxBodyBytes: 1024 },
    );
    expect(response.headers.get('content-length')).toBe('6');
    expect(await response.text()).toBe('abcabc');
  });

  it('answers 400 to a body shorter than its content-length, or a content-length that is no number', async () => {
    for (const [length, sent] of [
      ['9', 'short'],
      ['five', 'hello'],
    ] as const) {
      const stream = await open();
      const reader = new StreamReader(stream);
      await writeMessage(stream, { method: 'PUT', target: '/', headers: [['content-length', length]] }, null);
      await writeBytes(stream, new TextEncoder().encode(sent));
      await stream.close();
      const head = parseResponseHead(await readHead(reader));
      expect(head.status).toBe(400);
    }
  });

  it('refuses an answer larger than the limit, a body larger than the server takes, and an oversized head', async () => {
    const tooBig = exchange(
      await open(),
      { method: 'PUT', target: '/', headers: new Headers(), body: new Blob([new Uint8Array(1024)]).stream() },
      { timeoutMs: 10_000, maxBodyBytes: 1024 },
    );
    await expect(tooBig).rejects.toMatchObject({ name: 'FramingError', code: 'TOO_LARGE' });

    const declared = await exchange(
      await open(),
      {
        method: 'PUT',
        target: '/',
        headers: new Headers({ 'content-length': String(9 * 1024 * 1024) }),
        body: null,
      },
      { timeoutMs: 10_000, maxBodyBytes: 1024 },
    );
    expect(declared.status).toBe(413);
    expect(await declared.json()).toMatchObject({ errcode: 'M_TOO_LARGE' });

    const hugeHead = exchange(
      await open(),
      { method: 'GET', target: `/${'x'.repeat(MAX_HEAD_BYTES)}`, headers: new Headers(), body: null },
      { timeoutMs: 10_000, maxBodyBytes: 1024 },
    );
    await expect(hugeHead).rejects.toBeInstanceOf(FramingError);
  });

  it('times out when the other side never answers', async () => {
    await client.handle('/hearth/silent/1', () => undefined);
    await server.handle('/hearth/silent/1', () => undefined);
    const stream = await client.dialProtocol(server.getMultiaddrs(), '/hearth/silent/1');
    await expect(
      exchange(
        stream,
        { method: 'GET', target: '/', headers: new Headers(), body: null },
        { timeoutMs: 300, maxBodyBytes: 1024 },
      ),
    ).rejects.toMatchObject({ code: 'TIMEOUT' });
  });
});
