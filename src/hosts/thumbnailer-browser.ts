/**
 * Thumbnails in a browser (Service Worker or page): `createImageBitmap` decodes, an
 * `OffscreenCanvas` scales and crops, `convertToBlob` encodes. Kept in its own file
 * (STYLE.md §9); Node's is `thumbnailer-node.ts`. Where the browser lacks either API, there is
 * no thumbnailer, and thumbnails of images are the originals (see `homeserver/media`).
 */
import {
  MAX_THUMBNAIL_SOURCE_PIXELS,
  planThumbnail,
  ThumbnailError,
  type Thumbnailer,
} from '../homeserver/media/thumbnail.ts';

/** What every current browser decodes. */
const DECODABLE = new Set(['image/jpeg', 'image/png', 'image/gif', 'image/webp', 'image/apng']);

export function createBrowserThumbnailer(): Thumbnailer | undefined {
  if (
    typeof globalThis.createImageBitmap !== 'function' ||
    typeof globalThis.OffscreenCanvas !== 'function'
  ) {
    return undefined;
  }
  return {
    canDecode: (contentType) => DECODABLE.has(contentType),

    async thumbnail(source, contentType, want) {
      let bitmap: ImageBitmap;
      try {
        // Orientation from the image's own metadata (EXIF), as it is displayed.
        bitmap = await createImageBitmap(
          source instanceof Blob
            ? source
            : new Blob([source as Uint8Array<ArrayBuffer>], { type: contentType }),
        );
      } catch (err) {
        throw new ThumbnailError('undecodable', String(err));
      }
      try {
        const { width, height } = bitmap;
        if (width * height > MAX_THUMBNAIL_SOURCE_PIXELS) {
          throw new ThumbnailError('too-large', `${width}×${height} is past the pixel limit`);
        }
        const plan = planThumbnail(width, height, want);
        if (!plan) return 'original';
        const canvas = new OffscreenCanvas(plan.width, plan.height);
        const context = canvas.getContext('2d');
        if (!context) throw new ThumbnailError('undecodable', 'no 2D canvas');
        context.imageSmoothingQuality = 'high';
        const { x, y, width: cw, height: ch } = plan.crop;
        context.drawImage(bitmap, x, y, cw, ch, 0, 0, plan.width, plan.height);
        // Photos stay JPEG (small); everything else becomes PNG, which keeps transparency.
        const type = contentType === 'image/jpeg' ? 'image/jpeg' : 'image/png';
        const data = await canvas.convertToBlob({ type, quality: 0.8 });
        return { data, contentType: data.type || type };
      } finally {
        bitmap.close();
      }
    },
  };
}
