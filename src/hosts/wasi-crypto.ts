/**
 * What the WASI component's WebCrypto lacks, from the host (`hearth:homeserver/host`): the
 * homeserver's own `crypto.subtle` calls stay unchanged, and these fill them in.
 *
 * - PBKDF2-SHA-512 for password hashes: StarlingMonkey has no PBKDF2 (nor `deriveBits`), and
 *   interpreted JavaScript would take seconds.
 * - Ed25519 (`importKey` pkcs8/raw, `sign`, `verify`, `exportKey` jwk): StarlingMonkey has none, so the core
 *   would take `@noble/curves` (src/core/crypto.ts picks WebCrypto's Ed25519 where the
 *   runtime has it), whose curve arithmetic the interpreter runs at a fraction of native
 *   speed. A host answering `none` keeps the component on noble.
 */
import * as host from 'hearth:homeserver/host';
import { encodeBase64Url } from '../core/base64.ts';

type ImportKey = (...args: unknown[]) => Promise<CryptoKey>;

const nameOf = (algorithm: unknown): unknown =>
  typeof algorithm === 'string' ? algorithm : (algorithm as { name?: unknown })?.name;

const bytesOf = (data: BufferSource): Uint8Array =>
  new Uint8Array(
    ArrayBuffer.isView(data)
      ? data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength)
      : data.slice(0),
  );

/** RFC 8410's PKCS#8 wrapping of a raw Ed25519 seed (the form src/core/crypto.ts imports). */
const PKCS8_ED25519 = [
  0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

interface HostKey {
  seed?: Uint8Array;
  publicKey?: Uint8Array;
  password?: Uint8Array;
}

/** Puts the host's PBKDF2 and (where the host offers it) Ed25519 behind `subtle`. */
export function installHostCrypto(subtle: SubtleCrypto): void {
  const keys = new WeakMap<object, HostKey>();
  const importKey = subtle.importKey.bind(subtle) as ImportKey;
  const sign = subtle.sign.bind(subtle);
  const verify = subtle.verify.bind(subtle);
  // Bound only if StarlingMonkey has it: a missing one must not stop the homeserver's start.
  const exportKey = (
    subtle.exportKey
      ? subtle.exportKey.bind(subtle)
      : () => Promise.reject(new DOMException('exportKey is not supported', 'NotSupportedError'))
  ) as (format: string, key: CryptoKey) => Promise<unknown>;
  // StarlingMonkey has no deriveBits at all.
  const deriveBits: SubtleCrypto['deriveBits'] = subtle.deriveBits
    ? subtle.deriveBits.bind(subtle)
    : () => Promise.reject(new DOMException('deriveBits is not supported', 'NotSupportedError'));
  const ed25519 = host.ed25519PublicKey(new Uint8Array(32)) !== undefined;
  const hostKey = (kept: HostKey, algorithm: string, extractable: boolean, usages: string[]) => {
    const key = {
      type: kept.password ? 'secret' : kept.seed ? 'private' : 'public',
      algorithm: { name: algorithm },
      extractable,
      usages,
    };
    keys.set(key, kept);
    return Promise.resolve(key as unknown as CryptoKey);
  };
  Object.assign(subtle, {
    importKey(
      format: string,
      data: BufferSource,
      algorithm: unknown,
      extractable: boolean,
      usages: string[],
    ) {
      const name = nameOf(algorithm);
      if (format === 'raw' && name === 'PBKDF2')
        return hostKey({ password: bytesOf(data) }, 'PBKDF2', false, usages);
      if (ed25519 && name === 'Ed25519') {
        const bytes = bytesOf(data);
        if (format === 'raw' && bytes.length === 32)
          return hostKey({ publicKey: bytes }, 'Ed25519', extractable, usages);
        if (
          format === 'pkcs8' &&
          bytes.length === PKCS8_ED25519.length + 32 &&
          PKCS8_ED25519.every((byte, i) => bytes[i] === byte)
        )
          return hostKey({ seed: bytes.slice(PKCS8_ED25519.length) }, 'Ed25519', extractable, usages);
      }
      return importKey(format, data, algorithm, extractable, usages);
    },
    sign(algorithm: unknown, key: CryptoKey, data: BufferSource) {
      const seed = keys.get(key)?.seed;
      if (!seed || nameOf(algorithm) !== 'Ed25519') return sign(algorithm as never, key, data);
      const signature = host.ed25519Sign(seed, bytesOf(data));
      return signature
        ? Promise.resolve(new Uint8Array(signature).buffer)
        : Promise.reject(new Error('the host no longer signs Ed25519'));
    },
    // The JWK of an extractable Ed25519 key: src/core/crypto.ts reads the public key (`x`) so.
    exportKey(format: string, key: CryptoKey) {
      const kept = keys.get(key);
      const publicKey = kept?.publicKey ?? (kept?.seed && host.ed25519PublicKey(kept.seed));
      if (!publicKey || format !== 'jwk') return exportKey(format, key);
      if (!key.extractable)
        return Promise.reject(new DOMException('the key is not extractable', 'InvalidAccessError'));
      return Promise.resolve({
        kty: 'OKP',
        crv: 'Ed25519',
        x: encodeBase64Url(publicKey),
        key_ops: key.usages,
        ext: true,
      });
    },
    verify(algorithm: unknown, key: CryptoKey, signature: BufferSource, data: BufferSource) {
      const publicKey = keys.get(key)?.publicKey;
      if (!publicKey || nameOf(algorithm) !== 'Ed25519')
        return verify(algorithm as never, key, signature, data);
      return Promise.resolve(host.ed25519Verify(publicKey, bytesOf(data), bytesOf(signature)) === true);
    },
    deriveBits(algorithm: Pbkdf2Params, key: CryptoKey, length: number) {
      const password = keys.get(key)?.password;
      if (!password || nameOf(algorithm) !== 'PBKDF2') return deriveBits(algorithm, key, length);
      const hash = nameOf(algorithm.hash);
      if (hash !== 'SHA-512')
        return Promise.reject(new Error(`PBKDF2 with ${String(hash)} is not offered by the host`));
      const bytes = host.pbkdf2Sha512(password, bytesOf(algorithm.salt), algorithm.iterations, length / 8);
      return Promise.resolve(new Uint8Array(bytes).buffer);
    },
  });
}
