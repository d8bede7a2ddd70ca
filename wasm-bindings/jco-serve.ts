/**
 * Gives the component its host interface under `jco serve` (`--jco-import` this file). With a
 * fresh instance per request (`--isolate-requests`), jco instantiates the component with only
 * WASI's imports (`WASIShim#getImportObject`); this adds `hearth:homeserver/host` (host.ts) to
 * that object in every worker jco starts.
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
WASIShim.prototype.getImportObject = function withHost(options?: unknown) {
  return { ...wasiImports.call(this, options), 'hearth:homeserver/host': host };
};
