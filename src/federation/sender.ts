/**
 * The outgoing federation sender — server-server-api.md "Transactions": per destination, the
 * durable outbox (`store.federation.outbox`, rows written by accept in the same transaction
 * as their event, and EDUs of typing, receipts and presence) is sent as transactions of at
 * most 50 PDUs and 100 EDUs, one transaction in flight per destination, in order. Rows are
 * acknowledged only after a 200 answer, so a crash or a refused request sends them again
 * (the receiver answers a replayed txnId with its first answer, and accept takes a known
 * event as known).
 *
 * A transaction the destination refuses for good (a 4xx that retrying cannot change,
 * `refusedForGood`) is dropped rather than sent again forever. A failed destination is
 * retried with full-jitter exponential backoff — a delay drawn
 * uniformly from [0, min(1 h, 1 s · 2^failures)) (the AWS Architecture Blog's "full jitter",
 * which spreads retries of many senders best) — kept in `store.federation` so a restart
 * keeps the backoff; an inbound request from the destination (`seen`) resets it at once.
 * Clock, randomness and timers are injected: tests drive it with a manual clock.
 *
 * Store-and-forward: when a destination is unreachable and the transport can hold requests for
 * it (`FederationTransport.hold`, libp2p relays), the outbox is handed over instead of waiting —
 * one signed `/send` per PDU, so the receiver checks and applies each on its own and an item
 * altered on the way costs only itself — and acknowledged once the relay has taken it.
 */
import type { JsonObject } from '../core/canonical-json.ts';
import { type Pdu, roomVersions, toWirePdu } from '../core/index.ts';
import type { Clock, Logger, Random } from '../homeserver/context.ts';
import type { Store } from '../storage/store.ts';
import { isTransportError } from '../transport/transport.ts';
import { type FederationClient, type FederationRequest, FederationRequestError } from './client.ts';

/** "A transaction is limited to 50 PDUs and 100 EDUs". */
export const MAX_PDUS_PER_TXN = 50;
export const MAX_EDUS_PER_TXN = 100;
/** Backoff bounds: the first retry within a second, never more than an hour apart. */
export const MIN_RETRY_MS = 1_000;
export const MAX_RETRY_MS = 60 * 60 * 1_000;

