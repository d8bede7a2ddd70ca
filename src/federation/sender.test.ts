/**
 * The sender on a manual clock and manual timers: transactions within the spec's limits,
 * rows acknowledged only after a 200, full-jitter backoff from 1 s doubling to 1 h, and the
 * backoff reset by an inbound request from the destination.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { JsonObject } from '../core/canonical-json.ts';
import { silentLogger } from '../homeserver/context.ts';
import { openTestStore } from '../homeserver/testing.ts';
import { seedRoom } from '../storage/conformance/testing.ts';
import type { Store } from '../storage/store.ts';
import type { FederationClient, FederationRequest } from './client.ts';
import { FederationRequestError } from './client.ts';
import { createSender, MAX_RETRY_MS, type Sender, type Timers } from './sender.ts';
import { settableClock } from './testing.ts';

let store: Store | undefined;
let sender: Sender | undefined;
afterEach(async () => {
  sender?.stop();
  await store?.close();
  store = undefined;
});

/** Timers that fire only when the test moves the clock past them. */
function manualTimers(clock: ReturnType<typeof settableClock>) {
  const pending: { at: number; fn: () => void; id: number }[] = [];
  let next = 0;
  const timers: Timers = {
    set(fn, ms) {
      const id = ++next;
      pending.push({ at: clock.now() + ms, fn, id });
      return id;
    },
    clear(handle) {
      const i = pending.findIndex((t) => t.id === handle);
      if (i >= 0) pending.splice(i, 1);
    },
  };
  return {
    timers,
    /** The delay of the earliest pending timer. */
    nextDelay: () => Math.min(...pending.map((t) => t.at)) - clock.now(),
    advance(ms: number) {
      clock.advance(ms);
      for (const t of pending.filter((t) => t.at <= clock.now())) {
        timers.clear(t.id);
        t.fn();
      }
    },
  };
}

/** A client whose answers the test decides; it records every transaction. */
function scriptedClient() {
  const sent: { destination: string; txnId: string; body: JsonObject }[] = [];
  let failing: false | true | number = false;
  const client: FederationClient = {
    async request(destination: string, request: FederationRequest) {
      if (failing === true) throw new FederationRequestError(502, undefined, 'down');
      if (failing !== false) throw new FederationRequestError(failing, 'M_UNKNOWN', `answered ${failing}`);
      sent.push({
        destination,
        txnId: request.target.split('/').pop() as string,
        body: request.body as JsonObject,
      });
      return { pdus: {} };
    },
  };
  return { client, sent, fail: (on: boolean | number) => (failing = on) };
}

/** Randomness that always draws the top of the range (the full backoff cap, minus one). */
const maxRandom = { bytes: (n: number) => new Uint8Array(n).fill(0xff) };

/** a.test's sender on `store`, with the maximal random draw (not started). */
const startSender = (
  on: Store,
  client: FederationClient,
  clock: ReturnType<typeof settableClock>,
  timers?: Timers,
): Sender =>
  createSender({
    serverName: 'a.test',
    store: on,
    client,
    clock,
    random: maxRandom,
    logger: silentLogger,
    ...(timers ? { timers } : {}),
  });

