/**
 * Federation against peers that lie: a resident server answering send_join with a forged
 * state event, a server signing as another, transactions past the spec's limits, replayed
 * transaction IDs, and events for rooms the sender is not in. Plus a join of a room of every
 * room version.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { type JsonObject, roomVersions, toWirePdu } from '../../src/core/index.ts';
import { parseJson } from '../../src/core/json.ts';
import { createFederationClient } from '../../src/federation/client.ts';
import { createFederatedServers, type FederatedNetwork } from '../../src/federation/testing.ts';
import { buildEvent } from '../../src/homeserver/rooms/build.ts';
import { currentAuthState, extremityEvents } from '../../src/homeserver/rooms/testing-remote.ts';
import { aliceRoom, joinVia, serverIn } from './testing-rooms.ts';
import { wireRecorder, wireViolations } from './testing-wire.ts';

let net: FederatedNetwork | undefined;
afterEach(async () => {
  await net?.close();
  net = undefined;
});

const enc = encodeURIComponent;

describe('a lying resident server', () => {
  it('a send_join answer with a forged state event fails the join, and nothing of the room is kept', async () => {
    // A's answers to send_join have the room name's signature replaced by another's.
    const forge = (name: string, handler: (r: Request, i: object) => Promise<Response>) =>
      name !== 'a.test'
        ? handler
        : async (request: Request, info: object) => {
            const response = await handler(request, info);
            if (!new URL(request.url).pathname.includes('/send_join/')) return response;
            const body = parseJson(await response.text()) as { state: JsonObject[] };
            for (const event of body.state) {
              if (event.type !== 'm.room.name') continue;
              const sigs = event.signatures as Record<string, Record<string, string>>;
              for (const keys of Object.values(sigs))
                for (const keyId of Object.keys(keys)) keys[keyId] = 'A'.repeat(86);
            }
            return Response.json(body);
          };
    net = await createFederatedServers(['a.test', 'b.test'], { inbound: forge });
    const { b, bob, roomId } = await aliceRoom(net, { preset: 'public_chat', name: 'Lounge' });
    const res = await joinVia(b, bob, roomId);
    expect(res.status).toBe(502);
    expect(res.body.error).toMatch(/state from a\.test was refused: state event m\.room\.name .* signature/);
    expect(await b.store.rooms.getRoom(roomId)).toBeNull();
    expect(await b.store.rooms.membership(roomId, bob.userId)).toBeNull();
    const sync = await b.call('GET', '/_matrix/client/v3/sync', { token: bob.accessToken });
    expect((sync.body.rooms as { join?: object } | undefined)?.join ?? {}).toEqual({});
  });
});

describe('transactions from hostile peers', () => {
  /** B's event in the shared room, made and signed by B (as B's server would send it). */
  async function bobsMessage(network: FederatedNetwork, roomId: string, bobId: string, body: string) {
    const a = serverIn(network, 'a.test');
    const bCtx = network.servers['b.test']?.services.ctx;
    if (!bCtx) throw new Error('no b.test');
    const versionId = (await a.store.rooms.getRoom(roomId))?.roomVersion as string;
    const version = roomVersions[versionId] as (typeof roomVersions)[string];
    const event = await buildEvent(
      { sender: bobId, type: 'm.room.message', content: { msgtype: 'm.text', body } },
      {
        version,
        roomId,
        prevEvents: await extremityEvents(a.store, roomId),
        state: await currentAuthState(a.store, roomId),
      },
      { serverName: 'b.test', signingKey: bCtx.signingKey, now: network.clock.now(), random: bCtx.random },
    );
    return { event, wire: toWirePdu(event, version) as JsonObject };
  }

  const clientOf = (network: FederatedNetwork, as: string, keyOf: string) => {
    const ctx = network.servers[keyOf]?.services.ctx;
    if (!ctx) throw new Error(`no ${keyOf}`);
    return createFederationClient({
      serverName: as,
      signingKey: ctx.signingKey,
      transport: network.network.transport(keyOf),
    });
  };

  const txnBody = (origin: string, pdus: JsonObject[], edus: JsonObject[] = []): JsonObject => ({
    origin,
    origin_server_ts: Date.now(),
    pdus,
    edus,
  });

  it('refuses a server signing as another, a body naming another origin, and transactions past the limits', async () => {
    const wire = wireRecorder();
    net = await createFederatedServers(['a.test', 'b.test', 'c.test'], { inbound: wire.inbound });
    const { b, bob, roomId } = await aliceRoom(net, { preset: 'public_chat', name: 'Lounge' });
    await joinVia(b, bob, roomId);
    const put = (client: ReturnType<typeof clientOf>, txnId: string, body: JsonObject) =>
      client.request('a.test', { method: 'PUT', target: `/_matrix/federation/v1/send/${txnId}`, body }).then(
        (answer) => ({ status: 200, answer }),
        (err: { status?: number; errcode?: string }) => ({ status: err.status, errcode: err.errcode }),
      );
    const { wire: pdu } = await bobsMessage(net, roomId, bob.userId, 'x');

    // C's name with B's key: X-Matrix finds C's real key does not verify it.
    expect(await put(clientOf(net, 'c.test', 'b.test'), 'spoof', txnBody('c.test', [pdu]))).toEqual({
      status: 401,
      errcode: 'M_UNAUTHORIZED',
    });
    const bClient = clientOf(net, 'b.test', 'b.test');
    // Signed by B, but the body says it comes from C.
    expect(await put(bClient, 'lie', txnBody('c.test', [pdu]))).toMatchObject({
      status: 403,
      errcode: 'M_FORBIDDEN',
    });
    // 51 PDUs, 101 EDUs: refused whole, nothing applied.
    const many = Array.from({ length: 51 }, () => pdu);
    expect(await put(bClient, 'big', txnBody('b.test', many))).toMatchObject({
      status: 400,
      errcode: 'M_BAD_JSON',
    });
    const edus = Array.from({ length: 101 }, () => ({ edu_type: 'm.typing', content: {} }));
    expect(await put(bClient, 'big2', txnBody('b.test', [], edus))).toMatchObject({
      status: 400,
      errcode: 'M_BAD_JSON',
    });
    const a = serverIn(net, 'a.test');
    const { event } = await bobsMessage(net, roomId, bob.userId, 'x');
    expect(await a.store.rooms.getEvent(event.event_id)).toBeNull();
    expect(wireViolations(wire.exchanges.filter((e) => e.status === 200))).toEqual([]);
  });

  it('answers a replayed txnId with its first answer, applying it once; refuses events of rooms the sender is not in', async () => {
    net = await createFederatedServers(['a.test', 'b.test', 'c.test']);
    const { a, b, bob, roomId } = await aliceRoom(net, { preset: 'public_chat', name: 'Lounge' });
    await joinVia(b, bob, roomId);
    const bClient = clientOf(net, 'b.test', 'b.test');
    const first = await bobsMessage(net, roomId, bob.userId, 'once');
    const send = (client: ReturnType<typeof clientOf>, txnId: string, body: JsonObject) =>
      client.request('a.test', { method: 'PUT', target: `/_matrix/federation/v1/send/${txnId}`, body });
    const answer = await send(bClient, 'T1', txnBody('b.test', [first.wire]));
    expect(answer).toEqual({ pdus: { [first.event.event_id]: {} } });
    const stored = await a.store.rooms.getEvent(first.event.event_id);
    expect(stored?.stream).not.toBeNull();
    // The same txnId with other contents: the first answer, and the new event is not applied.
    const second = await bobsMessage(net, roomId, bob.userId, 'never');
    expect(await send(bClient, 'T1', txnBody('b.test', [second.wire]))).toEqual(answer);
    expect(await a.store.rooms.getEvent(second.event.event_id)).toBeNull();

    // C has nobody in the room: its copy of B's event is refused, not stored.
    const cClient = clientOf(net, 'c.test', 'c.test');
    const cAnswer = await send(cClient, 'T1', txnBody('c.test', [second.wire]));
    expect((cAnswer.pdus as Record<string, { error?: string }>)[second.event.event_id]?.error).toMatch(
      /not in room/,
    );
    expect(await a.store.rooms.getEvent(second.event.event_id)).toBeNull();
  });

  it('applies a transaction staged before a crash when the server starts again', async () => {
    net = await createFederatedServers(['a.test', 'b.test']);
    const { a, b, bob, roomId } = await aliceRoom(net, { preset: 'public_chat', name: 'Lounge' });
    await joinVia(b, bob, roomId);
    const { event, wire: pdu } = await bobsMessage(net, roomId, bob.userId, 'staged');
    // Received and staged, then the server stopped before applying it.
    await a.store.federation.stageTransaction({
      origin: 'b.test',
      txnId: 'crash',
      txn: txnBody('b.test', [pdu]),
      receivedAt: Date.now(),
    });
    expect(await a.store.rooms.getEvent(event.event_id)).toBeNull();
    expect(await a.internals.transactions.resumeStaged()).toBe(1);
    expect((await a.store.rooms.getEvent(event.event_id))?.stream).not.toBeNull();
    expect(await a.store.federation.stagedTransactions(10)).toEqual([]);
    // Its retry gets the answer of that application.
    const again = await clientOf(net, 'b.test', 'b.test').request('a.test', {
      method: 'PUT',
      target: '/_matrix/federation/v1/send/crash',
      body: txnBody('b.test', [pdu]),
    });
    expect(again).toEqual({ pdus: { [event.event_id]: {} } });
  });
});

describe('joining rooms of every version', () => {
  it.each(Object.keys(roomVersions))('joins a room of version %s over federation', async (version) => {
    net = await createFederatedServers(['a.test', 'b.test']);
    const { a, b, alice, bob, roomId } = await aliceRoom(net, {
      preset: 'public_chat',
      name: 'Lounge',
      room_version: version,
    });
    const joined = await joinVia(b, bob, roomId);
    expect(joined.body).toEqual({ room_id: roomId });
    expect((await b.store.rooms.getRoom(roomId))?.roomVersion).toBe(version);
    expect((await a.store.rooms.membership(roomId, bob.userId))?.membership).toBe('join');
    // A partial-state join (the default): Alice's membership comes with the full state.
    await expect
      .poll(async () => (await b.store.rooms.membership(roomId, alice.userId))?.membership)
      .toBe('join');
    const sent = await b.call('PUT', `/_matrix/client/v3/rooms/${enc(roomId)}/send/m.room.message/v`, {
      token: bob.accessToken,
      body: { msgtype: 'm.text', body: `v${version}` },
    });
    await expect
      .poll(async () => (await a.store.rooms.getEvent(sent.body.event_id as string))?.stream ?? null)
      .not.toBeNull();
  });
});
