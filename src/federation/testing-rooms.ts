/**
 * Test support for rooms shared by homeservers on one in-memory network while the join
 * handshake is elsewhere: a room is given to another server by bootstrapping its create
 * event (what a join's answer would carry) and accepting the rest, in order, with
 * `acceptRemote` — the same checks every received event meets. Each homeserver's port makes
 * real signed event-fetching requests to the others (testing-port.ts).
 */
import { getRoomVersion, type RoomVersion, toWirePdu } from '../core/index.ts';
import type { AcceptOutcome } from '../homeserver/rooms/accept.ts';
import type { HomeserverOptions } from '../server.ts';
import type { StoredEvent } from '../storage/store.ts';
import type { TestUser } from '../testing.ts';
import {
  createFederatedServers,
  type FederatedNetwork,
  type FederatedServer,
  type SettableClock,
} from './testing.ts';
import { eventFetchingPort } from './testing-port.ts';

/** Homeservers whose `ctx.federation` fetches events from each other over the network. */
export function fetchingServers(
  names: readonly string[],
  clock?: SettableClock,
  homeserver?: Partial<HomeserverOptions>,
): Promise<FederatedNetwork> {
  return createFederatedServers(names, {
    ...(clock ? { clock } : {}),
    ...(homeserver ? { homeserver } : {}),
    federationPort: (_name, federation) => eventFetchingPort(() => federation().client),
  });
}

/**
 * a.test and b.test on one network, with alice@a.test's public room that bob@b.test has
 * joined, every event delivered both ways. The caller closes `net`.
 */
export async function twoServerRoom(): Promise<{
  net: FederatedNetwork;
  a: FederatedServer;
  b: FederatedServer;
  alice: TestUser;
  bob: TestUser;
  roomId: string;
}> {
  const net = await fetchingServers(['a.test', 'b.test']);
  const a = net.servers['a.test'] as FederatedServer;
  const b = net.servers['b.test'] as FederatedServer;
  const alice = await a.hs.createUser('alice');
  const bob = await b.hs.createUser('bob');
  const { roomId } = await a.services.rooms.createRoom(alice.userId, { preset: 'public_chat' });
  await deliver(a, b, roomId);
  await joinLocally(b, roomId, bob.userId);
  await deliver(b, a, roomId);
  return { net, a, b, alice, bob, roomId };
}

export async function versionOf(server: FederatedServer, roomId: string): Promise<RoomVersion> {
  const room = await server.hs.store.rooms.getRoom(roomId);
  if (!room) throw new Error(`${server.hs.serverName} does not have ${roomId}`);
  return getRoomVersion(room.roomVersion);
}

/** The room's timeline on `server`, in stream order (backfilled history first). */
export async function timeline(server: FederatedServer, roomId: string): Promise<StoredEvent[]> {
  const out: StoredEvent[] = [];
  let from: number | undefined = Number.MIN_SAFE_INTEGER;
  while (from !== undefined) {
    const page = await server.hs.store.rooms.timeline(roomId, { dir: 'f', from, limit: 500 });
    out.push(...page.events);
    from = page.next ?? undefined;
  }
  return out;
}

/** The room's events on `server` as they travel (wire PDUs), in stream order. */
export async function wireEvents(server: FederatedServer, roomId: string, after = 0) {
  const version = await versionOf(server, roomId);
  return (await timeline(server, roomId)).slice(after).map((e) => toWirePdu(e.event, version));
}

/**
 * Gives `to` every event of the room `from` has, in order (the create event bootstrapped if
 * `to` lacks the room): what the outbox and a join would carry. Returns the outcomes.
 */
export async function deliver(
  from: FederatedServer,
  to: FederatedServer,
  roomId: string,
): Promise<AcceptOutcome[]> {
  const events = await timeline(from, roomId);
  if (!(await to.hs.store.rooms.getRoom(roomId))) {
    const create = events[0] as StoredEvent;
    await to.hs.store.rooms.persistEvents([{ event: create.event, stateBefore: { state: new Map() } }]);
  }
  const version = await versionOf(from, roomId);
  return to.services.rooms.acceptRemote(
    roomId,
    events.map((e) => toWirePdu(e.event, version)),
  );
}

/** A local user of `server` joins the room it has. */
export async function joinLocally(server: FederatedServer, roomId: string, userId: string): Promise<string> {
  const { eventId } = await server.services.rooms.sendEvent({
    sender: userId,
    roomId,
    type: 'm.room.member',
    stateKey: userId,
    content: { membership: 'join' },
  });
  return eventId;
}

export async function say(
  server: FederatedServer,
  roomId: string,
  sender: string,
  body: string,
): Promise<string> {
  const { eventId } = await server.services.rooms.sendEvent({
    sender,
    roomId,
    type: 'm.room.message',
    content: { msgtype: 'm.text', body },
  });
  return eventId;
}
