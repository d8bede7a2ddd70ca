import { describe, expect, it } from 'vitest';
import { createMailboxes, DEFAULT_MAILBOX_LIMITS } from './mailbox.ts';

const A = 'aa'.repeat(32);
const B = 'bb'.repeat(32);

describe('relay mailboxes', () => {
  it('hands items over in deposit order, per destination, and forgets them once acknowledged', () => {
    const boxes = createMailboxes();
    const ids = ['one', 'two', 'three'].map((item) => boxes.deposit(A, B, item));
    boxes.deposit(B, A, 'other');
    expect(boxes.peek(A, 10).map((i) => i.item)).toEqual(['one', 'two', 'three']);
    expect(boxes.peek(A, 2).map((i) => i.item)).toEqual(['one', 'two']);
    expect(boxes.peek(A, 1)[0]?.from).toBe(B);
    const second = ids[1] as { ok: true; id: number };
    expect(boxes.ack(A, second.id)).toBe(2);
    expect(boxes.peek(A, 10).map((i) => i.item)).toEqual(['three']);
    expect(boxes.peek(B, 10).map((i) => i.item)).toEqual(['other']);
    expect(boxes.stats()).toMatchObject({ destinations: 2, items: 2 });
  });

  it('refuses past the per-destination and item quotas, and drops what outlived the TTL', () => {
    let now = 0;
    const boxes = createMailboxes(
      { ...DEFAULT_MAILBOX_LIMITS, maxItemsPerDestination: 2, maxItemBytes: 10, ttlMs: 1000 },
      { now: () => now },
    );
    expect(boxes.deposit(A, B, 'x'.repeat(11))).toEqual({ ok: false, reason: 'item' });
    expect(boxes.deposit(A, B, 'first').ok).toBe(true);
    now = 500;
    expect(boxes.deposit(A, B, 'second').ok).toBe(true);
    expect(boxes.deposit(A, B, 'third')).toEqual({ ok: false, reason: 'destination' });
    // Another destination has its own quota.
    expect(boxes.deposit(B, A, 'fine').ok).toBe(true);
    now = 1000;
    expect(boxes.peek(A, 10).map((i) => i.item)).toEqual(['second']);
    expect(boxes.deposit(A, B, 'third').ok).toBe(true);
    now = 5000;
    expect(boxes.peek(A, 10)).toEqual([]);
  });

  it('refuses past the total, once expired items are swept', () => {
    let now = 0;
    const boxes = createMailboxes(
      { ...DEFAULT_MAILBOX_LIMITS, maxTotalBytes: 10, ttlMs: 100 },
      { now: () => now },
    );
    expect(boxes.deposit(A, B, '12345678').ok).toBe(true);
    expect(boxes.deposit(B, A, '123')).toEqual({ ok: false, reason: 'total' });
    now = 200;
    expect(boxes.deposit(B, A, '123').ok).toBe(true);
    expect(boxes.stats()).toEqual({ destinations: 1, items: 1, bytes: 3 });
  });
});
