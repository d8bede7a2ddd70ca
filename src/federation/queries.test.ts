import { describe, expect, it } from 'vitest';
import type { JsonObject } from '../core/canonical-json.ts';
import { TransportError } from '../transport/transport.ts';
import { type FederationClient, type FederationRequest, FederationRequestError } from './client.ts';
import { createQueryPort } from './queries.ts';

/** A client that records what it was asked and answers with `answer`. */
function fakeClient(answer: () => Promise<JsonObject>) {
  const asked: (FederationRequest & { destination: string })[] = [];
  const client: FederationClient = {
    async request(destination, request) {
      asked.push({ destination, ...request });
      return answer();
    },
  };
  return { client, asked };
}

const refusal = (status: number, errcode?: string) => async () => {
  throw new FederationRequestError(status, errcode, `${status} ${errcode}`);
};

describe('createQueryPort', () => {
  it('sends the spec requests: query targets encoded, POST bodies as the endpoints take them', async () => {
    const { client, asked } = fakeClient(async () => ({ room_id: '!r:b.test', servers: ['b.test'] }));
    const port = createQueryPort(client);
    await port.queryProfile('b.test', '@al ice:b.test', 'displayname');
    await port.queryDirectory('b.test', '#lobby:b.test');
    await port.queryUserKeys('b.test', { '@a:b.test': ['D'] });
    await port.claimUserKeys('b.test', { '@a:b.test': { D: 'signed_curve25519' } });
    expect(asked.map((r) => [r.method, r.target, r.body])).toEqual([
      ['GET', '/_matrix/federation/v1/query/profile?user_id=%40al+ice%3Ab.test&field=displayname', undefined],
      ['GET', '/_matrix/federation/v1/query/directory?room_alias=%23lobby%3Ab.test', undefined],
      ['POST', '/_matrix/federation/v1/user/keys/query', { device_keys: { '@a:b.test': ['D'] } }],
      [
        'POST',
        '/_matrix/federation/v1/user/keys/claim',
        { one_time_keys: { '@a:b.test': { D: 'signed_curve25519' } } },
      ],
    ]);
  });

  it.each([
    ['404 M_NOT_FOUND is passed on', refusal(404, 'M_NOT_FOUND'), 404, 'M_NOT_FOUND'],
    ['403 M_FORBIDDEN is passed on', refusal(403, 'M_FORBIDDEN'), 403, 'M_FORBIDDEN'],
    ['404 M_UNRECOGNIZED (no such endpoint there) is 502', refusal(404, 'M_UNRECOGNIZED'), 502, 'M_UNKNOWN'],
    ['401 (it could not check our signature) is 502', refusal(401, 'M_UNAUTHORIZED'), 502, 'M_UNKNOWN'],
    ['a 500 is 502', refusal(500, 'M_UNKNOWN'), 502, 'M_UNKNOWN'],
    [
      'an unreachable server is 502',
      async () => {
        throw new TransportError('UNREACHABLE', 'down');
      },
      502,
      'M_UNKNOWN',
    ],
    ['a malformed directory answer is 502', async () => ({ room_id: 5 }), 502, 'M_UNKNOWN'],
  ])('%s', async (_what, answer, status, errcode) => {
    const port = createQueryPort(fakeClient(answer as () => Promise<JsonObject>).client);
    await expect(port.queryDirectory('b.test', '#x:b.test')).rejects.toMatchObject({ status, errcode });
  });
});
