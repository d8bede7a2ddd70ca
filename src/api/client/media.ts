/**
 * The content repository's endpoints (client-server-api/modules/content_repo.md;
 * authed-content-repo.yaml, content-repo.yaml): authenticated media under
 * `/_matrix/client/v1/media/*`, uploads under `/_matrix/media/{r0,v3}/upload` and
 * `/_matrix/media/v1/create`, and the deprecated unauthenticated reads under
 * `/_matrix/media/{r0,v3}/*`, which the spec still defines (no freeze: see the report in
 * `homeserver/media/index.ts` for what is served).
 *
 * Handlers parse and shape HTTP only; what is stored and who may do what is the media
 * service's. Media responses carry the spec's headers: `Content-Disposition` (inline only for
 * the "Serving inline content" types), `Content-Security-Policy` (the recommended sandbox) and
 * `Cross-Origin-Resource-Policy: cross-origin`.
 */
import { isValidServerName } from '../../core/identifiers.ts';
import { baseType, MEDIA_ID_PATTERN, type MediaService } from '../../homeserver/media/index.ts';
import type { Services } from '../../homeserver/services.ts';
import { type Endpoint, endpoint, q, v } from '../endpoint.ts';
import { partialHeaders, requestedRange, sliceBytes } from '../range.ts';

/** client-server-api "Serving inline content": types served with `Content-Disposition: inline`. */
const INLINE_TYPES = new Set([
  'text/css',
  'text/plain',
  'text/csv',
  'application/json',
  'application/ld+json',
  'image/jpeg',
  'image/gif',
  'image/png',
  'image/apng',
  'image/webp',
  'image/avif',
  'video/mp4',
  'video/webm',
  'video/ogg',
  'video/quicktime',
  'audio/mp4',
  'audio/webm',
  'audio/aac',
  'audio/mpeg',
  'audio/ogg',
  'audio/wave',
  'audio/wav',
  'audio/x-wav',
  'audio/x-pn-wav',
  'audio/flac',
  'audio/x-flac',
]);

/** The spec's recommended policy for served content ("Content repository"). */
const CONTENT_SECURITY_POLICY =
  "sandbox; default-src 'none'; script-src 'none'; plugin-types application/pdf; style-src 'unsafe-inline'; object-src 'self';";

const serverNameParam = v.refine(v.string(), (name) =>
  isValidServerName(name) ? undefined : 'is not a valid server name',
);
/** The spec's sanitising rule: a media ID is only [A-Za-z0-9_-]. */
export const mediaIdParam = v.refine(v.string(), (id) =>
  MEDIA_ID_PATTERN.test(id) ? undefined : 'is not a media ID (only A-Z, a-z, 0-9, _ and -)',
);

/**
 * A `Content-Disposition` value (RFC 6266): a plain quoted `filename` where the name is
 * printable ASCII without quotes or backslashes, else `filename*` in UTF-8 (RFC 8187), so no
 * name can break out of the header.
 */
