/**
 * An old, real client: matrix-nio (Debian's python3-matrix-nio) uses /_matrix/client/r0/…
 * and the deprecated `?access_token=` query parameter. It runs unmodified against
 * `hearth serve` on loopback.
 */
import { execFileSync, spawn } from 'node:child_process';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { serve } from '../../src/hosts/cli.ts';

beforeAll(() => {
  execFileSync('bash', ['scripts/ensure-nio.sh'], { stdio: 'inherit' });
}, 300_000);

function runNio(baseUrl: string): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      '/usr/bin/python3',
      [join('test', 'e2e', 'nio_scenario.py'), baseUrl, 'niouser', 'nio password 1'],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    let err = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      err += c.toString();
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      if (code !== 0) reject(new Error(`nio exited ${code}: ${err}`));
      else resolve(JSON.parse(out.trim().split('\n').at(-1) as string));
    });
  });
}

describe('matrix-nio against hearth serve', () => {
  it('registers, logs in, creates a room, sends, syncs and paginates over r0 with ?access_token=', async () => {
    const running = await serve({
      host: '127.0.0.1',
      port: 0,
      registration: 'open',
      logLevel: 'error',
      serverName: 'nio.test',
    });
    try {
      const seen = await runNio(running.url);
      expect(seen.register).toBe('RegisterResponse');
      expect(seen.user_id).toBe('@niouser:nio.test');
      expect(seen.login).toBe('LoginResponse');
      expect(seen.create).toBe('RoomCreateResponse');
      expect(seen.sent).toHaveLength(3);
      for (const id of seen.sent as string[]) expect(id).toMatch(/^\$/);
      expect(seen.sync).toBe('SyncResponse');
      expect(seen.sync_bodies).toEqual(['nio 0', 'nio 1', 'nio 2']);
      expect(seen.room_name).toBe('nio room');
      expect(seen.messages).toBe('RoomMessagesResponse');
      expect(seen.message_bodies).toEqual(['nio 2', 'nio 1', 'nio 0']);
      expect(seen.whoami).toBe('WhoamiResponse');
    } finally {
      await running.stop();
    }
  }, 90_000);
});
