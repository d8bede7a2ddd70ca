/**
 * The content repository (client-server-api/modules/content_repo.md): uploads, IDs reserved
 * for a later upload (`POST /_matrix/media/v1/create`), downloads and thumbnails. Bytes live in
 * the store's media area (Blobs in IndexedDB, BLOBs in SQLite) and count in its backups.
 *
 * Remote media (`mxc://` of another server) goes through the `RemoteMediaPort` hook, which
 * federation fills in, and is kept in the store under its origin's name after the first
 * fetch; without the hook, media not kept is 404 M_NOT_FOUND. URL previews are off.
 */
import { sha256 } from '../../core/crypto.ts';
import { isValidServerName } from '../../core/identifiers.ts';
import type { MediaBody, MediaStore } from '../../storage/store.ts';
import { type HomeserverContext, randomString } from '../context.ts';
import { forbidden, MatrixError, notFound, tooLarge } from '../errors.ts';
import type { RemoteMediaPort } from '../ports.ts';
import { ThumbnailError, type Thumbnailer, type ThumbnailRequest } from './thumbnail.ts';

export type { Thumbnail, Thumbnailer, ThumbnailMethod, ThumbnailRequest } from './thumbnail.ts';

/** The spec: "only alphanumeric (A-Za-z0-9), _ and - characters in the media-id segment". */
export const MEDIA_ID_PATTERN = /^[A-Za-z0-9_-]+$/;

/** Our media IDs: 24 characters of [A-Za-z0-9], 142 bits, unguessable. */
const MEDIA_ID_LENGTH = 24;

/** The spec's recommended default lifetime of an ID from `/create` ("24 hours"). */
export const UNUSED_MEDIA_LIFETIME_MS = 24 * 60 * 60 * 1000;

/**
 * Longest wait for content not yet uploaded (`timeout_ms`, default 20 s by the spec, which
 * asks servers to cap it). 20 s also keeps a Service Worker's single event well inside the
 * browser's patience.
 */
export const MAX_MEDIA_WAIT_MS = 20_000;

/** Default upload limit: what the router has always allowed a raw body (50 MiB). */
export const DEFAULT_MAX_UPLOAD_BYTES = 50 * 1024 * 1024;

/** Longest upload name kept (`filename`); a longer one is refused rather than cut. */
const MAX_UPLOAD_NAME = 255;

/** The types a thumbnail may be served as (authed-content-repo.yaml, thumbnail `Content-Type`). */
const THUMBNAIL_TYPES = new Set(['image/jpeg', 'image/png', 'image/apng', 'image/gif', 'image/webp']);

/**
 * An RFC 9110 media type with optional parameters. Anything else the client sends as
 * `Content-Type` is stored as `application/octet-stream`: the value goes back out in a header,
 * and a malformed one could not be sent.
 */