export function contentDisposition(kind: 'inline' | 'attachment', filename: string | null): string {
  if (!filename) return kind;
  if (/^[\x20-\x7e]*$/.test(filename) && !/["\\]/.test(filename)) return `${kind}; filename="${filename}"`;
  const encoded = encodeURIComponent(filename).replace(
    /['()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
  return `${kind}; filename*=utf-8''${encoded}`;
}

/** The disposition a stored type is served with: inline only for the spec's safe types. */
export function dispositionFor(contentType: string): 'inline' | 'attachment' {
  return INLINE_TYPES.has(baseType(contentType)) ? 'inline' : 'attachment';
}

/** Piece size of a byte body: the host writes one piece at a time, with backpressure. */
const CHUNK_BYTES = 256 * 1024;

/**
 * The bytes as a stream of views into them, not copied: a Response built on a Uint8Array
 * copies it first (Fetch's "extract a body" takes a copy of a BufferSource), a megabyte per
 * download for nothing. A Blob (IndexedDB) is its own stream.
 */
function bodyOf(data: Blob | Uint8Array): Blob | ReadableStream<Uint8Array> {
  if (data instanceof Blob) return data;
  let offset = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (offset >= data.byteLength) {
        controller.close();
        return;
      }
      controller.enqueue(data.subarray(offset, offset + CHUNK_BYTES));
      offset += CHUNK_BYTES;
    },
  });
}

function mediaResponse(
  data: Blob | Uint8Array,
  contentType: string,
  disposition: string,
  cacheControl: string,
  ranged?: { request: Request; etag: string },
): Response {
  const size = data instanceof Blob ? data.size : data.byteLength;
  const range = ranged ? requestedRange(ranged.request, size, ranged.etag) : null;
  return new Response(bodyOf(range ? sliceBytes(data, range) : data), {
    status: range ? 206 : 200,
    headers: {
      'Content-Type': contentType,
      'Content-Length': String(size),
      ...(ranged && { 'Accept-Ranges': 'bytes', ETag: ranged.etag }),
      ...(range && partialHeaders(range, size)),
      'Content-Disposition': disposition,
      'Content-Security-Policy': CONTENT_SECURITY_POLICY,
      'Cross-Origin-Resource-Policy': 'cross-origin',
      // A browser must not guess a more dangerous type than the one we send.
      'X-Content-Type-Options': 'nosniff',
      // Media never changes once uploaded.
      'Cache-Control': cacheControl,
    },
  });
}

/**
 * The strong validator of stored media: an `mxc://` URI names bytes that never change, so
 * the URI is the entity tag (what `If-Range` compares before a download resumes).
 */
export function mediaEtag(serverName: string, mediaId: string): string {
  return `"${serverName}/${mediaId}"`;
}

export const THUMBNAIL_EXTENSIONS: Record<string, string> = {
  'image/jpeg': 'jpg',
  'image/png': 'png',
  'image/apng': 'png',
  'image/gif': 'gif',
  'image/webp': 'webp',
};

export const downloadQuery = q.object({
  timeout_ms: q.optional(q.int({ min: 0 }), 20_000),
});

const legacyDownloadQuery = q.object({
  timeout_ms: q.optional(q.int({ min: 0 }), 20_000),
  allow_remote: q.optional(q.bool(), true),
  // We never redirect, so the client's permission to follow one changes nothing.
  allow_redirect: q.optional(q.bool(), false),
});

/** Thumbnail sizes are capped: past this, no image we store would be larger, so it changes nothing. */
const MAX_THUMBNAIL_SIDE = 100_000;

const thumbnailShape = {
  width: q.int({ min: 1, max: MAX_THUMBNAIL_SIDE }),
  height: q.int({ min: 1, max: MAX_THUMBNAIL_SIDE }),
  method: q.optional(q.enum(['crop', 'scale']), 'scale'),
  animated: q.optional(q.bool(), false),
  timeout_ms: q.optional(q.int({ min: 0 }), 20_000),
} as const;
export const thumbnailQuery = q.object(thumbnailShape);
const legacyThumbnailQuery = q.object({
  ...thumbnailShape,
  allow_remote: q.optional(q.bool(), true),
  allow_redirect: q.optional(q.bool(), false),
});

const previewQuery = q.object({ url: q.string(), ts: q.optional(q.int()) });

interface DownloadArgs {
  request: Request;
  params: { serverName: string; mediaId: string; fileName?: string };
  query: { timeout_ms: number; allow_remote?: boolean };
}

async function download(
  media: MediaService,
  { request, params, query }: DownloadArgs,
  cache: string,
): Promise<Response> {
  const content = await media.download(params.serverName, params.mediaId, {
    timeoutMs: query.timeout_ms,
    allowRemote: query.allow_remote ?? true,
  });
  const filename = params.fileName || content.uploadName;
  return mediaResponse(
    content.data,
    content.contentType,
    contentDisposition(dispositionFor(content.contentType), filename),
    cache,
    { request, etag: mediaEtag(params.serverName, params.mediaId) },
  );
}

interface ThumbnailArgs {
  params: { serverName: string; mediaId: string };
  query: {
    width: number;
    height: number;
    method: 'crop' | 'scale';
    animated: boolean;
    timeout_ms: number;
    allow_remote?: boolean;
  };
}

async function thumbnail(
  media: MediaService,
  { params, query }: ThumbnailArgs,
  cache: string,
): Promise<Response> {
  const made = await media.thumbnail(
    params.serverName,
    params.mediaId,
    { width: query.width, height: query.height, method: query.method, animated: query.animated },
    { timeoutMs: query.timeout_ms, allowRemote: query.allow_remote ?? true },
  );
  const ext = THUMBNAIL_EXTENSIONS[made.contentType] ?? 'bin';
  // The spec: a thumbnail's disposition "MUST be inline", and its types are all inline-safe.
  return mediaResponse(made.data, made.contentType, contentDisposition('inline', `thumbnail.${ext}`), cache);
}

/** Authenticated reads may be cached only by the client that made them. */
const PRIVATE_CACHE = 'private, max-age=31536000, immutable';
const PUBLIC_CACHE = 'public, max-age=31536000, immutable';

export function mediaEndpoints(services: Services): Endpoint[] {
  const { media, config } = services;
  const uploadLimit = config.maxUploadBytes;
  const uploadQuery = q.object({ filename: q.optional(q.string()) });
  // The body as the store takes it (IndexedDB: a Blob the browser may hold on disk; SQLite:
  // bytes; files: a stream written to disk as it arrives), so an upload is not converted, a
  // copy of the whole file, on its way in.
  const rawBody = media.takes === 'blob' ? 'blob' : media.takes === 'stream' ? 'stream' : true;
  const uploaded = (req: {
    bytes: Uint8Array | undefined;
    blob: Blob | undefined;
    stream: ReadableStream<Uint8Array> | undefined;
  }) => req.stream ?? req.blob ?? req.bytes ?? new Uint8Array(0);
  const mediaParams = { serverName: serverNameParam, mediaId: mediaIdParam };

  return [
    // --- authenticated (Matrix 1.11) -----------------------------------------------------
    endpoint({
      // GET /_matrix/client/v1/media/config
      method: 'GET',
      path: '/media/config',
      versions: ['v1'],
      auth: 'required',
      guest: true,
      rateLimit: 'default',
      spec: 'client-server-api/#get_matrixclientv1mediaconfig',
      handler: async () => ({ 'm.upload.size': media.maxUploadBytes }),
    }),
    endpoint({
      // GET /_matrix/client/v1/media/download/{serverName}/{mediaId}
      method: 'GET',
      path: '/media/download/{serverName}/{mediaId}',
      versions: ['v1'],
      auth: 'required',
      guest: true,
      rateLimit: 'default',
      params: mediaParams,
      query: downloadQuery,
      spec: 'client-server-api/#get_matrixclientv1mediadownloadservernamemediaid',
      handler: (req) => download(media, req, PRIVATE_CACHE),
    }),
    endpoint({
      // GET /_matrix/client/v1/media/download/{serverName}/{mediaId}/{fileName}
      method: 'GET',
      path: '/media/download/{serverName}/{mediaId}/{fileName}',
      versions: ['v1'],
      auth: 'required',
      guest: true,
      rateLimit: 'default',
      params: mediaParams,
      query: downloadQuery,
      spec: 'client-server-api/#get_matrixclientv1mediadownloadservernamemediaidfilename',
      handler: (req) => download(media, req, PRIVATE_CACHE),
    }),
    endpoint({
      // GET /_matrix/client/v1/media/thumbnail/{serverName}/{mediaId}
      method: 'GET',
      path: '/media/thumbnail/{serverName}/{mediaId}',
      versions: ['v1'],
      auth: 'required',
      guest: true,
      rateLimit: 'default',
      params: mediaParams,
      query: thumbnailQuery,
      spec: 'client-server-api/#get_matrixclientv1mediathumbnailservernamemediaid',
      handler: (req) => thumbnail(media, req, PRIVATE_CACHE),
    }),
    endpoint({
      // GET /_matrix/client/v1/media/preview_url
      method: 'GET',
      path: '/media/preview_url',
      versions: ['v1'],
      auth: 'required',
      guest: true,
      rateLimit: 'default',
      query: previewQuery,
      spec: 'client-server-api/#get_matrixclientv1mediapreview_url',
      handler: () => media.previewUrl(),
    }),

    // --- uploads (still under /_matrix/media) -----------------------------------------------
    endpoint({
      // POST /_matrix/media/v3/upload
      method: 'POST',
      path: '/upload',
      versions: ['r0', 'v3'],
      base: '/_matrix/media',
      auth: 'required',
      rateLimit: 'message',
      query: uploadQuery,
      rawBody,
      maxBodyBytes: uploadLimit,
      spec: 'client-server-api/#post_matrixmediav3upload',
      handler: async (req) => {
        const { auth, request, query } = req;
        const contentUri = await media.upload(auth.userId, uploaded(req), {
          contentType: request.headers.get('content-type'),
          filename: query.filename ?? null,
        });
        return { content_uri: contentUri };
      },
    }),
    endpoint({
      // PUT /_matrix/media/v3/upload/{serverName}/{mediaId}
      method: 'PUT',
      path: '/upload/{serverName}/{mediaId}',
      versions: ['v3'],
      base: '/_matrix/media',
      auth: 'required',
      rateLimit: 'message',
      params: mediaParams,
      query: uploadQuery,
      rawBody,
      maxBodyBytes: uploadLimit,
      spec: 'client-server-api/#put_matrixmediav3uploadservernamemediaid',
      handler: async (req) => {
        const { auth, request, query, params } = req;
        await media.uploadTo(auth.userId, params.serverName, params.mediaId, uploaded(req), {
          contentType: request.headers.get('content-type'),
          filename: query.filename ?? null,
        });
        return {};
      },
    }),
    endpoint({
      // POST /_matrix/media/v1/create
      method: 'POST',
      path: '/create',
      versions: ['v1'],
      base: '/_matrix/media',
      auth: 'required',
      // The spec asks for a limit on creating IDs; pending IDs are also bounded by their lapse.
      rateLimit: 'message',
      spec: 'client-server-api/#post_matrixmediav1create',
      handler: async ({ auth }) => {
        const { contentUri, unusedExpiresAt } = await media.create(auth.userId);
        return { content_uri: contentUri, unused_expires_at: unusedExpiresAt };
      },
    }),

    // --- deprecated unauthenticated reads (content-repo.yaml) -------------------------------
    endpoint({
      // GET /_matrix/media/v3/config
      method: 'GET',
      path: '/config',
      versions: ['r0', 'v3'],
      base: '/_matrix/media',
      auth: 'required',
      guest: true,
      rateLimit: 'default',
      spec: 'client-server-api/#get_matrixmediav3config',
      handler: async () => ({ 'm.upload.size': media.maxUploadBytes }),
    }),
    endpoint({
      // GET /_matrix/media/v3/download/{serverName}/{mediaId}
      method: 'GET',
      path: '/download/{serverName}/{mediaId}',
      versions: ['r0', 'v3'],
      base: '/_matrix/media',
      auth: 'none',
      rateLimit: 'default',
      params: mediaParams,
      query: legacyDownloadQuery,
      spec: 'client-server-api/#get_matrixmediav3downloadservernamemediaid',
      handler: (req) => download(media, req, PUBLIC_CACHE),
    }),
    endpoint({
      // GET /_matrix/media/v3/download/{serverName}/{mediaId}/{fileName}
      method: 'GET',
      path: '/download/{serverName}/{mediaId}/{fileName}',
      versions: ['r0', 'v3'],
      base: '/_matrix/media',
      auth: 'none',
      rateLimit: 'default',
      params: mediaParams,
      query: legacyDownloadQuery,
      spec: 'client-server-api/#get_matrixmediav3downloadservernamemediaidfilename',
      handler: (req) => download(media, req, PUBLIC_CACHE),
    }),
    endpoint({
      // GET /_matrix/media/v3/thumbnail/{serverName}/{mediaId}
      method: 'GET',
      path: '/thumbnail/{serverName}/{mediaId}',
      versions: ['r0', 'v3'],
      base: '/_matrix/media',
      auth: 'none',
      rateLimit: 'default',
      params: mediaParams,
      query: legacyThumbnailQuery,
      spec: 'client-server-api/#get_matrixmediav3thumbnailservernamemediaid',
      handler: (req) => thumbnail(media, req, PUBLIC_CACHE),
    }),
    endpoint({
      // GET /_matrix/media/v3/preview_url
      method: 'GET',
      path: '/preview_url',
      versions: ['r0', 'v3'],
      base: '/_matrix/media',
      auth: 'required',
      guest: true,
      rateLimit: 'default',
      query: previewQuery,
      spec: 'client-server-api/#get_matrixmediav3preview_url',
      handler: () => media.previewUrl(),
    }),
  ];
}
