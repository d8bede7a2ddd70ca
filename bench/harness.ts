/**
 * A small benchmark harness. Figures are rates measured over a fixed wall-clock budget
 * after a warm-up; every row names the raw primitive measured in the same run beside it,
 * because absolute times on shared machines drift but ratios hold.
 */

export interface BenchRow {
  name: string;
  value: number;
  unit: string;
  /** The raw primitive this figure is compared with, measured in the same run. */
  baselineName?: string;
  baselineValue?: number;
  /** value ÷ baselineValue for rates (higher is better), baseline ÷ value for times. */
  ratio?: number;
  note?: string;
}

const now = () => performance.now();

/** Calls `fn` repeatedly for about `ms` milliseconds (after a warm-up) and returns calls per second. */
export async function rate(fn: () => unknown | Promise<unknown>, ms = 1000, warmupMs = 200): Promise<number> {
  const warmEnd = now() + warmupMs;
  while (now() < warmEnd) await fn();
  let count = 0;
  const start = now();
  const end = start + ms;
  while (now() < end) {
    await fn();
    count++;
  }
  return (count * 1000) / (now() - start);
}

/** Like `rate`, for synchronous functions, without an await per call. */
export function rateSync(fn: () => unknown, ms = 1000, warmupMs = 200): number {
  const warmEnd = now() + warmupMs;
  while (now() < warmEnd) fn();
  let count = 0;
  const start = now();
  const end = start + ms;
  while (now() < end) {
    for (let i = 0; i < 16; i++) fn();
    count += 16;
  }
  return (count * 1000) / (now() - start);
}

/** Milliseconds on some clock: wall time (`now`) or this process's CPU time (`cpuClock`). */
type Clock = () => number;

/**
 * This process's CPU time in ms (every thread: WebCrypto works on libuv's pool), or undefined
 * where the runtime has no `process.cpuUsage`.
 */
function cpuClock(): Clock | undefined {
  const usage = (globalThis as { process?: { cpuUsage?: () => { user: number; system: number } } }).process
    ?.cpuUsage;
  if (typeof usage !== 'function') return undefined;
  return () => {
    const { user, system } = usage();
    return (user + system) / 1000;
  };
}

/** Calls per second of `clock` of each of `fns`, from the totals of the alternating slices. */
function perSecond(calls: number[], spent: number[]): [number, number] {
  return [
    ((calls[0] as number) * 1000) / (spent[0] as number),
    ((calls[1] as number) * 1000) / (spent[1] as number),
  ];
}

/** The alternating slices every async rate here is taken with, on `clock`. */
async function alternate(
  fns: ReadonlyArray<() => unknown | Promise<unknown>>,
  ms: number,
  slices: number,
  clock: Clock,
): Promise<[number, number]> {
  const calls = [0, 0];
  const spent = [0, 0];
  for (const fn of fns) {
    const warmEnd = now() + 100;
    while (now() < warmEnd) await fn();
  }
  const slice = ms / (2 * slices);
  for (let round = 0; round < slices; round++) {
    for (let k = 0; k < 2; k++) {
      const fn = fns[k] as () => unknown;
      const start = clock();
      let n = 0;
      let used = 0;
      while (used < slice) {
        await fn();
        n++;
        used = clock() - start;
      }
      calls[k] = (calls[k] as number) + n;
      spent[k] = (spent[k] as number) + used;
    }
  }
  return perSecond(calls, spent);
}

/** `alternate` for synchronous functions, without an await per call. */
function alternateSync(
  fns: ReadonlyArray<() => unknown>,
  ms: number,
  slices: number,
  clock: Clock,
): [number, number] {
  const calls = [0, 0];
  const spent = [0, 0];
  for (const fn of fns) {
    const warmEnd = now() + 100;
    while (now() < warmEnd) fn();
  }
  const slice = ms / (2 * slices);
  for (let round = 0; round < slices; round++) {
    for (let k = 0; k < 2; k++) {
      const fn = fns[k] as () => unknown;
      const start = clock();
      let n = 0;
      let used = 0;
      while (used < slice) {
        for (let i = 0; i < 16; i++) fn();
        n += 16;
        used = clock() - start;
      }
      calls[k] = (calls[k] as number) + n;
      spent[k] = (spent[k] as number) + used;
    }
  }
  return perSecond(calls, spent);
}

/**
 * Two rates measured in alternating slices (after a warm-up of each), so drift on a shared
 * machine hits both alike — how every "ratio to the raw primitive" here is taken. Returns
 * [a, b] calls per second.
 */
export function rates2(
  a: () => unknown | Promise<unknown>,
  b: () => unknown | Promise<unknown>,
  ms = 2000,
  slices = 10,
): Promise<[number, number]> {
  return alternate([a, b], ms, slices, now);
}

/** `rates2` for synchronous functions, without an await per call. */
export function rates2Sync(a: () => unknown, b: () => unknown, ms = 2000, slices = 10): [number, number] {
  return alternateSync([a, b], ms, slices, now);
}

