/**
 * Signing and checking signed JSON — appendices.md "Signing Details" and "Checking for
 * a Signature". `signatures` and `unsigned` are never covered by a signature.
 */
import { decodeBase64, encodeBase64 } from './base64.ts';
import {
  type CanonicalJsonOptions,
  canonicalJsonBytesWithout,
  type JsonObject,
  withUtf8,
} from './canonical-json.ts';
import { defaultEd25519, defaultEd25519IfKnown, type Ed25519Backend, type SigningKey } from './crypto.ts';
import { CoreError } from './errors.ts';

export type Signatures = Record<string, Record<string, string>>;

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Top-level keys no signature covers (appendices.md "Signing Details"). */
const NOT_SIGNED = new Set(['signatures', 'unsigned']);

/** The bytes a signature covers: canonical JSON of the object less `signatures` and `unsigned`. */
export function signedBytes(object: object, options?: CanonicalJsonOptions): Uint8Array {
  if (!isPlainObject(object)) throw new CoreError('NOT_CANONICAL', 'only a JSON object can be signed');
  return canonicalJsonBytesWithout(object, NOT_SIGNED, options);
}

/**
 * Returns a copy of `object` signed by `signingName` with `key`; existing signatures
 * (of this and other entities) and `unsigned` are kept.
 */
export async function signJson<T extends object>(
  object: T,
  signingName: string,
  key: SigningKey,
  options?: CanonicalJsonOptions,
): Promise<T & { signatures: Signatures }> {
  if (!isPlainObject(object)) throw new CoreError('BAD_EVENT', 'only a JSON object can be signed');
  const signatures = await addSignature(
    (object as { signatures?: unknown }).signatures,
    signingName,
    key,
    () => signedBytes(object, options),
  );
  return { ...object, signatures };
}

/**
 * Signs `signed()` — the signed bytes of an object carrying `existing` signatures — and
 * returns those signatures plus `signingName`'s new one (entities' maps copied, not shared).
 * Throws `BAD_EVENT` when `existing` is not a signatures object.
 */
export async function addSignature(
  existing: unknown,
  signingName: string,
  key: SigningKey,
  signed: () => Uint8Array,
): Promise<Signatures> {
  checkSignatures(existing);
  // A backend that signs on this thread is asked synchronously: no turn is waited for.
  const signature = key.signNow === undefined ? await key.sign(signed()) : key.signNow(signed());
  return withSignature(existing, signingName, key.keyId, encodeBase64(signature));
}

/** A key that signs on the calling thread (node, noble). */
export type SigningKeyNow = SigningKey & Required<Pick<SigningKey, 'signNow'>>;

/**
 * `addSignature` for a key that signs on this thread, synchronously, from the canonical
 * text of what is signed (`signedText()`, called once `existing` is checked): its UTF-8 is
 * written into a lent buffer (`withUtf8`), not into fresh bytes per signature.
 */
export function addSignatureNow(
  existing: unknown,
  signingName: string,
  key: SigningKeyNow,
  signedText: () => string,
): Signatures {
  checkSignatures(existing);
  const signature = withUtf8(signedText(), (bytes) =>
    key.signNowBase64 === undefined ? encodeBase64(key.signNow(bytes)) : key.signNowBase64(bytes),
  );
  return withSignature(existing, signingName, key.keyId, signature);
}

function checkSignatures(existing: unknown): void {
  if (existing !== undefined && !isSignatures(existing)) {
    throw new CoreError('BAD_EVENT', '`signatures` must be an object of objects of strings');
  }
}

/** `existing` (checked) with `signingName`'s `keyId` signature set, every entity's map copied. */
function withSignature(existing: unknown, signingName: string, keyId: string, signature: string): Signatures {
  const signatures: Signatures = {};
  for (const [entity, entry] of Object.entries((existing as Signatures | undefined) ?? {})) {
    signatures[entity] = { ...entry };
  }
  signatures[signingName] = { ...signatures[signingName], [keyId]: signature };
  return signatures;
}

function isSignatures(value: unknown): value is Signatures {
  if (!isPlainObject(value)) return false;
  for (const entity of Object.values(value)) {
    if (!isPlainObject(entity)) return false;
    for (const sig of Object.values(entity)) if (typeof sig !== 'string') return false;
  }
  return true;
}

/** Verification keys of one entity, by key ID (`ed25519:abc`). */
export type VerifyKeys = Readonly<Record<string, Uint8Array>> | ReadonlyMap<string, Uint8Array>;

