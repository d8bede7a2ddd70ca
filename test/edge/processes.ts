/** Edge hosts as child processes (Deno, Bun, `jco serve`), started as their README sections say. */
import { type ChildProcess, spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { Miniflare } from 'miniflare';

const bin = (name: string) => join(process.cwd(), 'node_modules', '.bin', name);

/** Deno's permissions for the host: the listener and outgoing federation, its files, its settings. */
export const DENO_ARGS = ['run', '--no-lock', '--allow-net', '--allow-read', '--allow-write', '--allow-env'];

export interface HostProcess {
  url: string;
  child: ChildProcess;
  /** Everything it printed so far. */
  output(): string;
}

export function denoHost(env: Record<string, string>): Promise<HostProcess> {
  return startHostProcess(bin('deno'), [...DENO_ARGS, 'src/hosts/deno.ts'], env);
}

export function bunHost(env: Record<string, string>): Promise<HostProcess> {
  return startHostProcess(bin('bun'), ['src/hosts/bun.ts'], env);
}

/**
 * Starts a host process from the repository root and resolves once it prints
 * "Point a Matrix client at URL"; rejects if it exits or says nothing in `startMs`.
 */
export function startHostProcess(
  command: string,
  args: readonly string[],
  env: Record<string, string>,
  startMs = 30_000,
): Promise<HostProcess> {
  const child = spawn(command, args, {
    cwd: process.cwd(),
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', HEARTH_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${command} did not start:\n${out}`));
    }, startMs);
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      const match = /Point a Matrix client at (https?:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (match) {
        clearTimeout(timer);
        resolve({ url: match[1] as string, child, output: () => out });
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${command} exited with ${code}:\n${out}`));
    });
  });
}

/** Hosts started as the leader of their own process group: stopped with their children. */
const groups = new WeakSet<ChildProcess>();

function signal(child: ChildProcess, name: NodeJS.Signals): void {
  if (groups.has(child) && child.pid !== undefined) {
    try {
      process.kill(-child.pid, name);
      return;
    } catch {
      // The group is gone already.
    }
  }
  child.kill(name);
}

/** SIGTERM, then SIGKILL if it has not exited in `graceMs` (to its whole group, if it leads one). */
export function stopHostProcess(child: ChildProcess, graceMs = 10_000): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) {
    // The leader may be gone and its children not (jco serve's server is a child process).
    if (groups.has(child)) signal(child, 'SIGKILL');
    return Promise.resolve(child.exitCode);
  }
  return new Promise((resolve) => {
    const timer = setTimeout(() => signal(child, 'SIGKILL'), graceMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      // What it started and left behind goes too.
      signal(child, 'SIGKILL');
      resolve(code);
    });
    signal(child, 'SIGTERM');
  });
}

/**
 * `jco serve` of the component, one fresh instance per request (see src/hosts/wasi.ts for why),
 * as a process group: jco runs its server in a child process, which a signal to jco alone
 * leaves running. Requests are handled one at a time (see `JCO_SERVE_ISOLATION`), so /sync
 * does not wait (`HEARTH_MAX_SYNC_TIMEOUT` 0 unless `env` says otherwise).
 */
export async function jcoServe(
  wasm: string,
  port: number,
  env: Record<string, string>,
  startMs = 120_000,
): Promise<HostProcess> {
  const jco = join(process.cwd(), 'node_modules/@bytecodealliance/jco/dist/jco.js');
  const child = spawn(
    bin('node'),
    [
      jco,
      'serve',
      wasm,
      '--host',
      '127.0.0.1',
      '--port',
      String(port),
      ...JCO_SERVE_ISOLATION,
      '--jco-import',
      'wasm-bindings/jco-serve.ts',
    ],
    {
      cwd: process.cwd(),
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '/tmp',
        HEARTH_LOG_LEVEL: 'warn',
        HEARTH_MAX_SYNC_TIMEOUT: '0',
        // Node's flags for jco's server process. After a few hundred instances of the one
        // compiled component, Node 24's V8 aborted the process freeing wasm code ("Check
        // failed: jit_page_->allocations_.erase(addr) == 1" in UnregisterWasmAllocation);
        // code kept, it is not freed.
        JCO_RUN_ARGS: '--no-wasm-code-gc',
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    },
  );
  groups.add(child);
  let out = '';
  const collect = (chunk: Buffer) => {
    out += chunk.toString();
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const url = `http://127.0.0.1:${port}`;
  // jco serve says it listens before its server really does: ask until the homeserver answers.
  const deadline = Date.now() + startMs;
  for (;;) {
    if (child.exitCode !== null) {
      await stopHostProcess(child);
      throw new Error(`jco serve exited with ${child.exitCode}:\n${out}`);
    }
    try {
      const response = await fetch(`${url}/_matrix/client/versions`, { signal: AbortSignal.timeout(10_000) });
      if (response.ok) break;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) {
      await stopHostProcess(child, 0);
      throw new Error(`jco serve did not answer in ${startMs} ms:\n${out}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  return { url, child, output: () => out };
}

/**
 * A fresh instance per request, on jco's main thread: the component is compiled once and each
 * request only instantiates it, and the host's SQLite is one connection. (`worker` mode gives
 * each request a fresh thread that loads and compiles the 24 MB component anew, with its own
 * connection: 3-4 times slower per request, and a writer held up past SQLite's busy timeout by
 * another thread's transaction failed its request with "database is locked".) jco handles
 * such requests one after another, a waiting /sync holding up all others.
 */
export const JCO_SERVE_ISOLATION = ['--isolate-requests', 'instance'];

/**
 * The Workers bundle (scripts/edge-build.ts) in workerd through miniflare, on loopback, with its
 * Durable Objects' SQLite kept in `persistDir` (so a second start finds the first one's data).
 */
export async function startWorkerd(
  bundleFile: string,
  persistDir: string,
  bindings: Record<string, string>,
): Promise<{ url: string; stop(): Promise<void> }> {
  const mf = new Miniflare({
    modules: true,
    scriptPath: bundleFile,
    modulesRoot: dirname(bundleFile),
    compatibilityDate: '2026-04-01',
    durableObjects: { HEARTH: { className: 'HearthHomeserver', useSQLite: true } },
    durableObjectsPersist: persistDir,
    bindings,
    host: '127.0.0.1',
    port: 0,
  });
  const url = (await mf.ready).origin;
  return { url, stop: () => mf.dispose() };
}
