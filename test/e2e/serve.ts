/** `hearth serve` as a user runs it: a child process on Node 24, on a free loopback port. */
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { parseJson } from '../../src/core/json.ts';
import { createNodeHttpsTransport } from '../../src/transport/https/node.ts';
import { createTestCa, type TestCa } from '../../src/transport/https/testing-tls.ts';

const NODE = join(process.cwd(), 'node_modules', '.bin', 'node');

export interface Serve {
  /** `http://127.0.0.1:PORT`, or `https://…` when started with `--tls-cert`. */
  url: string;
  child: ChildProcess;
}

/**
 * Starts `hearth serve` (the TypeScript sources; HEARTH_E2E_ENTRY=bin/hearth.js runs the built
 * CLI instead, as installed) on a free loopback port (or the `--port` in `extraArgs`, which come
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
      process.env.HEARTH_E2E_ENTRY ?? 'src/hosts/cli.ts',
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
  // Already gone (it exited, or a signal ended it): nothing to wait for.
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
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

// --- two servers federating over HTTPS --------------------------------------------------------

export interface FederatingNode {
  /** `localhost:<port>`: reached by the other at `https://localhost:<port>`. */
  name: string;
  port: number;
  dataDir: string;
  serve: Serve;
}

export interface FederatingPair {
  a: FederatingNode;
  b: FederatingNode;
  /** PEM of the test CA both servers trust (`--federation-ca`). */
  caPem: string;
  /** `fetch` over HTTPS trusting the test CA: for matrix-js-sdk (`fetchFn`) and plain calls. */
  fetch: typeof fetch;
  /** A JSON call to one server by name (`localhost:<port>`), a token optional. */
  call(
    server: string,
    method: string,
    path: string,
    options?: { token?: string; body?: Record<string, unknown> },
  ): Promise<{ status: number; body: Record<string, unknown> }>;
  /** Stops one server and starts it again on the same port and data (extra args replace the old). */
  restart(node: FederatingNode, extraArgs?: readonly string[]): Promise<void>;
  close(): Promise<void>;
}

/**
 * A CA made now and one certificate it signs for localhost and 127.0.0.1, written to
 * `root/tls.crt`, `root/tls.key` and `root/ca.crt`.
 */
export function writeTestTls(root: string): { ca: TestCa; files: { cert: string; key: string; ca: string } } {
  const ca = createTestCa();
  const leaf = ca.issue(['DNS:localhost', 'IP:127.0.0.1']);
  const files = { cert: join(root, 'tls.crt'), key: join(root, 'tls.key'), ca: join(root, 'ca.crt') };
  writeFileSync(files.cert, leaf.cert);
  writeFileSync(files.key, leaf.key, { mode: 0o600 });
  writeFileSync(files.ca, ca.cert);
  return { ca, files };
}

/**
 * Two `hearth serve` processes, `localhost:<portA>` and `localhost:<portB>`, serving HTTPS with
 * one certificate (localhost, 127.0.0.1) from a CA made now, each trusting it for federation.
 * Data folders live under `root`; `extraArgs(name, index)` adds arguments per server (A is 0).
 */
export async function startFederatingPair(
  root: string,
  extraArgs: (name: string, index: 0 | 1) => readonly string[] = () => [],
): Promise<FederatingPair> {
  const { ca, files } = writeTestTls(root);
  const tlsArgs = ['--tls-cert', files.cert, '--tls-key', files.key, '--federation-ca', files.ca];

  const launch = async (node: Omit<FederatingNode, 'serve'>, extra: readonly string[]) =>
    startServe(node.dataDir, node.name, ['--port', String(node.port), ...tlsArgs, ...extra]);
  const nodes: FederatingNode[] = [];
  for (const [index, port] of [await freePort(), await freePort()].entries()) {
    const name = `localhost:${port}`;
    const base = { name, port, dataDir: join(root, `data-${port}`) };
    nodes.push({ ...base, serve: await launch(base, extraArgs(name, index as 0 | 1)) });
  }
  const https = createNodeHttpsTransport({ ca: ca.cert });
  const fetchTls = ((input: RequestInfo | URL, init?: RequestInit) => {
    const request = new Request(input, init);
    return https.send(new URL(request.url).host, request);
  }) as typeof fetch;
  const [a, b] = nodes as [FederatingNode, FederatingNode];
  return {
    a,
    b,
    caPem: ca.cert,
    fetch: fetchTls,
    async call(server, method, path, options = {}) {
      const headers = new Headers();
      if (options.token) headers.set('authorization', `Bearer ${options.token}`);
      if (options.body) headers.set('content-type', 'application/json');
      const response = await fetchTls(`https://${server}${path}`, {
        method,
        headers,
        body: options.body ? JSON.stringify(options.body) : undefined,
      });
      const text = await response.text();
      return { status: response.status, body: (text ? parseJson(text) : {}) as Record<string, unknown> };
    },
    async restart(node, extra = []) {
      await stopServe(node.serve.child);
      node.serve = await launch(node, extra);
    },
    async close() {
      await Promise.all(nodes.map((n) => stopServe(n.serve.child)));
      https.close();
    },
  };
}
