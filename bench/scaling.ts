/**
 * Scaling (issue 13): how each cost grows with the size that should not matter, or should
 * matter only in proportion. Every row gives the figure at each size and the growth factor
 * from the smallest to the largest size beside the growth of the size itself, so a cost that
 * grows faster than the work is visible at a glance.
 *
 * - send latency and store transactions per send, in a room of 2 / 16 / 100 / 1,000 members
 *   (transactions counted by an engine that counts them, `src/storage/testing-count.ts`);
 * - incremental /sync (one new event) for a user with 0 / 500 / 5,000 unread notifications;
 * - wake: one send to a room where 1 / 20 / 200 / 1,000 members long-poll /sync, until the
 *   last of them has its answer, in wall time and in this process's CPU time (the in-process
 *   clients' share included: parsing each answer), and the store transactions it took;
 * - initial /sync of a user in 1 / 10 / 100 / 1,000 rooms (default filter).
 *
 * One homeserver on SQLite (a file, WAL, synchronous=FULL, as `hearth serve --data`),
 * in-process (`hs.fetch`); rooms and members are made through the services.
 *
 *   node bench/scaling.ts [small] [send|unread|wake|initial …]   `small` stops at the third size
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createStore } from '../src/storage/create-store.ts';
import { openSqliteEngine } from '../src/storage/sqlite/index.ts';
import { countingEngine } from '../src/storage/testing-count.ts';
import { startBenchHomeserver } from './bench-homeserver.ts';
import { percentile, printScaling, type ScalingRow } from './harness.ts';

const SERVER_NAME = 'scale.localhost';
const CLIENT = '/_matrix/client/v3';
/** A filter with no rooms: the cheapest way to a `next_batch` for a user in many big rooms. */
const NO_ROOMS = encodeURIComponent(JSON.stringify({ room: { rooms: [] } }));

const MEMBERS = [2, 16, 100, 1000];
const UNREAD = [0, 500, 5000];
const WAITERS = [1, 20, 200, 1000];
/** Wakes measured per size, and wakes run first and not counted. */
const WAKE_RUNS = 5;
const WARM_WAKES = 1;
const ROOMS = [1, 10, 100, 1000];

const now = () => performance.now();
const median = (values: number[]) =>
  percentile(
    [...values].sort((a, b) => a - b),
    50,
  );

interface Account {
  userId: string;
  token: string;
}

export type ScalingPart = 'send' | 'unread' | 'wake' | 'initial';
const ALL_PARTS: readonly ScalingPart[] = ['send', 'unread', 'wake', 'initial'];

