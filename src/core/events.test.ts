import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { decodeBase64, encodeBase64 } from './base64.ts';
import { canonicalJson } from './canonical-json.ts';
import {
  type Ed25519Backend,
  nobleEd25519,
  type SigningKey,
  seedFromBase64,
  signingKeyFromSeed,
  webCryptoEd25519,
} from './crypto.ts';
import { isCoreError } from './errors.ts';
import {
  addContentHash,
  canonicalOptions,
  checkContentHash,
  computeContentHash,
  computeContentHashBase64,
  computeEventId,
  computeReferenceHash,
  cosignEvent,
  eventSignedBytes,
  identify,
  identifyFromSignedBytes,
  type KeysFor,
  requiredSigners,
  roomIdFromCreateEvent,
  roomIdOf,
  signAndIdentify,
  signEvent,
  toWirePdu,
  validatePdu,
  verifyEvent,
  verifyEventSignature,
} from './events.ts';
import vectors from './fixtures/events/appendix-event-signing.json' with { type: 'json' };
import eventIds from './fixtures/events/event-ids.json' with { type: 'json' };
import type { Pdu } from './pdu.ts';
import { redact } from './redaction.ts';
import { getRoomVersion, type RoomVersion, roomVersions } from './room-versions.ts';
import { signedBytes } from './signing.ts';
import { nodeBackend } from './testing.ts';

type Json = Record<string, unknown>;
const webcrypto = webCryptoEd25519(globalThis.crypto.subtle);
const backends: Ed25519Backend[] = [nobleEd25519, webcrypto, nodeBackend()];

async function codeOf(promise: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await promise;
  } catch (err) {
    if (!isCoreError(err)) throw err;
    return { code: err.code, message: err.message };
  }
  throw new Error('resolved');
}

function syncCodeOf(fn: () => unknown): { code: string; message: string } {
  try {
    fn();
  } catch (err) {
    if (!isCoreError(err)) throw err;
    return { code: err.code, message: err.message };
  }
  throw new Error('returned');
}

describe('appendix "Event Signing" vectors (fixtures/events/appendix-event-signing.json)', () => {
  for (const backend of backends) {
    describe(`with the ${backend.name} backend`, () => {
      let key: SigningKey;
      beforeAll(async () => {
        key = await signingKeyFromSeed(
          seedFromBase64(vectors.signingKeySeed),
          vectors.keyId.split(':')[1] as string,
          backend,
        );
      });

      for (const vector of vectors.cases) {
        const version = getRoomVersion(vector.roomVersion);
        it(`signs "${vector.name}" byte for byte`, async () => {
          const input = structuredClone(vector.input) as unknown as Pdu;
          const signed = await signEvent(input, vectors.serverName, key, version);
          expect(canonicalJson(signed)).toBe(canonicalJson(vector.expected));
          expect(input).toEqual(vector.input); // not mutated
        });

        it(`content hash of "${vector.name}" matches`, () => {
          const hash = encodeBase64(computeContentHash(vector.input as unknown as Pdu, version));
          expect(hash).toBe(vector.expected.hashes.sha256);
          expect(checkContentHash(vector.expected as unknown as Pdu, version)).toBe(true);
        });

        it(`verifies the published signature of "${vector.name}"`, async () => {
          const keysFor: KeysFor = (server) =>
            server === vectors.serverName ? { [vectors.keyId]: key.publicKey } : undefined;
          const result = await verifyEvent(vector.expected as unknown as Pdu, version, keysFor, { backend });
          expect(result.redacted).toBe(false);
          expect(result.pdu).toBe(vector.expected);
        });
      }
    });
  }

  it('the redaction algorithm decides the signature: v11 no longer covers `origin`', async () => {
    const key = await signingKeyFromSeed(seedFromBase64(vectors.signingKeySeed), '1', nobleEd25519);
    const minimal = vectors.cases[0] as (typeof vectors.cases)[number];
    const v10 = await signEvent(minimal.input as unknown as Pdu, 'domain', key, getRoomVersion('10'));
    expect(v10.signatures).toEqual(minimal.expected.signatures);
    const v11 = await signEvent(minimal.input as unknown as Pdu, 'domain', key, getRoomVersion('11'));
    expect(v11.hashes).toEqual(minimal.expected.hashes);
    expect(v11.signatures).not.toEqual(minimal.expected.signatures);
  });

  it('the published signature covers the redacted event: it still verifies after redaction', async () => {
    const version = getRoomVersion('1');
    const key = await signingKeyFromSeed(seedFromBase64(vectors.signingKeySeed), '1', nobleEd25519);
    const expected = vectors.cases[1]?.expected as unknown as Pdu;
    const redacted = redact(expected, version);
    expect(redacted.content).toEqual({});
    await expect(
      verifyEventSignature(
        redacted,
        version,
        'domain',
        { 'ed25519:1': key.publicKey },
        { backend: nobleEd25519 },
      ),
    ).resolves.toBeUndefined();
    // …but its content hash no longer matches, so a receiver keeps only the redacted form.
    const result = await verifyEvent(redacted, version, () => ({ 'ed25519:1': key.publicKey }), {
      backend: webcrypto,
    });
    expect(result.redacted).toBe(true);
  });
});

