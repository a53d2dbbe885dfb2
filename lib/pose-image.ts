import type { PngOptions, Sharp } from 'sharp';
import { InvalidImageError } from './errors.ts';
import { sniffFormat, type ImageFormat } from './image-format.ts';

/**
 * Validation and rendering of a pose image: what the thumbnail handler and savePoseWithThumbnail both run.
 * Thumbnails follow the reference: 400x400, fit cover, PNG quality 85.
 */
export const THUMBNAIL_SIZE = 400;

/** The reference's thumbnail encoding (its `quality` turns on palette quantisation). */
const THUMBNAIL_PNG: PngOptions = { quality: 85 };

let sharpModule: Promise<typeof import('sharp')> | undefined;

/**
 * sharp (libvips, ~20 MB of native code) is loaded on first use, so the HTTP functions, which never decode an
 * image, neither ship nor load it.
 */
async function loadSharp(): Promise<typeof import('sharp')> {
  sharpModule ??= import('sharp').then((module) => {
    // One pose is rendered once: libvips' operation cache would only hold memory across invocations.
    module.default.cache(false);
    return module;
  });
  return sharpModule;
}

/** Image formats we recognise but do not accept (as opposed to bytes that are no image at all). */
function isOtherImageFormat(bytes: Uint8Array): boolean {
  const head = Buffer.from(bytes.subarray(0, 12));
  return (
    head.subarray(0, 4).toString('latin1') === 'GIF8' ||
    head.subarray(0, 2).toString('latin1') === 'BM' ||
    head.subarray(0, 4).equals(Buffer.from([0x49, 0x49, 0x2a, 0x00])) ||
    head.subarray(0, 4).equals(Buffer.from([0x4d, 0x4d, 0x00, 0x2a])) ||
    head.subarray(4, 8).toString('latin1') === 'ftyp'
  );
}

export interface RenderedPose {
  format: ImageFormat;
  width: number;
  height: number;
  /** The image to publish: a PNG (the input itself when it was one). */
  image: Buffer;
  /** The 400x400 PNG thumbnail. */
  thumbnail: Buffer;
}

export interface RenderOptions {
  maxInputPixels: number;
}

/**
 * Validates `bytes` (magic bytes, size, full decode) and renders what gets published. Throws an
 * InvalidImageError with the rejection reason; nothing is written by this function.
 */
export async function renderPose(bytes: Uint8Array, options: RenderOptions): Promise<RenderedPose> {
  if (!(bytes instanceof Uint8Array)) throw new InvalidImageError('not_an_image', 'imageBuffer must be a Buffer or Uint8Array');
  const format = sniffFormat(bytes);
  if (!format) {
    throw isOtherImageFormat(bytes)
      ? new InvalidImageError('unsupported_format', 'Only PNG, JPEG and WebP images are accepted')
      : new InvalidImageError('not_an_image', `The data is not a PNG, JPEG or WebP image (${bytes.length} bytes)`);
  }
  const { default: sharp } = await loadSharp();
  const input = (): Sharp => sharp(bytes, { limitInputPixels: options.maxInputPixels, failOn: 'error' });
  try {
    const metadata = await input().metadata();
    const { width, height } = metadata;
    if (width * height > options.maxInputPixels) {
      throw new InvalidImageError(
        'too_large',
        `The image is ${width}x${height} (${width * height} pixels), more than the ${options.maxInputPixels} allowed`,
      );
    }
    const [image, thumbnail] = await Promise.all([
      format === 'png' ? Buffer.from(bytes) : input().autoOrient().png().toBuffer(),
      input().autoOrient().resize(THUMBNAIL_SIZE, THUMBNAIL_SIZE, { fit: 'cover' }).png(THUMBNAIL_PNG).toBuffer(),
    ]);
    const upright = (metadata.orientation ?? 1) >= 5;
    return { format, width: upright ? height : width, height: upright ? width : height, image, thumbnail };
  } catch (error) {
    if (error instanceof InvalidImageError) throw error;
    const message = error instanceof Error ? error.message : String(error);
    if (/pixel limit/i.test(message)) {
      throw new InvalidImageError('too_large', `The image has more than the ${options.maxInputPixels} pixels allowed`, { cause: error });
    }
    throw new InvalidImageError('corrupt_image', `The ${format.toUpperCase()} image could not be decoded: ${firstLine(message)}`, {
      cause: error,
    });
  }
}

function firstLine(message: string): string {
  return message.split('\n')[0]!.slice(0, 200);
}
