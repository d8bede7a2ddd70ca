/**
 * Byte-range requests on media (RFC 9110 §14): `Range: bytes=…` answered `206 Partial
 * Content` with `Content-Range`, `416` when no byte of it exists, and `Accept-Ranges: bytes`
 * on every answer that could be ranged. Video players seek with it and download managers
 * resume with it. The Matrix spec says nothing about ranges; this is plain HTTP.
 *
 * One range only: a request for several (`bytes=0-1,5-9`) gets the whole content with 200,
 * which RFC 9110 allows ("a server MAY ignore the Range header field") and which spares us
 * `multipart/byteranges`, asked for by no player. A Range we cannot parse is ignored the same
 * way, as the RFC says it must be.
 */
import { MatrixError } from '../homeserver/errors.ts';

/** Inclusive byte positions of one satisfiable range. */
export interface ByteRange {
  start: number;
  end: number;
}

/** `bytes=first-last`, `bytes=first-` or `bytes=-suffix`: one range, whitespace allowed around it. */
const SINGLE_RANGE = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i;

/**
 * The range a `Range` header asks of content of `size` bytes: null to send it all (no header,
 * one we do not parse, several ranges), 'unsatisfiable' when it starts past the end.
 */
export function parseRange(header: string | null, size: number): ByteRange | 'unsatisfiable' | null {
  if (header === null) return null;
  const match = SINGLE_RANGE.exec(header);
  if (!match) return null;
  const [, first = '', last = ''] = match;
  if (first === '' && last === '') return null;
  // Past 2^53 a number is not exact; no media here is that large, so such a range starts past the end.
  if (first === '') {
    const suffix = Number(last);
    if (!Number.isSafeInteger(suffix)) return size > 0 ? { start: 0, end: size - 1 } : 'unsatisfiable';
    if (suffix === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(first);
  const end = last === '' ? Number.POSITIVE_INFINITY : Number(last);
  if (end < start) return null; // "invalid": ignored, not refused
  if (!Number.isSafeInteger(start) || start >= size) return 'unsatisfiable';
  return { start, end: Math.min(end, size - 1) };
}

/**
 * The range to serve for `request`, or null for the whole content. `If-Range` (resuming only
 * if the content is unchanged) is honoured against `etag`: any other validator, a date
 * included, sends the whole content, as the RFC asks when it does not match.
 * Throws 416 with `Content-Range: bytes *\/size` when the range is unsatisfiable.
 */
export function requestedRange(request: Request, size: number, etag: string): ByteRange | null {
  if (request.method !== 'GET') return null;
  const ifRange = request.headers.get('if-range');
  if (ifRange !== null && ifRange.trim() !== etag) return null;
  const range = parseRange(request.headers.get('range'), size);
  if (range === 'unsatisfiable') {
    throw new MatrixError(
      416,
      'M_UNKNOWN',
      `Range not satisfiable: the content is ${size} bytes`,
      undefined,
      {
        'Content-Range': `bytes */${size}`,
        'Accept-Ranges': 'bytes',
      },
    );
  }
  return range;
}

/** The part of `data` in `range`, without copying (a Blob slice, a view of the bytes). */
export function sliceBytes<T extends Blob | Uint8Array>(data: T, range: ByteRange): T {
  return (
    data instanceof Blob ? data.slice(range.start, range.end + 1) : data.subarray(range.start, range.end + 1)
  ) as T;
}

/** The headers of a 206 for `range` of `size` bytes. */
export function partialHeaders(range: ByteRange, size: number): Record<string, string> {
  return {
    'Content-Range': `bytes ${range.start}-${range.end}/${size}`,
    'Content-Length': String(range.end - range.start + 1),
  };
}