export async function scalingBench(small = false, parts = ALL_PARTS): Promise<ScalingRow[]> {
  const sizes = (list: number[]) => (small ? list.slice(0, 3) : list);
  const dir = mkdtempSync(join(tmpdir(), 'hearth-bench-scale-'));
  const counting = countingEngine(await openSqliteEngine({ path: join(dir, 'hearth.sqlite') }));
  const store = createStore(counting.engine);
  const { homeserver: hs, internals } = startBenchHomeserver(SERVER_NAME, store);
  const { services, ctx } = await internals();
  const rows: ScalingRow[] = [];

  const call = async (method: string, path: string, token: string, body?: unknown) => {
    const response = await hs.fetch(
      new Request(`http://${SERVER_NAME}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      }),
    );
    const text = await response.text();
    if (response.status !== 200) throw new Error(`${method} ${path}: ${response.status} ${text}`);
    return JSON.parse(text) as Record<string, unknown>;
  };
  const users: Account[] = [];
  const user = async (i: number): Promise<Account> => {
    while (users.length <= i) {
      const { userId, session } = await services.accounts.createUser({
        localpart: `u${users.length}`,
        login: true,
      });
      users.push({ userId, token: session?.accessToken as string });
    }
    return users[i] as Account;
  };
  /** A public room of users 0 … members-1, made by user 0. */
  const roomOf = async (members: number): Promise<string> => {
    const owner = await user(0);
    const { roomId } = await services.rooms.createRoom(owner.userId, { preset: 'public_chat' });
    for (let i = 1; i < members; i++) await services.rooms.join((await user(i)).userId, roomId);
    return roomId;
  };
  let txn = 0;
  const send = (sender: Account, roomId: string, body: string) =>
    services.rooms.sendEvent({
      sender: sender.userId,
      roomId,
      type: 'm.room.message',
      content: { msgtype: 'm.text', body },
      deviceId: 'BENCH',
      txnId: `t${++txn}`,
    });
  const nextBatch = async (account: Account) =>
    (await call('GET', `${CLIENT}/sync?timeout=0&filter=${NO_ROOMS}`, account.token)).next_batch as string;

  try {
    // --- send latency and transactions per send ----------------------------------------------
    const latency: number[] = [];
    const transactions: number[] = [];
    for (const members of parts.includes('send') ? sizes(MEMBERS) : []) {
      const roomId = await roomOf(members);
      const owner = await user(0);
      for (let i = 0; i < 3; i++) await send(owner, roomId, `warm-up ${i}`);
      const times: number[] = [];
      const counts: number[] = [];
      for (let i = 0; i < 30; i++) {
        counting.reset();
        const start = now();
        await send(owner, roomId, `message ${i}`);
        times.push(now() - start);
        counts.push(counting.calls.length);
      }
      latency.push(median(times));
      transactions.push(median(counts));
    }
    if (parts.includes('send'))
      rows.push(
        {
          name: 'send latency (in-process, median of 30)',
          unit: 'ms',
          sizes: sizes(MEMBERS),
          what: 'members',
          values: latency,
        },
        {
          name: 'store transactions per send',
          unit: 'tx',
          sizes: sizes(MEMBERS),
          what: 'members',
          values: transactions,
        },
      );

    // --- incremental /sync with unread notifications -------------------------------------------
    const sender = await user(0);
    const reader = await user(1);
    const incremental: number[] = [];
    for (const unread of parts.includes('unread') ? sizes(UNREAD) : []) {
      const { roomId } = await services.rooms.createRoom(sender.userId, { preset: 'public_chat' });
      await services.rooms.join(reader.userId, roomId);
      for (let i = 0; i < unread; i++) await send(sender, roomId, `unread ${i}`);
      const times: number[] = [];
      for (let i = 0; i < 21; i++) {
        const since = await nextBatch(reader);
        await send(sender, roomId, `news ${i}`);
        const start = now();
        const body = await call('GET', `${CLIENT}/sync?since=${encodeURIComponent(since)}`, reader.token);
        times.push(now() - start);
        const counts = (
          body.rooms as { join: Record<string, { unread_notifications: { notification_count: number } }> }
        ).join[roomId]?.unread_notifications;
        if (counts?.notification_count !== unread + i + 1)
          throw new Error(`unread count ${counts?.notification_count}, expected ${unread + i + 1}`);
      }
      incremental.push(median(times));
    }
    if (parts.includes('unread'))
      rows.push({
        name: 'incremental /sync, one new event (median of 21)',
        unit: 'ms',
        sizes: sizes(UNREAD),
        what: 'unread',
        values: incremental,
      });

    // --- wake: many long-polls woken by one send -----------------------------------------------
    const notifier = ctx.notifier;
    const originalWait = notifier.wait;
    let parked = 0;
    notifier.wait = (...args) => {
      parked++;
      return originalWait.apply(notifier, args);
    };
    const wake: number[] = [];
    const wakeCpu: number[] = [];
    const transactionsPerWake: number[] = [];
    try {
      for (const waiters of parts.includes('wake') ? sizes(WAITERS) : []) {
        const roomId = await roomOf(waiters + 1);
        const owner = await user(0);
        const polling = await Promise.all(Array.from({ length: waiters }, (_, i) => user(i + 1)));
        const times: number[] = [];
        const cpuTimes: number[] = [];
        const wakeTx: number[] = [];
        // Each run starts from the tokens the last one answered with (the first from a sync).
        const tokens = await Promise.all(polling.map(nextBatch));
        // The first wake of brand-new users runs code V8 has not optimised yet and fills their
        // first caches: it is run and not counted, so the figure is a steady wake.
        for (let run = -WARM_WAKES; run < WAKE_RUNS; run++) {
          parked = 0;
          const nonce = `wake ${waiters} ${run}`;
          const answers = polling.map(async (account, i) => {
            for (let since = tokens[i] as string; ; ) {
              const body = await call(
                'GET',
                `${CLIENT}/sync?since=${encodeURIComponent(since)}&timeout=20000`,
                account.token,
              );
              const at = now();
              since = body.next_batch as string;
              tokens[i] = since;
              const events =
                (
                  body.rooms as {
                    join: Record<string, { timeline: { events: { content: { body?: string } }[] } }>;
                  }
                ).join[roomId]?.timeline.events ?? [];
              if (events.some((e) => e.content.body === nonce)) return at;
            }
          });
          while (parked < waiters) await new Promise((resolve) => setTimeout(resolve, 1));
          counting.reset();
          const cpuStart = process.cpuUsage();
          const start = now();
          await send(owner, roomId, nonce);
          const ends = await Promise.all(answers);
          const cpu = process.cpuUsage(cpuStart);
          if (run < 0) continue;
          times.push(Math.max(...ends) - start);
          cpuTimes.push((cpu.user + cpu.system) / 1000);
          wakeTx.push(counting.calls.length);
        }
        wake.push(median(times));
        wakeCpu.push(median(cpuTimes));
        transactionsPerWake.push(median(wakeTx));
      }
    } finally {
      notifier.wait = originalWait;
    }
    if (parts.includes('wake'))
      rows.push(
        {
          name: `send → last long-poll answered (median of ${WAKE_RUNS}, after ${WARM_WAKES} not counted)`,
          unit: 'ms',
          sizes: sizes(WAITERS),
          what: 'waiters',
          values: wake,
        },
        {
          // Wall time above waits for whatever else the machine runs; this is the work itself.
          name: 'the same, CPU time of the process (send, every pass, the client side)',
          unit: 'ms',
          sizes: sizes(WAITERS),
          what: 'waiters',
          values: wakeCpu,
        },
        {
          name: 'store transactions, send and every woken pass',
          unit: 'tx',
          sizes: sizes(WAITERS),
          what: 'waiters',
          values: transactionsPerWake,
        },
      );

    // --- initial /sync of a user in many rooms -------------------------------------------------
    const initial: number[] = [];
    const owner = await user(0);
    const rooms: string[] = [];
    for (const [k, count] of (parts.includes('initial') ? sizes(ROOMS) : []).entries()) {
      while (rooms.length < count) {
        const { roomId } = await services.rooms.createRoom(owner.userId, {
          preset: 'public_chat',
          name: `room ${rooms.length}`,
        });
        for (let i = 0; i < 2; i++) await send(owner, roomId, `hello ${i}`);
        rooms.push(roomId);
      }
      // A reader of its own per size, in exactly `count` rooms.
      const member = (await services.accounts.createUser({ localpart: `reader${k}`, login: true })).session
        ?.accessToken as string;
      const memberId = `@reader${k}:${SERVER_NAME}`;
      for (const roomId of rooms.slice(0, count)) await services.rooms.join(memberId, roomId);
      const times: number[] = [];
      for (let i = 0; i < 5; i++) {
        const start = now();
        const body = await call('GET', `${CLIENT}/sync`, member);
        times.push(now() - start);
        const joined = Object.keys((body.rooms as { join: object }).join).length;
        if (joined !== count) throw new Error(`initial sync shows ${joined} rooms, expected ${count}`);
      }
      initial.push(median(times));
    }
    if (parts.includes('initial'))
      rows.push({
        name: 'initial /sync (median of 5)',
        unit: 'ms',
        sizes: sizes(ROOMS),
        what: 'rooms',
        values: initial,
      });
  } finally {
    await hs.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}

if (import.meta.main) {
  const started = now();
  const args = process.argv.slice(2);
  const parts = args.filter((a): a is ScalingPart => ALL_PARTS.includes(a as ScalingPart));
  printScaling(
    'scaling: growth with members, unread, waiters, rooms',
    await scalingBench(args.includes('small'), parts.length > 0 ? parts : ALL_PARTS),
  );
  console.log(`\n(${((now() - started) / 1000).toFixed(1)} s)`);
}
