/**
 * Unpadded base64 (appendices.md "Unpadded Base64") and its URL-safe variant (used by
 * room v4+ event IDs). Decoding accepts padded and unpadded input, as the spec asks, and
 * rejects anything else (stray characters, whitespace, partial padding) with `BAD_KEY`.
 * Non-zero bits in the last character are ignored, as Python's decoder (Synapse) does.
 */
import { CoreError } from './errors.ts';

const STD = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/** Character codes of an alphabet, for writing output as codes and making one string of them. */
const codesOf = (alphabet: string) => Uint8Array.from(alphabet, (c) => c.charCodeAt(0));
const STD_CODES = codesOf(STD);
const URL_CODES = codesOf(URL);
/** Arguments per `String.fromCharCode` call: well inside every engine's limit. */
const CHUNK = 8192;

/**
 * Inputs up to this many bytes — keys, hashes, signatures: what every event encodes — are
 * written two characters at a time from a table of every pair (`pairsOf`), which costs a
 * quarter of making a string from a buffer of codes (`String.fromCharCode.apply` on a typed
 * array is a slow path in V8: 0.8 µs for a signature against 0.2 µs). Longer inputs use
 * the buffer, which does not build a long chain of concatenations.
 */
const SHORT = 96;

/** The 4,096 two-character strings of an alphabet, by the 12 bits they encode; made on first use. */
const pairTables = new Map<string, readonly string[]>();

function pairsOf(alphabet: string): readonly string[] {
  let pairs = pairTables.get(alphabet);
  if (pairs === undefined) {
    const table: string[] = new Array(4096);
    // A row per first character, each a short call: one loop of 4,096 turns, run once at a
    // server's start, sometimes had V8 compile it with its optimising compiler on the spot
    // (on-stack replacement), which alone brings ~5 MB of that compiler's code into memory.
    for (let first = 0; first < 64; first++) pairRow(alphabet, first, table);
    pairs = table;
    pairTables.set(alphabet, pairs);
  }
  return pairs;
}

function pairRow(alphabet: string, first: number, table: string[]): void {
  const head = alphabet[first] as string;
  for (let second = 0; second < 64; second++)
    table[(first << 6) | second] = head + (alphabet[second] as string);
}

function encodeShort(bytes: Uint8Array, alphabet: string): string {
  const pairs = pairsOf(alphabet);
  const whole = bytes.length - (bytes.length % 3);
  let text = '';
  for (let i = 0; i < whole; i += 3) {
    const n = ((bytes[i] as number) << 16) | ((bytes[i + 1] as number) << 8) | (bytes[i + 2] as number);
    text += (pairs[n >> 12] as string) + (pairs[n & 4095] as string);
  }
  if (bytes.length - whole === 1) {
    text += pairs[(bytes[whole] as number) << 4] as string;
  } else if (bytes.length - whole === 2) {
    const n = ((bytes[whole] as number) << 8) | (bytes[whole + 1] as number);
    text += (pairs[n >> 4] as string) + (alphabet[(n << 2) & 63] as string);
  }
  return text;
}

/**
 * The output is written as character codes into one buffer and made into a string by
 * `String.fromCharCode` (a call per 8 KiB of output), not built four characters at a time:
 * a key, hash or signature — what is encoded on every event — costs a few calls.
 */
function encode(bytes: Uint8Array, codes: Uint8Array, alphabet: string): string {
  if (!(bytes instanceof Uint8Array)) {
    throw new CoreError('BAD_KEY', 'only bytes (a Uint8Array) can be base64-encoded');
  }
  if (bytes.length <= SHORT) return encodeShort(bytes, alphabet);
  const whole = bytes.length - (bytes.length % 3);
  const rest = bytes.length - whole;
  const out = new Uint8Array((whole / 3) * 4 + (rest === 0 ? 0 : rest + 1));
  let o = 0;
  for (let i = 0; i < whole; i += 3) {
    const n = ((bytes[i] as number) << 16) | ((bytes[i + 1] as number) << 8) | (bytes[i + 2] as number);
    out[o++] = codes[n >> 18] as number;
    out[o++] = codes[(n >> 12) & 63] as number;
    out[o++] = codes[(n >> 6) & 63] as number;
    out[o++] = codes[n & 63] as number;
  }
  if (rest === 1) {
    const n = (bytes[whole] as number) << 16;
    out[o++] = codes[n >> 18] as number;
    out[o++] = codes[(n >> 12) & 63] as number;
  } else if (rest === 2) {
    const n = ((bytes[whole] as number) << 16) | ((bytes[whole + 1] as number) << 8);
    out[o++] = codes[n >> 18] as number;
    out[o++] = codes[(n >> 12) & 63] as number;
    out[o++] = codes[(n >> 6) & 63] as number;
  }
  if (out.length <= CHUNK) return String.fromCharCode.apply(null, out as unknown as number[]);
  let text = '';
  for (let at = 0; at < out.length; at += CHUNK) {
    text += String.fromCharCode.apply(null, out.subarray(at, at + CHUNK) as unknown as number[]);
  }
  return text;
}

const STD_LOOKUP = lookupTable(STD);
const URL_LOOKUP = lookupTable(URL);

function lookupTable(alphabet: string): Int16Array {
  const table = new Int16Array(128).fill(-1);
  for (let i = 0; i < alphabet.length; i++) table[alphabet.charCodeAt(i)] = i;
  return table;
}

function decode(text: string, table: Int16Array): Uint8Array {
  if (typeof text !== 'string')
    throw new CoreError('BAD_KEY', `malformed base64: ${typeof text} is not a string`);
  let end = text.length;
  while (end > 0 && text.charCodeAt(end - 1) === 61 /* = */) end--;
  const padding = text.length - end;
  // Unpadded text never leaves a single character over; padded text is whole 4-character groups.
  if (end % 4 === 1) throw new CoreError('BAD_KEY', 'malformed base64: bad length');
  if (padding > 0 && (padding > 2 || text.length % 4 !== 0)) {
    throw new CoreError('BAD_KEY', 'malformed base64: bad padding');
  }
  const out = new Uint8Array(Math.floor((end * 3) / 4));
  let acc = 0;
  let bits = 0;
  let o = 0;
  for (let i = 0; i < end; i++) {
    const c = text.charCodeAt(i);
    const v = c < 128 ? (table[c] as number) : -1;
    if (v < 0) throw new CoreError('BAD_KEY', `malformed base64: unexpected character at ${i}`);
    acc = (acc << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >> bits) & 0xff;
    }
  }
  return out;
}

export function encodeBase64(bytes: Uint8Array): string {
  return encode(bytes, STD_CODES, STD);
}

export function decodeBase64(text: string): Uint8Array {
  return decode(text, STD_LOOKUP);
}

export function encodeBase64Url(bytes: Uint8Array): string {
  return encode(bytes, URL_CODES, URL);
}

export function decodeBase64Url(text: string): Uint8Array {
  return decode(text, URL_LOOKUP);
}
