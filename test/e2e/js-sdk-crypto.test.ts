/**
 * matrix-js-sdk with its Rust crypto against Hearth (js-sdk-crypto-scenario.ts): in-process
 * through `hs.fetch` on an IndexedDB store that survives the restart, and over loopback HTTP
 * against `hearth serve` on SQLite, restarted on the same port and data folder.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb';
import { afterAll, describe, it } from 'vitest';
import { type Homeserver, startHomeserver } from '../../src/server.ts';
import { openIndexedDbStore } from '../../src/storage/indexeddb/index.ts';
import { runCryptoScenario } from './js-sdk-crypto-scenario.ts';
import { startServe, stopServe } from './serve.ts';

describe('matrix-js-sdk Rust crypto against hs.fetch (in-process)', () => {
  it('encrypts, shares keys with a second device, cross-signs, backs up and restores across a restart', async () => {
    const indexedDB = new IDBFactory();
    const open = () =>
      startHomeserver({
        serverName: 'crypto.test',
        registration: 'open',
        passwordIterations: 1000,
        store: () => openIndexedDbStore({ indexedDB, IDBKeyRange, name: 'crypto' }),
      }).homeserver;
    let hs: Homeserver = open();
    const fetchFn = ((input: RequestInfo | URL, init?: RequestInit) =>
      hs.fetch(new Request(input, init))) as typeof fetch;
    try {
      await runCryptoScenario(
        {
          baseUrl: 'http://crypto.test',
          fetchFn,
          restart: async () => {
            await hs.close();
            hs = open();
            await hs.ready;
          },
        },
        'p',
      );
    } finally {
      await hs.close();
    }
  }, 180_000);
});

/** A loopback port nothing listens on, so the restarted server can take the same one. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

describe('matrix-js-sdk Rust crypto against `hearth serve` over loopback', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'hearth-crypto-'));
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it('runs the encrypted scenario, the server restarted on the same SQLite data in the middle', async () => {
    const port = await freePort();
    let running = await startServe(dataDir, 'serve.test', ['--port', String(port)]);
    try {
      await runCryptoScenario(
        {
          baseUrl: running.url,
          fetchFn: fetch,
          restart: async () => {
            await stopServe(running.child);
            running = await startServe(dataDir, 'serve.test', ['--port', String(port)]);
          },
        },
        'h',
      );
    } finally {
      await stopServe(running.child);
    }
  }, 240_000);
});
