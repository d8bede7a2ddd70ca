/**
 * The layers point one way (README "Architecture"): checked on every import of every source
 * file, so an arrow pointing up fails a test instead of waiting for a review.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = import.meta.dirname;

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sources(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

/** Every relative import of a file, as a path relative to src/ (`api/http.ts`). */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const found: string[] = [];
  for (const match of text.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)) {
    found.push(relative(SRC, resolve(dirname(file), match[1] as string)));
  }
  return found;
}

const isTest = (file: string) => /\.test\.ts$/.test(file);

function violations(folder: string, forbidden: (target: string) => boolean, include = (_f: string) => true) {
  const out: string[] = [];
  for (const file of sources(join(SRC, folder)).filter(include)) {
    for (const target of importsOf(file)) {
      if (forbidden(target)) out.push(`${relative(SRC, file)} → ${target}`);
    }
  }
  return out;
}

describe('layers', () => {
  it('core imports nothing from src/ outside itself', () => {
    expect(violations('core', (t) => !t.startsWith('core/'))).toEqual([]);
  });

  // Its tests may start a whole homeserver (the backup test checks one runs on imported data).
  it('storage imports only core (and itself), outside tests', () => {
    const outside = (t: string) => !t.startsWith('storage/') && !t.startsWith('core/');
    expect(violations('storage', outside, (f) => !isTest(f))).toEqual([]);
  });

  it('no homeserver file, tests included, imports the API, a host, a transport, server.ts or testing.ts', () => {
    const above = (t: string) =>
      /^(api|hosts|transport|federation)\//.test(t) || t === 'server.ts' || t === 'testing.ts';
    expect(violations('homeserver', above)).toEqual([]);
  });

  it('the homeserver uses the storage interface, never a backend (outside test support)', () => {
    const backend = (t: string) => /^storage\/(indexeddb|sqlite)\//.test(t);
    const production = (f: string) => !isTest(f) && !/\/testing(-[a-z-]+)?\.ts$/.test(f);
    expect(violations('homeserver', backend, production)).toEqual([]);
  });

  it('the API reaches durable state only through services: no storage import outside tests', () => {
    const production = (f: string) => !isTest(f) && !/\/testing(-[a-z-]+)?\.ts$/.test(f);
    expect(violations('api', (t) => t.startsWith('storage/') || t.startsWith('hosts/'), production)).toEqual(
      [],
    );
  });
});
