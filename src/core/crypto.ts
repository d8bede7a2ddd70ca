/**
 * ed25519 and sha256 for signing JSON and events (appendices.md "Signing JSON",
 * "Cryptographic key representation").
 *
 * Two interchangeable ed25519 backends give byte-identical results: WebCrypto's native
 * Ed25519 (fast, asynchronous; Node ≥ 22 and current browsers) and `@noble/curves`
 * (pure JS, everywhere). The core never reaches for a global: callers pass a backend,
 * or take `defaultEd25519()`, which picks WebCrypto when the runtime offers it.
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js';
import { decodeBase64, decodeBase64Url, encodeBase64, encodeBase64Url } from './base64.ts';
import { CoreError } from './errors.ts';

export const ED25519_SEED_BYTES = 32;
export const ED25519_PUBLIC_KEY_BYTES = 32;
export const ED25519_SIGNATURE_BYTES = 64;
/** The 86 characters of a signature in unpadded base64 (its padded form ends in `==`). */
const ED25519_SIGNATURE_BASE64_CHARS = 86;

/** The parts of `node:crypto` used here (Node, Deno, Bun), typed where they are used. */
interface NodeCrypto {
  createHash?: (algorithm: string) => NodeHash;
  hash?: (
    algorithm: string,
    data: Uint8Array | string,
    output: 'buffer' | 'base64' | 'base64url',
  ) => Uint8Array | string;
  createPrivateKey?: (key: { key: Uint8Array; format: 'der'; type: 'pkcs8' }) => NodeKeyObject;
  createPublicKey?: (key: NodeKeyObject) => NodeKeyObject;
  sign?: (algorithm: null, data: Uint8Array, key: NodeKeyObject) => NodeBuffer;
}
type NodeHash = {
  update(data: Uint8Array | string, encoding?: 'utf8'): NodeHash;
  digest(): Uint8Array;
  digest(encoding: 'base64' | 'base64url'): string;
};
type NodeKeyObject = { export(options: { format: 'jwk' }): { x?: string } };
type NodeBuffer = Uint8Array & { toString(encoding: 'base64'): string };

/**
 * `node:crypto`, reached through `process.getBuiltinModule` (Node ≥ 22.3; Deno and Bun offer
 * it too) without an import, so this module still loads in browsers, workers and the WASI
 * component, which use WebCrypto and noble. Undefined there.
 */
function findNodeCrypto(): NodeCrypto | undefined {
  try {
    const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
    return (proc?.getBuiltinModule?.('node:crypto') as NodeCrypto | undefined) ?? undefined;
  } catch {
    return undefined;
  }
}

const nodeCrypto = findNodeCrypto();

/** A synchronous SHA-256 of the runtime, when it has one (`node:crypto`). */
interface NativeHash {
  bytes(bytes: Uint8Array): Uint8Array;
  utf8(text: string): Uint8Array;
  /** Unpadded base64 of the digest of `text`'s UTF-8, written natively (no bytes made here). */
  utf8Base64(text: string): string;
  /** The same in the URL-safe alphabet (v4+ event IDs). */
  utf8Base64Url(text: string): string;
}

/** The 43 characters of a SHA-256 digest in unpadded base64 (its padded form ends in one `=`). */
const SHA256_BASE64_CHARS = 43;

/**
 * Node's one-shot `hash` (or `createHash`). The digest is the same bytes either way
 * (crypto.test.ts compares them); the native one is about four times faster on an
 * event-sized input, which is a fifth of the time an event's signing takes when hashed in
 * JavaScript. Asked for base64 it writes the text itself, which costs less than a buffer
 * for the digest (a third of the hash's time on an event) and encoding it here.
 */
