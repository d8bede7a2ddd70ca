/**
 * Assertions shared by the src/core tests. Test-only: not exported from index.ts, and
 * nothing outside *.test.ts files imports it.
 */
import { expect } from 'vitest';
import { type Ed25519Backend, nodeEd25519 } from './crypto.ts';
import { CoreError, type CoreErrorCode } from './errors.ts';

function expectCaught(caught: unknown, code: CoreErrorCode, message?: RegExp): void {
  expect(caught).toBeInstanceOf(CoreError);
  expect((caught as CoreError).code).toBe(code);
  if (message) expect((caught as CoreError).message).toMatch(message);
}

/** Runs `fn`, expecting it to throw a CoreError `code` whose message matches `message`. */
export function expectCoreError(fn: () => unknown, code: CoreErrorCode, message?: RegExp): void {
  let caught: unknown;
  let result: unknown;
  try {
    result = fn();
  } catch (err) {
    caught = err;
  }
  // A rejection would go unchecked here; async work goes through expectCoreErrorAsync.
  if (typeof (result as PromiseLike<unknown> | undefined)?.then === 'function') {
    throw new Error('expectCoreError got a promise: use expectCoreErrorAsync');
  }
  expectCaught(caught, code, message);
}

/**
 * Awaits `work` (a promise, or a function whose call may throw or return one), expecting
 * it to fail with a CoreError `code` whose message matches `message`.
 */
export async function expectCoreErrorAsync(
  work: Promise<unknown> | (() => unknown),
  code: CoreErrorCode,
  message?: RegExp,
): Promise<void> {
  let caught: unknown;
  try {
    await (typeof work === 'function' ? work() : work);
  } catch (err) {
    caught = err;
  }
  expectCaught(caught, code, message);
}

/** The node:crypto backend, which Node 24 (the tests' runtime) always offers. */
export function nodeBackend(): Ed25519Backend {
  const backend = nodeEd25519();
  if (backend === undefined) throw new Error('Node 24 offers ed25519 through node:crypto and WebCrypto');
  return backend;
}