/** A test-local canonical JSON (ASCII keys only in these fixtures), independent of canonical-json.ts. */
function sortedJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(sortedJson).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const keys = Object.keys(value).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${sortedJson((value as Json)[k])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

describe('event IDs (fixtures/events/event-ids.json, computed by an independent Python implementation)', () => {
  for (const fixture of eventIds.cases) {
    for (const [id, expectedId] of Object.entries(fixture.eventIds)) {
      it(`v${id}: ${fixture.name}`, () => {
        const version = getRoomVersion(id);
        const pdu = fixture.pdu as unknown as Pdu;
        expect(encodeBase64(computeContentHash(pdu, version))).toBe(fixture.contentHash);
        expect(checkContentHash(pdu, version)).toBe(true);
        expect(computeEventId(pdu, version)).toBe(expectedId);
        expect(identify(pdu, version).event_id).toBe(expectedId);
      });
    }
  }

  it('v12: the room ID is the create event ID with "!" (rooms/v12.md)', () => {
    const v12 = getRoomVersion('12');
    const fixture = eventIds.cases.find((c) => 'roomIdV12' in c) as (typeof eventIds.cases)[number] & {
      roomIdV12: string;
    };
    const create = fixture.pdu as unknown as Pdu;
    expect(roomIdFromCreateEvent(create, v12)).toBe(fixture.roomIdV12);
    expect(roomIdOf(create, v12)).toBe(fixture.roomIdV12);
    expect(fixture.roomIdV12).toMatch(/^![A-Za-z0-9_-]{43}$/);
    // An event in that room names it explicitly.
    expect(roomIdOf({ ...create, type: 'm.room.message', room_id: fixture.roomIdV12 }, v12)).toBe(
      fixture.roomIdV12,
    );
    expect(syncCodeOf(() => roomIdFromCreateEvent(create, getRoomVersion('11'))).code).toBe('BAD_EVENT');
    expect(syncCodeOf(() => roomIdFromCreateEvent({ ...create, type: 'm.room.member' }, v12)).code).toBe(
      'BAD_EVENT',
    );
    expect(syncCodeOf(() => roomIdOf({ ...create, type: 'm.room.message' }, v12))).toEqual({
      code: 'BAD_EVENT',
      message: 'event has no string "room_id"',
    });
  });
});

describe('event IDs: v3 vs v4 on a fixed event, cross-checked by hand', () => {
  const event = {
    type: 'm.room.topic',
    state_key: '',
    room_id: '!room:example.org',
    sender: '@alice:example.org',
    origin: 'example.org',
    origin_server_ts: 1_600_000_000_000,
    depth: 9,
    prev_events: ['$p'],
    auth_events: ['$a'],
    content: { topic: 'not kept by redaction' },
    hashes: { sha256: 'c29tZWhhc2g' },
    signatures: { 'example.org': { 'ed25519:k': 'ignored' } },
    unsigned: { age: 99 },
  } as unknown as Pdu;
  // What v3–v10 redaction keeps of it (rooms/fragments/v1-redactions.md), minus signatures/unsigned.
  const referenceForm = {
    type: 'm.room.topic',
    state_key: '',
    room_id: '!room:example.org',
    sender: '@alice:example.org',
    origin: 'example.org',
    origin_server_ts: 1_600_000_000_000,
    depth: 9,
    prev_events: ['$p'],
    auth_events: ['$a'],
    content: {},
    hashes: { sha256: 'c29tZWhhc2g' },
  };
  const digest = createHash('sha256').update(sortedJson(referenceForm), 'utf8').digest();

  it('the reference hash is sha256 of the redacted canonical JSON', () => {
    expect(Buffer.from(computeReferenceHash(event, getRoomVersion('3')))).toEqual(digest);
  });

  it('v3 uses standard unpadded base64, v4+ the URL-safe alphabet', () => {
    const std = `$${digest.toString('base64').replace(/=+$/, '')}`;
    const url = `$${digest.toString('base64url')}`;
    expect(computeEventId(event, getRoomVersion('3'))).toBe(std);
    for (const id of ['4', '5', '6', '7', '8', '9', '10'])
      expect(computeEventId(event, getRoomVersion(id))).toBe(url);
    expect(std).toHaveLength(44);
  });

  it('an event_id or extra signatures do not change a v3+ event ID; content does not either', () => {
    const v4 = getRoomVersion('4');
    const id = computeEventId(event, v4);
    expect(computeEventId({ ...event, event_id: '$whatever' }, v4)).toBe(id);
    expect(computeEventId({ ...event, signatures: { other: { 'ed25519:x': 'y' } }, unsigned: {} }, v4)).toBe(
      id,
    );
    expect(computeEventId({ ...event, content: { topic: 'changed' } }, v4)).toBe(id);
    expect(computeEventId({ ...event, depth: 10 }, v4)).not.toBe(id);
  });

  it('v1/v2 return the carried event_id and throw without one', () => {
    for (const id of ['1', '2']) {
      const version = getRoomVersion(id);
      expect(computeEventId({ ...event, event_id: '$abc:example.org' }, version)).toBe('$abc:example.org');
      expect(syncCodeOf(() => computeEventId(event, version))).toEqual({
        code: 'BAD_EVENT',
        message: `room version ${id} events must carry a string "event_id"`,
      });
    }
  });

  it('identify / toWirePdu round-trip: v3+ strip the id on the wire, v1/v2 keep it', () => {
    const v6 = getRoomVersion('6');
    const identified = identify(event, v6);
    expect(identified.event_id).toBe(computeEventId(event, v6));
    const wire = toWirePdu(identified, v6);
    expect(wire).not.toHaveProperty('event_id');
    expect(wire).toEqual(event);
    expect(identify({ ...event, event_id: '$forged' }, v6).event_id).toBe(identified.event_id);
    const v1 = getRoomVersion('1');
    const old = identify({ ...event, event_id: '$x:example.org' }, v1);
    expect(toWirePdu(old, v1).event_id).toBe('$x:example.org');
  });

  it('v1/v2 reference hashes cover the event_id (it is part of the event)', () => {
    const v1 = getRoomVersion('1');
    const a = computeReferenceHash({ ...event, event_id: '$a:example.org' }, v1);
    const b = computeReferenceHash({ ...event, event_id: '$b:example.org' }, v1);
    expect(encodeBase64(a)).not.toBe(encodeBase64(b));
  });

  it('roomIdOf reads room_id before v12 and never derives it there', () => {
    const v11 = getRoomVersion('11');
    expect(roomIdOf(event, v11)).toBe('!room:example.org');
    const { room_id: _r, ...noRoom } = event;
    expect(syncCodeOf(() => roomIdOf({ ...noRoom, type: 'm.room.create' } as Pdu, v11)).code).toBe(
      'BAD_EVENT',
    );
  });
});

describe('content hash', () => {
  const v9 = getRoomVersion('9');
  const base = eventIds.cases[0]?.pdu as unknown as Pdu;

  it('ignores unsigned, signatures and hashes; covers everything else', () => {
    const hash = encodeBase64(computeContentHash(base, v9));
    expect(
      encodeBase64(
        computeContentHash({ ...base, unsigned: { x: 1 }, signatures: {}, hashes: { sha256: 'x' } }, v9),
      ),
    ).toBe(hash);
    expect(encodeBase64(computeContentHash({ ...base, content: { body: 'other' } }, v9))).not.toBe(hash);
  });

  it('addContentHash sets hashes.sha256, keeps other algorithms, does not mutate', () => {
    const input = { ...base, hashes: { sha256: 'stale', blake3: 'kept' } } as unknown as Pdu;
    const out = addContentHash(input, v9);
    expect(out.hashes).toEqual({ sha256: encodeBase64(computeContentHash(base, v9)), blake3: 'kept' });
    expect(input.hashes.sha256).toBe('stale');
    expect(checkContentHash(out, v9)).toBe(true);
  });

  it('computeContentHashBase64 is the unpadded base64 of computeContentHash, for every room version', () => {
    for (const version of Object.values(roomVersions)) {
      expect(computeContentHashBase64(base, version)).toBe(encodeBase64(computeContentHash(base, version)));
    }
  });

  it('checkContentHash accepts any base64 spelling of the right bytes, as decoding does', () => {
    const hash = encodeBase64(computeContentHash(base, v9));
    expect(checkContentHash({ ...base, hashes: { sha256: hash } }, v9)).toBe(true);
    expect(checkContentHash({ ...base, hashes: { sha256: `${hash}=` } }, v9)).toBe(true);
    // The last of 43 characters carries 4 bits of the hash and 2 spare bits, which decoding ignores.
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
    const last = alphabet.indexOf(hash.slice(-1));
    const stray = `${hash.slice(0, -1)}${alphabet[last ^ 1]}`;
    expect(stray).not.toBe(hash);
    expect(checkContentHash({ ...base, hashes: { sha256: stray } }, v9)).toBe(true);
    const wrong = `${hash.slice(0, -1)}${alphabet[last ^ 4]}`;
    expect(checkContentHash({ ...base, hashes: { sha256: wrong } }, v9)).toBe(false);
  });

  it('checkContentHash is false for a wrong, malformed or missing hash, never throws', () => {
    expect(checkContentHash({ ...base, hashes: { sha256: encodeBase64(new Uint8Array(32)) } }, v9)).toBe(
      false,
    );
    expect(checkContentHash({ ...base, hashes: { sha256: '!!not base64' } }, v9)).toBe(false);
    expect(checkContentHash({ ...base, hashes: {} } as unknown as Pdu, v9)).toBe(false);
    expect(checkContentHash({ ...base, hashes: undefined } as unknown as Pdu, v9)).toBe(false);
    // A float cannot be hashed under v6+ rules: the hash cannot match.
    expect(checkContentHash({ ...base, content: { x: 0.5 } }, v9)).toBe(false);
  });

  it('v1–v5 hash floats as JavaScript prints them; v6+ refuse to hash them', () => {
    const withFloat = { ...base, content: { x: 0.5 } } as Pdu;
    expect(computeContentHash(withFloat, getRoomVersion('5'))).toHaveLength(32);
    expect(syncCodeOf(() => computeContentHash(withFloat, getRoomVersion('6'))).code).toBe('NOT_CANONICAL');
  });
});

// --- Signing and verifying ----------------------------------------------------------

const SEED_A = new Uint8Array(32).fill(7);
const SEED_B = new Uint8Array(32).fill(9);

interface Signer {
  name: string;
  key: SigningKey;
}

async function signer(
  name: string,
  seed: Uint8Array,
  backend: Ed25519Backend = nobleEd25519,
): Promise<Signer> {
  return { name, key: await signingKeyFromSeed(seed, 'a1', backend) };
}

function keyring(...signers: Signer[]): KeysFor {
  return (server) => {
    const found = signers.find((s) => s.name === server);
    return found ? { [found.key.keyId]: found.key.publicKey } : undefined;
  };
}

function template(version: RoomVersion, overrides: Json = {}): Pdu {
  const server = version.eventIdFormat === 'server';
  const ref = (id: string) => (server ? [`${id}:a.example`, { sha256: 'x' }] : id);
  return {
    ...(server ? { event_id: '$e1:a.example' } : {}),
    room_id: version.roomIdFromCreateEvent ? '!Nhcu5BS-UMnFX7hBVfVSoXiD7OgH6iRT-xyIuqDnpYQ' : '!r:a.example',
    sender: '@alice:a.example',
    origin_server_ts: 1_700_000_000_000,
    type: 'm.room.message',
    content: { body: 'hello', msgtype: 'm.text' },
    prev_events: [ref('$p')],
    auth_events: [ref('$c')],
    depth: 3,
    hashes: { sha256: '' },
    signatures: {},
    ...overrides,
  } as Pdu;
}

describe('signEvent / verifyEvent', () => {
  let a: Signer;
  let b: Signer;
  beforeAll(async () => {
    a = await signer('a.example', SEED_A, webcrypto);
    b = await signer('b.example', SEED_B);
  });

  it.each(Object.keys(roomVersions))('v%s: a signed event validates and verifies, unredacted', async (id) => {
    const version = getRoomVersion(id);
    const signed = await signEvent(template(version), a.name, a.key, version);
    expect(() => validatePdu(signed, version)).not.toThrow();
    const result = await verifyEvent(signed, version, keyring(a));
    expect(result).toEqual({ redacted: false, pdu: signed, signedBytes: eventSignedBytes(signed, version) });
    // The bytes the signatures cover are the ones the reference hash covers: the same event ID.
    expect(identifyFromSignedBytes(result.pdu, version, result.signedBytes)).toEqual(
      identify(signed, version),
    );
  });

  it('signEvent returns the wire form (v3+ without event_id) with the hash set', async () => {
    const v10 = getRoomVersion('10');
    const signed = await signEvent({ ...template(v10), event_id: '$local' }, a.name, a.key, v10);
    expect(signed).not.toHaveProperty('event_id');
    expect(checkContentHash(signed, v10)).toBe(true);
    expect(Object.keys(signed.signatures)).toEqual(['a.example']);
  });

  it('a content hash mismatch is reported as redacted, with the redacted copy to keep', async () => {
    const v11 = getRoomVersion('11');
    const signed = await signEvent(template(v11), a.name, a.key, v11);
    const tampered = { ...signed, content: { body: 'changed in transit', msgtype: 'm.text' } };
    const result = await verifyEvent(tampered, v11, keyring(a));
    expect(result.redacted).toBe(true);
    expect(result.pdu).toEqual(redact(tampered, v11));
    expect(result.pdu.content).toEqual({});
    // Redacted or not, it has the ID of the event that was signed.
    expect(identifyFromSignedBytes(result.pdu, v11, result.signedBytes).event_id).toBe(
      identify(signed, v11).event_id,
    );
  });

  it('fails with BAD_SIGNATURE when the signer is unknown, absent or wrong', async () => {
    const v6 = getRoomVersion('6');
    const signed = await signEvent(template(v6), a.name, a.key, v6);
    expect(await codeOf(verifyEvent(signed, v6, keyring(b)))).toEqual({
      code: 'BAD_SIGNATURE',
      message: 'no verification keys known for a.example, which must sign this event',
    });
    // Signed by b.example, but the sender is on a.example.
    const wrongServer = await signEvent(template(v6), b.name, b.key, v6);
    expect(await codeOf(verifyEvent(wrongServer, v6, keyring(a, b)))).toEqual({
      code: 'BAD_SIGNATURE',
      message: 'event signature check failed: not signed by a.example',
    });
    // a.example's key ID is known, but the bytes are b's key.
    const impostor: KeysFor = () => ({ [a.key.keyId]: b.key.publicKey });
    const bad = await codeOf(verifyEvent(signed, v6, impostor));
    expect(bad.code).toBe('BAD_SIGNATURE');
    expect(bad.message).toContain('signature ed25519:a1 of a.example does not verify');
    // Only a key we do not know.
    const otherKeyId: KeysFor = () => ({ 'ed25519:other': a.key.publicKey });
    expect((await codeOf(verifyEvent(signed, v6, otherKeyId))).message).toContain('no known key');
  });

  it('keysFor receives the event timestamp so expired keys can be left out', async () => {
    const v5 = getRoomVersion('5');
    const signed = await signEvent(template(v5), a.name, a.key, v5);
    const seen: [string, number][] = [];
    const expiring: KeysFor = async (server, ts) => {
      seen.push([server, ts]);
      return ts > 1_650_000_000_000 ? undefined : keyring(a)(server, ts);
    };
    expect((await codeOf(verifyEvent(signed, v5, expiring))).code).toBe('BAD_SIGNATURE');
    expect(seen).toEqual([['a.example', 1_700_000_000_000]]);
  });

  it('v1/v2 also need the signature of the server named in the event_id', async () => {
    const v2 = getRoomVersion('2');
    const pdu = template(v2, { event_id: '$e1:b.example' });
    expect(requiredSigners(pdu, v2)).toEqual(['a.example', 'b.example']);
    const byA = await signEvent(pdu, a.name, a.key, v2);
    expect((await codeOf(verifyEvent(byA, v2, keyring(a, b)))).message).toContain('not signed by b.example');
    const byBoth = await cosignEvent(byA, b.name, b.key, v2);
    expect((await verifyEvent(byBoth, v2, keyring(a, b))).redacted).toBe(false);
    // The same event in v3 needs only the sender's server.
    expect(requiredSigners(template(getRoomVersion('3')), getRoomVersion('3'))).toEqual(['a.example']);
  });

  it('restricted joins (v8+) need the authorising server; earlier versions do not', async () => {
    const join = (version: RoomVersion) =>
      template(version, {
        type: 'm.room.member',
        state_key: '@alice:a.example',
        content: { membership: 'join', join_authorised_via_users_server: '@bob:b.example' },
      });
    const v7 = getRoomVersion('7');
    expect(requiredSigners(join(v7), v7)).toEqual(['a.example']);
    for (const id of ['8', '9', '10', '11', '12']) {
      const version = getRoomVersion(id);
      expect(requiredSigners(join(version), version)).toEqual(['a.example', 'b.example']);
      const leave = template(version, {
        type: 'm.room.member',
        content: { membership: 'leave', join_authorised_via_users_server: '@bob:b.example' },
      });
      expect(requiredSigners(leave, version)).toEqual(['a.example']);
    }
    const v9 = getRoomVersion('9');
    const byJoiner = await signEvent(join(v9), a.name, a.key, v9);
    expect((await codeOf(verifyEvent(byJoiner, v9, keyring(a, b)))).message).toContain(
      'not signed by b.example',
    );
    const cosigned = await cosignEvent(byJoiner, b.name, b.key, v9);
    expect(cosigned.hashes).toEqual(byJoiner.hashes);
    expect(Object.keys(cosigned.signatures).sort()).toEqual(['a.example', 'b.example']);
    expect((await verifyEvent(cosigned, v9, keyring(a, b))).redacted).toBe(false);
  });

  it('the spec example restricted join lists both servers', () => {
    const v9 = getRoomVersion('9');
    const example = {
      ...template(v9),
      sender: '@alice:example.com',
      type: 'm.room.member',
      state_key: '@alice:example.com',
      content: { membership: 'join', join_authorised_via_users_server: '@arbitrary:resident.example.com' },
    } as Pdu;
    expect(requiredSigners(example, v9)).toEqual(['example.com', 'resident.example.com']);
  });

  it('third-party invites: the sender’s server need not sign, but some known server must', async () => {
    const v10 = getRoomVersion('10');
    const invite = template(v10, {
      type: 'm.room.member',
      state_key: '@carol:c.example',
      content: {
        membership: 'invite',
        third_party_invite: { display_name: 'c', signed: { mxid: '@carol:c.example' } },
      },
    });
    expect(requiredSigners(invite, v10)).toEqual([]);
    const byB = await signEvent(invite, b.name, b.key, v10);
    expect((await verifyEvent(byB, v10, keyring(b))).redacted).toBe(false);
    expect(await codeOf(verifyEvent(byB, v10, keyring(a)))).toEqual({
      code: 'BAD_SIGNATURE',
      message: 'third-party invite carries no verifiable signature from any known server',
    });
    const forged = {
      ...byB,
      signatures: { 'b.example': { [b.key.keyId]: encodeBase64(new Uint8Array(64)) } },
    };
    expect((await codeOf(verifyEvent(forged, v10, keyring(b)))).code).toBe('BAD_SIGNATURE');
  });

  it('cosignEvent refuses an event without a content hash', async () => {
    const v10 = getRoomVersion('10');
    const { hashes: _h, ...noHash } = template(v10);
    expect((await codeOf(cosignEvent(noHash as Pdu, a.name, a.key, v10))).code).toBe('BAD_EVENT');
  });

  it('signatures made by either backend verify with the other', async () => {
    const v12 = getRoomVersion('12');
    const noble = await signer('a.example', SEED_A, nobleEd25519);
    const signedNoble = await signEvent(template(v12), noble.name, noble.key, v12);
    const signedWeb = await signEvent(template(v12), a.name, a.key, v12);
    expect(signedNoble).toEqual(signedWeb);
    await expect(verifyEvent(signedNoble, v12, keyring(a), { backend: webcrypto })).resolves.toMatchObject({
      redacted: false,
    });
    await expect(verifyEvent(signedWeb, v12, keyring(a), { backend: nobleEd25519 })).resolves.toMatchObject({
      redacted: false,
    });
  });

  it('signs and verifies a v12 create event, whose room ID then follows from it', async () => {
    const v12 = getRoomVersion('12');
    const { room_id: _r, ...base } = template(v12, {
      type: 'm.room.create',
      state_key: '',
      prev_events: [],
      auth_events: [],
      content: { room_version: '12' },
    });
    const signed = await signEvent(base as Pdu, a.name, a.key, v12);
    expect(() => validatePdu(signed, v12)).not.toThrow();
    expect((await verifyEvent(signed, v12, keyring(a))).redacted).toBe(false);
    expect(roomIdOf(signed, v12)).toBe(`!${computeEventId(signed, v12).slice(1)}`);
  });
});

describe('property: any change to a signed field breaks the signature', () => {
  let a: Signer;
  beforeAll(async () => {
    a = await signer('a.example', SEED_A, webcrypto);
  });

  /** Paths of the redacted event that the signature covers (numbers and strings only). */
  function signedLeaves(value: unknown, path: (string | number)[] = []): (string | number)[][] {
    if (Array.isArray(value)) return value.flatMap((v, i) => signedLeaves(v, [...path, i]));
    if (typeof value === 'object' && value !== null) {
      return Object.entries(value).flatMap(([k, v]) =>
        k === 'signatures' ? [] : signedLeaves(v, [...path, k]),
      );
    }
    return typeof value === 'string' || typeof value === 'number' ? [path] : [];
  }

  function mutateAt(event: Pdu, path: (string | number)[], pick: number): Pdu {
    const copy = structuredClone(event) as unknown as Json;
    let parent = copy as Record<string | number, unknown>;
    for (const key of path.slice(0, -1)) parent = parent[key] as Record<string | number, unknown>;
    const last = path.at(-1) as string | number;
    const old = parent[last];
    if (typeof old === 'number') parent[last] = old + 1 + (pick % 1000);
    else {
      const text = old as string;
      const i = text.length === 0 ? 0 : pick % text.length;
      const replacement = text[i] === 'q' ? 'z' : 'q';
      parent[last] = text.length === 0 ? 'q' : text.slice(0, i) + replacement + text.slice(i + 1);
    }
    return copy as unknown as Pdu;
  }

  const versionIds = Object.keys(roomVersions);

  it('mutating a covered field fails with BAD_SIGNATURE; mutating uncovered content only redacts', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...versionIds),
        fc.constantFrom('m.room.message', 'm.room.member', 'm.room.power_levels', 'm.room.join_rules'),
        fc.nat(),
        fc.nat(),
        async (id, type, pathPick, charPick) => {
          const version = getRoomVersion(id);
          const content: Json =
            type === 'm.room.member'
              ? { membership: 'join', displayname: 'Alice' }
              : type === 'm.room.power_levels'
                ? { users: { '@alice:a.example': 100 }, ban: 50, invite: 0 }
                : type === 'm.room.join_rules'
                  ? {
                      join_rule: 'restricted',
                      allow: [{ type: 'm.room_membership', room_id: '!s:a.example' }],
                    }
                  : { body: 'hello', msgtype: 'm.text' };
          const signed = await signEvent(
            template(version, { type, content, state_key: '' }),
            a.name,
            a.key,
            version,
          );
          const ring = keyring(a);
          const leaves = signedLeaves(redact(signed, version));
          const path = leaves[pathPick % leaves.length] as (string | number)[];
          const mutated = mutateAt(signed, path, charPick);
          const failure = await codeOf(verifyEvent(mutated, version, ring));
          // A mutated sender or event_id moves the required signer; either way the signature fails.
          expect(['BAD_SIGNATURE', 'BAD_EVENT']).toContain(failure.code);
          if (path[0] !== 'sender' && path[0] !== 'event_id') expect(failure.code).toBe('BAD_SIGNATURE');

          // Content keys the redaction drops are not signed, only hashed.
          const redactedKeys = Object.keys(redact(signed, version).content);
          const dropped = Object.keys(signed.content).find((k) => !redactedKeys.includes(k));
          if (dropped !== undefined) {
            const changed = { ...signed, content: { ...signed.content, [dropped]: 'changed' } };
            const result = await verifyEvent(changed, version, ring);
            expect(result.redacted).toBe(true);
          }
          // `unsigned` is covered by neither.
          const aged = { ...signed, unsigned: { age: charPick } };
          expect((await verifyEvent(aged, version, ring)).redacted).toBe(false);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('a flipped bit in the signature itself fails', async () => {
    const v10 = getRoomVersion('10');
    const signed = await signEvent(template(v10), a.name, a.key, v10);
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: 63 }), fc.nat({ max: 7 }), async (byte, bit) => {
        const sig = decodeBase64(signed.signatures['a.example']?.[a.key.keyId] as string);
        sig[byte] = (sig[byte] as number) ^ (1 << bit);
        const bad = { ...signed, signatures: { 'a.example': { [a.key.keyId]: encodeBase64(sig) } } };
        expect((await codeOf(verifyEvent(bad, v10, keyring(a)))).code).toBe('BAD_SIGNATURE');
      }),
      { numRuns: 50 },
    );
  });
});

