/**
 * matrix-js-sdk, unmodified, against Hearth: in-process through `hs.fetch`, and over
 * loopback HTTP against `hearth serve` (a child process, as a user runs it) on a SQLite
 * data folder, restarted in the middle.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, it } from 'vitest';
import { createTestHomeserver } from '../../src/testing.ts';
import { checkAfterRestart, runScenario } from './js-sdk-scenario.ts';

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

const NODE = join(process.cwd(), 'node_modules', '.bin', 'node');

/** Starts `hearth serve` on a free loopback port; resolves with its URL once it listens. */
function startServe(dataDir: string): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(
    NODE,
    [
      'src/hosts/cli.ts',
      'serve',
      '--port',
      '0',
      '--data',
      dataDir,
      '--registration',
      'open',
      '--log-level',
      'warn',
      '--server-name',
      'serve.test',
    ],
    {
      cwd: process.cwd(),
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`hearth serve did not start:\n${out}`)), 20_000);
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      const match = /Point a Matrix client at (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (match) {
        clearTimeout(timer);
        resolve({ url: match[1] as string, child });
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => reject(new Error(`hearth serve exited with ${code}:\n${out}`)));
  });
}

function stop(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    child.once('exit', (code) => resolve(code));
    child.kill('SIGTERM');
  });
}

describe('matrix-js-sdk against `hearth serve` over loopback', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'hearth-serve-'));
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it('runs the scenario, and after a restart on the same --data everything is still there', async () => {
    const first = await startServe(dataDir);
    let result: Awaited<ReturnType<typeof runScenario>>;
    try {
      result = await runScenario({ baseUrl: first.url }, 'h');
    } finally {
      await stop(first.child);
    }
    const second = await startServe(dataDir);
    try {
      await checkAfterRestart({ baseUrl: second.url }, result);
    } finally {
      await stop(second.child);
    }
  }, 180_000);
});
