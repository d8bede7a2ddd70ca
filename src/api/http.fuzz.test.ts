/**
 * Malformed and hostile requests against the router: every answer must be a well-formed Matrix
 * response with the right status for its errcode, never a 500, never a log line.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RATE_LIMITS } from './client/index.ts';
import { fullPaths } from './endpoint.ts';
import { BASE, testEndpoints, testRouter } from './testing.ts';
import { checkMatrixResponse, fillTemplate, hostileBody, hostileRequest, toRequest } from './testing-fuzz.ts';

// Generous limits: the fuzz is about input handling, not about tripping the rate limiter.
const router = () =>
  testRouter({
    rateLimits: Object.fromEntries(
      Object.keys(RATE_LIMITS).map((name) => [name, { perSecond: 1e6, burst: 1e6 }]),
    ),
  });

describe('fuzz: the router never fails on client input', () => {
  it('random requests near and around the endpoints', async () => {
    const { fetch, logged } = router();
    const seen = new Set<number>();
    await fc.assert(
      fc.asyncProperty(hostileRequest(testEndpoints), async (r) => {
        const before = logged.length;
        const res = await fetch(toRequest(BASE, r));
        const { status } = await checkMatrixResponse(res, r.method);
        seen.add(status);
        expect(logged.length, 'an unexpected error was logged').toBe(before);
      }),
      { numRuns: 1500 },
    );
    // The generator reaches success and the main error classes, so the property is not vacuous.
    for (const status of [200, 204, 400, 401, 404, 405]) expect(seen).toContain(status);
  });

  // ~250 requests per endpoint path: with the key, to-device and backup endpoints that is
  // past 30 s on a loaded two-core machine, so this one test gets more time.
  it('every endpoint, with every hostile body and token', { timeout: 120_000 }, async () => {
    const { fetch, logged } = router();
    const bodies = fc.sample(hostileBody, { numRuns: 60, seed: 42 });
    const tokens = [undefined, 'alice-token', 'guest-token', 'nobody'];
    let requests = 0;
    for (const e of testEndpoints) {
      for (const template of fullPaths(e)) {
        const path = fillTemplate(template);
        for (const token of tokens) {
          for (const body of e.method === 'GET' ? [undefined] : bodies) {
            const headers: Record<string, string> = token ? { Authorization: `Bearer ${token}` } : {};
            const res = await fetch(
              new Request(BASE + path, { method: e.method, headers, body: body ?? null }),
            );
            const { status, body: json } = await checkMatrixResponse(res, e.method);
            requests++;
            if (token === undefined && e.auth === 'required') expect(json?.errcode).toBe('M_MISSING_TOKEN');
            if (token === 'nobody' && e.auth !== 'none') expect(json?.errcode).toBe('M_UNKNOWN_TOKEN');
            if (status === 200 && e.body && typeof body === 'string') {
              // Only a JSON object body (or none, where allowed) gets through to the handler.
              expect(body === '' ? e.allowEmptyBody : body.trimStart().startsWith('{')).toBeTruthy();
            }
          }
        }
      }
    }
    expect(requests).toBeGreaterThan(1000);
    expect(logged).toEqual([]);
  });
});
