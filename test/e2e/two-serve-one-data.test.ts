/**
 * Two `hearth serve` processes on one `--data` (one SQLite database), as an operator runs a
 * second process beside the first: a /sync long-poll waiting on one hears of what the other
 * stored — a message in one of its rooms, a to-device message — within a few of the store's
 * looks for other connections' commits (`ELSEWHERE_POLL_MS`), not at its timeout.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseJson } from '../../src/core/json.ts';
import { ELSEWHERE_POLL_MS } from '../../src/storage/sqlite/engine.ts';
import { type Serve, startServe, stopServe } from './serve.ts';

const root = mkdtempSync(join(tmpdir(), 'hearth-two-serve-'));
const started: Serve[] = [];
afterAll(async () => {
  for (const serve of started) await stopServe(serve.child);
  rmSync(root, { recursive: true, force: true });
});

type Body = Record<string, unknown>;
interface Client {
  userId: string;
  deviceId: string;
  call(method: string, path: string, body?: unknown): Promise<{ status: number; body: Body }>;
}

async function register(base: string, username: string): Promise<Client> {
  const call = async (method: string, path: string, body?: unknown, token?: string) => {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (token) headers.authorization = `Bearer ${token}`;
    const init: RequestInit = { method, headers };
    if (body !== undefined) init.body = JSON.stringify(body);
    const response = await fetch(`${base}/_matrix/client/v3${path}`, init);
    const text = await response.text();
    return { status: response.status, body: (text ? parseJson(text) : {}) as Body };
  };
  const reply = await call('POST', '/register', {
    username,
    password: 'correct horse battery',
    auth: { type: 'm.login.dummy' },
  });
  expect(reply.status, JSON.stringify(reply.body)).toBe(200);
  const token = reply.body.access_token as string;
  return {
    userId: reply.body.user_id as string,
    deviceId: reply.body.device_id as string,
    call: (m, p, b) => call(m, p, b, token),
  };
}

/** A /sync long-poll from `since`, and how long it took to answer. */
async function timedSync(client: Client, since: string, timeoutMs: number) {
  const started = performance.now();
  const reply = await client.call('GET', `/sync?since=${encodeURIComponent(since)}&timeout=${timeoutMs}`);
  expect(reply.status).toBe(200);
  return { body: reply.body, ms: performance.now() - started };
}

/** Long enough for the long-poll to be waiting (it has nothing to show before the other's write). */
const waitingSoon = () => new Promise((resolve) => setTimeout(resolve, 500));
/** Far below the 20 s timeout: a few looks, and the send and the woken pass themselves. */
const WOKEN_WITHIN_MS = 500 + 15 * ELSEWHERE_POLL_MS;

describe('two `hearth serve` on one `--data`', () => {
  it('wake a long-poll on one for what the other stored: a message, a to-device message', async () => {
    const data = join(root, 'data');
    // One after the other: the second opens the database the first made.
    started.push(await startServe(data, 'two.test'));
    started.push(await startServe(data, 'two.test'));
    const [a, b] = started as [Serve, Serve];
    const alice = await register(a.url, 'alice');
    const bob = await register(b.url, 'bob');
    const created = await alice.call('POST', '/createRoom', { preset: 'public_chat' });
    const roomId = created.body.room_id as string;
    expect((await bob.call('POST', `/join/${encodeURIComponent(roomId)}`, {})).status).toBe(200);

    // A message bob sends through B, in alice's room.
    let since = (await alice.call('GET', '/sync?timeout=0')).body.next_batch as string;
    let waiting = timedSync(alice, since, 20_000);
    await waitingSoon();
    const sent = await bob.call('PUT', `/rooms/${encodeURIComponent(roomId)}/send/m.room.message/t1`, {
      msgtype: 'm.text',
      body: 'stored by the other process',
    });
    expect(sent.status).toBe(200);
    let woken = await waiting;
    const rooms = woken.body.rooms as { join?: Record<string, { timeline: { events: Body[] } }> } | undefined;
    expect(rooms?.join?.[roomId]?.timeline.events.map((event) => event.event_id)).toContain(
      sent.body.event_id,
    );
    expect(woken.ms).toBeLessThan(WOKEN_WITHIN_MS);

    // A to-device message: no room to place it by, every waiter on A wakes.
    since = woken.body.next_batch as string;
    waiting = timedSync(alice, since, 20_000);
    await waitingSoon();
    const toDevice = await bob.call('PUT', '/sendToDevice/m.test.ping/t2', {
      messages: { [alice.userId]: { [alice.deviceId]: { hello: 'from the other process' } } },
    });
    expect(toDevice.status).toBe(200);
    woken = await waiting;
    const events = (woken.body.to_device as { events?: Body[] } | undefined)?.events ?? [];
    expect(events).toContainEqual(
      expect.objectContaining({
        type: 'm.test.ping',
        sender: bob.userId,
        content: { hello: 'from the other process' },
      }),
    );
    expect(woken.ms).toBeLessThan(WOKEN_WITHIN_MS);
  }, 120_000);
});
