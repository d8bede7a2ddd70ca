/** `hearth serve` as a user runs it: a child process on Node 24, on a free loopback port. */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';

const NODE = join(process.cwd(), 'node_modules', '.bin', 'node');

/** Starts `hearth serve` on a loopback port (a free one by default); resolves with its URL once it listens. */
export function startServe(
  dataDir: string,
  serverName = 'serve.test',
  port = 0,
): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(
    NODE,
    [
      'src/hosts/cli.ts',
      'serve',
      '--port',
      String(port),
      '--data',
      dataDir,
      '--registration',
      'open',
      '--log-level',
      'warn',
      '--server-name',
      serverName,
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

export function stopServe(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    child.once('exit', (code) => resolve(code));
    child.kill('SIGTERM');
  });
}
