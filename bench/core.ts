/**
 * Core benchmarks: hashing+signing and verifying events, canonical JSON, state
 * resolution — each beside the raw primitive measured in the same run.
 */
import * as nodeCrypto from 'node:crypto';
import { ed25519 } from '@noble/curves/ed25519.js';
import {
  canonicalJson,
  canonicalOptions,
  decodeBase64,
  type Ed25519Backend,
  getRoomVersion,
  nobleEd25519,
  nodeEd25519,
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

/** PKCS#8 of a raw ed25519 seed (RFC 8410), as the runtime's own APIs import it. */
function pkcs8Of(seed: Uint8Array): Uint8Array<ArrayBuffer> {
  const prefix = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
  ];
  return Uint8Array.from([...prefix, ...seed]);
}

/**
 * The bare primitive each backend signs with, called directly on the key it would use — no
 * wrapper of ours in between: `node:crypto`'s one-shot `sign`, WebCrypto's `subtle.sign`,
 * noble's `ed25519.sign`.
 */
async function rawSigner(backend: Ed25519Backend, seed: Uint8Array): Promise<(bytes: Uint8Array) => unknown> {
  switch (backend.name) {
    case 'node': {
      const key = nodeCrypto.createPrivateKey({
        key: Buffer.from(pkcs8Of(seed)),
        format: 'der',
        type: 'pkcs8',
      });
      return (bytes) => nodeCrypto.sign(null, bytes, key);
    }
    case 'webcrypto': {
      const subtle = globalThis.crypto.subtle;
      const key = await subtle.importKey('pkcs8', pkcs8Of(seed), { name: 'Ed25519' }, false, ['sign']);
      return (bytes) => subtle.sign({ name: 'Ed25519' }, key, bytes as BufferSource);
    }
    case 'noble':
      return (bytes) => ed25519.sign(bytes, seed);
  }
}

/** The bare verification primitive of a backend (see `rawSigner`); the node backend verifies with WebCrypto. */
async function rawVerifier(
  backend: Ed25519Backend,
  publicKey: Uint8Array,
): Promise<(bytes: Uint8Array, signature: Uint8Array) => unknown> {
  if (backend.name === 'noble') {
    return (bytes, signature) => ed25519.verify(signature, bytes, publicKey, { zip215: false });
  }
  const subtle = globalThis.crypto.subtle;
  const key = await subtle.importKey('raw', publicKey as BufferSource, { name: 'Ed25519' }, false, [
    'verify',
  ]);
  return (bytes, signature) =>
    subtle.verify({ name: 'Ed25519' }, key, signature as BufferSource, bytes as BufferSource);
}

/**
 * Events each side of a pair is run for before it is measured. V8 installs its optimised
 * code for the signing path late: for `signThen` after ~15,000 calls, for `withUtf8` and
 * node's own `signOneShot` after ~11,000 (`--trace-opt`), while the harness's 100 ms warm-up
 * is ~2,500 signatures. The wall row, taken first, then measured ours half unoptimised and
 * the CPU row after it optimised; both now measure the code a running server has.
 */
const WARM_EVENTS = 20_000;

/** A wall-time row and, where the runtime counts CPU, the same pair in CPU time (all threads). */
async function pairRows(
  name: string,
  ours: () => unknown,
  baselineName: string,
  raw: () => unknown,
  perCall = 1,
): Promise<BenchRow[]> {
  for (const fn of [ours, raw]) {
    // At most two seconds a side (noble signs in milliseconds: its code is hot long before).
    const end = performance.now() + 2000;
    for (let i = 0; i < WARM_EVENTS / perCall && performance.now() < end; i++) await fn();
  }
  const [value, baseline] = await rates2(ours, raw);
  const rows: BenchRow[] = [
    {
      name,
      value: perCall * value,
      unit: 'events/s',
      baselineName,
      baselineValue: perCall * baseline,
      ratio: value / baseline,
    },
  ];
  // What each call costs, which a loaded machine's waits (thread wake-ups, preemption) do not blur.
  const cpu = await rates2Cpu(ours, raw);
  if (cpu) {
    rows.push({
      name: `${name}, CPU time`,
      value: perCall * cpu[0],
      unit: 'events/CPU-s',
      baselineName: `${baselineName}, CPU time`,
      baselineValue: perCall * cpu[1],
      ratio: cpu[0] / cpu[1],
    });
  }
  return rows;
}

async function signingRows(): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const seed = new Uint8Array(32).fill(7);
  const subtle = globalThis.crypto.subtle;
  // The server's backend first (node:crypto signing where the runtime has it), then the
  // browsers' (WebCrypto) and the portable one.
  const node = nodeEd25519(subtle);
  const backends: Ed25519Backend[] = [...(node ? [node] : []), webCryptoEd25519(subtle), nobleEd25519];
  const event = sampleEvent();
  for (const backend of backends) {
    const key = await signingKeyFromSeed(seed, 'bench', backend);
    const signed = await signEvent(event, SERVER, key, version);
    const bytes = signedBytes(redact(toWirePdu(signed, version), version), canonicalOptions(version));
    const sig = decodeBase64(signed.signatures[SERVER]?.['ed25519:bench'] as string);
    const rawSign = await rawSigner(backend, seed);
    const cpuRows = backend.name !== 'noble';

    const signRows = await pairRows(
      `event hashed+signed (${backend.name})`,
      () => signEvent(event, SERVER, key, version),
      `bare ed25519 sign, same bytes (${backend.name})`,
      () => rawSign(bytes),
    );
    rows.push(...(cpuRows ? signRows : signRows.slice(0, 1)));
    // The node backend verifies with WebCrypto: its verify rows would be the webcrypto ones.
    if (backend.name === 'node') continue;

    const keys = { 'ed25519:bench': key.publicKey };
    const keysFor = () => keys;
    const rawVerify = await rawVerifier(backend, key.publicKey);
    const [verifyRate, rawVerifyRate] = await rates2(
      () => verifyEvent(signed, version, keysFor, { backend }),
      () => rawVerify(bytes, sig),
    );
    rows.push({
      name: `event verified: signature + content hash (${backend.name})`,
      value: verifyRate,
      unit: 'events/s',
      baselineName: `bare ed25519 verify, same bytes (${backend.name})`,
      baselineValue: rawVerifyRate,
      ratio: verifyRate / rawVerifyRate,
    });

    if (backend.name === 'webcrypto') {
      // A federation transaction verifies up to 50 PDUs at once: WebCrypto works off the main thread.
      const batch = Array.from({ length: 50 }, () => signed);
      rows.push(
        ...(await pairRows(
          'events verified, 50 in parallel (webcrypto)',
          () => Promise.all(batch.map((e) => verifyEvent(e, version, keysFor, { backend }))),
          'bare ed25519 verify, 50 in parallel',
          () => Promise.all(batch.map(() => rawVerify(bytes, sig))),
          50,
        )),
      );
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
