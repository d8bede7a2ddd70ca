/**
 * End-to-end-encryption benchmarks: the key endpoints and to-device fan-out for one user with
 * 100 devices, through `hs.fetch` in-process, on the in-memory store (fake-indexeddb) and on
 * SQLite. Each figure sits beside the store calls the same operation makes, measured in the
 * same run and in alternating rounds (so drift on a shared machine hits both alike):
 *
 * - `POST /keys/query` for a user with 100 devices (device keys, display names, cross-signing
 *   keys and signatures) — beside the four store reads it makes;
 * - `POST /keys/claim` of one one-time key from each of 100 devices — beside `claimKeys`;
 * - `PUT /sendToDevice` to `*` of a user with 100 devices — beside the `sendToDevice` write
 *   of the same 100 messages.
 *
 *   node bench/e2ee.ts
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb';
import { testCrossSigning, testDevice } from '../src/homeserver/e2ee/testing.ts';
import { startHomeserver } from '../src/server.ts';
import { openIndexedDbStore } from '../src/storage/indexeddb/index.ts';
import { openSqliteStore } from '../src/storage/sqlite/index.ts';
import type { Store } from '../src/storage/store.ts';
import { type BenchRow, printTable } from './harness.ts';

const DEVICES = 100;
const ROUNDS = 10;
const PER_ROUND = 3;
const CLIENT = 'http://bench.localhost/_matrix/client/v3';
const now = () => performance.now();

/** Mean milliseconds per call of `a` and of `b`, run in alternating rounds after a warm-up. */
async function alternate(a: () => Promise<unknown>, b: () => Promise<unknown>): Promise<[number, number]> {
  await a();
  await b();
  const spent = [0, 0];
  for (let round = 0; round < ROUNDS; round++) {
    for (const [k, fn] of [a, b].entries()) {
      const start = now();
      for (let i = 0; i < PER_ROUND; i++) await fn();
      spent[k] = (spent[k] as number) + now() - start;
    }
  }
  return [(spent[0] as number) / (ROUNDS * PER_ROUND), (spent[1] as number) / (ROUNDS * PER_ROUND)];
}

async function benchStore(store: Store, label: string): Promise<BenchRow[]> {
  const { homeserver: hs, internals } = startHomeserver({
    serverName: 'bench.localhost',
    store,
    registration: 'open',
    passwordIterations: 1000,
    rateLimits: { message: { perSecond: 1e9, burst: 1e9 }, default: { perSecond: 1e9, burst: 1e9 } },
  });
  const { services } = await internals();
  const alice = await services.accounts.createUser({ localpart: 'alice', login: true });
  const bob = await services.accounts.createUser({ localpart: 'bob', login: true });
  const bobToken = bob.session?.accessToken as string;
  const aliceId = alice.userId;
  const deviceIds: string[] = [];
  // 100 devices, each with signed device keys and one-time keys enough for every claim below.
  const claims = 2 * (ROUNDS * PER_ROUND + 1);
  for (let i = 0; i < DEVICES; i++) {
    const deviceId = `DEV${String(i).padStart(3, '0')}`;
    deviceIds.push(deviceId);
    await store.accounts.createSession({
      userId: aliceId,
      deviceId,
      accessToken: `tok-${i}`,
      now: Date.now(),
    });
    const device = await testDevice(aliceId, deviceId);
    await store.e2ee.putDeviceKeys(aliceId, deviceId, device.deviceKeys);
    await store.e2ee.addOneTimeKeys(
      aliceId,
      deviceId,
      [...Array(claims).keys()].map((k) => ({
        algorithm: 'signed_curve25519',
        keyId: `K${k}`,
        key: { key: 'x' },
      })),
    );
  }
  const cs = await testCrossSigning(aliceId);
  await store.e2ee.putCrossSigningKey(aliceId, 'master', cs.upload.master_key);
  await store.e2ee.putCrossSigningKey(aliceId, 'self_signing', cs.upload.self_signing_key);

  const post = async (path: string, body: unknown, method = 'POST') => {
    const res = await hs.fetch(
      new Request(`${CLIENT}${path}`, {
        method,
        headers: { authorization: `Bearer ${bobToken}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      }),
    );
    const text = await res.text();
    if (res.status !== 200) throw new Error(`${path}: ${res.status} ${text}`);
    return text;
  };

  const [query, queryRaw] = await alternate(
    async () => {
      const text = await post('/keys/query', { device_keys: { [aliceId]: [] } });
      if (!text.includes('DEV099')) throw new Error('query missed a device');
    },
    () =>
      Promise.all([
        store.e2ee.getDeviceKeys([{ userId: aliceId, deviceIds: [] }]),
        store.accounts.listDevices(aliceId),
        store.e2ee.getCrossSigningKeys(aliceId),
        store.e2ee.getSignatures(aliceId),
      ]),
  );
  const claimBody = {
    one_time_keys: { [aliceId]: Object.fromEntries(deviceIds.map((d) => [d, 'signed_curve25519'])) },
  };
  const wanted = deviceIds.map((deviceId) => ({ userId: aliceId, deviceId, algorithm: 'signed_curve25519' }));
  const [claim, claimRaw] = await alternate(
    () => post('/keys/claim', claimBody),
    () => store.e2ee.claimKeys(wanted),
  );
  let txn = 0;
  const messages = deviceIds.map((deviceId) => ({
    userId: aliceId,
    deviceId,
    sender: bob.userId,
    type: 'm.bench',
    content: { n: 1 },
  }));
  const [fanOut, fanOutRaw] = await alternate(
    () => post(`/sendToDevice/m.bench/t${txn++}`, { messages: { [aliceId]: { '*': { n: 1 } } } }, 'PUT'),
    () => store.e2ee.sendToDevice(messages),
  );
  await hs.close();
  const row = (name: string, value: number, baselineName: string, baselineValue: number): BenchRow => ({
    name: `${name} — ${label}`,
    value,
    unit: 'ms',
    baselineName,
    baselineValue,
    ratio: baselineValue / value,
  });
  return [
    row('POST /keys/query, 1 user × 100 devices', query, 'its 4 store reads', queryRaw),
    row('POST /keys/claim, 100 devices', claim, 'store claimKeys (100)', claimRaw),
    row('PUT /sendToDevice to * (100 devices)', fanOut, 'store sendToDevice (100 rows)', fanOutRaw),
  ];
}

export async function e2eeBench(): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const memory = await openIndexedDbStore({
    indexedDB: new IDBFactory(),
    IDBKeyRange,
    name: 'hearth-e2ee-bench',
  });
  rows.push(...(await benchStore(memory, 'memory')));
  const dir = mkdtempSync(join(tmpdir(), 'hearth-e2ee-bench-'));
  try {
    rows.push(...(await benchStore(await openSqliteStore({ path: join(dir, 'hearth.sqlite') }), 'SQLite')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  printTable(
    'e2ee: key query/claim and to-device fan-out for 100 devices, beside their store calls',
    await e2eeBench(),
  );
}
