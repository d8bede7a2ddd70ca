/**
 * What every part of one /sync answer shares (compute.ts builds it once per answer): the
 * request, the store, the stream positions read at the start, the user's ignore list, and how
 * events are shown to the client.
 */
import type { JsonObject } from '../../core/canonical-json.ts';
import type { IdentifiedPdu } from '../../core/pdu.ts';
import type { Membership, Store, StoredEvent } from '../../storage/store.ts';
import { loadClientEvents } from '../client-event.ts';
import type { HomeserverContext } from '../context.ts';
import { formatSyncToken, formatTopoToken, type SyncPositions } from '../tokens.ts';
import type { SyncFilterView } from './filter-view.ts';
import type { StateField, SyncDeps } from './types.ts';

export const MEMBER = 'm.room.member';

export interface PassInput {
  ctx: HomeserverContext;
  deps: SyncDeps;
  userId: string;
  deviceId: string | null;
  filter: SyncFilterView;
  /** Positions of the `since` token, already clamped to `now`; undefined for an initial sync. */
  since: SyncPositions | undefined;
  fullState: boolean;
  /** Where room state goes; anything but `state` means "up to the end of the timeline". */
  stateField: StateField;
}

export interface Pass {
  readonly input: PassInput;
  readonly store: Store;
  readonly userId: string;
  readonly filter: SyncFilterView;
  readonly since: SyncPositions | undefined;
  /** Every stream is read up to these positions, so `next_batch` names what the answer covers. */
  readonly now: SyncPositions;
  /** Users the user ignores ("Ignoring Users"). */
  readonly ignored: ReadonlySet<string>;
  /**
   * Events as the client sees them (client-event.ts): without `room_id` (the section names the
   * room), `transaction_id` for the sending device only, then `event_fields`. `prev_content`
   * is looked up for the timeline only: state events are many and clients apply them as a set.
   */
  formatEvents(events: readonly StoredEvent[], prevContent: boolean): Promise<JsonObject[]>;
}

export function createPass(input: PassInput, now: SyncPositions, ignored: ReadonlySet<string>): Pass {
  const { store } = input.ctx;
  const clock = input.ctx.clock.now();
  return {
    input,
    store,
    userId: input.userId,
    filter: input.filter,
    since: input.since,
    now,
    ignored,
    async formatEvents(events, prevContent) {
      const viewer = { userId: input.userId, deviceId: input.deviceId };
      const formatted = await loadClientEvents(store, events, viewer, clock, {
        withRoomId: false,
        format: input.filter.eventFormat,
        prevContent,
        relations: prevContent,
      });
      return formatted.map((event) => input.filter.fields(event));
    },
  };
}

/** One joined or left room of the answer, and the bounds of what it shows. */
export interface RoomPlan {
  roomId: string;
  section: 'join' | 'leave';
  membership: Membership;
  /** Send the whole state at the timeline start, not a change since `since`. */
  fullState: boolean;
  /** Timeline bounds in stream positions: (lower, upper]; lower undefined = from the beginning. */
  lower: number | undefined;
  upper: number;
  /** Whether the room can have timeline events in the range (else nothing but ephemeral news). */
  fetch: boolean;
  /** Joined since `since`: its members' devices are new to the client. */
  newlyJoined?: boolean;
}

/** The membership recorded in a member event's content (client-server-api `m.room.member`). */
export const membershipOf = (event: IdentifiedPdu | undefined) =>
  typeof event?.content.membership === 'string' ? event.content.membership : undefined;

export const limitList = <T>(list: T[], max: number | undefined): T[] =>
  max === undefined ? list : list.slice(0, max);

/**
 * The `prev_batch` of a timeline starting at `first` (a token /messages reads): just before
 * it, or at `upper` when the timeline is empty.
 */
export function prevBatchFor(first: StoredEvent | undefined, now: SyncPositions, upper: number): string {
  if (first === undefined) return formatSyncToken({ ...now, events: upper });
  if ((first.stream ?? 0) >= 1) return formatSyncToken({ ...now, events: (first.stream as number) - 1 });
  // Backfilled history has negative stream positions: a topological token names it.
  return formatTopoToken({ depth: first.depth, stream: (first.stream ?? 0) - 1 });
}
