/**
 * The user scenario, driven by the real, unmodified matrix-js-sdk against any
 * base URL + fetch: two users register, one creates a room and invites the other, they
 * chat, paginate back through 200 messages, see each other's typing and receipts, set
 * profile and account data, redact, leave; a second client of the same user sees the same
 * rooms after an initial sync.
 */
import {
  ClientEvent,
  createClient,
  EventType,
  type MatrixClient,
  type MatrixEvent,
  MsgType,
  type Room,
  RoomEvent,
  RoomMemberEvent,
  SyncState,
} from 'matrix-js-sdk';
import { expect } from 'vitest';

export interface Target {
  baseUrl: string;
  fetchFn?: typeof fetch;
}

export const PASSWORD = 'correct horse battery staple';

/** Quiet logger: the SDK logs every sync at info level. */
const quiet = { debug() {}, info() {}, log() {}, warn() {}, error() {}, trace() {}, getChild: () => quiet };

/** Registers through the user-interactive auth flow exactly as a client does: 401, then m.login.dummy. */
export async function register(
  target: Target,
  username: string,
): Promise<{ userId: string; accessToken: string; deviceId: string }> {
  const anon = createClient({ baseUrl: target.baseUrl, fetchFn: target.fetchFn, logger: quiet as never });
  let session: string | undefined;
  try {
    await anon.registerRequest({ username, password: PASSWORD });
    throw new Error('registration without auth should ask for a UIA stage');
  } catch (err) {
    const data = (err as { data?: { session?: string; flows?: unknown } }).data;
    expect((err as { httpStatus?: number }).httpStatus).toBe(401);
    expect(data?.flows).toBeDefined();
    session = data?.session;
  }
  const done = await anon.registerRequest({
    username,
    password: PASSWORD,
    auth: { type: 'm.login.dummy', session },
  });
  return {
    userId: done.user_id,
    accessToken: done.access_token as string,
    deviceId: done.device_id as string,
  };
}

export async function login(
  target: Target,
  userId: string,
): Promise<{ userId: string; accessToken: string; deviceId: string }> {
  const anon = createClient({ baseUrl: target.baseUrl, fetchFn: target.fetchFn, logger: quiet as never });
  const res = await anon.loginRequest({
    type: 'm.login.password',
    identifier: { type: 'm.id.user', user: userId },
    password: PASSWORD,
  });
  return { userId: res.user_id, accessToken: res.access_token, deviceId: res.device_id };
}

/** A started client, resolved once its first sync is PREPARED. */
export async function startClient(
  target: Target,
  creds: { userId: string; accessToken: string; deviceId: string },
  initialSyncLimit = 20,
  lazyLoadMembers = true,
): Promise<MatrixClient> {
  const client = createClient({
    baseUrl: target.baseUrl,
    fetchFn: target.fetchFn,
    userId: creds.userId,
    accessToken: creds.accessToken,
    deviceId: creds.deviceId,
    logger: quiet as never,
  });
  const prepared = new Promise<void>((resolve, reject) => {
    const onSync = (state: SyncState) => {
      if (state === SyncState.Prepared) {
        client.off(ClientEvent.Sync, onSync);
        resolve();
      } else if (state === SyncState.Error) {
        reject(new Error('initial sync failed'));
      }
    };
    client.on(ClientEvent.Sync, onSync);
  });
  await client.startClient({ initialSyncLimit, lazyLoadMembers });
  await prepared;
  return client;
}

/** Waits until `check` holds, re-testing on every client event; fails after `ms`. */
export function until(
  clients: MatrixClient[],
  check: () => boolean,
  what: string,
  ms = 15_000,
): Promise<void> {
  if (check()) return Promise.resolve();
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`timed out waiting for ${what}`));
    }, ms);
    const poll = () => {
      if (check()) {
        cleanup();
        resolve();
      }
    };
    const events = [
      ClientEvent.Sync,
      RoomEvent.Timeline,
      RoomEvent.Receipt,
      RoomMemberEvent.Typing,
      RoomMemberEvent.Membership,
      RoomMemberEvent.Name,
      ClientEvent.AccountData,
      RoomEvent.Redaction,
      ClientEvent.Room,
    ] as const;
    const cleanup = () => {
      clearTimeout(timer);
      for (const c of clients) for (const e of events) c.off(e as never, poll as never);
    };
    for (const c of clients) for (const e of events) c.on(e as never, poll as never);
  });
}

