/**
 * `multipart/mixed` bodies (RFC 2046 §5.1), the shape of the federation media answers
 * (server-server-api "Content Repository", content_repository.yaml): exactly two parts, the
 * first `application/json` metadata, the second the media (or a `Location` to fetch it from).
 * Byte-exact both ways: the media part is never decoded as text.
 */

export interface MultipartPart {
  /** Header names in lower case. */
  headers: Record<string, string>;
  body: Uint8Array;
}

const encoder = new TextEncoder();
const latin1 = new TextDecoder('latin1');

/** The body of `parts` with `boundary` (which must not occur in any part: a random one). */
export function encodeMultipart(
  boundary: string,
  parts: readonly { headers: Record<string, string>; body: Uint8Array | Blob }[],
): Blob {
  const pieces: (Uint8Array | Blob)[] = [];
  for (const part of parts) {
    let head = `--${boundary}\r\n`;
    for (const [name, value] of Object.entries(part.headers)) head += `${name}: ${value}\r\n`;
    pieces.push(encoder.encode(`${head}\r\n`), part.body, encoder.encode('\r\n'));
  }
  pieces.push(encoder.encode(`--${boundary}--\r\n`));
  return new Blob(pieces as BlobPart[]);
}

/** The `boundary` parameter of a `multipart/*` content type, or null. */
export function multipartBoundary(contentType: string | null): string | null {
  if (contentType === null) return null;
  const [type, ...params] = contentType.split(';');
  if (!type?.trim().toLowerCase().startsWith('multipart/')) return null;
  for (const param of params) {
    const eq = param.indexOf('=');
    if (eq < 0 || param.slice(0, eq).trim().toLowerCase() !== 'boundary') continue;
    let value = param.slice(eq + 1).trim();
    if (value.startsWith('"') && value.endsWith('"') && value.length >= 2) value = value.slice(1, -1);
    // RFC 2046: 1 to 70 characters.
    return value.length >= 1 && value.length <= 70 ? value : null;
  }
  return null;
}

function indexOfBytes(haystack: Uint8Array, needle: Uint8Array, from: number): number {
  const first = needle[0];
  const last = haystack.length - needle.length;
  for (
    let i = haystack.indexOf(first as number, from);
    i !== -1 && i <= last;
    i = haystack.indexOf(first as number, i + 1)
  ) {
    let j = 1;
    while (j < needle.length && haystack[i + j] === needle[j]) j++;
    if (j === needle.length) return i;
  }
  return -1;
}

/**
 * The parts of a `multipart/*` body with `boundary`; throws on a body that is not one (no
 * opening delimiter, no closing one, a part without a header block).
 */
export function parseMultipart(boundary: string, body: Uint8Array): MultipartPart[] {
  const delimiter = encoder.encode(`--${boundary}`);
  // Parts are separated by CRLF + delimiter; the first delimiter may open the body.
  const separator = encoder.encode(`\r\n--${boundary}`);
  let at = indexOfBytes(body, delimiter, 0);
  if (at !== 0 && at !== -1) {
    // A preamble: the first delimiter is then preceded by CRLF.
    at = indexOfBytes(body, separator, 0);
    if (at !== -1) at += 2;
  }
  if (at === -1) throw new Error('multipart body without its boundary');
  const parts: MultipartPart[] = [];
  let cursor = at + delimiter.length;
  for (;;) {
    // After a delimiter: `--` closes the body; otherwise CRLF starts a part.
    if (body[cursor] === 0x2d && body[cursor + 1] === 0x2d) return parts;
    while (body[cursor] === 0x20 || body[cursor] === 0x09) cursor++; // transport padding
    if (body[cursor] !== 0x0d || body[cursor + 1] !== 0x0a) throw new Error('malformed multipart delimiter');
    cursor += 2;
    const next = indexOfBytes(body, separator, cursor);
    if (next === -1) throw new Error('multipart body without its closing boundary');
    const part = body.subarray(cursor, next);
    const headerEnd = indexOfBytes(part, encoder.encode('\r\n\r\n'), 0);
    let headerText: string;
    let content: Uint8Array;
    if (part[0] === 0x0d && part[1] === 0x0a) {
      headerText = '';
      content = part.subarray(2);
    } else if (headerEnd === -1) {
      throw new Error('multipart part without a header block');
    } else {
      headerText = latin1.decode(part.subarray(0, headerEnd));
      content = part.subarray(headerEnd + 4);
    }
    const headers: Record<string, string> = {};
    for (const line of headerText.split('\r\n')) {
      const colon = line.indexOf(':');
      if (colon <= 0) continue;
      headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    parts.push({ headers, body: content });
    cursor = next + separator.length;
  }
}
