/**
 * Core benchmarks: hashing+signing and verifying events, canonical JSON, state
 * resolution — each beside the raw primitive measured in the same run.
 */
import {
  canonicalJson,
  canonicalOptions,
  decodeBase64,
  type Ed25519Backend,
  getRoomVersion,
  nobleEd25519,
  type Pdu,
  redact,
  signEvent,
  signedBytes,
  signingKeyFromSeed,
  toWirePdu,
  verifyEvent,
  webCryptoEd25519,
} from '../src/core/index.ts';
import { type BenchRow, medianMs, rates2, rates2Cpu, rates2SyncCpu } from './harness.ts';

const version = getRoomVersion('11');
const SERVER = 'bench.example.org';

/** A realistic ~1 KB message event. */
export function sampleEvent(i = 0): Pdu {
  return {
    room_id: '!benchroom:bench.example.org',
    sender: '@alice:bench.example.org',
    origin_server_ts: 1_700_000_000_000 + i,
    type: 'm.room.message',
    content: {
      msgtype: 'm.text',
      body: `Message number ${i}: ${'the quick brown fox jumps over the lazy dog. '.repeat(14)}`,
      'm.mentions': { user_ids: ['@bob:bench.example.org'] },
    },
    prev_events: ['$ZzZMQFo2IO1lA-Mv3tLlXzr3zDoWQJ6xPrJ3WdVlh3Q'],
    auth_events: [
      '$create-QdGTm3c7xy6QkHb2w4sJbSEBhWkQ1FOvLJq6s9c',
      '$power-wQkZQxWeSCsM4FDdFz0GaENmjoxXvLJdAqvJyq4',
      '$member-Jj1gDiDAdWQVu3-4Z8n2mS9QJX0wJ5Yv1ZpAYXo',
    ],
    depth: 1234 + i,
    hashes: { sha256: '' },
    signatures: {},
    unsigned: { age_ts: 1_700_000_000_000 },
  };
}

async function signingRows(): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const seed = new Uint8Array(32).fill(7);
  const subtle = globalThis.crypto.subtle;
  const backends: Ed25519Backend[] = [webCryptoEd25519(subtle), nobleEd25519];
  const event = sampleEvent();
  for (const backend of backends) {
    const key = await signingKeyFromSeed(seed, 'bench', backend);
    const signed = await signEvent(event, SERVER, key, version);
    const bytes = signedBytes(redact(toWirePdu(signed, version), version), canonicalOptions(version));
    const sig = decodeBase64(signed.signatures[SERVER]?.['ed25519:bench'] as string);

    const [signRate, rawSign] = await rates2(
      () => signEvent(event, SERVER, key, version),
      () => key.sign(bytes),
    );
    rows.push({
      name: `event hashed+signed (${backend.name})`,
      value: signRate,
      unit: 'events/s',
      baselineName: `bare ed25519 sign, same bytes (${backend.name})`,
      baselineValue: rawSign,
      ratio: signRate / rawSign,
    });
    if (backend.name === 'webcrypto') {
      // The same in CPU time (all threads): what signing costs, which a loaded machine's waits do not blur.
      const cpu = await rates2Cpu(
        () => signEvent(event, SERVER, key, version),
        () => key.sign(bytes),
      );
      if (cpu) {
        rows.push({
          name: `event hashed+signed (${backend.name}), CPU time`,
          value: cpu[0],
          unit: 'events/CPU-s',
          baselineName: `bare ed25519 sign, same bytes, CPU time`,
          baselineValue: cpu[1],
          ratio: cpu[0] / cpu[1],
        });
      }
    }

    const keys = { 'ed25519:bench': key.publicKey };
    const keysFor = () => keys;
    const [verifyRate, rawVerify] = await rates2(
      () => verifyEvent(signed, version, keysFor, { backend }),
      () => backend.verify(key.publicKey, bytes, sig),
    );
    rows.push({
      name: `event verified: signature + content hash (${backend.name})`,
      value: verifyRate,
      unit: 'events/s',
      baselineName: `bare ed25519 verify, same bytes (${backend.name})`,
      baselineValue: rawVerify,
      ratio: verifyRate / rawVerify,
    });

    if (backend.name === 'webcrypto') {
      // A federation transaction verifies up to 50 PDUs at once: WebCrypto works off the main thread.
      const batch = Array.from({ length: 50 }, () => signed);
      const [batchRate, rawBatchRate] = await rates2(
        () => Promise.all(batch.map((e) => verifyEvent(e, version, keysFor, { backend }))),
        () => Promise.all(batch.map(() => backend.verify(key.publicKey, bytes, sig))),
      );
      const batched = 50 * batchRate;
      const rawBatched = 50 * rawBatchRate;
      rows.push({
        name: 'events verified, 50 in parallel (webcrypto)',
        value: batched,
        unit: 'events/s',
        baselineName: 'bare ed25519 verify, 50 in parallel',
        baselineValue: rawBatched,
        ratio: batched / rawBatched,
      });
      const cpu = await rates2Cpu(
        () => Promise.all(batch.map((e) => verifyEvent(e, version, keysFor, { backend }))),
        () => Promise.all(batch.map(() => backend.verify(key.publicKey, bytes, sig))),
      );
      if (cpu) {
        rows.push({
          name: 'events verified, 50 in parallel (webcrypto), CPU time',
          value: 50 * cpu[0],
          unit: 'events/CPU-s',
          baselineName: 'bare ed25519 verify, 50 in parallel, CPU time',
          baselineValue: 50 * cpu[1],
          ratio: cpu[0] / cpu[1],
        });
      }
    }
  }
  return rows;
}

function canonicalRows(): BenchRow[] {
  const event = sampleEvent();
  event.hashes = { sha256: 'K8280/U9SSy9IVtjBuVeLr+HpOB4BQFWbg+UZaADMtTdGYI' };
  const size = canonicalJson(event).length;
  // In CPU time (see rates2SyncCpu): both sides are synchronous.
  const [ours, raw] = rates2SyncCpu(
    () => canonicalJson(event),
    () => JSON.stringify(event),
    4000,
    40,
  );
  return [
    {
      name: `canonical JSON of a ${size}-byte event`,
      value: ours,
      unit: 'events/CPU-s',
      baselineName: 'JSON.stringify, same event',
      baselineValue: raw,
      ratio: ours / raw,
    },
  ];
}

async function stateResRows(): Promise<BenchRow[]> {
  const { buildBenchRoom } = await import('../src/core/state-res/bench-fixture.ts');
  const { resolveState } = await import('../src/core/index.ts');
  const room = buildBenchRoom();
  const getEvent = (id: string) => room.events.get(id);
  const ms = await medianMs(() => resolveState(room.version, room.stateSets, getEvent), 3);
  // The least any resolution must do: read every event of both state sets once.
  const rawMs = await medianMs(() => {
    let n = 0;
    for (const set of room.stateSets) for (const id of set.values()) if (getEvent(id)) n++;
    return n;
  }, 3);
  return [
    {
      name: `state resolution, two forks of ${room.stateEventCount.toLocaleString('en-US')} state events`,
      value: ms,
      unit: 'ms',
      baselineName: 'one lookup of every state event',
      baselineValue: rawMs,
      ratio: rawMs / ms,
    },
  ];
}

export async function coreBench(): Promise<BenchRow[]> {
  return [...(await signingRows()), ...canonicalRows(), ...(await stateResRows())];
}
