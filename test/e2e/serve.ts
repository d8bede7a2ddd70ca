/** `hearth serve` as a user runs it: a child process on Node 24, on a free loopback port. */
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';

const NODE = join(process.cwd(), 'node_modules', '.bin', 'node');

export interface Serve {
  /** `http://127.0.0.1:PORT`, or `https://…` when started with `--tls-cert`. */
  url: string;
  child: ChildProcess;
}

/**
 * Starts `hearth serve` on a free loopback port (or the `--port` in `extraArgs`, which come
 * last); resolves with its URL once it listens. `serverName` null leaves the default,
 * `localhost:<port>`.
 */
export function startServe(
  dataDir: string,
  serverName: string | null = 'serve.test',
  extraArgs: readonly string[] = [],
): Promise<Serve> {
  const child = spawn(
    NODE,
    [
      'src/hosts/cli.ts',
      'serve',
      ...(extraArgs.includes('--port') ? [] : ['--port', '0']),
      '--data',
      dataDir,
      '--registration',
      'open',
      '--log-level',
      'warn',
      ...(serverName === null ? [] : ['--server-name', serverName]),
      ...extraArgs,
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
      const match = /Point a Matrix client at (https?:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (match) {
        clearTimeout(timer);
        resolve({ url: match[1] as string, child });
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`hearth serve exited with ${code}:\n${out}`));
    });
  });
}

export function stopServe(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => {
    child.once('exit', (code) => resolve(code));
    child.kill('SIGTERM');
  });
}

/** A loopback port free right now (for a server that must come back on the same port). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}
