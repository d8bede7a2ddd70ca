/**
 * The persistent data unit (PDU): a room event as servers exchange it —
 * server-server-api.md "PDUs" and rooms/fragments/*-event-format.md.
 */
import type { JsonObject } from './canonical-json.ts';
import type { Signatures } from './signing.ts';

/** v1/v2 rooms reference events as `[event_id, {sha256: …}]`; v3+ by bare event ID. */
export type EventReference = string | [string, { sha256?: string }];

/** A PDU as it travels between servers. */
export interface Pdu {
  /** Only in room versions 1 and 2, where the origin server assigns the ID. */
  event_id?: string;
  /** Absent only on a v12 `m.room.create`, whose event ID names the room. */
  room_id?: string;
  sender: string;
  /** Deprecated; kept because v1–v10 redaction preserves it and old events carry it. */
  origin?: string;
  origin_server_ts: number;
  type: string;
  state_key?: string;
  content: JsonObject;
  prev_events: EventReference[];
  auth_events: EventReference[];
  depth: number;
  hashes: { sha256: string };
  signatures: Signatures;
  unsigned?: JsonObject;
  /** Top-level in v1–v10 redactions; in `content.redacts` from v11. */
  redacts?: string;
  [key: string]: unknown;
}

/**
 * A PDU together with its event ID. For v1/v2 the ID is part of the PDU; for v3+ it is
 * computed from the reference hash and must be removed before the PDU goes on the wire
 * (see `toWirePdu`).
 */
export interface IdentifiedPdu extends Pdu {
  event_id: string;
}

/** The `(type, state_key)` pair that names a piece of room state, as one string key. */
export type StateKey = `${string}\u0000${string}`;

export function stateKey(type: string, key: string): StateKey {
  return `${type}\u0000${key}`;
}

export function splitStateKey(key: StateKey): [type: string, stateKey: string] {
  const at = key.indexOf('\u0000');
  return [key.slice(0, at), key.slice(at + 1)];
}

/** Room state: `(type, state_key)` → event ID. */
export type StateMap = Map<StateKey, string>;

/** The event IDs of references, whatever the room version's reference format. */
export function referencedIds(refs: readonly EventReference[]): string[] {
  return refs.map((ref) => (typeof ref === 'string' ? ref : ref[0]));
}
