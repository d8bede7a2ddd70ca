/**
 * Thumbnails (client-server-api "Thumbnails"): the interface a host implements where it can
 * decode images, and the sizing rule every implementation shares.
 *
 * The homeserver never decodes an image itself: that needs `createImageBitmap` +
 * `OffscreenCanvas` in a browser or a native library on Node, so the host injects a
 * `Thumbnailer` (`hosts/thumbnailer-browser.ts`, `hosts/thumbnailer-node.ts`), kept apart by
 * file (STYLE.md §9). Without one, the service answers with the original image where it is a
 * type clients can show (see `media/index.ts`).
 */

export type ThumbnailMethod = 'crop' | 'scale';

export interface ThumbnailRequest {
  /** The smallest size the client wants (the spec's "desired" size). */
  width: number;
  height: number;
  method: ThumbnailMethod;
  /** Whether the client would take an animated thumbnail. */
  animated: boolean;
}

export interface Thumbnail {
  data: Uint8Array | Blob;
  /** One of the types a thumbnail may have: image/png, image/jpeg, image/gif, image/webp. */
  contentType: string;
}

/**
 * Makes thumbnails. `thumbnail` answers `'original'` when the image is no larger than asked
 * (the spec: serve the original rather than upscale), and throws `ThumbnailError` when the
 * bytes are not an image it can decode or the image is too large to decode safely.
 */
export interface Thumbnailer {
  /** Whether it can decode this content type at all (checked before reading the bytes). */
  canDecode(contentType: string): boolean;
  /** `source` is as the store keeps it: a Blob (IndexedDB) or bytes (SQLite). */
  thumbnail(
    source: Blob | Uint8Array,
    contentType: string,
    want: ThumbnailRequest,
  ): Promise<Thumbnail | 'original'>;
}

export class ThumbnailError extends Error {
  override readonly name = 'ThumbnailError';
  readonly reason: 'undecodable' | 'too-large';
  constructor(reason: 'undecodable' | 'too-large', message: string) {
    super(message);
    this.reason = reason;
  }
}

/**
 * Largest image, in pixels, a thumbnailer decodes: a small file can declare a huge canvas
 * (a "decompression bomb"), and decoding it would take gigabytes. 40 megapixels is a large
 * phone camera's photo; the spec wants larger refused with 413 M_TOO_LARGE.
 */
export const MAX_THUMBNAIL_SOURCE_PIXELS = 40_000_000;

/** What to cut from the source and the size to draw it at. */
export interface ThumbnailPlan {
  /** The source rectangle, in source pixels. */
  crop: { x: number; y: number; width: number; height: number };
  /** The size of the thumbnail. */
  width: number;
  height: number;
}

/**
 * The thumbnail of a `sourceWidth`×`sourceHeight` image, or null when the original should be
 * served. The spec's rules: never upscale; never smaller than asked unless the source is;
 * "scale" keeps the aspect ratio, "crop" gives the asked aspect ratio.
 *
 * - scale: the smallest downscale that still covers the asked box (both sides ≥ asked).
 * - crop: scaled the same way, then the centre cut to the asked box; when the source is
 *   smaller than the box on one side, the centre cut of the box (as much as there is), unscaled.
 */
export function planThumbnail(
  sourceWidth: number,
  sourceHeight: number,
  want: Pick<ThumbnailRequest, 'width' | 'height' | 'method'>,
): ThumbnailPlan | null {
  const factor = Math.max(want.width / sourceWidth, want.height / sourceHeight);
  const whole = { x: 0, y: 0, width: sourceWidth, height: sourceHeight };
  if (want.method === 'scale') {
    if (factor >= 1) return null;
    return {
      crop: whole,
      width: Math.max(want.width, Math.round(sourceWidth * factor)),
      height: Math.max(want.height, Math.round(sourceHeight * factor)),
    };
  }
  if (factor < 1) {
    // crop: the largest centre region with the asked aspect ratio, scaled down to the box.
    const aspect = want.width / want.height;
    const regionWidth = Math.max(1, Math.min(sourceWidth, Math.round(sourceHeight * aspect)));
    const regionHeight = Math.max(1, Math.min(sourceHeight, Math.round(sourceWidth / aspect)));
    const crop = {
      x: Math.floor((sourceWidth - regionWidth) / 2),
      y: Math.floor((sourceHeight - regionHeight) / 2),
      width: regionWidth,
      height: regionHeight,
    };
    return { crop, width: want.width, height: want.height };
  }
  // The source is smaller than the box on a side: scaling up is forbidden and so is a side
  // smaller than asked where the source has it, so the centre cut of the box, unscaled (the
  // aspect ratio then gives way: the spec's "tries to" against its "MUST NOT").
  const width = Math.min(sourceWidth, want.width);
  const height = Math.min(sourceHeight, want.height);
  if (width === sourceWidth && height === sourceHeight) return null;
  const crop = {
    x: Math.floor((sourceWidth - width) / 2),
    y: Math.floor((sourceHeight - height) / 2),
    width,
    height,
  };
  return { crop, width: crop.width, height: crop.height };
}
