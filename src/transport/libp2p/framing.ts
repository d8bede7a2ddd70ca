/**
 * One HTTP exchange per libp2p stream: how `/matrix/federation/1` (and the relay's own
 * protocols) put a request and its response on a stream.
 *
 * Each direction is a head, then a body:
 *
 *   head  = u32 big-endian length N (at most MAX_HEAD_BYTES), then N bytes of UTF-8 JSON —
 *           a request  `{"method":"PUT","target":"/_matrix/…","headers":[["name","value"],…]}`
 *           a response `{"status":200,"headers":[["name","value"],…]}`
 *   body  = raw bytes up to the sender's half-close (end of its writable side). When the
 *           head has a `content-length`, exactly that many: the reader takes the body
 *           without waiting for the half-close (a message of its own on a WebRTC channel).
 *           The writer puts it in when the whole body is known before the head is sent.
 *
 * The dialler writes the request and closes its writable side; the listener answers the same
 * way. Bodies are written in chunks, each `send` that fills the stream's buffer waiting for
 * `drain`; reads pause the stream past READ_HIGH_WATER bytes buffered (yamux stops granting
 * window, a WebRTC data channel stops being read), so neither side holds more than it asked
 * for. Message size is the muxer's concern: a WebRTC stream splits every `send` into data
 * channel messages of at most 16 KiB (`@libp2p/webrtc` `MAX_MESSAGE_SIZE` less protobuf
 * overhead); yamux frames are bounded by its window.
 */
import type { Stream } from '@libp2p/interface';
import { parseJson } from '../../core/json.ts';

/** A head is a request line and headers: an X-Matrix header is ~300 bytes; 64 KiB is plenty. */
export const MAX_HEAD_BYTES = 64 * 1024;
/** Buffered unread bytes past which the stream is paused (and under half of which resumed). */
export const READ_HIGH_WATER = 256 * 1024;
/** Bytes handed to one `send`: the muxer splits further (WebRTC: 16 KiB messages). */
export const WRITE_CHUNK_BYTES = 64 * 1024;
/**
 * A request body of a declared length up to this is read whole before the handler is
 * called (a federation transaction usually is): handing a small body over as a stream costs
 * more than the bytes. Larger ones are streamed.
 */
export const BUFFERED_BODY_BYTES = 64 * 1024;

export type FramingErrorCode = 'TOO_LARGE' | 'PROTOCOL' | 'CLOSED' | 'TIMEOUT';

