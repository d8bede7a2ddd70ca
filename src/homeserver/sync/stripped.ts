/**
 * Stripped state for `invite_state` and `knock_state` — client-server-api "Stripped state":
 * only `sender`, `type`, `state_key` and `content`, and from v1.16 the `m.room.create` event
 * is required. Servers must prune what they received over federation into this schema.
 */
import type { JsonObject } from '../../core/canonical-json.ts';
import { type IdentifiedPdu, type StateMap, stateKey } from '../../core/pdu.ts';
import type { Store } from '../../storage/store.ts';

export interface StrippedStateEvent {
  sender: string;
  type: string;
  state_key: string;
  content: JsonObject;
}

/** The state types the spec lists for stripped state, in the order clients read them. */
export const STRIPPED_STATE_TYPES = [
  'm.room.create',
  'm.room.join_rules',
  'm.room.name',
  'm.room.avatar',
  'm.room.topic',
  'm.room.canonical_alias',
  'm.room.encryption',
] as const;

const isObject = (value: unknown): value is JsonObject =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** One event pruned to the stripped schema, or null when it lacks a required key. */
export function stripEvent(event: unknown): StrippedStateEvent | null {
  if (!isObject(event)) return null;
  const { sender, type, state_key: key, content } = event;
  if (typeof sender !== 'string' || typeof type !== 'string' || typeof key !== 'string' || !isObject(content))
    return null;
  return { sender, type, state_key: key, content };
}

/**
 * The stripped state shown with an invite or knock membership event: what the event itself
 * carries (`unsigned.invite_room_state` / `knock_room_state`, pruned) when present, otherwise
 * what this server knows of the room's state at the event, then the membership event itself
 * (clients find the inviter through it).
 */
export async function strippedStateFor(
  store: Store,
  membershipEvent: IdentifiedPdu,
): Promise<StrippedStateEvent[]> {
  const carried = (membershipEvent.unsigned as JsonObject | undefined)?.[
    membershipEvent.content.membership === 'knock' ? 'knock_room_state' : 'invite_room_state'
  ];
  const out: StrippedStateEvent[] = [];
  if (Array.isArray(carried) && carried.length > 0) {
    for (const event of carried) {
      const stripped = stripEvent(event);
      if (
        stripped &&
        !(stripped.type === 'm.room.member' && stripped.state_key === membershipEvent.state_key)
      )
        out.push(stripped);
    }
  } else {
    const state: StateMap | null = await store.rooms.stateAt(membershipEvent.event_id, 'before');
    if (state) {
      const ids = STRIPPED_STATE_TYPES.map((type) => state.get(stateKey(type, ''))).filter(
        (id): id is string => id !== undefined,
      );
      // The inviter's own member event lets clients show who invited with their display name.
      const inviter = state.get(stateKey('m.room.member', membershipEvent.sender));
      if (inviter !== undefined && membershipEvent.sender !== membershipEvent.state_key) ids.push(inviter);
      const events = await store.rooms.getEvents(ids);
      for (const id of ids) {
        const stripped = stripEvent(events.get(id)?.event);
        if (stripped) out.push(stripped);
      }
    }
  }
  const own = stripEvent(membershipEvent);
  if (own) out.push(own);
  return out;
}