describe('signEvent and signAndIdentify on any event, every room version and backend', () => {
  const versionIds = Object.keys(roomVersions);
  /** Every type some redaction algorithm treats specially, and one none does. */
  const types = [
    'm.room.message',
    'm.room.member',
    'm.room.create',
    'm.room.join_rules',
    'm.room.power_levels',
    'm.room.aliases',
    'm.room.history_visibility',
    'm.room.redaction',
    'x.custom',
  ];
  /** Keys sorting around `content` and `hashes`, kept by some redaction algorithms or none. */
  const unusualKey = fc.oneof(
    fc.constantFrom(
      'origin',
      'membership',
      'prev_state',
      'redacts',
      'state_key',
      'a',
      'content_',
      'hashes_',
      'hashe',
      'zz',
      '\uffff',
      '\u{1f600}',
      'é',
      '1',
      '__proto__',
      'event_id',
      'unsigned',
    ),
    fc.string({ unit: 'binary', maxLength: 6 }),
  );
  const leaf = fc.oneof(
    fc.string({ unit: 'binary', maxLength: 10 }),
    fc.integer({ min: -1000, max: 1000 }),
    fc.boolean(),
    fc.constant(null),
  );
  const { value } = fc.letrec<{ value: unknown }>((tie) => ({
    value: fc.oneof(
      { depthSize: 'small' },
      leaf,
      fc.array(tie('value'), { maxLength: 3 }),
      fc.dictionary(unusualKey, tie('value'), { maxKeys: 4 }),
    ),
  }));
  /** Content a type's rule keeps some of, plus anything else; sometimes not an object at all. */
  const content = fc.oneof(
    {
      weight: 6,
      arbitrary: fc.record(
        {
          membership: fc.constantFrom('join', 'invite'),
          join_authorised_via_users_server: fc.constant('@bob:a.example'),
          third_party_invite: fc.oneof(value, fc.record({ signed: value, other: value })),
          creator: fc.constant('@alice:a.example'),
          join_rule: fc.constantFrom('public', 'restricted'),
          allow: value,
          users: fc.dictionary(fc.string({ unit: 'binary', maxLength: 8 }), fc.integer({ min: 0, max: 100 })),
          invite: fc.integer({ min: 0, max: 100 }),
          aliases: fc.array(fc.string(), { maxLength: 2 }),
          history_visibility: fc.constant('shared'),
          redacts: fc.constant('$x'),
          body: fc.string({ unit: 'binary' }),
          nested: value,
        },
        { requiredKeys: [] },
      ),
    },
    { weight: 1, arbitrary: leaf },
  );
  const eventOf = (version: RoomVersion, type: string, body: unknown, extra: Json, own: unknown): Pdu => {
    const pdu = template(version, { type, content: body, state_key: '' }) as unknown as Json;
    for (const [k, v] of Object.entries(extra)) {
      // As parsed JSON carries it: an own `__proto__` is a property, never the prototype.
      Object.defineProperty(pdu, k, { value: v, enumerable: true, writable: true, configurable: true });
    }
    if (own === undefined) delete pdu.hashes;
    else pdu.hashes = own;
    return pdu as unknown as Pdu;
  };
  it('signEvent signs the same bytes on every backend (node writes base64 itself, noble and WebCrypto do not)', async () => {
    const signers = await Promise.all(backends.map((backend) => signingKeyFromSeed(SEED_A, 'a1', backend)));
    expect(signers.map((key) => key.signNowBase64 !== undefined)).toEqual(
      backends.map((backend) => backend.name === 'node'),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...versionIds),
        fc.constantFrom(...types),
        content,
        fc.dictionary(unusualKey, value, { maxKeys: 3 }),
        async (id, type, body, extra) => {
          const version = getRoomVersion(id);
          // v1/v2 events keep the string event_id that names their required signer.
          if (version.eventIdFormat === 'server') delete extra.event_id;
          const pdu = eventOf(version, type, body, extra, { sha256: '' });
          const results = await Promise.all(
            signers.map((key) => signEvent(pdu, 'a.example', key, version).catch((err: unknown) => err)),
          );
          const [first] = results;
          for (const result of results) expect(result).toEqual(first);
          if (isCoreError(first)) return; // e.g. a v6+ float: refused alike
          const signed = first as Pdu;
          // Independently of the texts: the signature covers signedBytes(redact(wire form)).
          const sig = decodeBase64(signed.signatures['a.example']?.['ed25519:a1'] as string);
          const bytes = signedBytes(redact(toWirePdu(signed, version), version), canonicalOptions(version));
          expect(await nobleEd25519.verify(signers[0]?.publicKey as Uint8Array, bytes, sig)).toBe(true);
          expect(checkContentHash(signed, version)).toBe(true);
          const ring = { 'ed25519:a1': signers[0]?.publicKey as Uint8Array };
          const verified = await verifyEvent(signed, version, () => ring, { backend: webcrypto });
          expect(verified.redacted).toBe(false);
          expect(verified.signedBytes).toEqual(bytes);
          // Identified from the same signed text: the ID the reference hash gives, with any key.
          for (const key of signers) {
            expect(await signAndIdentify(pdu, 'a.example', key, version)).toEqual(identify(signed, version));
          }
        },
      ),
      { numRuns: 200 },
    );
  });
});
