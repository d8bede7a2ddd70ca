/**
 * Long-polls hear of what another homeserver on the same database stored (two `hearth serve`
 * on one `--data`): when the store finds another connection's commit (`onCommittedElsewhere`),
 * the timeline events, receipts and filled partial-state rooms stored since the positions last
 * looked at wake the waiters of their rooms (and a membership event's user); what is kept per
 * user — account data, to-device messages, device lists — or more events than one read takes
 * wakes every waiter, whose passes read what they show from the store. Without it such a
 * long-poll slept until its timeout, or until this homeserver's own next write to one of its
 * rooms.
 */
import type { StreamPositions } from '../storage/store.ts';
import type { HomeserverContext } from './context.ts';
import type { ChangedEvent } from './notifier.ts';

/** Timeline events read at one commit found: past this, every waiter is woken instead. */
const EVENTS_READ = 200;

/** Starts listening; stops when the store closes, or with the function returned. */
export function hearCommitsElsewhere(
  ctx: Pick<HomeserverContext, 'store' | 'notifier' | 'logger'>,
): () => void {
  const { store, notifier, logger } = ctx;
  let seen: StreamPositions | undefined;
  /** Whether a read is under way, and whether another commit was found meanwhile. */
  let reading = false;
  let again = false;

  const look = async (): Promise<void> => {
    const before = seen ?? (await store.positions());
    const { positions, events, complete } = await store.positionsWithEvents(before.events, EVENTS_READ);
    // Per user, and not read by position across users: every waiter wakes.
    if (
      !complete ||
      positions.accountData !== before.accountData ||
      positions.toDevice !== before.toDevice ||
      positions.deviceLists !== before.deviceLists
    ) {
      seen = positions;
      notifier.notify({ everyone: true });
      return;
    }
    const rooms = new Set<string>();
    const users = new Set<string>();
    const changed: ChangedEvent[] = [];
    for (const { event, roomId, stream } of events) {
      rooms.add(roomId);
      if (event.type === 'm.room.member' && typeof event.state_key === 'string') users.add(event.state_key);
      if (stream !== null) changed.push({ roomId, eventId: event.event_id, stream });
    }
    // Receipts (the commonest of the rest) and filled partial-state rooms, by their rooms.
    if (positions.receipts !== before.receipts) {
      for (const receipt of await store.receipts.receiptsSince(before.receipts, positions.receipts)) {
        rooms.add(receipt.roomId);
      }
    }
    if (positions.partialState !== before.partialState) {
      for (const roomId of await store.rooms.roomsFilledSince(before.partialState, positions.partialState)) {
        rooms.add(roomId);
      }
    }
    // Moved on only once every read has answered: a failed one is read again at the next look.
    seen = positions;
    if (rooms.size > 0 || users.size > 0) notifier.notify({ rooms, users, events: changed });
  };

  const found = (): void => {
    if (reading) {
      again = true;
      return;
    }
    reading = true;
    look()
      .catch((error: unknown) => {
        // A closing store, a busy database: the next commit found reads again from `seen`.
        logger.debug('reading what another writer stored failed', { error: String(error) });
      })
      .finally(() => {
        reading = false;
        if (again) {
          again = false;
          found();
        }
      });
  };

  // Where this homeserver starts from: what is stored before it listens is nobody's news.
  store.positions().then(
    (positions) => {
      seen ??= positions;
    },
    () => {},
  );
  return store.onCommittedElsewhere(found);
}
