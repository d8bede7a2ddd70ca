import { describe, expect, it } from 'vitest';
import { authenticate, extractAccessToken } from './auth.ts';
import { ALICE, GUEST, resolveToken } from './testing.ts';

const at = (path: string, headers: Record<string, string> = {}) => {
  const request = new Request(`http://h${path}`, { headers });
  return [request, new URL(request.url)] as const;
};

describe('extractAccessToken', () => {
  it('reads the Bearer header and the query parameter', () => {
    expect(extractAccessToken(...at('/', { Authorization: 'Bearer abc.DEF-123_~+/=' }))).toBe(
      'abc.DEF-123_~+/=',
    );
    expect(extractAccessToken(...at('/', { Authorization: 'BEARER  tok ' }))).toBe('tok');
    expect(extractAccessToken(...at('/?access_token=q%2Btok'))).toBe('q+tok');
    expect(extractAccessToken(...at('/?access_token='))).toBeNull();
    expect(extractAccessToken(...at('/'))).toBeNull();
    expect(extractAccessToken(...at('/?access_token=q'), { allowQueryToken: false })).toBeNull();
  });

  it('refuses malformed headers and two different tokens with 401 M_MISSING_TOKEN', () => {
    for (const header of ['', 'Bearer ', 'Token abc', 'Bearer a, Bearer b']) {
      expect(() => extractAccessToken(...at('/', { Authorization: header }))).toThrow(
        expect.objectContaining({ errcode: 'M_MISSING_TOKEN', status: 401 }),
      );
    }
    expect(() => extractAccessToken(...at('/?access_token=b', { Authorization: 'Bearer a' }))).toThrow(
      expect.objectContaining({ errcode: 'M_MISSING_TOKEN' }),
    );
    expect(extractAccessToken(...at('/?access_token=a', { Authorization: 'Bearer a' }))).toBe('a');
  });
});

describe('authenticate', () => {
  const run = (
    mode: 'none' | 'optional' | 'required',
    guest: boolean,
    headers: Record<string, string> = {},
  ) => authenticate(...at('/', headers), mode, guest, resolveToken);
  const bearer = (t: string) => ({ Authorization: `Bearer ${t}` });

  it('resolves tokens per mode', async () => {
    expect(await run('required', false, bearer('alice-token'))).toEqual(ALICE);
    expect(await run('optional', false, bearer('alice-token'))).toEqual(ALICE);
    expect(await run('optional', false)).toBeNull();
    expect(await run('none', false, bearer('garbage'))).toBeNull();
    expect(await run('none', false, { Authorization: 'not even bearer' })).toBeNull();
  });

  it('401s for missing and unknown tokens, 403 for guests where not allowed', async () => {
    await expect(run('required', false)).rejects.toMatchObject({ errcode: 'M_MISSING_TOKEN', status: 401 });
    await expect(run('required', false, bearer('nobody'))).rejects.toMatchObject({
      errcode: 'M_UNKNOWN_TOKEN',
      status: 401,
    });
    await expect(run('optional', false, bearer('nobody'))).rejects.toMatchObject({
      errcode: 'M_UNKNOWN_TOKEN',
    });
    await expect(run('required', false, bearer('expired-token'))).rejects.toMatchObject({
      errcode: 'M_UNKNOWN_TOKEN',
      extra: { soft_logout: true },
    });
    await expect(run('required', false, bearer('guest-token'))).rejects.toMatchObject({
      errcode: 'M_GUEST_ACCESS_FORBIDDEN',
      status: 403,
    });
    expect(await run('required', true, bearer('guest-token'))).toEqual(GUEST);
  });
});