function bodies(room: Room): string[] {
  return room
    .getLiveTimeline()
    .getEvents()
    .filter((e: MatrixEvent) => e.getType() === EventType.RoomMessage && !e.isRedacted())
    .map((e: MatrixEvent) => e.getContent().body as string);
}

export interface ScenarioResult {
  roomId: string;
  alice: { userId: string; accessToken: string; deviceId: string };
  bob: { userId: string; accessToken: string; deviceId: string };
  lastEventId: string;
}

export interface ScenarioOptions {
  /**
   * Whether to check typing notices (default true). They live only in the homeserver's memory
   * (client-server-api "Typing notifications" are ephemeral), so a host whose memory lasts
   * one request — the WASI component, one instance per request — cannot relay them.
   */
  typing?: boolean;
  /**
   * How long each step may take to show on the other client (default 15 s): longer for a host
   * that starts an instance per request and whose /sync cannot be woken, only polled.
   */
  waitMs?: number;
}

export async function runScenario(
  target: Target,
  prefix: string,
  options: ScenarioOptions = {},
): Promise<ScenarioResult> {
  const aliceCreds = await register(target, `${prefix}alice`);
  const bobCreds = await register(target, `${prefix}bob`);
  const alice = await startClient(target, aliceCreds);
  const bob = await startClient(target, bobCreds);
  const clients = [alice, bob];
  const waitFor = (on: MatrixClient[], check: () => boolean, what: string) =>
    until(on, check, what, options.waitMs);
  try {
    // Alice creates a room and invites Bob; Bob joins.
    const { room_id: roomId } = await alice.createRoom({
      name: 'Hearth test',
      preset: 'private_chat' as never,
      invite: [bobCreds.userId],
    });
    await waitFor(
      clients,
      () => bob.getRoom(roomId)?.getMyMembership() === 'invite',
      'Bob to see the invite',
    );
    await bob.joinRoom(roomId);
    await waitFor(
      clients,
      () => alice.getRoom(roomId)?.getMember(bobCreds.userId)?.membership === 'join',
      'Alice to see Bob join',
    );

    // They exchange messages.
    await alice.sendTextMessage(roomId, 'hello Bob');
    await waitFor(
      clients,
      () => bodies(bob.getRoom(roomId) as Room).includes('hello Bob'),
      "Bob to receive Alice's message",
    );
    await bob.sendTextMessage(roomId, 'hi Alice');
    await waitFor(
      clients,
      () => bodies(alice.getRoom(roomId) as Room).includes('hi Alice'),
      "Alice to receive Bob's message",
    );

    // Typing: Bob sees Alice typing, then stop.
    if (options.typing ?? true) await typing();
    async function typing() {
      await alice.sendTyping(roomId, true, 20_000);
      await waitFor(
        clients,
        () => bob.getRoom(roomId)?.getMember(aliceCreds.userId)?.typing === true,
        'Bob to see Alice typing',
      );
      await alice.sendTyping(roomId, false, 0);
      await waitFor(
        clients,
        () => bob.getRoom(roomId)?.getMember(aliceCreds.userId)?.typing === false,
        'Bob to see Alice stop typing',
      );
    }

    // 200 messages, then a fresh client of Bob paginates back through all of them.
    for (let i = 0; i < 200; i++)
      await alice.sendEvent(roomId, EventType.RoomMessage, { msgtype: MsgType.Text, body: `message ${i}` });
    const bob2 = await startClient(target, await login(target, bobCreds.userId), 10);
    clients.push(bob2);
    const room2 = bob2.getRoom(roomId) as Room;
    expect(room2).toBeTruthy();
    for (let guard = 0; guard < 30 && !bodies(room2).includes('hello Bob'); guard++)
      await bob2.scrollback(room2, 50);
    const seen = bodies(room2);
    const numbered = seen.filter((b) => b.startsWith('message '));
    expect(numbered).toEqual(Array.from({ length: 200 }, (_, i) => `message ${i}`));
    expect(seen.slice(0, 2)).toEqual(['hello Bob', 'hi Alice']);

    // Receipts: Bob reads the last message; Alice sees it.
    const last = room2.getLiveTimeline().getEvents().at(-1) as MatrixEvent;
    await bob.sendReadReceipt(bob.getRoom(roomId)?.findEventById(last.getId() as string) ?? last);
    await waitFor(
      clients,
      () => alice.getRoom(roomId)?.getEventReadUpTo(bobCreds.userId) === last.getId(),
      "Alice to see Bob's read receipt",
    );

    // Profile and account data.
    await alice.setDisplayName('Alice A.');
    await waitFor(
      clients,
      () => bob.getRoom(roomId)?.getMember(aliceCreds.userId)?.name === 'Alice A.',
      "Bob to see Alice's new name",
    );
    await alice.setAccountData('org.example.settings' as never, { theme: 'dark' } as never);
    await waitFor(
      clients,
      () => alice.getAccountData('org.example.settings' as never)?.getContent().theme === 'dark',
      'account data to come back through sync',
    );

    // Redaction: Alice redacts her first message; Bob's copy loses its content. Bob's second
    // client holds that copy: it paged back to it above, while the first one's live timeline
    // starts afresh whenever a /sync comes back limited (it fell more than its timeline limit
    // behind while the 200 messages came, as a client on a busy machine may).
    const hello = room2
      .getLiveTimeline()
      .getEvents()
      .find((e) => e.getContent().body === 'hello Bob') as MatrixEvent;
    expect(hello).toBeTruthy();
    await alice.redactEvent(roomId, hello.getId() as string);
    await waitFor(clients, () => hello.isRedacted(), 'Bob to see the redaction');
    expect(hello.getContent().body).toBeUndefined();

    // A second client of Alice sees the same rooms after an initial sync.
    const alice2 = await startClient(target, await login(target, aliceCreds.userId));
    clients.push(alice2);
    expect(alice2.getRooms().map((r) => r.roomId)).toEqual([roomId]);
    expect(alice2.getAccountData('org.example.settings' as never)?.getContent().theme).toBe('dark');

    // Bob leaves; Alice sees it.
    await bob.leave(roomId);
    await waitFor(
      clients,
      () => alice.getRoom(roomId)?.getMember(bobCreds.userId)?.membership === 'leave',
      'Alice to see Bob leave',
    );
    return { roomId, alice: aliceCreds, bob: bobCreds, lastEventId: last.getId() as string };
  } finally {
    for (const c of clients) c.stopClient();
  }
}

/** After a restart: everything the scenario left is still there, seen by a fresh client. */
export async function checkAfterRestart(target: Target, result: ScenarioResult): Promise<void> {
  const alice = await startClient(target, await login(target, result.alice.userId), 30);
  try {
    const room = alice.getRoom(result.roomId) as Room;
    expect(room).toBeTruthy();
    expect(room.getMember(result.bob.userId)?.membership).toBe('leave');
    expect(room.getMember(result.alice.userId)?.name).toBe('Alice A.');
    for (let guard = 0; guard < 30 && !bodies(room).includes('hi Alice'); guard++)
      await alice.scrollback(room, 50);
    const seen = bodies(room);
    expect(seen.filter((b) => b.startsWith('message '))).toEqual(
      Array.from({ length: 200 }, (_, i) => `message ${i}`),
    );
    expect(seen).not.toContain('hello Bob');
    // Bob's leave came after his receipt, so ask for the receipt itself, not the SDK's synthesised one.
    expect(room.getReadReceiptForUserId(result.bob.userId, true)?.eventId).toBe(result.lastEventId);
    expect(alice.getAccountData('org.example.settings' as never)?.getContent().theme).toBe('dark');
  } finally {
    alice.stopClient();
  }
}