function lookup(keys: VerifyKeys, keyId: string): Uint8Array | undefined {
  return keys instanceof Map ? keys.get(keyId) : (keys as Record<string, Uint8Array>)[keyId];
}

/**
 * Checks that `signingName` signed `object`. Every ed25519 signature of that entity
 * whose key is in `keys` must verify, and at least one must. Throws
 * `CoreError('BAD_SIGNATURE')` with the reason otherwise.
 */
export async function verifyJson(
  object: object,
  signingName: string,
  keys: VerifyKeys,
  options?: CanonicalJsonOptions & { backend?: Ed25519Backend },
): Promise<void> {
  if (!isPlainObject(object)) throw new CoreError('BAD_SIGNATURE', 'only a JSON object can carry signatures');
  const backend = options?.backend ?? defaultEd25519IfKnown() ?? (await defaultEd25519());
  let bytes: Uint8Array | undefined;
  await verifySignatures(
    object.signatures,
    signingName,
    keys,
    () => (bytes ??= signedBytes(object, options)),
    backend,
  );
}

/**
 * `verifyJson` on parts at hand: the object's `signatures` and its signed bytes (`signed`,
 * called at most once, when a signature has a known key). Every verification is started
 * before this returns — so a caller can work while WebCrypto verifies off the main thread,
 * and several keys verify together — and failures are reported in key order, as checking
 * one at a time would. Not `async`: the one signature of the usual case is settled by a
 * single step after its verification, not by an async function's turns.
 */
export function verifySignatures(
  signatures: unknown,
  signingName: string,
  keys: VerifyKeys,
  signed: () => Uint8Array,
  backend: Ed25519Backend,
): Promise<void> {
  let checks: SignatureCheck[];
  try {
    checks = startChecks(signatures, signingName, keys, signed, backend);
  } catch (err) {
    return Promise.reject(err);
  }
  if (checks.length === 1) return settle(checks[0] as SignatureCheck, signingName);
  let result: Promise<void> = Promise.resolve();
  for (const check of checks) {
    // Awaited in order; one left behind by an earlier failure must not count as unhandled.
    check.verified?.catch(() => undefined);
    result = result.then(() => settle(check, signingName));
  }
  return result;
}

/** A signature under way (`verified`), or the error it is reported with in its turn. */
interface SignatureCheck {
  keyId: string;
  verified?: Promise<boolean>;
  error?: unknown;
}

function startChecks(
  signatures: unknown,
  signingName: string,
  keys: VerifyKeys,
  signed: () => Uint8Array,
  backend: Ed25519Backend,
): SignatureCheck[] {
  if (!isPlainObject(signatures)) throw new CoreError('BAD_SIGNATURE', 'no `signatures` object');
  const entry = signatures[signingName];
  if (!isPlainObject(entry)) throw new CoreError('BAD_SIGNATURE', `not signed by ${signingName}`);
  const keyIds = Object.keys(entry);
  if (!keyIds.some((keyId) => keyId.startsWith('ed25519:')))
    throw new CoreError('BAD_SIGNATURE', `no ed25519 signature from ${signingName}`);
  const checks: SignatureCheck[] = [];
  for (const keyId of keyIds) {
    if (!keyId.startsWith('ed25519:')) continue;
    const signature = entry[keyId];
    const publicKey = lookup(keys, keyId);
    if (!publicKey) continue;
    if (typeof signature !== 'string') {
      checks.push({ keyId, error: new CoreError('BAD_SIGNATURE', `signature ${keyId} is not a string`) });
      continue;
    }
    let sigBytes: Uint8Array;
    try {
      sigBytes = decodeBase64(signature);
    } catch {
      const error = new CoreError('BAD_SIGNATURE', `signature ${keyId} of ${signingName} is not base64`);
      checks.push({ keyId, error });
      continue;
    }
    let verified: Promise<boolean>;
    try {
      verified = backend.verify(publicKey, signed(), sigBytes);
    } catch (error) {
      // Encoding the signed bytes failed (or the backend threw): reported in turn, and
      // nothing after it is examined, as when checking one at a time.
      checks.push({ keyId, error });
      break;
    }
    checks.push({ keyId, verified });
  }
  if (checks.length === 0) {
    throw new CoreError('BAD_SIGNATURE', `no known key for any signature of ${signingName}`);
  }
  return checks;
}

function settle({ keyId, verified, error }: SignatureCheck, signingName: string): Promise<void> {
  if (!verified) return Promise.reject(error);
  return verified.then((ok) => {
    if (!ok) throw new CoreError('BAD_SIGNATURE', `signature ${keyId} of ${signingName} does not verify`);
  });
}

export type { JsonObject };
