/**
 * Words of a text as the server-side search index keeps them (client-server-api "Server Side
 * Search"): one tokenizer for what is indexed and what is asked, so the two always agree.
 *
 * A word is a run of letters, digits or marks (`\p{L}\p{M}\p{N}`), NFKC-normalised and
 * lowercased; ideographs and kana (scripts written without spaces) are one word each, so a
 * search for one character finds it inside a sentence. Pure: no I/O.
 */

/** Longer words are not indexed (a pasted key or URL is not something to search for). */
export const MAX_WORD_LENGTH = 64;
/**
 * Distinct words indexed per text: bounds the index rows one event adds (a 64 KiB message
 * could otherwise add thousands). The first words of a long text are those kept.
 */
export const MAX_WORDS_PER_TEXT = 256;

/**
 * A pattern with Unicode property classes, or its stand-in where the engine has no Unicode
 * data: StarlingMonkey (the WASI component's engine) is built without ICU and refuses `\p{…}`
 * even to parse, so these patterns are strings, compiled here. The stand-ins are ranges: a
 * word is a run of anything but spaces, controls and punctuation; the unspaced scripts are
 * the kana and CJK ideograph blocks. A store is only ever written by one engine, so what it
 * indexes and what it is asked agree either way.
 */
function unicodePattern(pattern: string, standIn: string, flags: string): RegExp {
  try {
    return new RegExp(pattern, flags);
  } catch {
    return new RegExp(standIn, flags);
  }
}

const WORD = unicodePattern(
  '[\\p{L}\\p{M}\\p{N}]+',
  '[^\\s\\0-\\x2F\\x3A-\\x40\\x5B-\\x60\\x7B-\\xBF\\u2000-\\u206F\\u3000-\\u303F\\uFF00-\\uFF0F]+',
  'gu',
);
const UNSPACED = unicodePattern(
  '[\\p{Script=Han}\\p{Script=Hiragana}\\p{Script=Katakana}]',
  '[\\u3040-\\u30FF\\u3400-\\u4DBF\\u4E00-\\u9FFF\\uF900-\\uFAFF]',
  'u',
);

/** NFKC where the engine has it (without ICU, `normalize` may be missing or throw). */
function nfkc(text: string): string {
  try {
    return text.normalize('NFKC');
  } catch {
    return text;
  }
}

/** Text of ASCII characters only: most messages, and the fast path of `searchWords`. */
const ASCII = /^[\0-\x7F]*$/;
/**
 * A word of ASCII text, lowercased: exactly what `WORD` finds there (the ASCII letters and digits
 * are its only letters, marks or digits, and the stand-in's too), with nothing for NFKC to change
 * and no unspaced script to split. About a third of the general path's time in Node.
 */
const ASCII_WORD = /[a-z0-9]+/g;

/** Every word of `text`, in order, repeats included (for ranking and highlights). */
export function searchWords(text: string): string[] {
  if (!ASCII.test(text)) return unicodeWords(text);
  const out: string[] = [];
  for (const match of text.toLowerCase().match(ASCII_WORD) ?? []) {
    if (match.length <= MAX_WORD_LENGTH) out.push(match);
  }
  return out;
}

/** `searchWords` for any text (exported for the test that holds the ASCII path to it). */
export function unicodeWords(text: string): string[] {
  const out: string[] = [];
  for (const [match] of nfkc(text).toLowerCase().matchAll(WORD)) {
    if (!UNSPACED.test(match)) {
      if (match.length <= MAX_WORD_LENGTH) out.push(match);
      continue;
    }
    // Split unspaced scripts into single characters, keeping runs of other letters whole.
    let run = '';
    for (const ch of match) {
      if (UNSPACED.test(ch)) {
        if (run && run.length <= MAX_WORD_LENGTH) out.push(run);
        run = '';
        out.push(ch);
      } else run += ch;
    }
    if (run && run.length <= MAX_WORD_LENGTH) out.push(run);
  }
  return out;
}

/** The distinct words of `text` to index, at most `MAX_WORDS_PER_TEXT`. */
export function indexWords(text: string): string[] {
  const distinct = new Set<string>();
  for (const word of searchWords(text)) {
    distinct.add(word);
    if (distinct.size >= MAX_WORDS_PER_TEXT) break;
  }
  return [...distinct];
}

/**
 * The searchable text of an event's content, by the spec's search keys (search.yaml `keys`:
 * `content.body`, `content.name`, `content.topic`), or null when it has none.
 */
export function searchableText(type: string, content: unknown): { key: string; text: string } | null {
  if (typeof content !== 'object' || content === null) return null;
  const c = content as Record<string, unknown>;
  if (type === 'm.room.message' && typeof c.body === 'string') return { key: 'content.body', text: c.body };
  if (type === 'm.room.name' && typeof c.name === 'string') return { key: 'content.name', text: c.name };
  if (type === 'm.room.topic' && typeof c.topic === 'string') return { key: 'content.topic', text: c.topic };
  return null;
}