const MEDIA_TYPE =
  /^[A-Za-z0-9!#$&^_.+-]{1,127}\/[A-Za-z0-9!#$&^_.+-]{1,127}(\s*;\s*[A-Za-z0-9!#$&^_.+-]+=("[ !#-[\]-~]*"|[A-Za-z0-9!#$&^_.+-]+))*$/;

/** The stored form of a client's Content-Type: the media type lower-cased, parameters kept. */
export function normalizeContentType(value: string | null | undefined): string {
  const text = value?.trim() ?? '';
  if (text.length === 0 || text.length > 255 || !MEDIA_TYPE.test(text)) return 'application/octet-stream';
  const semicolon = text.indexOf(';');
  return semicolon < 0
    ? text.toLowerCase()
    : `${text.slice(0, semicolon).trim().toLowerCase()}${text.slice(semicolon)}`;
}

/** The media type without parameters (`text/plain; charset=utf-8` → `text/plain`). */
export function baseType(contentType: string): string {
  return (contentType.split(';')[0] ?? '').trim().toLowerCase();
}

export interface MediaContent {
  contentType: string;
  uploadName: string | null;
  size: number;
  /** As the store keeps it (a Blob in IndexedDB, bytes in SQLite): a Response takes either. */
  data: Blob | Uint8Array;
}

export interface UploadMeta {
  /** The request's Content-Type header. */
  contentType: string | null;
  /** The `filename` query parameter. */
  filename: string | null;
}

export interface MediaService {
  /** The largest upload accepted, in bytes (`m.upload.size` of `/media/config`). */
  readonly maxUploadBytes: number;
  /**
   * How uploads are best handed over: what the store takes without a copy (Blobs for
   * IndexedDB, bytes for SQLite rows, a stream for files). A stream must be limited to
   * `maxUploadBytes` by its maker (the router's fails with M_TOO_LARGE).
   */
  readonly takes: MediaStore['keeps'];
  /** Whether uploads are best handed over as Blobs: `takes === 'blob'`. */
  readonly takesBlobs: boolean;
  /** Stores an upload; returns its `mxc://` URI. */
  upload(userId: string, data: MediaBody, meta: UploadMeta): Promise<string>;
  /** Reserves an `mxc://` URI whose content `userId` uploads later. */
  create(userId: string): Promise<{ contentUri: string; unusedExpiresAt: number }>;
  /** Fills an ID from `create`: only its creator, only once, only before it lapses. */
  uploadTo(
    userId: string,
    serverName: string,
    mediaId: string,
    data: MediaBody,
    meta: UploadMeta,
  ): Promise<void>;
  /** The content, waiting up to `timeoutMs` for content reserved but not yet uploaded. */
  download(
    serverName: string,
    mediaId: string,
    options: { timeoutMs: number; allowRemote: boolean },
  ): Promise<MediaContent>;
  /** A thumbnail, or the original image when it is no larger than asked or cannot be scaled here. */
  thumbnail(
    serverName: string,
    mediaId: string,
    want: ThumbnailRequest,
    options: { timeoutMs: number; allowRemote: boolean },
  ): Promise<{ contentType: string; data: Blob | Uint8Array }>;
  /** URL previews are off: always M_FORBIDDEN, saying so. */
  previewUrl(): Promise<never>;
  /**
   * 32 hex digits, the same for a media item on every call and after a restart, that nobody
   * without this server's signing key can compute: a response that must be identical byte for
   * byte on each request (the federation download's multipart body, so that byte ranges of it
   * compose) takes it as its boundary. The uploader cannot plant it in the content: it is
   * unknown before the first download, and content never changes after upload.
   */
  secretTag(serverName: string, mediaId: string): Promise<string>;
}

export interface MediaDeps {
  /** Decodes and scales images; without one, thumbnails are the originals. */
  thumbnailer?: Thumbnailer;
  /** Fetches other servers' media (federation); without it, remote media is not found. */
  remoteMedia?: RemoteMediaPort;
}

/**
 * Where a remote media's thumbnail is kept: under `<origin>#thumbnails`, which no server name
 * can be (so it never meets real media, and a download never serves it), with the size asked
 * as a suffix parsed from the right (`-WxH-method[-animated]`), so no two requests share one.
 */
export function thumbnailKey(
  serverName: string,
  mediaId: string,
  want: ThumbnailRequest,
): { origin: string; mediaId: string } {
  return {
    origin: `${serverName}#thumbnails`,
    mediaId: `${mediaId}-${want.width}x${want.height}-${want.method}${want.animated ? '-animated' : ''}`,
  };
}

/** 504 M_NOT_YET_UPLOADED (content-repo.yaml `notYetUploaded`). */
const notYetUploaded = () => new MatrixError(504, 'M_NOT_YET_UPLOADED', 'Content has not yet been uploaded');

export function createMediaService(ctx: HomeserverContext, deps: MediaDeps = {}): MediaService {
  const { store, config, clock, random, logger } = ctx;
  const maxUploadBytes = config.maxUploadBytes;
  /** Downloads waiting for reserved content, woken when it is uploaded through this server. */
  const waiters = new Map<string, Set<() => void>>();

  const keyOf = (origin: string, mediaId: string) => `${origin}/${mediaId}`;

  function checkUpload(
    data: MediaBody,
    meta: UploadMeta,
  ): { contentType: string; uploadName: string | null } {
    const size = data instanceof Blob ? data.size : data instanceof Uint8Array ? data.byteLength : 0;
    // The router already stopped reading past the limit; this is the rule itself, for callers
    // that hand bytes in some other way.
    if (size > maxUploadBytes) throw tooLarge(`Uploads are limited to ${maxUploadBytes} bytes`);
    if (meta.filename !== null && meta.filename.length > MAX_UPLOAD_NAME) {
      throw new MatrixError(400, 'M_INVALID_PARAM', `filename is longer than ${MAX_UPLOAD_NAME} characters`);
    }
    return { contentType: normalizeContentType(meta.contentType), uploadName: meta.filename || null };
  }

  function wake(origin: string, mediaId: string): void {
    const key = keyOf(origin, mediaId);
    const set = waiters.get(key);
    if (!set) return;
    waiters.delete(key);
    for (const resolve of set) resolve();
  }

  /** Resolves when the content is uploaded here or `ms` pass, whichever is first. */
  function waitForUpload(origin: string, mediaId: string, ms: number): Promise<void> {
    return new Promise((resolve) => {
      const key = keyOf(origin, mediaId);
      let set = waiters.get(key);
      if (!set) {
        set = new Set();
        waiters.set(key, set);
      }
      const done = () => {
        clearTimeout(timer);
        set.delete(done);
        if (set.size === 0 && waiters.get(key) === set) waiters.delete(key);
        resolve();
      };
      const timer = setTimeout(done, ms);
      set.add(done);
    });
  }

  async function local(mediaId: string, timeoutMs: number): Promise<MediaContent> {
    const origin = config.serverName;
    let found = await store.media.getMediaAsKept(origin, mediaId);
    if (!found) {
      const info = await store.media.getMediaInfo(origin, mediaId);
      if (!info || info.pendingUntil === undefined || info.pendingUntil <= clock.now()) {
        throw notFound('Media not found');
      }
      const wait = Math.min(Math.max(0, timeoutMs), MAX_MEDIA_WAIT_MS, info.pendingUntil - clock.now());
      if (wait > 0) await waitForUpload(origin, mediaId, wait);
      found = await store.media.getMediaAsKept(origin, mediaId);
      if (!found) throw notYetUploaded();
    }
    const { info, data } = found;
    return { contentType: info.contentType, uploadName: info.uploadName, size: info.size, data };
  }

  /**
   * Another server's media: from this server's cache (the store, under the origin's name)
   * or, the first time, through `RemoteMediaPort`, then kept. Cached media is served to
   * clients as the spec's authenticated endpoints allow; the unauthenticated ones serve it
   * too (Hearth has no freeze date, see the module notes).
   */
  async function remote(serverName: string, mediaId: string, timeoutMs: number): Promise<MediaContent> {
    const cached = await store.media.getMediaAsKept(serverName, mediaId);
    if (cached) {
      const { info, data } = cached;
      return { contentType: info.contentType, uploadName: info.uploadName, size: info.size, data };
    }
    if (!deps.remoteMedia)
      throw notFound('Media not found: this server does not fetch media from other servers');
    const got = await deps.remoteMedia.fetchMedia(serverName, mediaId, {
      timeoutMs: Math.min(Math.max(0, timeoutMs), MAX_MEDIA_WAIT_MS),
      maxBytes: maxUploadBytes,
    });
    if (!got) throw notFound('Media not found');
    const contentType = normalizeContentType(got.contentType);
    try {
      await store.media.putMedia(
        {
          origin: serverName,
          mediaId,
          contentType,
          uploadName: got.uploadName,
          userId: null,
          createdAt: clock.now(),
        },
        got.data,
      );
    } catch (err) {
      // Two downloads racing store it once; either way the client gets the bytes.
      logger.debug('media: remote media not cached', { serverName, mediaId, error: String(err) });
    }
    return {
      contentType,
      uploadName: got.uploadName,
      size: got.data instanceof Blob ? got.data.size : got.data.byteLength,
      data: got.data,
    };
  }

  async function fetchContent(
    serverName: string,
    mediaId: string,
    options: { timeoutMs: number; allowRemote: boolean },
  ): Promise<MediaContent> {
    // The spec's defence against traversal (`mxc://127.0.0.1/../../etc/passwd`): only valid
    // server names and media IDs of [A-Za-z0-9_-] are ever looked up.
    if (!isValidServerName(serverName) || !MEDIA_ID_PATTERN.test(mediaId)) throw notFound('Media not found');
    if (serverName === config.serverName) return local(mediaId, options.timeoutMs);
    if (!options.allowRemote)
      throw notFound('Media not found: remote media was not allowed (allow_remote=false)');
    return remote(serverName, mediaId, options.timeoutMs);
  }

  /** A thumbnail made here from the content (fetched first if remote and not kept). */
  const makeThumbnail: MediaService['thumbnail'] = async (serverName, mediaId, want, options) => {
    const content = await fetchContent(serverName, mediaId, options);
    const type = baseType(content.contentType);
    const thumbnailer = deps.thumbnailer;
    if (thumbnailer?.canDecode(type)) {
      try {
        const made = await thumbnailer.thumbnail(content.data, type, want);
        if (made !== 'original') {
          const data =
            made.data instanceof Blob ? made.data : new Blob([made.data as Uint8Array<ArrayBuffer>]);
          return { contentType: made.contentType, data };
        }
      } catch (err) {
        if (!(err instanceof ThumbnailError)) throw err;
        if (err.reason === 'too-large') throw tooLarge('The image is too large to thumbnail');
        logger.debug('media: thumbnail failed', { mediaId, error: err.message });
        throw new MatrixError(400, 'M_UNKNOWN', 'Cannot generate a thumbnail of this content');
      }
    }
    // The original, when it is no larger than asked or no thumbnailer here can scale it: a
    // client shows it scaled. Only types a thumbnail may have, so it is safe served inline.
    if (THUMBNAIL_TYPES.has(type)) return { contentType: type, data: content.data };
    throw new MatrixError(400, 'M_UNKNOWN', 'Cannot generate a thumbnail of this content');
  };

  /**
   * A thumbnail of another server's media: from this server's cache, else made by the origin
   * (federation `media/thumbnail`: no need to fetch a whole video to show its poster), else —
   * when the origin refuses or cannot be reached — made here from the original. Whichever
   * answers is kept, under `thumbnailKey`.
   */
  const remoteThumbnail: MediaService['thumbnail'] = async (serverName, mediaId, want, options) => {
    const key = thumbnailKey(serverName, mediaId, want);
    const cached = await store.media.getMediaAsKept(key.origin, key.mediaId);
    if (cached) return { contentType: cached.info.contentType, data: cached.data };
    let made: { contentType: string; data: Blob | Uint8Array } | undefined;
    if (deps.remoteMedia?.fetchThumbnail) {
      try {
        const got = await deps.remoteMedia.fetchThumbnail(serverName, mediaId, want, {
          timeoutMs: Math.min(Math.max(0, options.timeoutMs), MAX_MEDIA_WAIT_MS),
          maxBytes: maxUploadBytes,
        });
        if (!got) throw notFound('Media not found');
        const type = baseType(normalizeContentType(got.contentType));
        // Served inline to our clients: only the types a thumbnail may have.
        if (THUMBNAIL_TYPES.has(type)) made = { contentType: type, data: got.data };
        else logger.debug('media: remote thumbnail of a type not allowed', { serverName, mediaId, type });
      } catch (err) {
        if (err instanceof MatrixError && err.errcode === 'M_NOT_FOUND') throw err;
        logger.debug('media: the origin made no thumbnail; making one here', {
          serverName,
          mediaId,
          error: String(err),
        });
      }
    }
    made ??= await makeThumbnail(serverName, mediaId, want, options);
    try {
      await store.media.putMedia(
        { ...key, contentType: made.contentType, uploadName: null, userId: null, createdAt: clock.now() },
        made.data,
      );
    } catch (err) {
      logger.debug('media: remote thumbnail not cached', { serverName, mediaId, error: String(err) });
    }
    return made;
  };

  return {
    maxUploadBytes,
    takes: store.media.keeps,
    takesBlobs: store.media.keeps === 'blob',

    async upload(userId, data, meta) {
      const { contentType, uploadName } = checkUpload(data, meta);
      const mediaId = randomString(random, MEDIA_ID_LENGTH);
      await store.media.putMedia(
        { origin: config.serverName, mediaId, contentType, uploadName, userId, createdAt: clock.now() },
        data,
      );
      return `mxc://${config.serverName}/${mediaId}`;
    },

    async create(userId) {
      const mediaId = randomString(random, MEDIA_ID_LENGTH);
      const now = clock.now();
      const unusedExpiresAt = now + UNUSED_MEDIA_LIFETIME_MS;
      await store.media.reserveMedia({
        origin: config.serverName,
        mediaId,
        userId,
        createdAt: now,
        pendingUntil: unusedExpiresAt,
      });
      return { contentUri: `mxc://${config.serverName}/${mediaId}`, unusedExpiresAt };
    },

    async uploadTo(userId, serverName, mediaId, data, meta) {
      const { contentType, uploadName } = checkUpload(data, meta);
      const unknown = () =>
        notFound('Unknown media ID: not created with /_matrix/media/v1/create, or expired');
      if (serverName !== config.serverName || !MEDIA_ID_PATTERN.test(mediaId)) throw unknown();
      const info = await store.media.getMediaInfo(serverName, mediaId);
      if (!info) throw unknown();
      if (info.pendingUntil === undefined) {
        throw new MatrixError(409, 'M_CANNOT_OVERWRITE_MEDIA', 'Media already uploaded');
      }
      if (info.userId !== userId) throw forbidden('This media ID was created by another user');
      if (info.pendingUntil <= clock.now()) throw unknown();
      try {
        await store.media.completeMedia(
          { origin: serverName, mediaId, contentType, uploadName, userId, createdAt: clock.now() },
          data,
        );
      } catch (err) {
        // Another upload to the same ID won the race.
        if ((err as { code?: unknown })?.code === 'CONFLICT') {
          throw new MatrixError(409, 'M_CANNOT_OVERWRITE_MEDIA', 'Media already uploaded');
        }
        throw err;
      }
      wake(serverName, mediaId);
    },

    download: fetchContent,

    async thumbnail(serverName, mediaId, want, options) {
      if (!isValidServerName(serverName) || !MEDIA_ID_PATTERN.test(mediaId))
        throw notFound('Media not found');
      if (serverName === config.serverName || !options.allowRemote)
        return makeThumbnail(serverName, mediaId, want, options);
      return remoteThumbnail(serverName, mediaId, want, options);
    },

    async previewUrl() {
      throw forbidden('URL previews are turned off on this homeserver');
    },

    async secretTag(serverName, mediaId) {
      // An ed25519 signature is deterministic and needs the key: hashed, it is a keyed tag.
      // The message is no canonical JSON, so the signature can stand for nothing else.
      const signature = await ctx.signingKey.sign(
        new TextEncoder().encode(`hearth media tag\n${serverName}\n${mediaId}`),
      );
      return Array.from(sha256(signature).subarray(0, 16), (b) => b.toString(16).padStart(2, '0')).join('');
    },
  };
}
