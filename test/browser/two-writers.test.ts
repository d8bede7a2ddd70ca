/**
 * Two homeservers writing one IndexedDB database in Chromium: the in-page fallback in two tabs
 * of one origin (a browser without Service Workers), each with its own store and caches on the
 * same database — as an old and a new worker are during an update. What one tab's homeserver
 * writes, the other's next request sees (storage/areas/common.ts `CacheMarks`): a logged-out
 * token, a push rule, a new member; and a long-poll on one wakes for a message sent through
 * the other.
 */
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { startInPage, withoutServiceWorkers } from './testing-fallback.ts';
import type { PageGlobals } from './testing-sw.ts';

const PASSWORD = 'correct horse battery staple';

describe('two in-page homeservers on one IndexedDB in Chromium', () => {
  const launched = withoutServiceWorkers();
  const start = async (page: Page) => (await startInPage(page)).mode;

  /** A Matrix call through the tab's own homeserver. */
  const call = (page: Page, method: string, path: string, opts: { token?: string; body?: unknown } = {}) =>
    page.evaluate(([m, p, o]) => (window as unknown as PageGlobals).mx.call(m, p, o), [
      method,
      path,
      opts,
    ] as const);

  /** Whether `token`'s user has a notification for `eventId`, asked of `page`'s homeserver. */
  const notified = async (page: Page, token: string, eventId: string) => {
    const { status, body } = await call(page, 'GET', '/_matrix/client/v3/notifications?limit=50', { token });
    expect(status).toBe(200);
    const list = (body as { notifications: { event: { event_id: string } }[] }).notifications;
    return list.some((n) => n.event.event_id === eventId);
  };

  it("sees through one tab what the other tab's homeserver wrote, at the next request", async () => {
    const browser = launched();
    const a = await browser.open();
    const b = await browser.open();
    expect(await start(a)).toBe('in-page');
    expect(await start(b)).toBe('in-page');

    // Accounts, room and joins through A.
    const made = await a.evaluate(async (password) => {
      const { mx, handle } = window as unknown as Required<PageGlobals>;
      const tokens: Record<string, string> = {};
      for (const name of ['carol', 'dave', 'erin']) {
        await handle.control.createAccount(name, password);
        tokens[name] = await mx.login(name, password);
      }
      const room = await mx.createRoom(tokens.carol as string, { preset: 'public_chat' });
      await mx.join(tokens.dave as string, room);
      return { tokens: tokens as { carol: string; dave: string; erin: string }, room };
    }, PASSWORD);
    const { tokens, room } = made;
    const send = (page: Page, text: string) =>
      page.evaluate(
        ([token, roomId, body]) => (window as unknown as PageGlobals).mx.send(token, roomId, body),
        [tokens.carol, room, text] as const,
      );

    // B's sends keep the room's members and dave's push settings.
    const first = await send(b, 'one');
    expect(await notified(b, tokens.dave, first)).toBe(true);
    expect(await notified(b, tokens.erin, first)).toBe(false);

    // Dave mutes everything through A; erin joins through A.
    const muted = await call(a, 'PUT', '/_matrix/client/v3/pushrules/global/override/mute', {
      token: tokens.dave,
      body: { conditions: [], actions: [] },
    });
    expect(muted.status).toBe(200);
    await a.evaluate(([token, roomId]) => (window as unknown as PageGlobals).mx.join(token, roomId), [
      tokens.erin,
      room,
    ] as const);
    const second = await send(b, 'two');
    expect(await notified(b, tokens.dave, second)).toBe(false);
    expect(await notified(b, tokens.erin, second)).toBe(true);

    // Dave's token works in B, until it is logged out through A: refused by B at once.
    expect((await call(b, 'GET', '/_matrix/client/v3/account/whoami', { token: tokens.dave })).status).toBe(
      200,
    );
    expect(
      (await call(a, 'POST', '/_matrix/client/v3/logout', { token: tokens.dave, body: {} })).status,
    ).toBe(200);
    const refused = await call(b, 'GET', '/_matrix/client/v3/account/whoami', { token: tokens.dave });
    expect(refused).toMatchObject({ status: 401, body: { errcode: 'M_UNKNOWN_TOKEN' } });

    // Erin long-polls through A: carol's message through B wakes it (B's homeserver tells of
    // its commit on a BroadcastChannel), not its 20 s timeout.
    const firstSync = await call(a, 'GET', '/_matrix/client/v3/sync?timeout=0', { token: tokens.erin });
    const since = encodeURIComponent((firstSync.body as { next_batch: string }).next_batch);
    const started = Date.now();
    const waiting = call(a, 'GET', `/_matrix/client/v3/sync?since=${since}&timeout=20000`, {
      token: tokens.erin,
    });
    await new Promise((resolve) => setTimeout(resolve, 500));
    const third = await send(b, 'three');
    const woken = await waiting;
    expect(woken.status).toBe(200);
    type Joined = { rooms?: { join?: Record<string, { timeline: { events: { event_id: string }[] } }> } };
    const timeline = (woken.body as Joined).rooms?.join?.[room]?.timeline.events ?? [];
    expect(timeline.map((event) => event.event_id)).toContain(third);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(browser.errors).toEqual([]);
  });
});
