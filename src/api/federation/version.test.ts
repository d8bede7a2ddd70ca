import { afterEach, describe, expect, it } from 'vitest';
import { createTestHomeserver, type TestHomeserver } from '../../testing.ts';

let hs: TestHomeserver | undefined;
afterEach(async () => {
  await hs?.close();
  hs = undefined;
});

describe('federation routes', () => {
  it('GET /_matrix/federation/v1/version names the implementation, without authentication', async () => {
    hs = await createTestHomeserver();
    const { status, body } = await hs.call('GET', '/_matrix/federation/v1/version');
    expect(status).toBe(200);
    expect(body).toEqual({ server: { name: 'Hearth', version: expect.stringMatching(/^\d+\.\d+\.\d+/) } });
  });

  it('answers an unknown federation endpoint with 404 M_UNRECOGNIZED and a wrong method with 405', async () => {
    hs = await createTestHomeserver();
    const unknown = await hs.call('GET', '/_matrix/federation/v1/nothing_here');
    expect([unknown.status, unknown.body.errcode]).toEqual([404, 'M_UNRECOGNIZED']);
    const wrongMethod = await hs.call('PUT', '/_matrix/key/v2/server', { body: {} });
    expect([wrongMethod.status, wrongMethod.body.errcode]).toEqual([405, 'M_UNRECOGNIZED']);
  });

  it('answers key requests with a federation transport absent: own keys yes, others an empty list', async () => {
    hs = await createTestHomeserver({ serverName: 'alone.test' });
    const own = await hs.call('GET', '/_matrix/key/v2/query/alone.test');
    expect((own.body.server_keys as unknown[]).length).toBe(1);
    const other = await hs.call('GET', '/_matrix/key/v2/query/elsewhere.test');
    expect(other.body).toEqual({ server_keys: [] });
  });
});
