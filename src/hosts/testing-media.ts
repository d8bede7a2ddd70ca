/**
 * Test support for media: sample PNG and JPEG images made in the test (no binary fixtures),
 * and their sizes read back, through sharp (the Node thumbnailer's library, already a
 * dependency).
 */
import sharp from 'sharp';

/** A `width`×`height` image with a gradient (so a crop is visible), encoded as PNG or JPEG. */
export async function sampleImage(
  width: number,
  height: number,
  format: 'png' | 'jpeg',
): Promise<Uint8Array> {
  const pixels = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const at = (y * width + x) * 3;
      pixels[at] = (x * 255) / width;
      pixels[at + 1] = (y * 255) / height;
      pixels[at + 2] = 128;
    }
  }
  const image = sharp(pixels, { raw: { width, height, channels: 3 } });
  const out = await (format === 'png' ? image.png() : image.jpeg({ quality: 90 })).toBuffer();
  return new Uint8Array(out);
}

/** The format and size of an encoded image. */
export async function imageSize(
  bytes: Uint8Array | ArrayBuffer,
): Promise<{ format: string | undefined; width: number | undefined; height: number | undefined }> {
  const meta = await sharp(bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes)).metadata();
  return { format: meta.format, width: meta.width, height: meta.height };
}
