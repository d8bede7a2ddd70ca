/**
 * The homeserver's `RemoteMediaPort` over federation — server-server-api "Content
 * Repository" (content_repository.yaml): `GET /_matrix/federation/v1/media/download/{mediaId}`
 * on the media's origin, signed, answered with a two-part `multipart/mixed` body (JSON
 * metadata, then the bytes or a `Location` to fetch them from).
 *
 * A server from before Matrix 1.11 answers that path with `M_UNRECOGNIZED`; as Synapse does,
 * we then ask its unauthenticated `/_matrix/media/v3/download/{serverName}/{mediaId}` with
 * `allow_remote=false` (it must not fetch on our behalf). Thumbnails are asked of the origin
 * the same way (`…/media/thumbnail/{mediaId}`, then the legacy `/_matrix/media/v3/thumbnail`).
 * Caching is the media service's (it keeps what this returns under the origin's name).
 */
import { parseJson } from '../core/json.ts';
import { multipartBoundary, parseMultipart } from '../core/multipart.ts';
import { MatrixError } from '../homeserver/errors.ts';
import type { RemoteMediaPort } from '../homeserver/ports.ts';
import { type FederationFetch, readLimited } from './client.ts';

export interface RemoteMediaOptions {
  fetch: FederationFetch;
  /**
   * Follows a `Location` answer (an ordinary HTTPS URL, not a Matrix server). Default: the
   * runtime's `fetch`, https only. Tests pass their own.
   */
  fetchUrl?: (url: string) => Promise<Response>;
}

/** The metadata part is `{}` today; anything past this is not a metadata part. */
const MAX_METADATA_BYTES = 64 * 1024;
/** Room for the part headers and delimiters around the media bytes. */
const MULTIPART_OVERHEAD = MAX_METADATA_BYTES + 8 * 1024;

const tooLarge = (serverName: string) =>
  new MatrixError(502, 'M_TOO_LARGE', `The media on ${serverName} is larger than this server accepts`);
const unusable = (serverName: string, why: string) =>
  new MatrixError(502, 'M_UNKNOWN', `${serverName} gave no usable media answer: ${why}`);

/** The file name of a `Content-Disposition` value (`filename*=` preferred), or null. */
export function dispositionFilename(value: string | null | undefined): string | null {
  if (!value) return null;
  const extended = /filename\*\s*=\s*(?:utf-8|UTF-8)''([^;]+)/.exec(value);
  if (extended?.[1]) {
    try {
      return decodeURIComponent(extended[1].trim());
    } catch {
      // A broken encoding: try the plain parameter.
    }
  }
  const plain = /filename\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]+))/.exec(value);
  const name = plain?.[1]?.replace(/\\(.)/g, '$1') ?? plain?.[2];
  return name || null;
}

/** The `errcode` of a Matrix error body, if it is one. */
function errcodeOf(bytes: Uint8Array): string | undefined {
  try {
    const value = parseJson(new TextDecoder().decode(bytes)) as { errcode?: unknown } | null;
    return typeof value?.errcode === 'string' ? value.errcode : undefined;
  } catch {
    return undefined;
  }
}

async function defaultFetchUrl(url: string): Promise<Response> {
  if (!url.startsWith('https://')) throw new Error(`refusing to follow a non-https Location: ${url}`);
  return fetch(url, { redirect: 'follow' });
}

