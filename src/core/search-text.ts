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

const WORD = /[\p{L}\p{M}\p{N}]+/gu;
const UNSPACED = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}]/u;

/** Every word of `text`, in order, repeats included (for ranking and highlights). */
export function searchWords(text: string): string[] {
  const out: string[] = [];
  for (const [match] of text.normalize('NFKC').toLowerCase().matchAll(WORD)) {
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
