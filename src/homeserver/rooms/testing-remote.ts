/**
 * Test helpers for events from another server: a hand-made remote homeserver (its own
 * ed25519 key, a `KeyStore` that knows it) that builds and signs PDUs for a room the local
 * server has, on whatever prev events and state a test chooses.
 */
import {
  type AuthState,
  authStateOf,
  type IdentifiedPdu,
  type JsonObject,
  type Pdu,
  type RoomVersion,
  type SigningKey,
  signingKeyFromSeed,
  toWirePdu,
} from '../../core/index.ts';
import type { Store } from '../../storage/store.ts';
import { webRandom } from '../context.ts';
import type { KeyStore } from '../ports.ts';
import { buildEvent, type EventDraft } from './build.ts';

export interface RemoteServer {
  name: string;
  key: SigningKey;
  /** A key store that knows this server's key (and nothing else). */
  keyStore: KeyStore;
  /** `@localpart:name`. */
  user(localpart: string): string;
}

export async function remoteServer(name = 'remote.example'): Promise<RemoteServer> {
  const key = await signingKeyFromSeed(webRandom.bytes(32), 'r1');
  return {
    name,
    key,
    keyStore: {
      async verifyKeys(server, keyIds) {
        const found = new Map<string, Uint8Array>();
        if (server === name && keyIds.includes(key.keyId)) found.set(key.keyId, key.publicKey);
        return found;
      },
    },
    user: (localpart) => `@${localpart}:${name}`,
  };
}

/** Where a remote event goes: by default on the room's forward extremities and current state. */
export interface RemotePlace {
  prevEvents?: readonly IdentifiedPdu[];
  state?: AuthState;
  /** origin_server_ts; default now. */
  ts?: number;
  /** Sign with this key instead of the server's own (a forged signature). */
  key?: SigningKey;
}

/** The current state of a room as events, read from the store (what the remote server would hold). */
export async function currentAuthState(store: Store, roomId: string): Promise<AuthState> {
  return authStateOf((await store.rooms.currentStateEvents(roomId)).map((stored) => stored.event));
}

export async function extremityEvents(store: Store, roomId: string): Promise<IdentifiedPdu[]> {
  const ids = (await store.rooms.forwardExtremities(roomId)).map((e) => e.eventId);
  return [...(await store.rooms.getEvents(ids)).values()].map((stored) => stored.event);
}

/**
 * A PDU made and signed by `remote` (no auth check: a test may build a forbidden one).
 * Returns it identified (`event`) and as it travels (`wire`: v3+ without `event_id`).
 */
export async function remoteEvent(
  remote: RemoteServer,
  store: Store,
  version: RoomVersion,
  roomId: string,
  draft: EventDraft,
  place: RemotePlace = {},
): Promise<{ event: IdentifiedPdu; wire: Pdu }> {
  const event = await buildEvent(
    draft,
    {
      version,
      roomId,
      prevEvents: place.prevEvents ?? (await extremityEvents(store, roomId)),
      state: place.state ?? (await currentAuthState(store, roomId)),
    },
    {
      serverName: remote.name,
      signingKey: place.key ?? remote.key,
      now: place.ts ?? Date.now(),
      random: webRandom,
    },
  );
  return { event, wire: toWirePdu(event, version) };
}

export const message = (sender: string, body: string): EventDraft => ({
  sender,
  type: 'm.room.message',
  content: { msgtype: 'm.text', body } as JsonObject,
});

export const member = (sender: string, target: string, membership: string): EventDraft => ({
  sender,
  type: 'm.room.member',
  stateKey: target,
  content: { membership },
});
