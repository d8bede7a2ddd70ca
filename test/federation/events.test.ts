/**
 * The event-fetching endpoints between real homeservers on one in-memory network: a room of
 * a.test given to b.test (and c.test) by accepted PDUs, requests signed by the asking
 * server's federation client, answers checked against the spec's schemas; who may ask
 * (membership, history visibility for servers, server ACLs) and what they see.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createWireChecker } from '../../scripts/spec-schemas.ts';
import type { JsonObject } from '../../src/core/index.ts';
import { FederationRequestError } from '../../src/federation/client.ts';
import type { FederatedNetwork, FederatedServer } from '../../src/federation/testing.ts';
import { deliver, fetchingServers, joinLocally, say, timeline } from '../../src/federation/testing-rooms.ts';

const check = createWireChecker();
const enc = encodeURIComponent;
const F = '/_matrix/federation/v1';
const UNKNOWN_ID = `$${'A'.repeat(43)}`;

let net: FederatedNetwork | undefined;
afterEach(async () => {
  await net?.close();
  net = undefined;
});

interface Setup {
  a: FederatedServer;
  b: FederatedServer;
  c: FederatedServer;
  roomId: string;
  alice: string;
  bob: string;
}

/**
 * A room of alice@a.test with `history` visibility; `before` messages are sent, then
 * bob@b.test joins (b.test gets the room by accepted PDUs, a.test gets bob's join back).
 */
async function setup(history: string, before = 3, invite = false): Promise<Setup & { early: string[] }> {
  net = await fetchingServers(['a.test', 'b.test', 'c.test']);
  const [a, b, c] = ['a.test', 'b.test', 'c.test'].map((name) => net?.servers[name]) as FederatedServer[] as [
    FederatedServer,
    FederatedServer,
    FederatedServer,
  ];
  const alice = (await a.hs.createUser('alice')).userId;
  const bob = (await b.hs.createUser('bob')).userId;
  const { roomId } = await a.services.rooms.createRoom(alice, {
    preset: 'public_chat',
    initial_state: [
      { type: 'm.room.history_visibility', state_key: '', content: { history_visibility: history } },
    ],
  });
  const early: string[] = [];
  for (let i = 0; i < before; i++) early.push(await say(a, roomId, alice, `early ${i}`));
  if (invite) {
    await a.services.rooms.sendEvent({
      sender: alice,
      roomId,
      type: 'm.room.member',
      stateKey: bob,
      content: { membership: 'invite' },
    });
    early.push(await say(a, roomId, alice, 'after the invite'));
  }
  await deliver(a, b, roomId);
  await joinLocally(b, roomId, bob);
  await deliver(b, a, roomId);
  return { a, b, c, roomId, alice, bob, early };
}

/** A signed GET (or POST with `body`) from `from` to `to`; the JSON answer or the error. */
async function ask(
  from: FederatedServer,
  to: FederatedServer,
  target: string,
  body?: JsonObject,
): Promise<{ status: number; body: JsonObject }> {
  try {
    const answer = await from.federation.client.request(to.hs.serverName, {
      method: body ? 'POST' : 'GET',
      target,
      ...(body ? { body } : {}),
    });
    return { status: 200, body: answer };
  } catch (err) {
    if (err instanceof FederationRequestError)
      return { status: err.status, body: { errcode: err.errcode ?? null } };
    throw err;
  }
}

const bodies = (pdus: unknown) =>
  (pdus as { content: { body?: string } }[]).map((p) => p.content.body).filter((b) => b !== undefined);

