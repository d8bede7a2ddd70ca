/**
 * matrix-js-sdk, unmodified, against Hearth: in-process through `hs.fetch`, and over
 * loopback HTTP against `hearth serve` (a child process, as a user runs it) on a SQLite
 * data folder, restarted in the middle.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, it } from 'vitest';
import { createTestHomeserver } from '../../src/testing.ts';
import { checkAfterRestart, runScenario } from './js-sdk-scenario.ts';
import { startServe, stopServe } from './serve.ts';

describe('matrix-js-sdk against hs.fetch (in-process)', () => {
  it('runs the whole two-user scenario', async () => {
    const hs = await createTestHomeserver({ serverName: 'inproc.test' });
    try {
      const fetchFn = ((input: RequestInfo | URL, init?: RequestInit) =>
        hs.fetch(new Request(input, init))) as typeof fetch;
      await runScenario({ baseUrl: 'http://inproc.test', fetchFn }, 'p');
    } finally {
      await hs.close();
    }
  }, 120_000);
});

describe('matrix-js-sdk against `hearth serve` over loopback', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'hearth-serve-'));
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it('runs the scenario, and after a restart on the same --data everything is still there', async () => {
    const first = await startServe(dataDir);
    let result: Awaited<ReturnType<typeof runScenario>>;
    try {
      result = await runScenario({ baseUrl: first.url }, 'h');
    } finally {
      await stopServe(first.child);
    }
    const second = await startServe(dataDir);
    try {
      await checkAfterRestart({ baseUrl: second.url }, result);
    } finally {
      await stopServe(second.child);
    }
  }, 180_000);
});
