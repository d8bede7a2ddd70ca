/**
 * The WASI 0.2 HTTP component: built now with componentize-js (wasm-bindings/build.ts) into a
 * temporary folder, served by `jco serve` with the host interface on node:sqlite
 * (wasm-bindings/host.ts). matrix-js-sdk's two-user scenario runs against it — without the
 * typing step: a StarlingMonkey instance answers one request (StarlingMonkey#247), so what
 * Hearth keeps in memory only, typing notices, lasts one request — then `jco serve` is
 * restarted on the same data and everything is still there.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildComponent, type ComponentBuild } from '../../wasm-bindings/build.ts';
import { checkAfterRestart, runScenario } from '../e2e/js-sdk-scenario.ts';
import { freePort } from '../e2e/serve.ts';
import { jcoServe, stopHostProcess } from './processes.ts';

const root = mkdtempSync(join(tmpdir(), 'hearth-wasi-'));
let component: ComponentBuild;
beforeAll(async () => {
  component = await buildComponent(join(root, 'build'));
}, 600_000);
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('Hearth as a WASI 0.2 HTTP component under jco serve', () => {
  it('is a real component exporting wasi:http/incoming-handler@0.2.10', () => {
    expect(component.bytes).toBeGreaterThan(1_000_000);
  });

  it('runs the matrix-js-sdk scenario, and after a restart on the same data everything is there', async () => {
    const env = {
      HEARTH_SERVER_NAME: 'wasi.test',
      HEARTH_REGISTRATION: 'open',
      HEARTH_DATA: join(root, 'data'),
      HEARTH_FEDERATION: 'off',
    };
    let host = await jcoServe(component.wasm, await freePort(), env);
    let result: Awaited<ReturnType<typeof runScenario>>;
    try {
      result = await runScenario({ baseUrl: host.url }, 'c', { typing: false, waitMs: 60_000 });
    } finally {
      await stopHostProcess(host.child);
    }
    host = await jcoServe(component.wasm, await freePort(), env);
    try {
      await checkAfterRestart({ baseUrl: host.url }, result);
    } finally {
      await stopHostProcess(host.child);
    }
  }, 1_200_000);
});
