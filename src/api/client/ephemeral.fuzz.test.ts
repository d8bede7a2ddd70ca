/**
 * Hostile input against the endpoints of this area (filters, account data, tags, typing,
 * receipts, read markers, presence, room reads) on a real homeserver: every answer is a
 * well-formed Matrix response, never a 500, and a refused request writes nothing.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fullPaths } from '../endpoint.ts';
import { checkMatrixResponse, ERRCODE_STATUS, hostileBody } from '../testing-fuzz.ts';
import { accountDataEndpoints } from './account-data.ts';
import { filterEndpoints } from './filter.ts';
import { presenceEndpoints } from './presence.ts';
import { receiptEndpoints } from './receipts.ts';
import { roomReadEndpoints } from './room-read.ts';
import { createTestHomeserver, roomWith, sendText } from './testing.ts';
import { typingEndpoints } from './typing.ts';

/**
 * The shared errcode → status table less M_UNKNOWN, which it admits for alias conflicts:
 * none of these endpoints answers with it, so here it would be a bug.
 */
const { M_UNKNOWN: _aliasConflict, ...STATUS_OF } = ERRCODE_STATUS;

const hostileQueries = [
  '',
  '?dir=b',
  '?dir=f&from=t1_1&to=s0_0_0_0_0_0_0',
  '?dir=b&from=%00&limit=99999999999999999999',
  '?dir=b&filter=%7B%22limit%22%3A-1%7D',
  `?dir=b&filter=${encodeURIComponent('{"room":'.repeat(40))}`,
  `?dir=b&filter=${encodeURIComponent(JSON.stringify({ lazy_load_members: true, not_types: ['*'] }))}`,
  '?limit=-1&filter=[]',
  '?at=t99999_99999&membership=join&not_membership=leave',
  '?at=garbage&format=event',
  '?format=content',
];

describe('fuzz: ephemeral and room-read endpoints', () => {
  it('answer hostile paths, queries, bodies and tokens with Matrix errors and write nothing when refusing', async () => {
    const hs = await createTestHomeserver();
    try {
      const alice = await hs.createUser('alice');
      const eve = await hs.createUser('eve');
      const roomId = await roomWith(hs, alice);
      const eventId = await sendText(hs, alice, roomId, 'hello');
      const services = hs.internals;
      const endpoints = [
        filterEndpoints,
        accountDataEndpoints,
        typingEndpoints,
        receiptEndpoints,
        presenceEndpoints,
        roomReadEndpoints,
      ].flatMap((f) => f(services));
      const values = (name: string): string[] => {
        const n = name.toLowerCase();
        if (n.includes('room')) return [roomId, '!nope:test.localhost', 'not-a-room', '%00'];
        if (n === 'eventid') return [eventId, '$x', '$'.padEnd(44, 'A')];
        if (n.includes('user')) return [alice.userId, eve.userId, '@ghost:elsewhere', 'nobody'];
        if (n === 'receipttype') return ['m.read', 'm.read.private', 'm.fully_read', 'm.nope'];
        if (n === 'type' || n === 'eventtype') return ['m.fully_read', 'm.tag', 'x.y', 'm.room.name'];
        if (n === 'statekey') return ['', alice.userId];
        return ['x', '__proto__', 'a'.repeat(300)];
      };
      const bodies = fc.sample(hostileBody, { numRuns: 25, seed: 7 });
      bodies.push(
        JSON.stringify({ typing: true, timeout: 1e12 }),
        JSON.stringify({ presence: 'online', status_msg: 'x'.repeat(2000) }),
        JSON.stringify({ thread_id: 'main' }),
        JSON.stringify({ 'm.fully_read': eventId, 'm.read': '$nope' }),
        JSON.stringify({ room: { timeline: { senders: ['@a:b'], limit: 5 } } }),
        JSON.stringify({ order: 'x' }),
      );
      const tokens = [alice.accessToken, eve.accessToken, undefined, 'unknown-token'];
      const rng = fc.sample(fc.nat(), { numRuns: 4000, seed: 11 });
      let pick = 0;
      const choose = <T>(list: readonly T[]): T =>
        list[(rng[pick++ % rng.length] as number) % list.length] as T;

      let requests = 0;
      const statuses = new Set<number>();
      for (const e of endpoints) {
        for (const template of fullPaths(e)) {
          for (let round = 0; round < 12; round++) {
            const path = template.replace(/\{([A-Za-z_]+)\??\}/g, (_, name: string) =>
              encodeURIComponent(choose(values(name))),
            );
            const query = e.method === 'GET' ? choose(hostileQueries) : '';
            const token = choose(tokens);
            const body = e.method === 'GET' || e.method === 'DELETE' ? undefined : choose(bodies);
            const before = await hs.store.positions();
            const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
            const res = await hs.fetch(
              new Request(`http://test.localhost${path}${query}`, {
                method: e.method,
                headers,
                body: body ?? null,
              }),
            );
            requests++;
            statuses.add(res.status);
            expect(res.status, `${e.method} ${path}${query}`).toBeLessThan(500);
            expect(res.headers.get('content-type')).toBe('application/json');
            // The shared well-formedness check (CORS, JSON, errcode status, Retry-After), then
            // this area's stricter rules: no user-interactive auth here, so every refusal has
            // an errcode, and it is one the table knows.
            const { json } = await checkMatrixResponse(res, e.method);
            if (res.status >= 400) {
              const error = json as { errcode?: unknown; error?: unknown };
              expect(typeof error.errcode, `${e.method} ${path}`).toBe('string');
              expect(typeof error.error).toBe('string');
              const allowed = STATUS_OF[error.errcode as string];
              expect(allowed, `${error.errcode} from ${e.method} ${path}`).toBeDefined();
              expect(allowed).toContain(res.status);
              expect(await hs.store.positions(), `${e.method} ${path} refused but wrote`).toEqual(before);
            } else {
              // Every success is a JSON object, except the state list.
              expect(Array.isArray(json)).toBe(/\/rooms\/[^/]+\/state$/.test(path));
            }
          }
        }
      }
      expect(requests).toBeGreaterThan(500);
      for (const status of [200, 400, 401, 403, 404]) expect(statuses).toContain(status);
    } finally {
      await hs.close();
    }
  });
});
