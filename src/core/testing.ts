/**
 * Assertions shared by the src/core tests. Test-only: not exported from index.ts, and
 * nothing outside *.test.ts files imports it.
 */
import { expect } from 'vitest';
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
