/**
 * Password hashes — PBKDF2-HMAC-SHA-512 through WebCrypto (`crypto.subtle`), which Service
 * Workers, browsers, Node, Deno and workerd all provide, so no native module or WASM is needed.
 *
 * A hash names its own parameters: `pbkdf2-sha512$<iterations>$<salt>$<hash>` (salt and hash in
 * unpadded base64). Raising the configured iterations later leaves old hashes verifiable, and
 * `needsRehash` tells the login path to replace them.
 */
import { decodeBase64, encodeBase64 } from '../../core/base64.ts';
import type { Random } from '../context.ts';

const SCHEME = 'pbkdf2-sha512';
/** 16 bytes of salt: NIST SP 800-132 asks for at least 128 bits. */
const SALT_BYTES = 16;
/** The SHA-512 output size; longer output would only cost the defender more. */
const HASH_BYTES = 64;
/**
 * Upper bound on the iterations a stored hash may ask for, so a corrupted or planted row cannot
 * make one verification run for minutes. Ten times OWASP's 2023 recommendation (210,000).
 */
const MAX_ITERATIONS = 2_100_000;

function subtle(): SubtleCrypto {
  const s = globalThis.crypto?.subtle;
  if (!s) throw new Error('WebCrypto (crypto.subtle) is not available in this runtime');
  return s;
}

async function derive(password: string, salt: Uint8Array, iterations: number): Promise<Uint8Array> {
  const key = await subtle().importKey('raw', new TextEncoder().encode(password), 'PBKDF2', false, [
    'deriveBits',
  ]);
  const bits = await subtle().deriveBits(
    { name: 'PBKDF2', hash: 'SHA-512', salt: salt as Uint8Array<ArrayBuffer>, iterations },
    key,
    HASH_BYTES * 8,
  );
  return new Uint8Array(bits);
}

/** Compares in time independent of where the inputs differ (lengths are not secret here). */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= (a[i] as number) ^ (b[i] as number);
  return diff === 0;
}

export async function hashPassword(password: string, iterations: number, random: Random): Promise<string> {
  if (!Number.isSafeInteger(iterations) || iterations < 1 || iterations > MAX_ITERATIONS) {
    throw new RangeError(`password iterations must be an integer from 1 to ${MAX_ITERATIONS}`);
  }
  const salt = random.bytes(SALT_BYTES);
  const hash = await derive(password, salt, iterations);
  return `${SCHEME}$${iterations}$${encodeBase64(salt)}$${encodeBase64(hash)}`;
}

interface ParsedHash {
  iterations: number;
  salt: Uint8Array;
  hash: Uint8Array;
}

function parseHash(stored: string): ParsedHash | null {
  const parts = stored.split('$');
  if (parts.length !== 4 || parts[0] !== SCHEME) return null;
  const iterations = Number(parts[1]);
  if (!/^[1-9][0-9]*$/.test(parts[1] as string) || iterations > MAX_ITERATIONS) return null;
  try {
    const salt = decodeBase64(parts[2] as string);
    const hash = decodeBase64(parts[3] as string);
    if (salt.length === 0 || hash.length !== HASH_BYTES) return null;
    return { iterations, salt, hash };
  } catch {
    return null;
  }
}

/** Whether `password` matches `stored`. A hash in an unknown format matches nothing. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parsed = parseHash(stored);
  if (!parsed) return false;
  const candidate = await derive(password, parsed.salt, parsed.iterations);
  return constantTimeEqual(candidate, parsed.hash);
}

/** True when `stored` was made with fewer iterations than are configured now. */
export function needsRehash(stored: string, iterations: number): boolean {
  const parsed = parseHash(stored);
  return parsed !== null && parsed.iterations < iterations;
}
