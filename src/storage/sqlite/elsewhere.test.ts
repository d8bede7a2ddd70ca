/**
 * A SQLite store looking for other connections' commits (`onCommittedElsewhere`), as two
 * `hearth serve` on one `--data` are: it hears the other store's commits within a few of its
 * looks (`ELSEWHERE_POLL_MS`), never its own, and nothing once its listener stopped.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { ELSEWHERE_POLL_MS } from './engine.ts';
import { openSqliteStore } from './index.ts';

const dir = mkdtempSync(join(tmpdir(), 'hearth-elsewhere-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});
let files = 0;

describe('a SQLite store looking for other connections’ commits', () => {
  it("calls its listeners for the other store's commits, never for its own", async () => {
    const path = join(dir, `stores-${files++}.sqlite`);
    const a = await openSqliteStore({ path });
    const b = await openSqliteStore({ path });
    closers.push(
      () => a.close(),
      () => b.close(),
    );
    let heard = 0;
    const stop = a.onCommittedElsewhere(() => heard++);
    const settle = () => new Promise((resolve) => setTimeout(resolve, 3 * ELSEWHERE_POLL_MS));

    await a.userData.setAccountData('@own:two.test', 'm.test', { n: 1 });
    await settle();
    expect(heard).toBe(0);

    await b.userData.setAccountData('@other:two.test', 'm.test', { n: 2 });
    await settle();
    expect(heard).toBe(1);

    // Stopped: nothing more, and no timer left to keep a process alive.
    stop();
    await b.userData.setAccountData('@other:two.test', 'm.test', { n: 3 });
    await settle();
    expect(heard).toBe(1);
  }, 30_000);
});
