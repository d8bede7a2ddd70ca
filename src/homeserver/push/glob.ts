/**
 * Matching helpers for push conditions: appendices.md "Glob-style matching" (`*` matches zero
 * or more characters, `?` exactly one; every other character is literal) and "Dot-separated
 * property paths" (`\.` is a literal dot, `\\` a literal backslash, other escapes stay as
 * written), with the case-insensitive whole-value and word-boundary rules of client-server-api
 * "Conditions" → `event_match`.
 *
 * Matching runs as a set-of-states automaton over code points, O(text × pattern) whatever the
 * pattern, so a rule like `*a*a*a*a*b` cannot make the server backtrack for long over a 64 KiB
 * message body (a regular expression built from the glob could).
 */

const STAR = -1;
const ANY = -2;

/** A glob compiled to code points: STAR, ANY, or a literal code point. Consecutive stars fold into one. */
export type CompiledGlob = Int32Array;

/** Case folding used for both sides; "the exact meaning of case insensitive is defined by the implementation". */
function fold(text: string): string {
  return text.toLowerCase();
}

function codePoints(text: string): Int32Array {
  const out: number[] = [];
  for (const char of text) out.push(char.codePointAt(0) as number);
  return Int32Array.from(out);
}

export function compileGlob(pattern: string, options: { literal?: boolean } = {}): CompiledGlob {
  const out: number[] = [];
  for (const char of fold(pattern)) {
    if (!options.literal && char === '*') {
      if (out[out.length - 1] !== STAR) out.push(STAR);
    } else if (!options.literal && char === '?') {
      out.push(ANY);
    } else {
      out.push(char.codePointAt(0) as number);
    }
  }
  return Int32Array.from(out);
}

/** Text prepared for matching: folded and split into code points (prepare once, match many rules). */
export type PreparedText = Int32Array;

export function prepareText(text: string): PreparedText {
  return codePoints(fold(text));
}

/** "Any character not in the sets [A-Z], [a-z], [0-9] or _" is a word boundary (after folding: no A-Z). */
function isWordCodePoint(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || c === 0x5f;
}

/**
 * Whether `glob` matches `text`: the whole of it (`mode: 'whole'`), or some substring that
 * starts and ends at a word boundary (`mode: 'words'`, the `content.body` rule), where a word
 * boundary is the start or end of the text or a character outside `[A-Za-z0-9_]`.
 */
export function globMatches(glob: CompiledGlob, text: PreparedText, mode: 'whole' | 'words'): boolean {
  return glob.length < 31 ? matchBits(glob, text, mode) : matchStates(glob, text, mode);
}

const startsAt = (text: PreparedText, i: number, mode: 'whole' | 'words') =>
  mode === 'whole' ? i === 0 : i === 0 || !isWordCodePoint(text[i - 1] as number);
const endsAt = (text: PreparedText, i: number, mode: 'whole' | 'words') =>
  mode === 'whole' ? i === text.length : i === text.length || !isWordCodePoint(text[i] as number);

/**
 * The automaton with its states as the bits of one integer (patterns under 31 tokens, i.e.
 * nearly all): bit j is "the first j tokens have matched". A star at j keeps bit j on any
 * character and lets bit j+1 on without one (stars are folded, so one step of that suffices).
 */
function matchBits(glob: CompiledGlob, text: PreparedText, mode: 'whole' | 'words'): boolean {
  const m = glob.length;
  const accept = 1 << m;
  let starMask = 0;
  let anyMask = 0;
  const charMasks = new Map<number, number>();
  for (let j = 0; j < m; j++) {
    const token = glob[j] as number;
    if (token === STAR) starMask |= 1 << j;
    else if (token === ANY) anyMask |= 1 << j;
    else charMasks.set(token, (charMasks.get(token) ?? 0) | (1 << j));
  }
  const close = (states: number) => states | ((states & starMask) << 1);
  const n = text.length;
  let states = 0;
  for (let i = 0; ; i++) {
    if (startsAt(text, i, mode)) states = close(states | 1);
    if (states & accept && endsAt(text, i, mode)) return true;
    if (i === n || (states === 0 && mode === 'whole')) return false;
    if (states === 0) continue;
    const c = text[i] as number;
    const step = (charMasks.get(c) ?? 0) | anyMask;
    states = close(((states & step) << 1) | (states & starMask));
  }
}

/** The same automaton over a byte per state, for long patterns. */
function matchStates(glob: CompiledGlob, text: PreparedText, mode: 'whole' | 'words'): boolean {
  const m = glob.length;
  const n = text.length;
  let current = new Uint8Array(m + 1);
  let next = new Uint8Array(m + 1);
  let live = false;
  for (let i = 0; ; i++) {
    if (startsAt(text, i, mode)) {
      addState(glob, current, 0);
      live = true;
    }
    if (current[m] && endsAt(text, i, mode)) return true;
    if (i === n || (!live && mode === 'whole')) return false;
    if (!live) continue;
    next.fill(0);
    live = false;
    const c = text[i] as number;
    for (let j = 0; j < m; j++) {
      if (!current[j]) continue;
      const token = glob[j] as number;
      if (token === STAR) {
        addState(glob, next, j);
        live = true;
      } else if (token === ANY || token === c) {
        addState(glob, next, j + 1);
        live = true;
      }
    }
    [current, next] = [next, current];
  }
}

/** Adds state `from` and, since a star may match nothing, the states reachable through stars. */
function addState(glob: CompiledGlob, set: Uint8Array, from: number): void {
  for (let j = from; ; j++) {
    if (set[j]) return;
    set[j] = 1;
    if (j >= glob.length || glob[j] !== STAR) return;
  }
}

/** Convenience for one-off matches (tests, single rules). */
export function matchGlob(pattern: string, text: string, mode: 'whole' | 'words' = 'whole'): boolean {
  return globMatches(compileGlob(pattern), prepareText(text), mode);
}

/**
 * Splits a dot-separated property path: `content.m\.relates_to.rel_type` →
 * `['content', 'm.relates_to', 'rel_type']`, `content.m\\foo` → `['content', 'm\foo']`.
 */
export function parsePropertyPath(key: string): string[] {
  const parts: string[] = [];
  let part = '';
  for (let i = 0; i < key.length; i++) {
    const char = key[i] as string;
    const following = key[i + 1];
    if (char === '\\' && (following === '.' || following === '\\')) {
      part += following;
      i++;
    } else if (char === '.') {
      parts.push(part);
      part = '';
    } else {
      part += char;
    }
  }
  parts.push(part);
  return parts;
}

/** The value at a property path of a JSON object, or undefined when any step is missing or not an object. */
export function valueAtPath(root: unknown, path: readonly string[]): unknown {
  let value: unknown = root;
  for (const part of path) {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
    if (!Object.hasOwn(value, part)) return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}
