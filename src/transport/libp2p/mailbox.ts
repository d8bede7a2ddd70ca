/**
 * The relay's store-and-forward mailboxes: opaque items (signed federation requests, which the
 * relay can neither read usefully nor forge — their X-Matrix and event signatures are checked
 * by the destination) held per destination server, in deposit order, under quotas and a TTL.
 * Memory only: a relay restart loses what it held, and the senders' peers fill the gap with
 * `get_missing_events`/backfill once they meet again.
 */

export interface MailboxLimits {
  /** Items held for one destination. */
  maxItemsPerDestination: number;
  /** Bytes held for one destination. */
  maxBytesPerDestination: number;
  /** Bytes of one item. */
  maxItemBytes: number;
  /** Bytes held in all. */
  maxTotalBytes: number;
  /** How long an item waits before it is dropped. */
  ttlMs: number;
}

/**
 * One destination may be sent a few days of a busy room: 1000 items (one PDU each) or 16 MiB.
 * A PDU is at most 64 KiB, so an item (PDU + signed request) stays under 128 KiB. A week is
 * long enough for two people who are rarely online at the same moment.
 */
export const DEFAULT_MAILBOX_LIMITS: MailboxLimits = {
  maxItemsPerDestination: 1000,
  maxBytesPerDestination: 16 * 1024 * 1024,
  maxItemBytes: 128 * 1024,
  maxTotalBytes: 256 * 1024 * 1024,
  ttlMs: 7 * 24 * 60 * 60 * 1000,
};

export interface MailboxItem {
  id: number;
  /** The depositor's server name (as its connection proved it). */
  from: string;
  depositedAt: number;
  item: string;
}

export type DepositResult =
  | { ok: true; id: number }
  | { ok: false; reason: 'item' | 'destination' | 'total' };

export interface Mailboxes {
  deposit(destination: string, from: string, item: string): DepositResult;
  /** The oldest `limit` items for `destination`, in deposit order. */
  peek(destination: string, limit: number): MailboxItem[];
  /** Drops `destination`'s items up to and including `throughId`; returns how many. */
  ack(destination: string, throughId: number): number;
  stats(): { destinations: number; items: number; bytes: number };
}

const byteLength = (text: string) => new TextEncoder().encode(text).byteLength;

export function createMailboxes(
  limits: MailboxLimits = DEFAULT_MAILBOX_LIMITS,
  clock: { now(): number } = Date,
): Mailboxes {
  const boxes = new Map<string, { items: Array<MailboxItem & { bytes: number }>; bytes: number }>();
  let total = 0;
  let nextId = 1;

  function sweep(destination: string): void {
    const box = boxes.get(destination);
    if (!box) return;
    const cutoff = clock.now() - limits.ttlMs;
    while (box.items.length > 0 && (box.items[0]?.depositedAt ?? 0) <= cutoff) {
      const gone = box.items.shift() as { bytes: number };
      box.bytes -= gone.bytes;
      total -= gone.bytes;
    }
    if (box.items.length === 0) boxes.delete(destination);
  }

  return {
    deposit(destination, from, item) {
      sweep(destination);
      const bytes = byteLength(item);
      if (bytes > limits.maxItemBytes) return { ok: false, reason: 'item' };
      const box = boxes.get(destination) ?? { items: [], bytes: 0 };
      if (
        box.items.length >= limits.maxItemsPerDestination ||
        box.bytes + bytes > limits.maxBytesPerDestination
      ) {
        return { ok: false, reason: 'destination' };
      }
      if (total + bytes > limits.maxTotalBytes) {
        for (const name of [...boxes.keys()]) sweep(name);
        if (total + bytes > limits.maxTotalBytes) return { ok: false, reason: 'total' };
      }
      const id = nextId++;
      box.items.push({ id, from, depositedAt: clock.now(), item, bytes });
      box.bytes += bytes;
      total += bytes;
      boxes.set(destination, box);
      return { ok: true, id };
    },
    peek(destination, limit) {
      sweep(destination);
      return (boxes.get(destination)?.items ?? [])
        .slice(0, limit)
        .map(({ id, from, depositedAt, item }) => ({ id, from, depositedAt, item }));
    },
    ack(destination, throughId) {
      const box = boxes.get(destination);
      if (!box) return 0;
      let removed = 0;
      while (box.items.length > 0 && (box.items[0]?.id ?? Infinity) <= throughId) {
        const gone = box.items.shift() as { bytes: number };
        box.bytes -= gone.bytes;
        total -= gone.bytes;
        removed++;
      }
      if (box.items.length === 0) boxes.delete(destination);
      return removed;
    },
    stats() {
      let items = 0;
      for (const box of boxes.values()) items += box.items.length;
      return { destinations: boxes.size, items, bytes: total };
    },
  };
}
