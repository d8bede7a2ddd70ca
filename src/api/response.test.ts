import { describe, expect, it } from 'vitest';
import { forbidden, unrecognized } from '../homeserver/errors.ts';
import { toResponse } from './response.ts';

describe('toResponse', () => {
  it('maps a MatrixError to its status, JSON body and headers', async () => {
    const res = toResponse(unrecognized('nope', 405, ['GET', 'OPTIONS']));
    expect(res.status).toBe(405);
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(res.headers.get('allow')).toBe('GET, OPTIONS');
    expect(await res.json()).toEqual({ errcode: 'M_UNRECOGNIZED', error: 'nope' });
    expect((await toResponse(forbidden()).json()).errcode).toBe('M_FORBIDDEN');
  });

  it('hides anything else behind 500 M_UNKNOWN and logs it', async () => {
    const logged: unknown[] = [];
    const logger = { error: (_m: string, fields?: Record<string, unknown>) => logged.push(fields?.error) };
    for (const thrown of [
      new TypeError("Cannot read properties of undefined (reading 'secret')"),
      'a string',
      null,
    ]) {
      const res = toResponse(thrown, logger);
      expect(res.status).toBe(500);
      expect(await res.json()).toEqual({ errcode: 'M_UNKNOWN', error: 'Internal server error' });
    }
    expect(logged).toHaveLength(3);
    expect(logged[0]).toContain("TypeError: Cannot read properties of undefined (reading 'secret')");
    expect(logged.slice(1)).toEqual(['a string', 'null']);
  });
});