describe('the federation sender', () => {
  it('sends the outbox in transactions of at most 50 PDUs and 100 EDUs, acknowledging after a 200', async () => {
    store = await openTestStore();
    const room = await seedRoom(store, 0);
    const events = Array.from({ length: 60 }, () => room.message());
    await store.rooms.persistEvents(events.map((e) => ({ ...e, destinations: ['b.test'] })));
    for (let i = 0; i < 120; i++)
      await store.federation.enqueueEdu(['b.test'], { edu_type: 'm.typing', content: { i } });
    const clock = settableClock();
    const { client, sent } = scriptedClient();
    sender = startSender(store, client, clock);
    sender.start();
    await sender.idle();
    expect(sent.map((t) => [(t.body.pdus as unknown[]).length, (t.body.edus as unknown[]).length])).toEqual([
      [50, 0],
      [10, 100],
      [0, 20],
    ]);
    expect(sent.every((t) => t.body.origin === 'a.test')).toBe(true);
    expect(new Set(sent.map((t) => t.txnId)).size).toBe(3);
    expect(await store.federation.outbox('b.test', 10)).toEqual([]);
  });

  it('backs off with full jitter from 1 s to 1 h, keeps the rows, and resets when the peer is seen', async () => {
    store = await openTestStore();
    const room = await seedRoom(store, 0);
    await store.rooms.persistEvents([{ ...room.message(), destinations: ['b.test'] }]);
    const clock = settableClock();
    const manual = manualTimers(clock);
    const { client, sent, fail } = scriptedClient();
    fail(true);
    sender = startSender(store, client, clock, manual.timers);
    sender.start();
    await sender.idle();
    // Each failure doubles the cap; the maximal draw is just under it.
    const delays: number[] = [];
    for (let i = 0; i < 14; i++) {
      const delay = manual.nextDelay();
      delays.push(delay);
      manual.advance(delay);
      await sender.idle();
    }
    expect(delays.slice(0, 4)).toEqual([999, 1999, 3999, 7999]);
    expect(Math.max(...delays)).toBe(MAX_RETRY_MS - 1);
    expect(delays.at(-1)).toBe(MAX_RETRY_MS - 1);
    expect(sent).toEqual([]);
    expect((await store.federation.outbox('b.test', 10)).length).toBe(1);
    expect((await store.federation.getDestination('b.test'))?.retryInterval).toBe(MAX_RETRY_MS);

    // The peer calls us: it is up. The queue goes at once and the backoff starts over.
    fail(false);
    sender.seen('b.test');
    await sender.idle();
    expect(sent.length).toBe(1);
    expect(await store.federation.outbox('b.test', 10)).toEqual([]);
    expect((await store.federation.getDestination('b.test'))?.retryInterval ?? 0).toBe(0);
  });

  it('resumes every backing-off destination at once when the transport is back', async () => {
    store = await openTestStore();
    const room = await seedRoom(store, 0);
    await store.rooms.persistEvents([{ ...room.message(), destinations: ['b.test', 'c.test'] }]);
    const clock = settableClock();
    const manual = manualTimers(clock);
    const { client, sent, fail } = scriptedClient();
    fail(true);
    sender = createSender({
      serverName: 'a.test',
      store,
      client,
      clock,
      random: maxRandom,
      logger: silentLogger,
      timers: manual.timers,
    });
    sender.start();
    await sender.idle();
    for (let i = 0; i < 6; i++) {
      manual.advance(manual.nextDelay());
      await sender.idle();
    }
    expect(manual.nextDelay()).toBeGreaterThan(30_000);
    expect((await store.federation.getDestination('c.test'))?.retryInterval).toBeGreaterThan(30_000);

    // No time passes: the transport coming back is enough.
    fail(false);
    sender.resume();
    await sender.idle();
    expect(sent.map((t) => t.destination).sort()).toEqual(['b.test', 'c.test']);
    expect(sent.map((t) => (t.body.pdus as { event_id?: string }[]).length)).toEqual([1, 1]);
    for (const destination of ['b.test', 'c.test']) {
      expect(await store.federation.outbox(destination, 10)).toEqual([]);
      expect((await store.federation.getDestination(destination))?.retryInterval ?? 0).toBe(0);
    }
  });

  it('is woken by new outbox rows and stops on stop()', async () => {
    store = await openTestStore();
    const room = await seedRoom(store, 0);
    const clock = settableClock();
    const { client, sent } = scriptedClient();
    sender = startSender(store, client, clock);
    sender.start();
    await store.rooms.persistEvents([{ ...room.message(), destinations: ['b.test'] }]);
    sender.wake(['b.test']);
    await sender.idle();
    expect(sent.length).toBe(1);
    sender.stop();
    await store.rooms.persistEvents([{ ...room.message(), destinations: ['b.test'] }]);
    sender.wake(['b.test']);
    await sender.idle();
    expect(sent.length).toBe(1);
  });

  it('drops a transaction refused with a 4xx retrying cannot change, and retries the others', async () => {
    store = await openTestStore();
    const room = await seedRoom(store, 0);
    const clock = settableClock();
    const manual = manualTimers(clock);
    const { client, sent, fail } = scriptedClient();
    sender = startSender(store, client, clock, manual.timers);
    sender.start();
    const queue = async () => {
      await store?.rooms.persistEvents([{ ...room.message(), destinations: ['b.test'] }]);
      sender?.wake(['b.test']);
      await sender?.idle();
    };
    // Refused for good: the row goes, nothing is scheduled, the destination is not backed off.
    for (const status of [400, 403, 413]) {
      fail(status);
      await queue();
      expect(await store.federation.outbox('b.test', 10)).toEqual([]);
      expect((await store.federation.getDestination('b.test'))?.retryInterval ?? 0).toBe(0);
    }
    // Worth another try: the row stays and a retry is scheduled.
    for (const status of [401, 404, 429, 500]) {
      fail(status);
      await queue();
      expect((await store.federation.outbox('b.test', 10)).length).toBe(1);
      expect((await store.federation.getDestination('b.test'))?.retryInterval).toBeGreaterThan(0);
      fail(false);
      manual.advance(manual.nextDelay());
      await sender.idle();
      expect(await store.federation.outbox('b.test', 10)).toEqual([]);
    }
    expect(sent.length).toBe(4);
  });
});
