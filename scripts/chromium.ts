/**
 * How every browser test and benchmark launches Chromium: Debian's package (installed by
 * `ensure-chromium.sh` when missing) with flags that keep it headless, offline and on
 * loopback — without the background-networking ones, its connections to Google's hosts
 * are refused by this machine's closed network, many at a time.
 */
import { execFileSync } from 'node:child_process';
import { join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '..');

export const CHROMIUM_ARGS: readonly string[] = [
  '--no-sandbox',
  '--disable-gpu',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-quic',
];

/** The path of a headless-capable Chromium, installing Debian's when none is there. */
export function chromiumPath(): string {
  return execFileSync('bash', [join(ROOT, 'scripts/ensure-chromium.sh')], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  }).trim();
}
