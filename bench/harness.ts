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

/**
 * Two rates measured in alternating slices (after a warm-up of each), so drift on a shared
 * machine hits both alike — how every "ratio to the raw primitive" here is taken. Returns
 * [a, b] calls per second.
 */
export async function rates2(
  a: () => unknown | Promise<unknown>,
  b: () => unknown | Promise<unknown>,
  ms = 2000,
  slices = 10,
): Promise<[number, number]> {
  const calls = [0, 0];
  const spent = [0, 0];
  const fns = [a, b];
  for (const fn of fns) {
    const warmEnd = now() + 100;
    while (now() < warmEnd) await fn();
  }
  const slice = ms / (2 * slices);
  for (let round = 0; round < slices; round++) {
    for (let k = 0; k < 2; k++) {
      const fn = fns[k] as () => unknown;
      const start = now();
      const end = start + slice;
      let n = 0;
      while (now() < end) {
        await fn();
        n++;
      }
      calls[k] = (calls[k] as number) + n;
      spent[k] = (spent[k] as number) + now() - start;
    }
  }
  return [
    ((calls[0] as number) * 1000) / (spent[0] as number),
    ((calls[1] as number) * 1000) / (spent[1] as number),
  ];
}

/** `rates2` for synchronous functions, without an await per call. */
export function rates2Sync(a: () => unknown, b: () => unknown, ms = 2000, slices = 10): [number, number] {
  const calls = [0, 0];
  const spent = [0, 0];
  const fns = [a, b];
  for (const fn of fns) {
    const warmEnd = now() + 100;
    while (now() < warmEnd) fn();
  }
  const slice = ms / (2 * slices);
  for (let round = 0; round < slices; round++) {
    for (let k = 0; k < 2; k++) {
      const fn = fns[k] as () => unknown;
      const start = now();
      const end = start + slice;
      let n = 0;
      while (now() < end) {
        for (let i = 0; i < 16; i++) fn();
        n += 16;
      }
      calls[k] = (calls[k] as number) + n;
      spent[k] = (spent[k] as number) + now() - start;
    }
  }
  return [
    ((calls[0] as number) * 1000) / (spent[0] as number),
    ((calls[1] as number) * 1000) / (spent[1] as number),
  ];
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