export function createRemoteMedia(options: RemoteMediaOptions): RemoteMediaPort {
  const fetchUrl = options.fetchUrl ?? defaultFetchUrl;

  /** Reads a body within `maxBytes`; a larger one is 502 M_TOO_LARGE. */
  async function readBody(serverName: string, response: Response, maxBytes: number): Promise<Uint8Array> {
    try {
      return await readLimited(response, maxBytes);
    } catch (err) {
      if (err instanceof Error && /larger than/.test(err.message)) throw tooLarge(serverName);
      throw err;
    }
  }

  async function fromMultipart(serverName: string, response: Response, maxBytes: number) {
    const boundary = multipartBoundary(response.headers.get('content-type'));
    if (boundary === null) throw unusable(serverName, 'not multipart/mixed');
    const body = await readBody(serverName, response, maxBytes + MULTIPART_OVERHEAD);
    let parts: ReturnType<typeof parseMultipart>;
    try {
      parts = parseMultipart(boundary, body);
    } catch (err) {
      throw unusable(serverName, (err as Error).message);
    }
    const [metadata, media] = parts;
    if (parts.length !== 2 || !metadata || !media) throw unusable(serverName, `${parts.length} parts, not 2`);
    if (!metadata.headers['content-type']?.toLowerCase().startsWith('application/json'))
      throw unusable(serverName, 'the first part is not application/json');
    const location = media.headers.location;
    if (location !== undefined) {
      // Not cached by URL (the spec: its validity may be limited); the bytes are, as any media.
      const followed = await fetchUrl(location);
      if (followed.status === 404) return null;
      if (!followed.ok) throw unusable(serverName, `its Location answered ${followed.status}`);
      const data = await readBody(serverName, followed, maxBytes);
      return {
        contentType: followed.headers.get('content-type') ?? 'application/octet-stream',
        uploadName: dispositionFilename(followed.headers.get('content-disposition')),
        data,
      };
    }
    if (media.body.byteLength > maxBytes) throw tooLarge(serverName);
    return {
      contentType: media.headers['content-type'] ?? 'application/octet-stream',
      uploadName: dispositionFilename(media.headers['content-disposition']),
      data: media.body,
    };
  }

  async function legacy(serverName: string, target: string, maxBytes: number) {
    const response = await options.fetch(serverName, { method: 'GET', target, sign: false });
    if (response.status === 404) {
      await response.body?.cancel().catch(() => undefined);
      return null;
    }
    if (!response.ok) {
      await response.body?.cancel().catch(() => undefined);
      throw unusable(serverName, `the legacy endpoint answered ${response.status}`);
    }
    const data = await readBody(serverName, response, maxBytes);
    return {
      contentType: response.headers.get('content-type') ?? 'application/octet-stream',
      uploadName: dispositionFilename(response.headers.get('content-disposition')),
      data,
    };
  }

  /**
   * Asks the authenticated federation `target`, and the unauthenticated `legacyTarget` when
   * the origin predates it (M_UNRECOGNIZED, 405).
   */
  async function ask(serverName: string, target: string, legacyTarget: string, maxBytes: number) {
    const response = await options.fetch(serverName, { method: 'GET', target });
    if (response.ok) return fromMultipart(serverName, response, maxBytes);
    const errcode = errcodeOf(await readBody(serverName, response, MAX_METADATA_BYTES));
    if (errcode === 'M_UNRECOGNIZED' || response.status === 405)
      return legacy(serverName, legacyTarget, maxBytes);
    if (response.status === 404) return null;
    if (response.status === 502 && errcode === 'M_TOO_LARGE') throw tooLarge(serverName);
    if (response.status === 504)
      throw new MatrixError(504, 'M_NOT_YET_UPLOADED', 'Content has not yet been uploaded');
    throw unusable(serverName, `it answered ${response.status} ${errcode ?? ''}`.trim());
  }

  /** `work` within the client's wait and a little more for the answer to travel; errors as MatrixErrors. */
  async function timed<T>(serverName: string, timeoutMs: number, work: () => Promise<T>): Promise<T> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new MatrixError(504, 'M_UNKNOWN', `${serverName} did not answer in time`)),
        timeoutMs + 5_000,
      );
    });
    try {
      return await Promise.race([work(), timeout]);
    } catch (err) {
      if (err instanceof MatrixError) throw err;
      throw unusable(serverName, err instanceof Error ? err.message : String(err));
    } finally {
      clearTimeout(timer);
    }
  }

  return {
    fetchMedia(serverName, mediaId, { timeoutMs, maxBytes }) {
      const id = encodeURIComponent(mediaId);
      return timed(serverName, timeoutMs, () =>
        ask(
          serverName,
          `/_matrix/federation/v1/media/download/${id}?timeout_ms=${timeoutMs}`,
          `/_matrix/media/v3/download/${encodeURIComponent(serverName)}/${id}?allow_remote=false&timeout_ms=${timeoutMs}`,
          maxBytes,
        ),
      );
    },

    async fetchThumbnail(serverName, mediaId, want, { timeoutMs, maxBytes }) {
      const id = encodeURIComponent(mediaId);
      const query = `width=${want.width}&height=${want.height}&method=${want.method}&animated=${want.animated}&timeout_ms=${timeoutMs}`;
      const got = await timed(serverName, timeoutMs, () =>
        ask(
          serverName,
          `/_matrix/federation/v1/media/thumbnail/${id}?${query}`,
          `/_matrix/media/v3/thumbnail/${encodeURIComponent(serverName)}/${id}?${query}&allow_remote=false`,
          maxBytes,
        ),
      );
      return got && { contentType: got.contentType, data: got.data };
    },
  };
}
