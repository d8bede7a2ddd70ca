/**
 * Thumbnails on Node, with sharp (libvips; its prebuilt binaries come as npm packages per
 * platform). Kept in its own file (STYLE.md §9) so nothing else, and no browser bundle, loads
 * a native module; the browser's is `thumbnailer-browser.ts`.
 *
 * sharp is an optional dependency: an install where it cannot be had (a platform without a
 * prebuilt binary) still succeeds. Fallback: where sharp cannot load, there is no thumbnailer
 * (a warning says so), and the media service answers thumbnail requests of images with the original
 * image (clients scale it), and of anything else with 400 M_UNKNOWN.
 */
import type { Logger } from '../homeserver/context.ts';
import {
  MAX_THUMBNAIL_SOURCE_PIXELS,
  planThumbnail,
  ThumbnailError,
  type Thumbnailer,
} from '../homeserver/media/thumbnail.ts';

/** What libvips decodes here that a thumbnail is asked of. SVG is left out: it is a document. */
const DECODABLE = new Set(['image/jpeg', 'image/png', 'image/gif', 'image/webp', 'image/avif', 'image/apng']);

/** JPEG quality of JPEG thumbnails: libvips' and browsers' usual default, small and clean. */
const JPEG_QUALITY = 80;

type Sharp = typeof import('sharp').default;

/** The Node thumbnailer, or undefined (said in the log) when sharp cannot be loaded. */
export async function createNodeThumbnailer(logger?: Pick<Logger, 'warn'>): Promise<Thumbnailer | undefined> {
  let sharp: Sharp;
  try {
    sharp = (await import('sharp')).default;
  } catch (err) {
    logger?.warn('thumbnails: sharp could not be loaded; thumbnails of images are the originals', {
      error: String(err),
    });
    return undefined;
  }
  return nodeThumbnailer(sharp);
}

/**
 * The Node thumbnailer with sharp loaded at the first thumbnail asked for, not at start-up:
 * libvips is the largest thing `hearth serve` would load, and most starts serve no
 * thumbnail. Where sharp cannot be loaded, thumbnails of images are the originals.
 */
export function lazyNodeThumbnailer(logger?: Pick<Logger, 'warn'>): Thumbnailer {
  let loading: Promise<Thumbnailer | undefined> | undefined;
  return {
    canDecode: (contentType) => DECODABLE.has(contentType),
    async thumbnail(source, contentType, want) {
      loading ??= createNodeThumbnailer(logger);
      const loaded = await loading;
      return loaded ? loaded.thumbnail(source, contentType, want) : 'original';
    },
  };
}

export function nodeThumbnailer(sharp: Sharp): Thumbnailer {
  // The pixel bound is also libvips' own: it refuses to decode past it.
  const options = { limitInputPixels: MAX_THUMBNAIL_SOURCE_PIXELS, autoOrient: true } as const;
  return {
    canDecode: (contentType) => DECODABLE.has(contentType),

    async thumbnail(source, contentType, want) {
      const input = source instanceof Uint8Array ? source : new Uint8Array(await source.arrayBuffer());
      let width: number | undefined;
      let height: number | undefined;
      try {
        const meta = await sharp(input, options).metadata();
        width = meta.autoOrient?.width ?? meta.width;
        height = meta.autoOrient?.height ?? meta.height;
      } catch (err) {
        if (/pixel limit/i.test(String(err))) throw new ThumbnailError('too-large', String(err));
        throw new ThumbnailError('undecodable', String(err));
      }
      if (!width || !height) throw new ThumbnailError('undecodable', 'no image size');
      if (width * height > MAX_THUMBNAIL_SOURCE_PIXELS) {
        throw new ThumbnailError('too-large', `${width}×${height} is past the pixel limit`);
      }
      const plan = planThumbnail(width, height, want);
      if (!plan) return 'original';
      // Only the first frame: an animated thumbnail is never required, and `animated=false`
      // forbids one.
      let pipeline = sharp(input, options).extract({
        left: plan.crop.x,
        top: plan.crop.y,
        width: plan.crop.width,
        height: plan.crop.height,
      });
      pipeline = pipeline.resize(plan.width, plan.height, { fit: 'fill' });
      // Photos stay JPEG (small); everything else becomes PNG, which keeps transparency.
      const jpeg = contentType === 'image/jpeg';
      try {
        const data = await (jpeg ? pipeline.jpeg({ quality: JPEG_QUALITY }) : pipeline.png()).toBuffer();
        return {
          data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
          contentType: jpeg ? 'image/jpeg' : 'image/png',
        };
      } catch (err) {
        throw new ThumbnailError('undecodable', String(err));
      }
    },
  };
}