function findNativeSha256(): NativeHash | undefined {
  try {
    const { createHash, hash: oneShot } = nodeCrypto ?? {};
    const plain = (digest: Uint8Array) => new Uint8Array(digest.buffer, digest.byteOffset, digest.byteLength);
    let hash: NativeHash;
    if (typeof oneShot === 'function') {
      // One call, no Hash object (Node ≥ 21.7): what an event-sized input mostly costs.
      hash = {
        bytes: (bytes) => plain(oneShot('sha256', bytes, 'buffer') as Uint8Array),
        utf8: (text) => plain(oneShot('sha256', text, 'buffer') as Uint8Array),
        utf8Base64: (text) => (oneShot('sha256', text, 'base64') as string).slice(0, SHA256_BASE64_CHARS),
        // Node writes base64url unpadded.
        utf8Base64Url: (text) => oneShot('sha256', text, 'base64url') as string,
      };
    } else if (typeof createHash === 'function') {
      hash = {
        bytes: (bytes) => plain(createHash('sha256').update(bytes).digest()),
        utf8: (text) => plain(createHash('sha256').update(text, 'utf8').digest()),
        utf8Base64: (text) =>
          createHash('sha256').update(text, 'utf8').digest('base64').slice(0, SHA256_BASE64_CHARS),
        utf8Base64Url: (text) => createHash('sha256').update(text, 'utf8').digest('base64url'),
      };
    } else {
      return undefined;
    }
    // Used only if it answers the known digest of "abc" (FIPS 180-2 B.1) every way.
    const known = (d: unknown) =>
      d instanceof Uint8Array && d.length === 32 && d[0] === 0xba && d[31] === 0xad;
    return known(hash.bytes(new Uint8Array([0x61, 0x62, 0x63]))) &&
      known(hash.utf8('abc')) &&
      hash.utf8Base64('abc') === 'ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0' &&
      hash.utf8Base64Url('abc') === 'ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0'
      ? hash
      : undefined;
  } catch {
    return undefined;
  }
}

const native = findNativeSha256();
const nativeSha256 = native?.bytes;
const nativeSha256Utf8 = native?.utf8;
const nativeSha256Utf8Base64 = native?.utf8Base64;
const nativeSha256Utf8Base64Url = native?.utf8Base64Url;

/** The portable SHA-256 (`@noble/hashes`), which `sha256` uses where the runtime has no native one. */
export function sha256Portable(bytes: Uint8Array): Uint8Array {
  return nobleSha256(bytes);
}

export function sha256(bytes: Uint8Array): Uint8Array {
  return nativeSha256 === undefined ? nobleSha256(bytes) : nativeSha256(bytes);
}

const utf8 = new TextEncoder();

/** sha256 of the UTF-8 of `text` (the native hash encodes it itself, with no bytes made here). */
export function sha256Utf8(text: string): Uint8Array {
  return nativeSha256Utf8 === undefined ? nobleSha256(utf8.encode(text)) : nativeSha256Utf8(text);
}

/** `encodeBase64(sha256Utf8(text))`: what a content hash or an event ID is made of. */
export function sha256Utf8Base64(text: string): string {
  return nativeSha256Utf8Base64 === undefined
    ? encodeBase64(nobleSha256(utf8.encode(text)))
    : nativeSha256Utf8Base64(text);
}

/** `encodeBase64Url(sha256Utf8(text))`: a v4+ event ID without its sigil. */
export function sha256Utf8Base64Url(text: string): string {
  return nativeSha256Utf8Base64Url === undefined
    ? encodeBase64Url(nobleSha256(utf8.encode(text)))
    : nativeSha256Utf8Base64Url(text);
}

export interface Ed25519Signer {
  publicKey: Uint8Array;
  sign(message: Uint8Array): Promise<Uint8Array>;
  /**
   * The same signature, synchronously, where the backend makes it on the calling thread.
   * `message` is read before this returns and not kept (signing.ts lends it a reused buffer).
   */
  signNow?(message: Uint8Array): Uint8Array;
  /** `signNow`'s signature as unpadded base64, where the runtime writes that natively. */
  signNowBase64?(message: Uint8Array): string;
}

export interface Ed25519Backend {
  readonly name: 'webcrypto' | 'noble' | 'node';
  /** Prepares a signer for a 32-byte seed; the returned functions sign messages. */
  signer(seed: Uint8Array): Promise<Ed25519Signer>;
  verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): Promise<boolean>;
}

