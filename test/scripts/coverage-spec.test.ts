/**
 * `npm run coverage:spec` against the real homeserver: the operations it counts really exist,
 * the ones it lists as missing really answer M_UNRECOGNIZED, and a 5xx fails the run.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildWorld,
  type CoverageResult,
  type CoverageWorld,
  measureCoverage,
  readOperations,
  report,
} from '../../scripts/coverage-spec.ts';

describe('coverage:spec', () => {
  let world: CoverageWorld;
  let results: CoverageResult[];
  beforeAll(async () => {
    world = await buildWorld();
    results = await measureCoverage(world, readOperations());
  }, 60_000);
  afterAll(() => world?.close());

  it('calls every operation with the user’s own IDs and finds the implemented ones', () => {
    const answered = (method: string, path: string) =>
      results.find((r) => r.method === method && r.path === `/_matrix/client/v3${path}`)?.implemented;
    expect(results.length).toBeGreaterThan(150);
    expect(results.every((r) => r.status < 500)).toBe(true);
    // Filled sensibly: the user's own room, event, device and filter are found, not 403/404.
    const ok = (method: string, path: string) =>
      results.find((r) => r.method === method && r.path === `/_matrix/client/v3${path}`)?.status;
    expect(ok('GET', '/rooms/{roomId}/event/{eventId}')).toBe(200);
    expect(ok('GET', '/rooms/{roomId}/context/{eventId}')).toBe(200);
    expect(ok('GET', '/devices/{deviceId}')).toBe(200);
    expect(ok('GET', '/user/{userId}/filter/{filterId}')).toBe(200);
    expect(ok('GET', '/capabilities')).toBe(200);
    expect(answered('POST', '/createRoom')).toBe(true);
    // Logout is called before whoami in file order; the token was restored in between.
    expect(ok('GET', '/account/whoami')).toBe(200);
    expect(answered('POST', '/keys/upload')).toBe(true);
    expect(answered('PUT', '/room_keys/keys')).toBe(true);
    expect(answered('POST', '/search')).toBe(true);
    expect(answered('POST', '/rooms/{roomId}/upgrade')).toBe(true);
    const v1 = (path: string) =>
      results.find((r) => r.method === 'GET' && r.path === `/_matrix/client/v1${path}`)?.status;
    expect(v1('/rooms/{roomId}/relations/{eventId}')).toBe(200);
    expect(v1('/rooms/{roomId}/threads')).toBe(200);
    expect(v1('/rooms/{roomId}/hierarchy')).toBe(200);
    expect(v1('/room_summary/{roomIdOrAlias}')).toBe(200);
    expect(ok('GET', '/notifications')).toBe(200);
  });

  it('prints the count and the unanswered list, and exits 0 without server errors', () => {
    const { text, exitCode } = report(results);
    const implemented = results.filter((r) => r.implemented).length;
    expect(text).toContain(`${implemented} of ${results.length} Client-Server operations answer`);
    const missing = results.filter((r) => !r.implemented);
    expect(text).toContain(`Not answered (404/405 M_UNRECOGNIZED), ${missing.length}:`);
    for (const r of missing)
      expect(text).toContain(`${r.method.padEnd(6)} ${r.path}  → ${r.status} M_UNRECOGNIZED`);
    expect(exitCode).toBe(0);
  });

  it('exits 1 when an operation answers 5xx', () => {
    const first = results[0] as CoverageResult;
    const broken = [
      { ...first, status: 500, errcode: 'M_UNKNOWN', error: 'boom', implemented: true },
      ...results.slice(1),
    ];
    const { text, exitCode } = report(broken);
    expect(exitCode).toBe(1);
    expect(text).toContain('Server errors (must not happen):');
    expect(text).toContain('1 answered 5xx');
  });
});
