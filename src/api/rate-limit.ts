/**
 * Token-bucket rate limiting — client-server-api/_index.md "Rate limiting".
 *
 * Each (class, key) pair — key being the user ID, or the client address when unauthenticated —
 * has a bucket holding up to `burst` tokens that refills at `perSecond`. A request takes one
 * token; an empty bucket answers 429 M_LIMIT_EXCEEDED with how long until the next token.
 */
import { type Clock, systemClock } from '../homeserver/context.ts';
import { limitExceeded } from '../homeserver/errors.ts';

export interface RateLimitConfig {
  /** Sustained rate, in requests per second (fractions allowed: 0.1 = one per 10 s). */
  perSecond: number;
  /** Requests allowed at once from a full bucket. */
  burst: number;
}

interface Bucket {
  tokens: number;
  updatedAt: number;
}

export interface RateLimiter {
  /** Take a token, or throw 429 M_LIMIT_EXCEEDED. Throws a plain Error for an undeclared class. */
  take(limitClass: string, key: string): void;
  /** Milliseconds until `take` would succeed (0 = now), without taking anything. */
  retryAfter(limitClass: string, key: string): number;
  /** Buckets held in memory (for tests and metrics). */
  size(): number;
}

/**
 * Buckets are forgotten once full again (a full bucket is the same as no bucket), so memory is
 * bounded by the clients active within one refill period; past `maxBuckets` the oldest go too.
 */
export function createRateLimiter(
  limits: Readonly<Record<string, RateLimitConfig>>,
  clock: Clock = systemClock,
  maxBuckets = 10_000,
): RateLimiter {
  for (const [name, cfg] of Object.entries(limits)) {
    if (!(cfg.perSecond > 0) || !(cfg.burst >= 1)) {
      throw new Error(`rate limit "${name}" needs perSecond > 0 and burst ≥ 1`);
    }
  }
  const buckets = new Map<string, Bucket>();

  function config(limitClass: string): RateLimitConfig {
    const cfg = limits[limitClass];
    if (!cfg) throw new Error(`unknown rate-limit class "${limitClass}"`);
    return cfg;
  }

  /** Refill a bucket to `now`; a clock that steps backwards refills nothing. */
  function level(cfg: RateLimitConfig, bucket: Bucket | undefined, now: number): number {
    if (!bucket) return cfg.burst;
    const elapsed = Math.max(0, now - bucket.updatedAt);
    return Math.min(cfg.burst, bucket.tokens + (elapsed * cfg.perSecond) / 1000);
  }

  function sweep(now: number): void {
    for (const [id, bucket] of buckets) {
      const cfg = limits[id.slice(0, id.indexOf('\u0000'))];
      if (!cfg || level(cfg, bucket, now) >= cfg.burst) buckets.delete(id);
    }
    // Still too many live buckets: drop the least recently inserted (Map keeps insertion order).
    for (const id of buckets.keys()) {
      if (buckets.size < maxBuckets) break;
      buckets.delete(id);
    }
  }

  // The epsilon absorbs float error in the refill sum (0.9995 + … ≠ exactly 1), which would
  // otherwise tell a client to wait a millisecond longer than it must.
  const wait = (cfg: RateLimitConfig, tokens: number) =>
    tokens >= 1 ? 0 : Math.max(1, Math.ceil(((1 - tokens) * 1000) / cfg.perSecond - 1e-6));

  return {
    take(limitClass, key) {
      const cfg = config(limitClass);
      const now = clock.now();
      const id = `${limitClass}\u0000${key}`;
      const bucket = buckets.get(id);
      const tokens = level(cfg, bucket, now);
      if (tokens < 1) {
        throw limitExceeded(wait(cfg, tokens));
      }
      if (bucket) {
        bucket.tokens = tokens - 1;
        bucket.updatedAt = now;
      } else {
        if (buckets.size >= maxBuckets) sweep(now);
        buckets.set(id, { tokens: tokens - 1, updatedAt: now });
      }
    },
    retryAfter(limitClass, key) {
      const cfg = config(limitClass);
      return wait(cfg, level(cfg, buckets.get(`${limitClass}\u0000${key}`), clock.now()));
    },
    size: () => buckets.size,
  };
}
