/**
 * The WASI 0.2 HTTP component: built now with componentize-js (wasm-bindings/build.ts) into a
 * temporary folder, served by `jco serve` with the host interface on node:sqlite
 * (wasm-bindings/host.ts). Two users register, make a room, exchange messages and read them
 * back through /sync and /messages; `jco serve` is restarted on the same data and everything
 * is still there. Then matrix-js-sdk's whole scenario, and a restart after it (without its
 * typing step: a StarlingMonkey instance answers one request, StarlingMonkey#247, so typing
 * notices last one request).
 *
 * A failure carries what `jco serve` printed (the component's own log among it).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseJson } from '../../src/core/json.ts';
import { buildComponent, type ComponentBuild } from '../../wasm-bindings/build.ts';
import { checkAfterRestart, runScenario } from '../e2e/js-sdk-scenario.ts';
import { freePort } from '../e2e/serve.ts';
import { type HostProcess, jcoServe, stopHostProcess } from './processes.ts';

const root = mkdtempSync(join(tmpdir(), 'hearth-wasi-'));
let component: ComponentBuild;
beforeAll(async () => {
  component = await buildComponent(join(root, 'build'));
}, 600_000);
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** The error, with what `jco serve` printed (its stderr carries the component's log). */
function withOutput(error: unknown, host: HostProcess): unknown {
  const output = host.output().trim();
  if (!output || !(error instanceof Error)) return error;
  error.message += `\n--- jco serve said:\n${output}`;
  return error;
}

const settings = (data: string) => ({
  HEARTH_SERVER_NAME: 'wasi.test',
  HEARTH_REGISTRATION: 'open',
  HEARTH_DATA: join(root, data),
  HEARTH_FEDERATION: 'off',
});

/** `fn` against the component served on `env`'s data, stopped after; a failure says what jco printed. */
async function served<T>(env: Record<string, string>, fn: (host: HostProcess) => Promise<T>): Promise<T> {
  const host = await jcoServe(component.wasm, await freePort(), env);
  try {
    return await fn(host);
  } catch (error) {
    throw withOutput(error, host);
  } finally {
    await stopHostProcess(host.child);
  }
}

describe('Hearth as a WASI 0.2 HTTP component under jco serve', () => {
  it('is a real component exporting wasi:http/incoming-handler@0.2.10', () => {
    expect(component.bytes).toBeGreaterThan(1_000_000);
  });

  it('registers, chats through /sync and /messages, and after a restart on the same data everything is there', {
    timeout: 600_000,
  }, async () => {
    const env = settings('short');
    let host = await jcoServe(component.wasm, await freePort(), env);
    const call = async (method: string, path: string, token?: string, body?: Record<string, unknown>) => {
      const response = await fetch(`${host.url}${path}`, {
        method,
        headers: token ? { authorization: `Bearer ${token}` } : {},
        body: body ? JSON.stringify(body) : undefined,
      });
      return { status: response.status, body: parseJson(await response.text()) as Record<string, unknown> };
    };
    const register = async (username: string) => {
      const body = { username, password: 'correct horse battery' };
      const first = await call('POST', '/_matrix/client/v3/register', undefined, body);
      expect(first.status).toBe(401);
      const done = await call('POST', '/_matrix/client/v3/register', undefined, {
        ...body,
        auth: { type: 'm.login.dummy', session: first.body.session },
      });
      expect(done.status).toBe(200);
      return done.body.access_token as string;
    };
    const texts = async (token: string, roomId: string) => {
      const page = await call(
        'GET',
        `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/messages?dir=b&limit=50`,
        token,
      );
      expect(page.status).toBe(200);
      return (page.body.chunk as { type: string; content: { body?: string } }[])
        .filter((e) => e.type === 'm.room.message')
        .map((e) => e.content.body)
        .reverse();
    };
    let roomId: string;
    let alice: string;
    try {
      alice = await register('alice');
      const bob = await register('bob');
      const room = await call('POST', '/_matrix/client/v3/createRoom', alice, {
        preset: 'private_chat',
        invite: ['@bob:wasi.test'],
      });
      expect(room.status).toBe(200);
      roomId = room.body.room_id as string;
      // Bob's /sync shows the invite; he joins and both speak.
      const sync = await call('GET', '/_matrix/client/v3/sync?timeout=0', bob);
      expect(Object.keys((sync.body.rooms as { invite: Record<string, unknown> }).invite)).toEqual([roomId]);
      expect(
        (await call('POST', `/_matrix/client/v3/join/${encodeURIComponent(roomId)}`, bob, {})).status,
      ).toBe(200);
      const send = (token: string, txn: string, text: string) =>
        call(
          'PUT',
          `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/${txn}`,
          token,
          {
            msgtype: 'm.text',
            body: text,
          },
        );
      expect((await send(alice, 't1', 'hello Bob')).status).toBe(200);
      expect((await send(bob, 't1', 'hi Alice')).status).toBe(200);
      // The same transaction ID again is the same event (stored, not in an instance's memory).
      const again = await send(alice, 't1', 'hello Bob');
      expect(again.status).toBe(200);
      expect(await texts(bob, roomId)).toEqual(['hello Bob', 'hi Alice']);
      const next = (sync.body.next_batch as string) ?? '';
      const later = await call('GET', `/_matrix/client/v3/sync?timeout=0&since=${next}`, bob);
      const timeline = (
        later.body.rooms as {
          join: Record<string, { timeline: { events: { content: { body?: string } }[] } }>;
        }
      ).join[roomId]?.timeline.events
        .map((e) => e.content.body)
        .filter(Boolean);
      expect(timeline).toEqual(['hello Bob', 'hi Alice']);
    } catch (error) {
      throw withOutput(error, host);
    } finally {
      await stopHostProcess(host.child);
    }
    host = await jcoServe(component.wasm, await freePort(), env);
    try {
      const login = await call('POST', '/_matrix/client/v3/login', undefined, {
        type: 'm.login.password',
        identifier: { type: 'm.id.user', user: 'alice' },
        password: 'correct horse battery',
      });
      expect(login.status).toBe(200);
      expect(await texts(login.body.access_token as string, roomId)).toEqual(['hello Bob', 'hi Alice']);
    } catch (error) {
      throw withOutput(error, host);
    } finally {
      await stopHostProcess(host.child);
    }
  });

  it('runs the matrix-js-sdk scenario, and after a restart on the same data everything is there', async () => {
    const env = settings('data');
    const result = await served(env, (host) =>
      runScenario({ baseUrl: host.url }, 'c', { typing: false, waitMs: 60_000 }),
    );
    await served(env, (host) => checkAfterRestart({ baseUrl: host.url }, result));
  }, 1_200_000);
});
