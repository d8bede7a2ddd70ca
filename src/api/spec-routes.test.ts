/**
 * The router against the spec's whole path table: every Client-Server operation in the OpenAPI
 * files, declared as an endpoint, compiles without clashes and is reached by its own request —
 * literal segments beat parameters, optional state keys and trailing slashes included.
 */
import { describe, expect, it } from 'vitest';
import { readOperations } from '../../scripts/coverage-spec.ts';
import { type Endpoint, endpoint, type Method } from './endpoint.ts';
import { createRouter } from './http.ts';
import { fillTemplate } from './testing-fuzz.ts';

describe('the spec path table', async () => {
  const ops = readOperations();

  it('has the operations we expect to find', () => {
    expect(ops.length).toBeGreaterThan(150);
    const ids = ops.map((o) => `${o.method} ${o.path}`);
    expect(ids).toContain('GET /_matrix/client/versions');
    expect(ids).toContain('PUT /_matrix/client/v3/rooms/{roomId}/send/{eventType}/{txnId}');
    expect(ids).toContain('GET /_matrix/client/v3/pushrules/');
  });

  it('routes every operation to its own endpoint', async () => {
    // One path may carry two operations (invite a user / by third-party ID): one endpoint each.
    const byRoute = new Map<string, string[]>();
    for (const op of ops) {
      const key = `${op.method} ${op.path}`;
      byRoute.set(key, [...(byRoute.get(key) ?? []), op.operationId]);
    }
    expect(byRoute.get('POST /_matrix/client/v3/rooms/{roomId}/invite')).toEqual([
      'inviteUser',
      'inviteBy3PID',
    ]);
    const endpoints: Endpoint[] = [...byRoute].map(([key, ids]) => {
      const [method, path] = key.split(' ') as [Method, string];
      return endpoint({
        method,
        // The spec's "{stateKey}" may be empty, with or without the trailing slash.
        path: path.replace(/\{stateKey\}$/, '{stateKey?}'),
        auth: 'none',
        handler: async ({ params }) => ({ op: ids.join('|'), params }),
      });
    });
    const fetch = createRouter({ endpoints, resolveToken: async () => null });
    for (const op of ops) {
      const res = await fetch(new Request(`http://h${fillTemplate(op.path)}`, { method: op.method }));
      expect(res.status, `${op.method} ${op.path}`).toBe(200);
      expect((await res.json()).op.split('|'), `${op.method} ${op.path}`).toContain(op.operationId);
    }
    // The empty state key without its slash reaches the state endpoint too.
    const res = await fetch(new Request('http://h/_matrix/client/v3/rooms/!r:x/state/m.room.name'));
    expect(await res.json()).toEqual({
      op: 'getRoomStateWithKey',
      params: { roomId: '!r:x', eventType: 'm.room.name', stateKey: '' },
    });
  });
});
