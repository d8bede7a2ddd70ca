import { describe, expect, it } from 'vitest';
import {
  incompatibleRoomVersion,
  isMatrixError,
  limitExceeded,
  MatrixError,
  unknownToken,
} from './errors.ts';

describe('MatrixError', () => {
  it('carries errcode, status, a name that survives cloning, and extra keys', () => {
    const err = incompatibleRoomVersion('99');
    expect(err).toBeInstanceOf(Error);
    expect(err.name).toBe('MatrixError');
    expect(err.toJSON()).toEqual({
      errcode: 'M_INCOMPATIBLE_ROOM_VERSION',
      error: 'This server does not support room version 99',
      room_version: '99',
    });
    expect(isMatrixError(err)).toBe(true);
    // Recognised by shape too, e.g. after crossing a realm or bundle boundary.
    const lookalike = Object.assign(new Error('x'), { name: 'MatrixError', errcode: 'M_X', status: 400 });
    expect(isMatrixError(lookalike)).toBe(true);
    expect(isMatrixError(new Error('x'))).toBe(false);
    expect(isMatrixError({ name: 'MatrixError', errcode: 'M_X', status: 400 })).toBe(false);
  });

  it('extra keys cannot overwrite errcode or error', () => {
    const err = new MatrixError(400, 'M_X', 'real', { errcode: 'M_FAKE', error: 'fake', other: 1 });
    expect(err.toJSON()).toEqual({ errcode: 'M_X', error: 'real', other: 1 });
  });

  it('limitExceeded: retry_after_ms and Retry-After in whole seconds, rounded up', () => {
    expect(limitExceeded(1).headers).toEqual({ 'Retry-After': '1' });
    expect(limitExceeded(1000).headers).toEqual({ 'Retry-After': '1' });
    expect(limitExceeded(1001.2).toJSON()).toEqual({
      errcode: 'M_LIMIT_EXCEEDED',
      error: 'Too many requests',
      retry_after_ms: 1002,
    });
    expect(limitExceeded(1001.2).headers).toEqual({ 'Retry-After': '2' });
    expect(limitExceeded(-5).toJSON().retry_after_ms).toBe(0);
  });

  it('unknownToken writes soft_logout only when true', () => {
    expect(unknownToken().toJSON()).toEqual({
      errcode: 'M_UNKNOWN_TOKEN',
      error: 'Unrecognised access token',
    });
    expect(unknownToken('x', { softLogout: true }).toJSON()).toEqual({
      errcode: 'M_UNKNOWN_TOKEN',
      error: 'x',
      soft_logout: true,
    });
  });
});