describe('event retrieval endpoints', () => {
  it('serve a server in the room, in the wire format the spec describes', async () => {
    const { a, b, roomId, alice } = await setup('shared');
    const last = await say(a, roomId, alice, 'latest');
    const events = await timeline(a, roomId);
    const create = events[0]?.event.event_id as string;

    const backfill = await ask(b, a, `${F}/backfill/${enc(roomId)}?v=${enc(last)}&limit=5`);
    expect(backfill.status).toBe(200);
    expect(check('GET', `${F}/backfill/{roomId}`, '200', backfill.body)).toEqual([]);
    expect((backfill.body.pdus as unknown[]).length).toBe(5);
    // Wire format: room versions from v3 carry no event_id; newest first, depth descending.
    const depths = (backfill.body.pdus as { depth: number; event_id?: string }[]).map((p) => p.depth);
    expect(depths).toEqual([...depths].sort((x, y) => y - x));
    expect((backfill.body.pdus as { event_id?: string }[])[0]?.event_id).toBeUndefined();
    expect(backfill.body.origin).toBe('a.test');

    const missing = await ask(b, a, `${F}/get_missing_events/${enc(roomId)}`, {
      earliest_events: [create],
      latest_events: [last],
      limit: 3,
    });
    expect(check('POST', `${F}/get_missing_events/{roomId}`, '200', missing.body)).toEqual([]);
    const missingDepths = (missing.body.events as { depth: number }[]).map((p) => p.depth);
    expect(missingDepths).toHaveLength(3);
    expect(missingDepths).toEqual([...missingDepths].sort((x, y) => x - y));

    const one = await ask(b, a, `${F}/event/${enc(last)}`);
    expect(check('GET', `${F}/event/{eventId}`, '200', one.body)).toEqual([]);
    expect(bodies(one.body.pdus)).toEqual(['latest']);

    const state = await ask(b, a, `${F}/state/${enc(roomId)}?event_id=${enc(last)}`);
    expect(check('GET', `${F}/state/{roomId}`, '200', state.body)).toEqual([]);
    const stateIds = await ask(b, a, `${F}/state_ids/${enc(roomId)}?event_id=${enc(last)}`);
    expect(check('GET', `${F}/state_ids/{roomId}`, '200', stateIds.body)).toEqual([]);
    const current = await a.hs.store.rooms.currentState(roomId);
    expect(new Set(stateIds.body.pdu_ids as string[])).toEqual(new Set(current.values()));
    expect((state.body.pdus as unknown[]).length).toBe(current.size);
    expect((stateIds.body.auth_chain_ids as string[]).length).toBeGreaterThan(0);

    const auth = await ask(b, a, `${F}/event_auth/${enc(roomId)}/${enc(last)}`);
    expect(check('GET', `${F}/event_auth/{roomId}/{eventId}`, '200', auth.body)).toEqual([]);
    expect((auth.body.auth_chain as { type: string }[]).map((e) => e.type)).toContain('m.room.create');

    const ts = events.at(-1)?.event.origin_server_ts as number;
    const byTime = await ask(b, a, `${F}/timestamp_to_event/${enc(roomId)}?ts=${ts}&dir=b`);
    expect(check('GET', `${F}/timestamp_to_event/{roomId}`, '200', byTime.body)).toEqual([]);
    expect(byTime.body.origin_server_ts).toBeLessThanOrEqual(ts);

    // Bad input is the spec's error, never a 500.
    expect((await ask(b, a, `${F}/backfill/${enc(roomId)}?v=${enc(last)}`)).status).toBe(400);
    expect((await ask(b, a, `${F}/backfill/${enc(roomId)}?v=${enc(last)}&limit=-1`)).status).toBe(400);
    expect((await ask(b, a, `${F}/event/${enc(UNKNOWN_ID)}`)).status).toBe(404);
    expect(
      (await ask(b, a, `${F}/get_missing_events/${enc(roomId)}`, { earliest_events: 'x', latest_events: [] }))
        .status,
    ).toBe(400);
    expect((await ask(b, a, `${F}/state_ids/${enc(roomId)}?event_id=${enc(UNKNOWN_ID)}`)).status).toBe(404);
  });

  it('refuse a server not in the room, and one the server ACL denies', async () => {
    const { a, b, c, roomId, alice, bob } = await setup('shared');
    const last = await say(a, roomId, alice, 'latest');
    const c403 = await ask(c, a, `${F}/backfill/${enc(roomId)}?v=${enc(last)}&limit=5`);
    expect(c403).toEqual({ status: 403, body: { errcode: 'M_FORBIDDEN' } });
    expect((await ask(c, a, `${F}/state_ids/${enc(roomId)}?event_id=${enc(last)}`)).status).toBe(403);
    expect((await ask(c, a, `${F}/event/${enc(last)}`)).status).toBe(404);

    await a.services.rooms.sendEvent({
      sender: alice,
      roomId,
      type: 'm.room.server_acl',
      stateKey: '',
      content: { allow: ['*'], deny: ['b.*'], allow_ip_literals: false },
    });
    for (const target of [
      `${F}/backfill/${enc(roomId)}?v=${enc(last)}&limit=5`,
      `${F}/state/${enc(roomId)}?event_id=${enc(last)}`,
      `${F}/state_ids/${enc(roomId)}?event_id=${enc(last)}`,
      `${F}/event_auth/${enc(roomId)}/${enc(last)}`,
    ]) {
      expect(await ask(b, a, target), target).toEqual({ status: 403, body: { errcode: 'M_FORBIDDEN' } });
    }
    const denied = await ask(b, a, `${F}/get_missing_events/${enc(roomId)}`, {
      earliest_events: [],
      latest_events: [last],
    });
    expect(denied.status).toBe(403);
    // The PDUs of a denied server are ignored, each with an error.
    await say(b, roomId, bob, 'ignored');
    const fromB = (await timeline(b, roomId)).at(-1)?.event;
    const result = await a.services.federationInbound.receivePdus('b.test', roomId, [fromB]);
    expect([...result.values()][0]?.error).toMatch(/server ACL/);
  });

  describe.each([
    // [visibility, invited first, what b.test sees of the early messages]
    ['shared', false, ['early 0', 'early 1', 'early 2']],
    ['joined', false, []],
    ['invited', true, ['after the invite']],
    ['world_readable', false, ['early 0', 'early 1', 'early 2']],
  ] as const)('history visibility %s', (history, invite, seen) => {
    it('decides what a server in the room sees of history from before its users joined', async () => {
      const { a, b, roomId, alice } = await setup(history, 3, invite);
      const last = await say(a, roomId, alice, 'latest');
      const backfill = await ask(b, a, `${F}/backfill/${enc(roomId)}?v=${enc(last)}&limit=50`);
      expect(backfill.status).toBe(200);
      const texts = bodies(backfill.body.pdus);
      expect(texts.filter((t) => t !== 'latest').reverse()).toEqual(seen);
      expect(texts[0]).toBe('latest');
      // Hidden events are still there, redacted: the DAG stays whole.
      expect((backfill.body.pdus as unknown[]).length).toBe((await timeline(a, roomId)).length);

      const creates = (await timeline(a, roomId))[0]?.event.event_id as string;
      const missing = await ask(b, a, `${F}/get_missing_events/${enc(roomId)}`, {
        earliest_events: [creates],
        latest_events: [last],
        limit: 50,
      });
      expect(bodies(missing.body.events)).toEqual(seen);
    });
  });

  it('serve a server with nobody in a world-readable room, and refuse it otherwise', async () => {
    const { a, c, roomId, alice } = await setup('world_readable');
    const last = await say(a, roomId, alice, 'latest');
    const open = await ask(c, a, `${F}/backfill/${enc(roomId)}?v=${enc(last)}&limit=50`);
    expect(open.status).toBe(200);
    expect(bodies(open.body.pdus)).toContain('early 0');
    await a.services.rooms.sendEvent({
      sender: alice,
      roomId,
      type: 'm.room.history_visibility',
      stateKey: '',
      content: { history_visibility: 'shared' },
    });
    expect((await ask(c, a, `${F}/backfill/${enc(roomId)}?v=${enc(last)}&limit=50`)).status).toBe(403);
  });
});
