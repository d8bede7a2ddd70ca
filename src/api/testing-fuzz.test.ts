import { describe, expect, it } from 'vitest';
import { checkMatrixResponse } from './testing-fuzz.ts';

const cors = { 'access-control-allow-origin': '*', 'content-type': 'application/json' };
const answer = (status: number, body: unknown) =>
  new Response(JSON.stringify(body), { status, headers: cors });

describe('checkMatrixResponse', () => {
  it('accepts an array only as a success (GET /rooms/{roomId}/state)', async () => {
    const ok = await checkMatrixResponse(answer(200, [{ type: 'm.room.create' }]), 'GET');
    expect(ok).toMatchObject({ status: 200, body: undefined, json: [{ type: 'm.room.create' }], uia: false });
    await expect(checkMatrixResponse(answer(400, []), 'GET')).rejects.toThrow(/not a JSON object/);
  });

  it('accepts a user-interactive authentication challenge, with or without errcode', async () => {
    const first = { flows: [{ stages: ['m.login.password'] }], params: {}, session: 's' };
    expect((await checkMatrixResponse(answer(401, first), 'POST')).uia).toBe(true);
    const retry = { ...first, completed: [], errcode: 'M_FORBIDDEN', error: 'Invalid password' };
    expect((await checkMatrixResponse(answer(401, retry), 'POST')).uia).toBe(true);
    await expect(checkMatrixResponse(answer(401, { flows: [{ stages: [1] }] }), 'POST')).rejects.toThrow(
      /malformed user-interactive/,
    );
    await expect(checkMatrixResponse(answer(401, { flows: 'x', session: 's' }), 'POST')).rejects.toThrow(
      /malformed user-interactive/,
    );
    // A 401 without flows is an ordinary error and needs its errcode.
    await expect(checkMatrixResponse(answer(401, { error: 'x' }), 'GET')).rejects.toThrow(/bad errcode/);
  });

  it('knows the statuses the spec pairs with M_BAD_JSON and M_UNKNOWN', async () => {
    const fullyRead = { errcode: 'M_BAD_JSON', error: 'Cannot set m.fully_read through this API.' };
    expect((await checkMatrixResponse(answer(405, fullyRead), 'PUT')).status).toBe(405);
    const aliasTaken = { errcode: 'M_UNKNOWN', error: 'Room alias #a:b already exists' };
    expect((await checkMatrixResponse(answer(409, aliasTaken), 'PUT')).status).toBe(409);
    await expect(
      checkMatrixResponse(answer(405, { errcode: 'M_NOT_JSON', error: 'x' }), 'PUT'),
    ).rejects.toThrow(/M_NOT_JSON with status 405/);
    await expect(
      checkMatrixResponse(answer(500, { errcode: 'M_UNKNOWN', error: 'x' }), 'GET'),
    ).rejects.toThrow(/server error/);
  });
});