export interface Timers {
  set(fn: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

const systemTimers: Timers = {
  set: (fn, ms) => {
    const handle = setTimeout(fn, ms);
    // A pending retry must not keep a Node process alive.
    (handle as { unref?: () => void }).unref?.();
    return handle;
  },
  clear: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

export interface SenderOptions {
  serverName: string;
  store: Store;
  client: FederationClient;
  clock: Clock;
  random: Random;
  logger: Logger;
  timers?: Timers;
}

export interface Sender {
  /** Starts: sends what waits in the outbox (e.g. from before a restart). */
  start(): void;
  /** New outbox rows for these destinations (all destinations with rows when absent). */
  wake(destinations?: readonly string[]): void;
  /** A request from `destination` arrived: it is up, so its backoff is reset and its queue sent. */
  seen(destination: string): void;
  /**
   * The transport is back (a browser tab took over carrying federation): every destination
   * with a queue has its backoff reset and its queue sent.
   */
  resume(): void;
  /** Resolves once no destination is sending (tests). */
  idle(): Promise<void>;
  stop(): void;
}

/**
 * Answers to `PUT /send` that retrying cannot change: the destination read the transaction
 * and refused it (400 M_BAD_JSON / M_TOO_LARGE, 403, 413 …). As Synapse does, these drop the
 * transaction and count as the destination being up. Retried with backoff: 401 (it could not
 * check our signature yet — fetching our key may have failed), 404 and 405 (no federation
 * endpoint there: a proxy or another service answering), 408 and 429 (come back later), and
 * every 5xx or network failure.
 */
const RETRIED_4XX = new Set([401, 404, 405, 408, 429]);

export function refusedForGood(err: unknown): boolean {
  return (
    err instanceof FederationRequestError &&
    err.status >= 400 &&
    err.status < 500 &&
    !RETRIED_4XX.has(err.status)
  );
}

/** Full jitter: uniform in [0, cap). */
function jittered(random: Random, cap: number): number {
  const [a = 0, b = 0, c = 0, d = 0] = random.bytes(4);
  const unit = ((a << 24) | (b << 16) | (c << 8) | d) >>> 0;
  return Math.floor((unit / 2 ** 32) * cap);
}

export function createSender(options: SenderOptions): Sender {
  const { serverName, store, client, clock, random, logger } = options;
  const timers = options.timers ?? systemTimers;
  const inFlight = new Map<string, Promise<void>>();
  /** Destinations woken while sending: they go round again. */
  const again = new Set<string>();
  const retryTimers = new Map<string, unknown>();
  /** Look-ups that may start sends (listing the outbox, resetting a backoff): `idle` waits for them. */
  const tasks = new Set<Promise<unknown>>();
  let running = false;

  const track = (task: Promise<unknown>): void => {
    tasks.add(task);
    task.finally(() => tasks.delete(task)).catch(() => undefined);
  };

  /** PDUs as they travel: v3+ without `event_id` (the room's version decides). */
  async function wirePdus(eventIds: readonly string[]): Promise<Pdu[]> {
    const stored = await store.rooms.getEvents(eventIds);
    const versions = new Map<string, string>();
    const pdus: Pdu[] = [];
    for (const id of eventIds) {
      const event = stored.get(id);
      if (!event) continue; // purged since: nothing to send
      let versionId = versions.get(event.roomId);
      if (versionId === undefined) {
        versionId = (await store.rooms.getRoom(event.roomId))?.roomVersion ?? '1';
        versions.set(event.roomId, versionId);
      }
      const version = roomVersions[versionId];
      pdus.push(version ? toWirePdu(event.event, version) : event.event);
    }
    return pdus;
  }

  /** Sends one transaction; true when there may be more to send. */
  async function sendOne(destination: string): Promise<boolean> {
    const rows = await store.federation.outbox(destination, MAX_PDUS_PER_TXN + MAX_EDUS_PER_TXN);
    if (rows.length === 0) return false;
    const pduIds: string[] = [];
    const edus: JsonObject[] = [];
    let lastSeq = 0;
    for (const row of rows) {
      if (row.kind === 'pdu') {
        if (pduIds.length === MAX_PDUS_PER_TXN) break;
        pduIds.push(row.eventId);
      } else {
        if (edus.length === MAX_EDUS_PER_TXN) break;
        edus.push(row.edu);
      }
      lastSeq = row.seq;
    }
    const firstSeq = rows[0]?.seq as number;
    const txn: JsonObject = {
      origin: serverName,
      origin_server_ts: clock.now(),
      pdus: (await wirePdus(pduIds)) as unknown as JsonObject[],
      edus,
    };
    // The same rows make the same txnId, so a retry the receiver already applied is answered as such.
    const txnId = `${firstSeq}-${lastSeq}`;
    try {
      await client.request(destination, {
        method: 'PUT',
        target: `/_matrix/federation/v1/send/${encodeURIComponent(txnId)}`,
        body: txn,
      });
    } catch (err) {
      if (!refusedForGood(err)) throw err;
      // Sending the same rows again would meet the same refusal, and hold up everything
      // queued behind them for good: they are dropped. A PDU dropped here is not lost to the
      // room: the destination fetches it with get_missing_events when a later event refers
      // to it.
      logger.warn('federation: a transaction was refused, its rows are dropped', {
        destination,
        txnId,
        pdus: pduIds.length,
        edus: edus.length,
        error: String(err),
      });
    }
    await store.federation.ackOutbox(destination, lastSeq);
    return true;
  }

  /**
   * Hands everything in `destination`'s outbox to the transport's store-and-forward, in order:
   * each PDU in a transaction of its own, each run of EDUs in one. True once all was taken.
   */
  async function hold(destination: string): Promise<boolean> {
    if (!client.hold) return false;
    for (;;) {
      const rows = await store.federation.outbox(destination, MAX_PDUS_PER_TXN + MAX_EDUS_PER_TXN);
      if (rows.length === 0) return true;
      const requests: FederationRequest[] = [];
      const transaction = (txnId: string, pdus: JsonObject[], edus: JsonObject[]): FederationRequest => ({
        method: 'PUT',
        target: `/_matrix/federation/v1/send/${encodeURIComponent(txnId)}`,
        body: { origin: serverName, origin_server_ts: clock.now(), pdus, edus },
      });
      let edus: JsonObject[] = [];
      let eduFrom = 0;
      let lastSeq = 0;
      const flushEdus = () => {
        if (edus.length > 0) requests.push(transaction(`h${eduFrom}-${lastSeq}`, [], edus));
        edus = [];
      };
      for (const row of rows) {
        if (row.kind === 'pdu') {
          flushEdus();
          const [pdu] = await wirePdus([row.eventId]);
          if (pdu) requests.push(transaction(`h${row.seq}`, [pdu as unknown as JsonObject], []));
        } else {
          if (edus.length === MAX_EDUS_PER_TXN) flushEdus();
          if (edus.length === 0) eduFrom = row.seq;
          edus.push(row.edu);
        }
        lastSeq = row.seq;
      }
      flushEdus();
      if (!(await client.hold(destination, requests))) return false;
      await store.federation.ackOutbox(destination, lastSeq);
      logger.info('federation: destination unreachable, transactions handed to store-and-forward', {
        destination,
        requests: requests.length,
      });
    }
  }

  async function backOff(destination: string, error: unknown): Promise<void> {
    const previous = await store.federation.getDestination(destination);
    const failures =
      previous && previous.retryInterval > 0 ? Math.log2(previous.retryInterval / MIN_RETRY_MS) + 1 : 0;
    const cap = Math.min(MAX_RETRY_MS, MIN_RETRY_MS * 2 ** failures);
    const delay = jittered(random, cap);
    await store.federation.setDestination(destination, {
      retryAt: clock.now() + delay,
      retryInterval: cap,
      lastSuccessAt: previous?.lastSuccessAt ?? null,
    });
    logger.warn('federation: sending failed, will retry', {
      destination,
      retryInMs: delay,
      error: String(error),
    });
    schedule(destination, delay);
  }

  function schedule(destination: string, delay: number): void {
    const existing = retryTimers.get(destination);
    if (existing !== undefined) timers.clear(existing);
    retryTimers.set(
      destination,
      timers.set(() => {
        retryTimers.delete(destination);
        send(destination);
      }, delay),
    );
  }

  async function drain(destination: string): Promise<void> {
    let state = await store.federation.getDestination(destination);
    if (state && state.retryAt > clock.now()) {
      schedule(destination, state.retryAt - clock.now());
      return;
    }
    for (;;) {
      again.delete(destination);
      let more: boolean;
      try {
        more = await sendOne(destination);
      } catch (err) {
        const unreachable = isTransportError(err) && err.code === 'UNREACHABLE';
        if (unreachable && (await hold(destination).catch(() => false))) return;
        await backOff(destination, err);
        return;
      }
      if (more && state?.retryInterval) {
        // Up again: the next failure starts the backoff from the beginning.
        state = { retryAt: 0, retryInterval: 0, lastSuccessAt: clock.now() };
        await store.federation.setDestination(destination, state);
      }
      if (!more && !again.has(destination)) return;
      if (!running) return;
    }
  }

  function send(destination: string): void {
    if (!running) return;
    if (inFlight.has(destination)) {
      again.add(destination);
      return;
    }
    const work = drain(destination)
      .catch((err) => logger.error('federation: sender failed', { destination, error: String(err) }))
      .finally(() => {
        inFlight.delete(destination);
        if (again.has(destination)) send(destination);
      });
    inFlight.set(destination, work);
  }

  function wakeAll(): void {
    track(
      store.federation
        .destinationsWithOutbox()
        .then((destinations) => {
          for (const destination of destinations) send(destination);
        })
        .catch((err) => logger.error('federation: cannot list the outbox', { error: String(err) })),
    );
  }

  /** Forgets `destination`'s backoff and sends its queue, if it was backing off. */
  async function resetBackoff(destination: string): Promise<void> {
    try {
      const state = await store.federation.getDestination(destination);
      if (!state || state.retryInterval === 0) return;
      await store.federation.setDestination(destination, {
        retryAt: 0,
        retryInterval: 0,
        lastSuccessAt: state.lastSuccessAt,
      });
      const timer = retryTimers.get(destination);
      if (timer !== undefined) timers.clear(timer);
      retryTimers.delete(destination);
      send(destination);
    } catch (err) {
      logger.error('federation: cannot reset a backoff', { destination, error: String(err) });
    }
  }

  return {
    start() {
      running = true;
      wakeAll();
    },
    wake(destinations) {
      if (!running) return;
      if (destinations === undefined) wakeAll();
      else for (const destination of destinations) send(destination);
    },
    seen(destination) {
      if (!running) return;
      track(resetBackoff(destination));
    },
    resume() {
      if (!running) return;
      track(
        store.federation
          .destinationsWithOutbox()
          .then((destinations) => Promise.all(destinations.map(resetBackoff)))
          .catch((err) => logger.error('federation: cannot list the outbox', { error: String(err) })),
      );
    },
    async idle() {
      while (inFlight.size > 0 || tasks.size > 0)
        await Promise.all([...inFlight.values(), ...tasks.values()]);
    },
    stop() {
      running = false;
      for (const timer of retryTimers.values()) timers.clear(timer);
      retryTimers.clear();
    },
  };
}
