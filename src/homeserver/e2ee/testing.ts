/**
 * Test support for end-to-end encryption: a device's identity keys and one-time keys, and a
 * user's cross-signing keys, signed as a client signs them (with the core's signing, real
 * ed25519), for the tests and the benchmarks of the key endpoints.
 */
import type { JsonObject } from '../../core/canonical-json.ts';
import { type SigningKey, signingKeyFromSeed } from '../../core/crypto.ts';
import { signJson } from '../../core/signing.ts';

/** A deterministic seed from a label: tests name keys, not bytes. */
function seedOf(label: string): Uint8Array {
  const seed = new Uint8Array(32);
  for (let i = 0; i < label.length; i++) seed[i % 32] = (seed[i % 32] as number) * 31 + label.charCodeAt(i);
  return seed;
}

/** A signing key whose ID is `ed25519:<its public key>`, as cross-signing keys are named. */
async function publicKeyNamed(label: string): Promise<SigningKey> {
  const key = await signingKeyFromSeed(seedOf(label), 'x');
  return { ...key, keyId: `ed25519:${key.publicKeyBase64}` };
}

export interface TestDevice {
  userId: string;
  deviceId: string;
  signingKey: SigningKey;
  /** `device_keys` as uploaded: signed by the device's ed25519 key. */
  deviceKeys: JsonObject;
  /** `count` signed curve25519 one-time keys, IDs from `first`. */
  oneTimeKeys(count: number, first?: number): Promise<JsonObject>;
  /** A signed fallback key. */
  fallbackKey(id: string): Promise<JsonObject>;
}

export async function testDevice(userId: string, deviceId: string): Promise<TestDevice> {
  const signingKey = await signingKeyFromSeed(
    seedOf(`${userId}/${deviceId}`),
    deviceId.replace(/[^a-zA-Z0-9_]/g, '_'),
  );
  const device = { ...signingKey, keyId: `ed25519:${deviceId}` };
  const deviceKeys = await signJson(
    {
      user_id: userId,
      device_id: deviceId,
      algorithms: ['m.olm.v1.curve25519-aes-sha2', 'm.megolm.v1.aes-sha2'],
      keys: {
        [`curve25519:${deviceId}`]: `curve-${deviceId}`,
        [`ed25519:${deviceId}`]: signingKey.publicKeyBase64,
      },
    },
    userId,
    device,
  );
  const signedKey = (key: string, fallback: boolean) =>
    signJson<JsonObject>(fallback ? { key, fallback: true } : { key }, userId, device);
  return {
    userId,
    deviceId,
    signingKey: device,
    deviceKeys,
    async oneTimeKeys(count, first = 0) {
      const out: JsonObject = {};
      for (let i = first; i < first + count; i++)
        out[`signed_curve25519:K${String(i).padStart(6, '0')}`] = await signedKey(
          `otk-${deviceId}-${i}`,
          false,
        );
      return out;
    },
    async fallbackKey(id) {
      return { [`signed_curve25519:${id}`]: await signedKey(`fallback-${deviceId}-${id}`, true) };
    },
  };
}

export interface TestCrossSigning {
  master: SigningKey;
  selfSigning: SigningKey;
  userSigning: SigningKey;
  /** The upload body of `/keys/device_signing/upload`. */
  upload: { master_key: JsonObject; self_signing_key: JsonObject; user_signing_key: JsonObject };
}

export async function testCrossSigning(userId: string, label = 'cs'): Promise<TestCrossSigning> {
  const [master, selfSigning, userSigning] = (await Promise.all(
    ['master', 'self', 'user'].map((kind) => publicKeyNamed(`${userId}/${label}/${kind}`)),
  )) as [SigningKey, SigningKey, SigningKey];
  const keyObject = (key: SigningKey, usage: string) => ({
    user_id: userId,
    usage: [usage],
    keys: { [key.keyId]: key.publicKeyBase64 },
  });
  return {
    master,
    selfSigning,
    userSigning,
    upload: {
      master_key: keyObject(master, 'master'),
      self_signing_key: await signJson(keyObject(selfSigning, 'self_signing'), userId, master),
      user_signing_key: await signJson(keyObject(userSigning, 'user_signing'), userId, master),
    },
  };
}
