/**
 * Gives the component its host interface under `jco serve` (`--jco-import` this file). With a
 * fresh instance per request (`--isolate-requests instance`), jco instantiates the component
 * with only WASI's imports (`WASIShim#getImportObject`); this adds `hearth:homeserver/host`
 * (host.ts) to that object for every instance.
 */
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as host from './host.ts';

interface ShimClass {
  prototype: { getImportObject(options?: unknown): Record<string, unknown> };
}

// The shim jco's own files import (jco depends on its own copy, not the one beside it).
const fromJco = createRequire(
  join(import.meta.dirname, '../node_modules/@bytecodealliance/jco/package.json'),
);
const { WASIShim } = (await import(
  pathToFileURL(fromJco.resolve('@bytecodealliance/preview2-shim/instantiation')).href
)) as { WASIShim: ShimClass };
const wasiImports = WASIShim.prototype.getImportObject;

/**
 * With `HEARTH_WASI_TIMING=1`, the host interface counts its calls and their time, printed
 * (on stderr) as each next instance is made: where a request's time went outside the component.
 */
function timed(functions: Record<string, unknown>): () => Record<string, unknown> {
  const stats = new Map<string, { calls: number; ms: number }>();
  const wrapped = Object.fromEntries(
    Object.entries(functions).map(([name, fn]) => [
      name,
      (...args: unknown[]) => {
        const started = performance.now();
        try {
          return (fn as (...args: unknown[]) => unknown)(...args);
        } finally {
          const entry = stats.get(name) ?? { calls: 0, ms: 0 };
          entry.calls++;
          entry.ms += performance.now() - started;
          stats.set(name, entry);
        }
      },
    ]),
  );
  let last = performance.now();
  return () => {
    const now = performance.now();
    const calls = [...stats].map(([name, { calls, ms }]) => `${name}=${calls}/${ms.toFixed(1)}ms`);
    console.error(`[host-timing] previous instance ${(now - last).toFixed(0)} ms: ${calls.join(' ')}`);
    stats.clear();
    last = now;
    return wrapped;
  };
}

const hostImports = process.env.HEARTH_WASI_TIMING === '1' ? timed(host) : () => host;
WASIShim.prototype.getImportObject = function withHost(options?: unknown) {
  return { ...wasiImports.call(this, options), 'hearth:homeserver/host': hostImports() };
};
