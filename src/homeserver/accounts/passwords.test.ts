import { describe, expect, it } from 'vitest';
import { webRandom } from '../context.ts';
import { constantTimeEqual, hashPassword, needsRehash, verifyPassword } from './passwords.ts';

describe('password hashes', () => {
  it('verifies the right password and refuses others', async () => {
    const stored = await hashPassword('correct horse', 1000, webRandom);
    expect(stored).toMatch(/^pbkdf2-sha512\$1000\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/);
    expect(await verifyPassword('correct horse', stored)).toBe(true);
    expect(await verifyPassword('correct horse ', stored)).toBe(false);
    expect(await verifyPassword('', stored)).toBe(false);
  });

  it('salts every hash', async () => {
    const a = await hashPassword('same', 1000, webRandom);
    const b = await hashPassword('same', 1000, webRandom);
    expect(a).not.toBe(b);
    expect(await verifyPassword('same', a)).toBe(true);
    expect(await verifyPassword('same', b)).toBe(true);
  });

  it('matches the PBKDF2-HMAC-SHA-512 of the parameters it names', async () => {
    // Fixed salt: the stored hash must be exactly PBKDF2(password, salt, iterations, 64 bytes).
    const salt = new Uint8Array(16).fill(7);
    const stored = await hashPassword('pw', 2, { bytes: (n) => salt.slice(0, n) });
    const key = await crypto.subtle.importKey('raw', new TextEncoder().encode('pw'), 'PBKDF2', false, [
      'deriveBits',
    ]);
    const bits = new Uint8Array(
      await crypto.subtle.deriveBits({ name: 'PBKDF2', hash: 'SHA-512', salt, iterations: 2 }, key, 512),
    );
    expect(stored.split('$')[3]).toBe(Buffer.from(bits).toString('base64').replace(/=+$/, ''));
  });

  it('matches nothing with a malformed stored hash', async () => {
    const good = await hashPassword('pw', 1000, webRandom);
    const [scheme, iterations, salt, hash] = good.split('$');
    for (const bad of [
      '',
      'pw',
      `bcrypt$${iterations}$${salt}$${hash}`,
      `${scheme}$0$${salt}$${hash}`,
      `${scheme}$99999999$${salt}$${hash}`,
      `${scheme}$${iterations}$${salt}$${hash?.slice(4)}`,
      `${scheme}$${iterations}$$${hash}`,
      `${scheme}$${iterations}$!!$${hash}`,
    ]) {
      expect(await verifyPassword('pw', bad)).toBe(false);
    }
  });

  it('asks for a rehash when the configured iterations grew', async () => {
    const stored = await hashPassword('pw', 1000, webRandom);
    expect(needsRehash(stored, 1000)).toBe(false);
    expect(needsRehash(stored, 2000)).toBe(true);
    expect(needsRehash('garbage', 2000)).toBe(false);
  });

  it('refuses nonsense iteration counts', async () => {
    await expect(hashPassword('pw', 0, webRandom)).rejects.toThrow(RangeError);
    await expect(hashPassword('pw', 1.5, webRandom)).rejects.toThrow(RangeError);
  });

  it('compares bytes exactly', () => {
    expect(constantTimeEqual(new Uint8Array([1, 2, 3]), new Uint8Array([1, 2, 3]))).toBe(true);
    expect(constantTimeEqual(new Uint8Array([1, 2, 3]), new Uint8Array([1, 2, 4]))).toBe(false);
    expect(constantTimeEqual(new Uint8Array([1, 2]), new Uint8Array([1, 2, 3]))).toBe(false);
  });
});