function checkSeed(seed: Uint8Array): void {
  if (!(seed instanceof Uint8Array) || seed.length !== ED25519_SEED_BYTES) {
    throw new CoreError('BAD_KEY', `an ed25519 seed is ${ED25519_SEED_BYTES} bytes`);
  }
}

/** Malformed input to `verify` means "does not verify", never an exception. */
function wellFormed(publicKey: unknown, message: unknown, signature: unknown): boolean {
  return (
    publicKey instanceof Uint8Array &&
    message instanceof Uint8Array &&
    signature instanceof Uint8Array &&
    publicKey.length === ED25519_PUBLIC_KEY_BYTES &&
    signature.length === ED25519_SIGNATURE_BYTES
  );
}

/** The pure-JS backend. `zip215: false` keeps it to RFC 8032's strict checks, as WebCrypto does. */
export const nobleEd25519: Ed25519Backend = {
  name: 'noble',
  async signer(seed) {
    checkSeed(seed);
    const secret = seed.slice();
    return {
      publicKey: ed25519.getPublicKey(secret),
      sign: async (message) => ed25519.sign(message, secret),
      signNow: (message) => ed25519.sign(message, secret),
    };
  },
  async verify(publicKey, message, signature) {
    if (!wellFormed(publicKey, message, signature)) return false;
    try {
      return ed25519.verify(signature, message, publicKey, { zip215: false });
    } catch {
      return false; // a public key that is not a curve point
    }
  },
};

/** PKCS#8 wrapping of a raw ed25519 seed (RFC 8410): WebCrypto imports private keys only this way. */
const PKCS8_PREFIX = new Uint8Array([
  0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
]);

/** WebCrypto's name of the algorithm (RFC 8410), made once rather than for every signature. */
const ED25519 = { name: 'Ed25519' } as const;

/** Imported public keys, kept so verifying many events from one server imports its key once. */
const VERIFY_KEY_CACHE_LIMIT = 1024;

export function webCryptoEd25519(subtle: SubtleCrypto): Ed25519Backend {
  const verifyKeys = new Map<string, Promise<CryptoKey>>();
  /** The same keys once imported, so a verification starts without waiting a turn for the import. */
  const importedKeys = new Map<string, CryptoKey>();
  /**
   * The imported key by the very array the caller passes (callers keep one array per server
   * key), with a copy of its bytes to tell a reused array from a changed one: a verification
   * then neither encodes the key to find it nor waits for an import.
   */
  const byArray = new WeakMap<Uint8Array, { bytes: Uint8Array; key: CryptoKey }>();
  const importVerifyKey = (id: string, publicKey: Uint8Array): Promise<CryptoKey> => {
    let key = verifyKeys.get(id);
    if (!key) {
      if (verifyKeys.size >= VERIFY_KEY_CACHE_LIMIT) {
        verifyKeys.clear();
        importedKeys.clear();
      }
      key = subtle.importKey('raw', publicKey as BufferSource, { name: 'Ed25519' }, false, ['verify']);
      key.then(
        (imported) => {
          if (verifyKeys.get(id) === key) importedKeys.set(id, imported);
        },
        () => verifyKeys.delete(id),
      );
      verifyKeys.set(id, key);
    }
    return key;
  };
  // Not `async`: one step after WebCrypto's promise, not an async function's turns.
  const verifyWith = (key: CryptoKey, message: Uint8Array, signature: Uint8Array): Promise<boolean> => {
    try {
      return subtle
        .verify(ED25519, key, signature as BufferSource, message as BufferSource)
        .catch(() => false);
    } catch {
      return Promise.resolve(false);
    }
  };
  return {
    name: 'webcrypto',
    async signer(seed) {
      checkSeed(seed);
      const pkcs8 = pkcs8Of(seed);
      const privateKey = await subtle.importKey('pkcs8', pkcs8, { name: 'Ed25519' }, false, ['sign']);
      // The public key from the runtime too (the JWK of an extractable import carries it as
      // `x`): noble's first multiplication builds its precomputed tables, hundreds of
      // milliseconds and megabytes at start-up that a WebCrypto server never uses again.
      const extractable = await subtle.importKey('pkcs8', pkcs8, { name: 'Ed25519' }, true, ['sign']);
      const { x } = await subtle.exportKey('jwk', extractable);
      const publicKey = x === undefined ? ed25519.getPublicKey(seed) : decodeBase64Url(x);
      return {
        publicKey,
        sign: async (message) =>
          new Uint8Array(await subtle.sign({ name: 'Ed25519' }, privateKey, message as BufferSource)),
      };
    },
    // Not `async`: with the key imported, WebCrypto gets the job before this returns, so
    // the caller can work while it runs (verifyEvent hashes the content meanwhile).
    verify(publicKey, message, signature) {
      if (!wellFormed(publicKey, message, signature)) return Promise.resolve(false);
      const known = byArray.get(publicKey);
      if (known !== undefined && sameBytes(known.bytes, publicKey)) {
        return verifyWith(known.key, message, signature);
      }
      const id = encodeBase64(publicKey);
      const imported = importedKeys.get(id);
      if (imported) {
        byArray.set(publicKey, { bytes: publicKey.slice(), key: imported });
        return verifyWith(imported, message, signature);
      }
      return importVerifyKey(id, publicKey).then(
        (key) => verifyWith(key, message, signature),
        () => false,
      );
    },
  };
}

