/**
 * Every text → value boundary goes through `parseJson` (src/core/json.ts): the runtime's own
 * `JSON.parse` misreads escaped keys on Node 24/26 (nodejs/node#63785), and `Request.json()`
 * / `Response.json()` are `JSON.parse` underneath. This test fails when code under src/
 * (tests aside) calls either directly.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = new URL('../src/', import.meta.url).pathname;
const DECODER = 'core/json.ts';
const FORBIDDEN: Array<[RegExp, string]> = [
  [/\bJSON\.parse\s*\(/, 'JSON.parse('],
  // `v.json()` is the validator of any JSON value, not a decoder.
  [/(?<!\bv)\.json\(\s*\)/, '.json()'],
];

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts') ? [path] : [];
  });
}

/** The code of a file with its comments blanked, so prose that names JSON.parse is not a call. */
function code(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`])\/\/.*$/gm, '$1');
}

describe('the JSON boundary', () => {
  const files = sourceFiles(SRC);

  it('finds the source tree', () => {
    expect(files.length).toBeGreaterThan(50);
    expect(files.map((f) => relative(SRC, f))).toContain(DECODER);
  });

  it('has no JSON.parse or .json() outside the one decoder', () => {
    const offenders: string[] = [];
    for (const file of files) {
      const name = relative(SRC, file);
      if (name === DECODER) continue;
      const lines = code(readFileSync(file, 'utf8')).split('\n');
      lines.forEach((line, i) => {
        for (const [pattern, what] of FORBIDDEN) {
          if (pattern.test(line)) offenders.push(`${name}:${i + 1}: ${what}`);
        }
      });
    }
    expect(offenders).toEqual([]);
  });

  it('would notice a call', () => {
    expect(FORBIDDEN.some(([p]) => p.test(code('const x = JSON.parse(text);')))).toBe(true);
    expect(FORBIDDEN.some(([p]) => p.test(code('const x = await response.json();')))).toBe(true);
    expect(FORBIDDEN.some(([p]) => p.test(code('// JSON.parse(text) is not used')))).toBe(false);
  });
});
