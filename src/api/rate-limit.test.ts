import { describe, expect, it } from 'vitest';
import { isMatrixError } from '../homeserver/errors.ts';
import { createRateLimiter } from './rate-limit.ts';
import { manualClock } from './testing.ts';

function refusal(fn: () => void) {
  try {
    fn();
  } catch (err) {
    if (isMatrixError(err)) return err;
    throw err;
  }
  throw new Error('expected a refusal');
}

describe('token bucket', () => {
  it('allows a burst, then one request per refill interval', () => {
    const clock = manualClock();
    const limiter = createRateLimiter({ send: { perSecond: 2, burst: 3 } }, clock);
    for (let i = 0; i < 3; i++) limiter.take('send', 'a');
    const err = refusal(() => limiter.take('send', 'a'));
    expect(err.status).toBe(429);
    expect(err.errcode).toBe('M_LIMIT_EXCEEDED');
    expect(err.extra).toEqual({ retry_after_ms: 500 });
    expect(err.headers).toEqual({ 'Retry-After': '1' });
    expect(limiter.retryAfter('send', 'a')).toBe(500);
    clock.advance(499);
    expect(limiter.retryAfter('send', 'a')).toBe(1);
    expect(() => limiter.take('send', 'a')).toThrow();
    clock.advance(1);
    expect(limiter.retryAfter('send', 'a')).toBe(0);
    limiter.take('send', 'a');
    expect(() => limiter.take('send', 'a')).toThrow();
  });

  it('refills no higher than the burst, however long the wait', () => {
    const clock = manualClock();
    const limiter = createRateLimiter({ send: { perSecond: 1, burst: 2 } }, clock);
    limiter.take('send', 'a');
    clock.advance(3_600_000);
    limiter.take('send', 'a');
    limiter.take('send', 'a');
    expect(() => limiter.take('send', 'a')).toThrow();
  });

  it('keeps keys and classes apart', () => {
    const clock = manualClock();
    const limiter = createRateLimiter(
      { x: { perSecond: 1, burst: 1 }, y: { perSecond: 1, burst: 1 } },
      clock,
    );
    limiter.take('x', 'a');
    limiter.take('x', 'b');
    limiter.take('y', 'a');
    expect(() => limiter.take('x', 'a')).toThrow();
  });

  it('rounds Retry-After up to whole seconds and survives a clock going backwards', () => {
    const clock = manualClock();
    const limiter = createRateLimiter({ slow: { perSecond: 0.1, burst: 1 } }, clock);
    limiter.take('slow', 'a');
    const err = refusal(() => limiter.take('slow', 'a'));
    expect(err.extra).toEqual({ retry_after_ms: 10_000 });
    clock.advance(-5_000);
    expect(limiter.retryAfter('slow', 'a')).toBe(10_000);
    clock.advance(5_000 + 8_500);
    expect(refusal(() => limiter.take('slow', 'a')).headers).toEqual({ 'Retry-After': '2' });
  });

  it('forgets idle buckets so memory stays bounded, and still limits active ones', () => {
    const clock = manualClock();
    const limiter = createRateLimiter({ x: { perSecond: 1, burst: 1 } }, clock, 100);
    limiter.take('x', 'busy');
    for (let i = 0; i < 1000; i++) {
      clock.advance(1);
      limiter.take('x', `k${i}`);
      expect(limiter.size()).toBeLessThanOrEqual(100);
    }
    // A client that spent its token 1 s ago has a full bucket again: forgetting it changes nothing.
    clock.advance(1000);
    for (let i = 0; i < 1000; i++) limiter.take('x', `k${i}`);
    expect(() => limiter.take('x', 'k999')).toThrow();
    // Once every bucket has refilled, the next sweep forgets them all.
    clock.advance(10_000);
    limiter.take('x', 'fresh');
    expect(limiter.size()).toBe(1);
  });

  it('refuses bad configuration and undeclared classes as programming errors', () => {
    expect(() => createRateLimiter({ x: { perSecond: 0, burst: 1 } })).toThrow(/perSecond/);
    expect(() => createRateLimiter({ x: { perSecond: 1, burst: 0 } })).toThrow(/burst/);
    expect(() => createRateLimiter({}).take('nope', 'a')).toThrow(/unknown rate-limit class/);
  });
});