/** The stream broke the framing, ended early, or carried too much. */
export class FramingError extends Error {
  override readonly name = 'FramingError';
  readonly code: FramingErrorCode;
  constructor(code: FramingErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/** Reads a stream chunk by chunk, pausing it while the reader is behind. */
export class StreamReader {
  readonly #stream: Stream;
  readonly #queue: Uint8Array[] = [];
  #buffered = 0;
  #ended = false;
  #failure: Error | undefined;
  #wake: (() => void) | undefined;

  constructor(stream: Stream) {
    this.#stream = stream;
    stream.addEventListener('message', (evt) => {
      const chunk = evt.data.subarray();
      this.#queue.push(chunk);
      this.#buffered += chunk.byteLength;
      if (this.#buffered >= READ_HIGH_WATER && stream.readStatus === 'readable') stream.pause();
      this.#notify();
    });
    stream.addEventListener('end', () => {
      this.#ended = true;
      this.#notify();
    });
    stream.addEventListener('close', (evt) => {
      if (evt.error) this.#failure ??= evt.error;
      this.#ended = true;
      this.#notify();
    });
    if (stream.readableEnded) this.#ended = true;
    // Bytes that came before this listener wait in the stream's buffer until it dispatches again.
    if (stream.readBufferLength > 0 && stream.readStatus === 'readable') {
      stream.pause();
      stream.resume();
    }
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  /** The next chunk, or undefined once the remote has closed its writable side. */
  async read(): Promise<Uint8Array | undefined> {
    for (;;) {
      const chunk = this.#queue.shift();
      if (chunk !== undefined) {
        this.#buffered -= chunk.byteLength;
        if (this.#buffered < READ_HIGH_WATER / 2 && this.#stream.readStatus === 'paused')
          this.#stream.resume();
        return chunk;
      }
      if (this.#failure) throw new FramingError('CLOSED', `the stream failed: ${this.#failure.message}`);
      if (this.#ended) {
        if (this.#stream.status === 'reset' || this.#stream.status === 'aborted') {
          throw new FramingError('CLOSED', `the stream was ${this.#stream.status}`);
        }
        return undefined;
      }
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
    }
  }

  /** Exactly `n` bytes; the stream ending first is a `PROTOCOL` error. */
  async readExactly(n: number): Promise<Uint8Array<ArrayBuffer>> {
    const out = new Uint8Array(n);
    let at = 0;
    while (at < n) {
      const chunk = await this.read();
      if (chunk === undefined) throw new FramingError('PROTOCOL', `the stream ended ${n - at} bytes early`);
      const take = Math.min(chunk.byteLength, n - at);
      out.set(chunk.subarray(0, take), at);
      at += take;
      if (take < chunk.byteLength) {
        const rest = chunk.subarray(take);
        this.#queue.unshift(rest);
        this.#buffered += rest.byteLength;
      }
    }
    return out;
  }

  /** Everything up to the end, refusing more than `limit` bytes. */
  async readAll(limit: number): Promise<Uint8Array<ArrayBuffer>> {
    const chunks: Uint8Array[] = [];
    let total = 0;
    for (;;) {
      const chunk = await this.read();
      if (chunk === undefined) break;
      total += chunk.byteLength;
      if (total > limit) throw new FramingError('TOO_LARGE', `the body is larger than ${limit} bytes`);
      chunks.push(chunk);
    }
    return concat(chunks, total);
  }

  /**
   * A body whose head declared `length` bytes, read whole without waiting for the end; or
   * everything up to the end when none was declared. Over `limit` bytes is `TOO_LARGE`.
   */
  async readBody(length: number | null, limit: number): Promise<Uint8Array<ArrayBuffer>> {
    if (length === null) return this.readAll(limit);
    if (length > limit) throw new FramingError('TOO_LARGE', `the body is larger than ${limit} bytes`);
    return this.readExactly(length);
  }

  /**
   * The rest of the stream as a web stream (pulled: nothing is read before it is asked for),
   * ending after `length` bytes when the head declared them, else at the end of the stream.
   */
  body(limit: number, length: number | null = null): ReadableStream<Uint8Array> {
    let total = 0;
    return new ReadableStream<Uint8Array>(
      {
        pull: async (controller) => {
          const chunk = length === null || total < length ? await this.read() : undefined;
          if (chunk === undefined) {
            if (length !== null && total < length)
              throw new FramingError('PROTOCOL', `the stream ended ${length - total} bytes early`);
            controller.close();
            return;
          }
          if (length !== null && total + chunk.byteLength > length)
            throw new FramingError('PROTOCOL', 'the body is longer than its content-length');
          total += chunk.byteLength;
          if (total > limit) {
            const err = new FramingError('TOO_LARGE', `the body is larger than ${limit} bytes`);
            this.#stream.abort(err);
            throw err;
          }
          controller.enqueue(chunk);
        },
        cancel: () => {
          this.#stream.abort(new FramingError('CLOSED', 'the reader cancelled the body'));
        },
      },
      { highWaterMark: 0 },
    );
  }
}

/** One copy of the chunks, on its own buffer (a chunk may be a view of a larger one). */
function concat(chunks: readonly Uint8Array[], total: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.byteLength;
  }
  return out;
}

/** Writes bytes in chunks, waiting for `drain` whenever the stream says its buffer is full. */
export async function writeBytes(stream: Stream, bytes: Uint8Array, signal?: AbortSignal): Promise<void> {
  for (let at = 0; at < bytes.byteLength; at += WRITE_CHUNK_BYTES) {
    if (!stream.send(bytes.subarray(at, at + WRITE_CHUNK_BYTES))) await stream.onDrain({ signal });
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

/** A head as it goes on the wire: its length, then its JSON. */
function frameHead(head: object): Uint8Array {
  const json = encoder.encode(JSON.stringify(head));
  if (json.byteLength > MAX_HEAD_BYTES) {
    throw new FramingError('TOO_LARGE', `the head is larger than ${MAX_HEAD_BYTES} bytes`);
  }
  const framed = new Uint8Array(4 + json.byteLength);
  new DataView(framed.buffer).setUint32(0, json.byteLength);
  framed.set(json, 4);
  return framed;
}

/** The `content-length` a head declares: a decimal number of bytes, or null when none is given. */
export function declaredLength(headers: Headers): number | null {
  const value = headers.get('content-length');
  if (value === null) return null;
  if (!/^\d{1,15}$/.test(value)) throw new FramingError('PROTOCOL', 'content-length is not a number');
  return Number(value);
}

/** The head with `content-length` set to `length` (any other value given is replaced). */
function withLength(head: MessageHead, length: number): MessageHead {
  const headers = head.headers.filter(([name]) => name.toLowerCase() !== 'content-length');
  headers.push(['content-length', String(length)]);
  return { ...head, headers };
}

/** A request or response head: its line as fields, and its headers as pairs. */
export type MessageHead = { headers: Array<[string, string]> } & Record<string, unknown>;

/**
 * Writes a head and a body, streamed. A body that is whole after its first chunk (most
 * federation traffic) gets its `content-length` in the head, and goes in the same write as
 * the head: one message on the wire, which the reader takes without waiting for the end.
 */
export async function writeMessage(
  stream: Stream,
  head: MessageHead,
  body: ReadableStream<Uint8Array> | null,
  signal?: AbortSignal,
): Promise<void> {
  if (!body) {
    await writeBytes(stream, frameHead(head), signal);
    return;
  }
  const reader = body.getReader();
  try {
    const first = await reader.read();
    const second = first.done ? first : await reader.read();
    const firstBytes = first.done ? new Uint8Array(0) : first.value;
    const framed = frameHead(second.done ? withLength(head, firstBytes.byteLength) : head);
    if (firstBytes.byteLength + framed.byteLength > WRITE_CHUNK_BYTES) {
      await writeBytes(stream, framed, signal);
      await writeBytes(stream, firstBytes, signal);
    } else {
      const joined = new Uint8Array(framed.byteLength + firstBytes.byteLength);
      joined.set(framed);
      joined.set(firstBytes, framed.byteLength);
      await writeBytes(stream, joined, signal);
    }
    if (second.done) return;
    await writeBytes(stream, second.value, signal);
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      await writeBytes(stream, value, signal);
    }
  } finally {
    reader.releaseLock();
  }
}

/** Reads a head and returns it as an object (shape unchecked: the caller checks). */
export async function readHead(reader: StreamReader): Promise<Record<string, unknown>> {
  const prefix = await reader.readExactly(4);
  const length = new DataView(prefix.buffer, prefix.byteOffset, 4).getUint32(0);
  if (length > MAX_HEAD_BYTES) throw new FramingError('TOO_LARGE', `a head of ${length} bytes`);
  let value: unknown;
  try {
    value = parseJson(decoder.decode(await reader.readExactly(length)));
  } catch (err) {
    if (err instanceof FramingError) throw err;
    throw new FramingError('PROTOCOL', 'the head is not JSON', { cause: err });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new FramingError('PROTOCOL', 'the head is not an object');
  }
  return value as Record<string, unknown>;
}

/** `[["name","value"],…]` back into Headers; anything else is a PROTOCOL error. */
export function readHeaders(value: unknown): Headers {
  const headers = new Headers();
  if (value === undefined) return headers;
  if (!Array.isArray(value)) throw new FramingError('PROTOCOL', 'headers is not a list');
  for (const pair of value) {
    if (
      !Array.isArray(pair) ||
      pair.length !== 2 ||
      typeof pair[0] !== 'string' ||
      typeof pair[1] !== 'string'
    ) {
      throw new FramingError('PROTOCOL', 'a header is not a [name, value] pair of strings');
    }
    try {
      headers.append(pair[0], pair[1]);
    } catch (err) {
      throw new FramingError('PROTOCOL', `an invalid header ${JSON.stringify(pair[0])}`, { cause: err });
    }
  }
  return headers;
}

export function headerList(headers: Headers): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  headers.forEach((value, name) => {
    out.push([name, value]);
  });
  return out;
}

export interface RequestHead {
  method: string;
  target: string;
  headers: Headers;
}

const METHOD = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,32}$/;

export function parseRequestHead(head: Record<string, unknown>): RequestHead {
  const { method, target } = head;
  if (typeof method !== 'string' || !METHOD.test(method))
    throw new FramingError('PROTOCOL', 'no valid method');
  if (typeof target !== 'string' || !target.startsWith('/') || target.startsWith('//')) {
    throw new FramingError('PROTOCOL', 'the target is not a path');
  }
  return { method, target, headers: readHeaders(head.headers) };
}

export function parseResponseHead(head: Record<string, unknown>): { status: number; headers: Headers } {
  const { status } = head;
  if (!Number.isInteger(status) || (status as number) < 200 || (status as number) > 599) {
    throw new FramingError('PROTOCOL', 'no valid status');
  }
  return { status: status as number, headers: readHeaders(head.headers) };
}

/** Statuses whose responses carry no body (the fetch standard's "null body status"). */
export const NULL_BODY_STATUS = new Set([101, 103, 204, 205, 304]);

// --- one exchange, both ends ------------------------------------------------------------

export interface ExchangeLimits {
  /** The whole exchange; past it the stream is aborted. */
  timeoutMs: number;
  /** Largest body read. */
  maxBodyBytes: number;
}

/**
 * The dialling end: writes `request` (method, target, headers, streamed body), half-closes,
 * reads the answer whole up to `maxBodyBytes`. Throws `FramingError` (code `TIMEOUT` past
 * `timeoutMs`); the stream is aborted on any failure.
 */
export async function exchange(
  stream: Stream,
  request: { method: string; target: string; headers: Headers; body?: ReadableStream<Uint8Array> | null },
  limits: ExchangeLimits,
): Promise<Response> {
  const signal = AbortSignal.timeout(limits.timeoutMs);
  const onAbort = () => stream.abort(new FramingError('TIMEOUT', `no answer in ${limits.timeoutMs} ms`));
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    const reader = new StreamReader(stream);
    await writeMessage(
      stream,
      { method: request.method, target: request.target, headers: headerList(request.headers) },
      request.body ?? null,
      signal,
    );
    // Half-closed, not waited for: on WebRTC `close` resolves on the remote's FIN_ACK, a
    // message that has nothing to do with the answer, which is read meanwhile.
    stream.close({ signal }).catch(() => undefined);
    const head = parseResponseHead(await readHead(reader));
    const body = await reader.readBody(declaredLength(head.headers), limits.maxBodyBytes);
    return new Response(NULL_BODY_STATUS.has(head.status) ? null : body, {
      status: head.status,
      headers: head.headers,
    });
  } catch (err) {
    stream.abort(err instanceof Error ? err : new Error(String(err)));
    if (signal.aborted) throw new FramingError('TIMEOUT', `no answer in ${limits.timeoutMs} ms`);
    if (err instanceof FramingError) throw err;
    throw new FramingError('CLOSED', (err as Error).message, { cause: err });
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

/** A JSON error answer, as the homeserver would give it. */
export function jsonError(status: number, errcode: string, error: string): Response {
  return Response.json({ errcode, error }, { status });
}

/**
 * The listening end: reads one request (body streamed to `handle`, refused past
 * `maxBodyBytes`), writes `handle`'s answer with backpressure. A malformed head is answered
 * 400, an oversized one 413; the stream is aborted after `timeoutMs`.
 */
export async function serveExchange(
  stream: Stream,
  origin: string,
  limits: ExchangeLimits,
  handle: (request: Request) => Promise<Response>,
): Promise<void> {
  const timer = setTimeout(
    () => stream.abort(new FramingError('TIMEOUT', `the exchange took over ${limits.timeoutMs} ms`)),
    limits.timeoutMs,
  );
  const answer = async (response: Response) => {
    await writeMessage(
      stream,
      { status: response.status, headers: headerList(response.headers) },
      NULL_BODY_STATUS.has(response.status) ? null : response.body,
    );
    await stream.close();
  };
  try {
    const reader = new StreamReader(stream);
    let head: RequestHead;
    try {
      head = parseRequestHead(await readHead(reader));
    } catch (err) {
      if (err instanceof FramingError && err.code === 'CLOSED') throw err;
      const tooLarge = err instanceof FramingError && err.code === 'TOO_LARGE';
      await answer(
        tooLarge
          ? jsonError(413, 'M_TOO_LARGE', 'The request head is too large')
          : jsonError(400, 'M_UNKNOWN', 'Malformed request frame'),
      );
      return;
    }
    let declared: number | null;
    try {
      declared = declaredLength(head.headers);
    } catch {
      await answer(jsonError(400, 'M_UNKNOWN', 'Malformed content-length'));
      return;
    }
    if (declared !== null && declared > limits.maxBodyBytes) {
      await answer(
        jsonError(413, 'M_TOO_LARGE', `The request body is larger than ${limits.maxBodyBytes} bytes`),
      );
      return;
    }
    const hasBody = head.method !== 'GET' && head.method !== 'HEAD';
    // A small body of a declared length is read whole (no stream to hand over, no wait for
    // the end); any other is streamed to the handler.
    const whole = hasBody && declared !== null && declared <= BUFFERED_BODY_BYTES;
    let body: BodyInit | undefined;
    if (whole) {
      try {
        body = await reader.readExactly(declared as number);
      } catch (err) {
        if (err instanceof FramingError && err.code === 'PROTOCOL')
          return await answer(jsonError(400, 'M_UNKNOWN', 'The body is shorter than its content-length'));
        throw err;
      }
    } else if (hasBody) {
      body = reader.body(limits.maxBodyBytes, declared);
    }
    const request = new Request(`${origin}${head.target}`, {
      method: head.method,
      headers: head.headers,
      body,
      ...(hasBody && !whole ? { duplex: 'half' } : {}),
    } as RequestInit);
    let response: Response;
    try {
      response = await handle(request);
    } catch {
      response = jsonError(500, 'M_UNKNOWN', 'Internal server error');
    }
    await answer(response);
  } catch (err) {
    stream.abort(err instanceof Error ? err : new Error(String(err)));
  } finally {
    clearTimeout(timer);
  }
}
