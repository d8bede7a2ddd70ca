/**
 * Byte ranges on media downloads (RFC 9110 §14, see `src/api/range.ts`) on every store: the
 * in-memory IndexedDB (Blobs), SQLite rows (bytes) and SQLite with media files (file-backed
 * Blobs); through the authenticated endpoint and the deprecated one.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { parseJson } from '../../core/json.ts';
import { openSqliteStore } from '../../storage/sqlite/index.ts';
import type { Store } from '../../storage/store.ts';
import { parseRange } from '../range.ts';
import { createTestHomeserver, type TestHomeserver } from './testing.ts';

const stores: [string, (dir: string) => Promise<Store | undefined>][] = [
  ['IndexedDB', async () => undefined],
  ['SQLite rows', (dir) => openSqliteStore({ path: join(dir, 'hearth.sqlite') })],
  [
    'SQLite with media files',
    (dir) => openSqliteStore({ path: join(dir, 'hearth.sqlite'), mediaDir: join(dir, 'media') }),
  ],
];

describe('parseRange', () => {
  it('reads one range of each form, clamps the end, and ignores what it must', () => {
    expect(parseRange('bytes=0-9', 100)).toEqual({ start: 0, end: 9 });
    expect(parseRange('bytes=90-', 100)).toEqual({ start: 90, end: 99 });
    expect(parseRange('bytes=-10', 100)).toEqual({ start: 90, end: 99 });
    expect(parseRange('bytes=-1000', 100)).toEqual({ start: 0, end: 99 });
    expect(parseRange('Bytes = 5 - 500', 100)).toEqual({ start: 5, end: 99 });
    expect(parseRange('bytes=100-', 100)).toBe('unsatisfiable');
    expect(parseRange('bytes=-0', 100)).toBe('unsatisfiable');
    expect(parseRange('bytes=0-', 0)).toBe('unsatisfiable');
    expect(parseRange('bytes=99999999999999999999-', 100)).toBe('unsatisfiable');
    for (const ignored of [
      null,
      'bytes=9-0',
      'bytes=-',
      'items=0-1',
      'bytes=0-1,5-6',
      'bytes=a-b',
      'bytes 0-1',
    ])
      expect(parseRange(ignored, 100)).toBeNull();
  });
});

describe('parseRange on any header', () => {
  it('answers a range inside the content, unsatisfiable, or null — never anything else', () => {
    const header = fc.oneof(
      fc.string(),
      fc
        .tuple(
          fc.option(fc.nat(200)),
          fc.option(fc.nat(200)),
          fc.constantFrom('bytes=', 'Bytes = ', 'bytes=,'),
        )
        .map(([first, last, unit]) => `${unit}${first ?? ''}-${last ?? ''}`),
    );
    fc.assert(
      fc.property(header, fc.nat(150), (value, size) => {
        const range = parseRange(value, size);
        if (range === null || range === 'unsatisfiable') return;
        expect(range.start).toBeGreaterThanOrEqual(0);
        expect(range.end).toBeGreaterThanOrEqual(range.start);
        expect(range.end).toBeLessThan(size);
      }),
    );
  });
});

describe.each(stores)('media byte ranges on %s', (_name, openStore) => {
  let hs: TestHomeserver | undefined;
  let dir: string | undefined;
  afterEach(async () => {
    await hs?.close();
    hs = undefined;
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it('answers 206 with Content-Range, 416 past the end, and the whole with Accept-Ranges otherwise', async () => {
    dir = mkdtempSync(join(tmpdir(), 'hearth-range-'));
    const store = await openStore(dir);
    hs = await createTestHomeserver(store ? { store } : {});
    const alice = await hs.createUser('alice');
    const bytes = Uint8Array.from({ length: 300_000 }, (_, i) => (i * 7) % 251);
    const up = await hs.fetch(
      new Request(`http://${hs.serverName}/_matrix/media/v3/upload?filename=clip.mp4`, {
        method: 'POST',
        headers: { authorization: `Bearer ${alice.accessToken}`, 'content-type': 'video/mp4' },
        body: bytes,
      }),
    );
    const uri = (parseJson(await up.text()) as { content_uri: string }).content_uri;
    const mxc = uri.slice('mxc://'.length);
    const server = hs;
    const get = (path: string, headers: Record<string, string>) =>
      server.fetch(
        new Request(`http://${server.serverName}${path}`, {
          headers: { authorization: `Bearer ${alice.accessToken}`, ...headers },
        }),
      );

    for (const path of [
      `/_matrix/client/v1/media/download/${mxc}`,
      `/_matrix/media/v3/download/${mxc}/a.mp4`,
    ]) {
      const whole = await get(path, {});
      expect(whole.status).toBe(200);
      expect(whole.headers.get('accept-ranges')).toBe('bytes');
      expect(whole.headers.get('content-length')).toBe('300000');
      const etag = whole.headers.get('etag') as string;
      expect(new Uint8Array(await whole.arrayBuffer())).toEqual(bytes);

      const middle = await get(path, { range: 'bytes=1000-263143' });
      expect(middle.status).toBe(206);
      expect(middle.headers.get('content-range')).toBe('bytes 1000-263143/300000');
      expect(middle.headers.get('content-length')).toBe('262144');
      expect(middle.headers.get('content-type')).toBe('video/mp4');
      expect(new Uint8Array(await middle.arrayBuffer())).toEqual(bytes.subarray(1000, 263144));

      const resumed = await get(path, { range: 'bytes=299990-', 'if-range': etag });
      expect(resumed.status).toBe(206);
      expect(resumed.headers.get('content-range')).toBe('bytes 299990-299999/300000');
      expect(new Uint8Array(await resumed.arrayBuffer())).toEqual(bytes.subarray(299_990));

      const tail = await get(path, { range: 'bytes=-5' });
      expect(tail.headers.get('content-range')).toBe('bytes 299995-299999/300000');
      expect(new Uint8Array(await tail.arrayBuffer())).toEqual(bytes.subarray(299_995));

      const past = await get(path, { range: 'bytes=300000-' });
      expect(past.status).toBe(416);
      expect(past.headers.get('content-range')).toBe('bytes */300000');
      expect((parseJson(await past.text()) as { errcode: string }).errcode).toBe('M_UNKNOWN');

      // A validator that does not match, or several ranges: the whole content.
      const wholes: Record<string, string>[] = [
        { range: 'bytes=0-9', 'if-range': '"other"' },
        { range: 'bytes=0-1,5-6' },
      ];
      for (const headers of wholes) {
        const all = await get(path, headers);
        expect(all.status).toBe(200);
        expect((await all.arrayBuffer()).byteLength).toBe(300_000);
      }
    }
  }, 60_000);
});