/**
 * `node:crypto`'s synchronous ed25519 signing (Node, Deno, Bun) with WebCrypto's verifying:
 * the server's backend. A WebCrypto signature is a round trip through the thread pool
 * whose hand-offs cost more than the signature itself — measured on Node 24, 56–115 µs of
 * CPU (a third to a half of it on the main thread) against 27 µs for the same signature
 * made synchronously — and an event is signed alone, with nothing to do meanwhile.
 * Verifying stays with WebCrypto (`verifyWith`): a transaction's events verify in
 * parallel there, off the main thread. Undefined where the runtime lacks either part, or
 * where its signature of RFC 8032 TEST 1 is not the RFC's.
 */
export function nodeEd25519(
  subtle: SubtleCrypto | undefined = globalThis.crypto?.subtle,
): Ed25519Backend | undefined {
  const { createPrivateKey, sign } = nodeCrypto ?? {};
  if (subtle === undefined || typeof createPrivateKey !== 'function' || typeof sign !== 'function') {
    return undefined;
  }
  const verifier = webCryptoEd25519(subtle);
  const backend: Ed25519Backend = {
    name: 'node',
    async signer(seed) {
      checkSeed(seed);
      const privateKey = createPrivateKey({ key: pkcs8Of(seed), format: 'der', type: 'pkcs8' });
      const { x } = privateKey.export({ format: 'jwk' });
      if (x === undefined) throw new CoreError('BAD_KEY', 'node:crypto gave no public key for the seed');
      const signNow = (message: Uint8Array) => {
        const signature = sign(null, message, privateKey);
        return new Uint8Array(signature.buffer, signature.byteOffset, signature.byteLength);
      };
      // node:crypto answers with a Buffer, whose base64 is written natively: a quarter of
      // the time of encoding the bytes here, and one string rather than a chain of them.
      const signNowBase64 = (message: Uint8Array) =>
        sign(null, message, privateKey).toString('base64').slice(0, ED25519_SIGNATURE_BASE64_CHARS);
      return {
        publicKey: decodeBase64Url(x),
        sign: async (message) => signNow(message),
        signNow,
        signNowBase64,
      };
    },
    verify: verifier.verify,
  };
  try {
    // RFC 8032 TEST 1: the seed's public key and its signature of the empty message.
    const seed = hexBytes('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60');
    const privateKey = createPrivateKey({ key: pkcs8Of(seed), format: 'der', type: 'pkcs8' });
    const signature = sign(null, new Uint8Array(0), privateKey);
    const expected =
      'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b';
    return sameBytes(new Uint8Array(signature), hexBytes(expected)) ? backend : undefined;
  } catch {
    return undefined;
  }
}