/**
 * `rates2Sync` counted in CPU time of this process instead of wall time: calls per CPU-second,
 * in alternating slices that each end after `ms / (2 * slices)` ms of CPU. On a machine
 * shared with other busy processes, wall-clock slices are cut by preemption at random and
 * the ratio of two synchronous functions drifts by ±15 % from run to run; the CPU each call
 * takes does not. (Synchronous work only: there is nothing else to wait for.) Falls back to
 * wall time where the runtime has no `process.cpuUsage`.
 */
export function rates2SyncCpu(a: () => unknown, b: () => unknown, ms = 2000, slices = 10): [number, number] {
  return alternateSync([a, b], ms, slices, cpuClock() ?? now);
}

/**
 * `rates2` counted in CPU time of the whole process: calls per CPU-second, what each call
 * costs rather than how long it waited on a busy machine. Undefined where the runtime has no
 * `process.cpuUsage`.
 */
export async function rates2Cpu(
  a: () => unknown | Promise<unknown>,
  b: () => unknown | Promise<unknown>,
  ms = 2000,
  slices = 10,
): Promise<[number, number] | undefined> {
  const clock = cpuClock();
  return clock === undefined ? undefined : alternate([a, b], ms, slices, clock);
}

/** Median duration in milliseconds of `runs` calls of `fn` (after one warm-up call). */
export async function medianMs(fn: () => unknown | Promise<unknown>, runs = 5): Promise<number> {
  await fn();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const start = now();
    await fn();
    times.push(now() - start);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)] as number;
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const at = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[at] as number;
}

function fmt(n: number | undefined): string {
  if (n === undefined || Number.isNaN(n)) return '';
  if (Math.abs(n) >= 100) return Math.round(n).toLocaleString('en-US');
  return n.toFixed(n >= 10 ? 1 : 2);
}

export function printTable(title: string, rows: readonly BenchRow[]): void {
  const header = ['figure', 'value', 'unit', 'baseline (same run)', 'baseline', 'ratio'];
  const body = rows.map((r) => [
    r.name + (r.note ? ` (${r.note})` : ''),
    fmt(r.value),
    r.unit,
    r.baselineName ?? '',
    fmt(r.baselineValue),
    r.ratio === undefined ? '' : r.ratio.toFixed(2),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => (b[i] as string).length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i] as number)).join(' | ')} |`;
  console.log(`\n## ${title}\n`);
  console.log(line(header));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const b of body) console.log(line(b));
}

/** A figure measured at several sizes of one thing (members, waiters, …). */
export interface ScalingRow {
  name: string;
  unit: string;
  /** What grows: "members", "rooms", … */
  what: string;
  sizes: readonly number[];
  values: readonly number[];
}

/**
 * One line per figure: its value at each size and, per step, the growth factor beside the
 * growth of the size (× value / × size); a cost growing in proportion shows the same factors.
 */
export function printScaling(title: string, rows: readonly ScalingRow[]): void {
  console.log(`\n## ${title}\n`);
  const header = ['figure', 'unit', 'values at sizes', 'growth per step (value × / size ×)', 'first → last'];
  const body = rows.map((r) => {
    const cells = r.sizes.map((size, i) => `${size.toLocaleString('en-US')} ${r.what}: ${fmt(r.values[i])}`);
    const steps = r.sizes.slice(1).map((size, i) => {
      const before = r.values[i] as number;
      const grown = before > 0 ? ((r.values[i + 1] as number) / before).toFixed(2) : '∞';
      const sizeGrowth = (r.sizes[i] as number) > 0 ? (size / (r.sizes[i] as number)).toFixed(0) : '∞';
      return `${grown}× / ${sizeGrowth}×`;
    });
    const first = r.values[0] as number;
    const last = r.values[r.values.length - 1] as number;
    return [
      r.name,
      r.unit,
      cells.join('; '),
      steps.join(', '),
      first > 0 ? `${(last / first).toFixed(2)}×` : '',
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => (b[i] as string).length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i] as number)).join(' | ')} |`;
  console.log(line(header));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const b of body) console.log(line(b));
}

/**
 * Runs `fn`, and when `HEARTH_BENCH_PROFILE` names a file, CPU-profiles just that run into it
 * (a `.cpuprofile` for Chrome DevTools or `node --cpu-prof` tooling): the measured part of a
 * benchmark alone, without its set-up.
 */
export async function profiled<T>(name: string, fn: () => Promise<T>): Promise<T> {
  const path = process.env.HEARTH_BENCH_PROFILE;
  if (!path) return fn();
  const { Session } = await import('node:inspector/promises');
  const { writeFileSync } = await import('node:fs');
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 500 });
  await session.post('Profiler.start');
  try {
    return await fn();
  } finally {
    const { profile } = await session.post('Profiler.stop');
    writeFileSync(path.replace(/(\.cpuprofile)?$/, `-${name}.cpuprofile`), JSON.stringify(profile));
    session.disconnect();
  }
}
