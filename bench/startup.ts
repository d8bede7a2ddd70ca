/**
 * Start-up and idle memory of `hearth serve` (issue 13), beside a bare `node:http` server
 * started the same way in the same run: time from spawning the process to the first
 * answered `GET /_matrix/client/versions` (polled every 5 ms), and the resident set size
 * (VmRSS) one second after that, idle, and the CPU time the process spent until it answered
 * (all its threads, from /proc: on a loaded machine the wall time mostly measures the other
 * processes, the CPU time does not). Both run `hearth serve` as a user would: the `bin`
 * launcher (built JavaScript, built on demand when missing or older than the sources) and,
 * for comparison, the TypeScript sources run directly (type-stripped at every start).
 *
 *   node bench/startup.ts
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BenchRow, percentile, printTable } from './harness.ts';

const repo = join(import.meta.dirname, '..');
const RUNS = 5;
const BARE = `require('node:http').createServer((q, s) => { s.setHeader('content-type', 'application/json'); s.end('{"versions":["v1.11"]}'); }).listen(Number(process.argv[1]), '127.0.0.1');`;

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? Number.NaN);
  return kb / 1024;
}

/** CPU time (ms) of every thread of `pid` so far: the first field of each /proc/PID/task/TID/schedstat (ns). */
function cpuMs(pid: number): number {
  let ns = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // the thread ended meanwhile
    }
  }
  return ns / 1e6;
}

interface Started {
  ms: number;
  cpu: number;
  rss: number;
}

/** Spawns `args` (with the port last-but-given by `withPort`), times the first answer, reads RSS idle. */
async function startOnce(withPort: (port: number) => string[]): Promise<Started> {
  const port = await freePort();
  const start = performance.now();
  const child: ChildProcess = spawn(process.execPath, withPort(port), {
    cwd: repo,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  try {
    const deadline = start + 30_000;
    for (;;) {
      if (performance.now() > deadline) throw new Error(`no answer on port ${port}`);
      try {
        const response = await fetch(`http://127.0.0.1:${port}/_matrix/client/versions`);
        await response.arrayBuffer();
        if (response.status === 200) break;
      } catch {
        // not listening yet
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    const ms = performance.now() - start;
    const cpu = cpuMs(child.pid as number);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    return { ms, cpu, rss: rssMb(child.pid as number) };
  } finally {
    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('exit', resolve));
  }
}

async function medianStart(withPort: (port: number) => string[]): Promise<Started> {
  await startOnce(withPort); // warm-up: file cache, the launcher's build when needed, Node's compile cache
  const runs: Started[] = [];
  for (let i = 0; i < RUNS; i++) runs.push(await startOnce(withPort));
  const med = (values: number[]) =>
    percentile(
      values.sort((a, b) => a - b),
      50,
    );
  return {
    ms: med(runs.map((r) => r.ms)),
    cpu: med(runs.map((r) => r.cpu)),
    rss: med(runs.map((r) => r.rss)),
  };
}

export async function startupBench(): Promise<BenchRow[]> {
  const data = mkdtempSync(join(tmpdir(), 'hearth-bench-start-'));
  try {
    const bare = await medianStart((port) => ['-e', BARE, String(port)]);
    const serve = (entry: string) => (port: number) => [
      entry,
      'serve',
      '--port',
      String(port),
      '--data',
      join(data, entry.replace(/\W/g, '-')),
    ];
    const built = await medianStart(serve('bin/hearth.js'));
    const sources = await medianStart(serve('src/hosts/cli.ts'));
    const rows: BenchRow[] = [];
    for (const [what, figure] of [
      ['`hearth serve` (bin: built JavaScript)', built],
      ['`node src/hosts/cli.ts serve` (TypeScript at each start)', sources],
    ] as const) {
      const row = (name: string, key: keyof Started, unit: string, note: string): BenchRow => ({
        name: `${what} ${name}`,
        value: figure[key],
        unit,
        baselineName: 'bare node:http server',
        baselineValue: bare[key],
        ratio: bare[key] / figure[key],
        note,
      });
      rows.push(
        row('start → first /versions', 'ms', `ms (median of ${RUNS})`, 'aim ≤ 2× bare (ratio ≥ 0.5)'),
        row(
          'CPU time until the first /versions answer',
          'cpu',
          `ms (median of ${RUNS})`,
          'the same aim, load-independent',
        ),
        row('idle RSS', 'rss', 'MB', 'aim ≤ 1.5× bare (ratio ≥ 0.67)'),
      );
    }
    return rows;
  } finally {
    rmSync(data, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  printTable('start-up: hearth serve beside a bare node:http server', await startupBench());
}
