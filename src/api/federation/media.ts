/**
 * Our media for other servers — server-server-api "Content Repository"
 * (content_repository.yaml): `GET /_matrix/federation/v1/media/download/{mediaId}` and
 * `…/thumbnail/{mediaId}`, X-Matrix signed, answered as `multipart/mixed` with exactly two
 * parts: `{}` as `application/json` metadata, then the bytes with their `Content-Type` and
 * `Content-Disposition`. Only this server's own uploads are served (`allowRemote: false`):
 * a server asks a media's origin, never a cache.
 */
import { encodeMultipart } from '../../core/multipart.ts';
import type { Services } from '../../homeserver/services.ts';
import {
  contentDisposition,
  dispositionFor,
  downloadQuery,
  mediaEtag,
  mediaIdParam,
  THUMBNAIL_EXTENSIONS,
  thumbnailQuery,
} from '../client/media.ts';
import type { Endpoint } from '../endpoint.ts';
import { partialHeaders, requestedRange, sliceBytes } from '../range.ts';
import { federationEndpoint, type XMatrixDeps } from './auth.ts';

const encoder = new TextEncoder();

/** A random boundary: 32 hex digits never met by chance in the media bytes. */
function randomBoundary(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return `hearth-${Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')}`;
}

/**
 * The two-part answer. With `ranged`, the body is the same bytes on every request (its
 * boundary is the media's secret tag, not random), so a server resuming a large download may
 * ask a byte range of it: the range is of this multipart body, the representation it gets.
 */
function multipartMedia(
  data: Blob | Uint8Array,
  contentType: string,
  disposition: string,
  mark: string,
  ranged?: { request: Request; etag: string },
): Response {
  const body = encodeMultipart(mark, [
    { headers: { 'Content-Type': 'application/json' }, body: encoder.encode('{}') },
    { headers: { 'Content-Type': contentType, 'Content-Disposition': disposition }, body: data },
  ]);
  const range = ranged ? requestedRange(ranged.request, body.size, ranged.etag) : null;
  return new Response(range ? sliceBytes(body, range) : body, {
    status: range ? 206 : 200,
    headers: {
      'Content-Type': `multipart/mixed; boundary=${mark}`,
      'Content-Length': String(body.size),
      ...(ranged && { 'Accept-Ranges': 'bytes', ETag: ranged.etag }),
      ...(range && partialHeaders(range, body.size)),
    },
  });
}

export function mediaFederationEndpoints(deps: XMatrixDeps, services: Services): Endpoint[] {
  const { media, config } = services;
  return [
    federationEndpoint(deps, {
      // GET /_matrix/federation/v1/media/download/{mediaId}
      method: 'GET',
      path: '/media/download/{mediaId}',
      versions: ['v1'],
      params: { mediaId: mediaIdParam },
      query: downloadQuery,
      spec: 'server-server-api/#get_matrixfederationv1mediadownloadmediaid',
      handler: async ({ request, params, query }) => {
        const content = await media.download(config.serverName, params.mediaId, {
          timeoutMs: query.timeout_ms,
          allowRemote: false,
        });
        return multipartMedia(
          content.data,
          content.contentType,
          contentDisposition(dispositionFor(content.contentType), content.uploadName),
          `hearth-${await media.secretTag(config.serverName, params.mediaId)}`,
          { request, etag: mediaEtag(config.serverName, params.mediaId) },
        );
      },
    }),
    federationEndpoint(deps, {
      // GET /_matrix/federation/v1/media/thumbnail/{mediaId}
      method: 'GET',
      path: '/media/thumbnail/{mediaId}',
      versions: ['v1'],
      params: { mediaId: mediaIdParam },
      query: thumbnailQuery,
      spec: 'server-server-api/#get_matrixfederationv1mediathumbnailmediaid',
      handler: async ({ params, query }) => {
        const made = await media.thumbnail(
          config.serverName,
          params.mediaId,
          { width: query.width, height: query.height, method: query.method, animated: query.animated },
          { timeoutMs: query.timeout_ms, allowRemote: false },
        );
        const ext = THUMBNAIL_EXTENSIONS[made.contentType] ?? 'bin';
        return multipartMedia(
          made.data,
          made.contentType,
          contentDisposition('inline', `thumbnail.${ext}`),
          randomBoundary(),
        );
      },
    }),
  ];
}