function hexBytes(hex: string): Uint8Array {
  return Uint8Array.from({ length: hex.length / 2 }, (_, i) =>
    Number.parseInt(hex.slice(2 * i, 2 * i + 2), 16),
  );
}

function pkcs8Of(seed: Uint8Array): Uint8Array<ArrayBuffer> {
  const pkcs8 = new Uint8Array(PKCS8_PREFIX.length + seed.length);
  pkcs8.set(PKCS8_PREFIX);
  pkcs8.set(seed, PKCS8_PREFIX.length);
  return pkcs8;
}

/** Whether two byte arrays hold the same bytes. */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

let detected: Promise<Ed25519Backend> | undefined;
let resolved: Ed25519Backend | undefined;

/**
 * WebCrypto's Ed25519 where the runtime has it (checked once by importing a key), signing
 * through `node:crypto` where the runtime has that too (`nodeEd25519`), otherwise noble.
 * The result is the same bytes either way; only the speed differs.
 */
export function defaultEd25519(): Promise<Ed25519Backend> {
  detected ??= (async () => {
    const subtle = globalThis.crypto?.subtle;
    let backend: Ed25519Backend = nobleEd25519;
    if (subtle) {
      try {
        const candidate = webCryptoEd25519(subtle);
        await candidate.signer(new Uint8Array(ED25519_SEED_BYTES));
        backend = nodeEd25519(subtle) ?? candidate;
      } catch {
        // No Ed25519 in this runtime's WebCrypto: noble it is.
      }
    }
    resolved = backend;
    return backend;
  })();
  return detected;
}

/**
 * `defaultEd25519()`'s answer once it has been found, else undefined — so hot paths
 * (verifying every event of a transaction) need not await it each time.
 */
export function defaultEd25519IfKnown(): Ed25519Backend | undefined {
  return resolved;
}

/** A server's signing key: `ed25519:<version>` plus the ability to sign. */
export interface SigningKey {
  readonly keyId: string;
  readonly publicKey: Uint8Array;
  /** Unpadded base64 of the public key, as published in `/_matrix/key/v2/server`. */
  readonly publicKeyBase64: string;
  sign(message: Uint8Array): Promise<Uint8Array>;
  /** `sign`, synchronously, where the backend signs on the calling thread (node, noble): no turn waited for. */
  signNow?(message: Uint8Array): Uint8Array;
  /** `signNow` as unpadded base64, where the backend writes it natively (node). */
  signNowBase64?(message: Uint8Array): string;
}

const KEY_VERSION = /^[a-zA-Z0-9_]+$/;

export async function signingKeyFromSeed(
  seed: Uint8Array,
  version: string,
  backend?: Ed25519Backend,
): Promise<SigningKey> {
  if (!KEY_VERSION.test(version)) throw new CoreError('BAD_KEY', 'a key version is [a-zA-Z0-9_]+');
  const { publicKey, sign, signNow, signNowBase64 } = await (backend ?? (await defaultEd25519())).signer(
    seed,
  );
  const key = { keyId: `ed25519:${version}`, publicKey, publicKeyBase64: encodeBase64(publicKey), sign };
  if (signNow === undefined) return key;
  return signNowBase64 === undefined ? { ...key, signNow } : { ...key, signNow, signNowBase64 };
}

/** Parses an unpadded-base64 ed25519 seed, e.g. from a Synapse-style signing key file. */
export function seedFromBase64(text: string): Uint8Array {
  const seed = decodeBase64(text);
  checkSeed(seed);
  return seed;
}

/** Parses an unpadded-base64 ed25519 public key. */
export function publicKeyFromBase64(text: string): Uint8Array {
  const key = decodeBase64(text);
  if (key.length !== ED25519_PUBLIC_KEY_BYTES) {
    throw new CoreError('BAD_KEY', `an ed25519 public key is ${ED25519_PUBLIC_KEY_BYTES} bytes`);
  }
  return key;
}
