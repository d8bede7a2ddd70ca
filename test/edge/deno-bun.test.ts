/**
 * The Deno and Bun hosts, each run from its npm package on the TypeScript sources as they are
 * (neither needs a bundle), storing in SQLite through its runtime's `node:sqlite`:
 * matrix-js-sdk's two-user scenario over loopback HTTP, then the host is stopped and started
 * again on the same HEARTH_DATA folder and everything is still there.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkAfterRestart, runScenario } from '../e2e/js-sdk-scenario.ts';
import { bunHost, denoHost, type HostProcess, stopHostProcess } from './processes.ts';

const root = mkdtempSync(join(tmpdir(), 'hearth-deno-bun-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe.each([
  ['Deno', denoHost, 'd'],
  ['Bun', bunHost, 'b'],
] as const)('Hearth on %s', (name, start, prefix) => {
  it('runs the matrix-js-sdk scenario, and after a restart on the same data everything is there', async () => {
    const env = {
      HEARTH_SERVER_NAME: `${name.toLowerCase()}.test`,
      HEARTH_PORT: '0',
      HEARTH_DATA: join(root, name),
      HEARTH_REGISTRATION: 'open',
    };
    let host: HostProcess = await start(env);
    let result: Awaited<ReturnType<typeof runScenario>>;
    try {
      result = await runScenario({ baseUrl: host.url }, prefix);
    } finally {
      expect(await stopHostProcess(host.child)).toBe(0);
    }
    host = await start(env);
    try {
      await checkAfterRestart({ baseUrl: host.url }, result);
    } finally {
      await stopHostProcess(host.child);
    }
  }, 240_000);

  it('refuses settings it cannot honour, naming them', async () => {
    await expect(start({ HEARTH_PORT: '0', HEARTH_PASSWORD_ITERATIONS: '1000' })).rejects.toThrow(
      /HEARTH_PASSWORD_ITERATIONS must be an integer of at least 100000/,
    );
  }, 60_000);
});
