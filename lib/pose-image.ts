import type { PngOptions, Sharp } from 'sharp';
import { asSentence, formatCount, InvalidImageError } from './errors.ts';
import { sniffFormat, type ImageFormat } from './image-format.ts';
import { filterPngChunks, type FilteredPng } from './png-chunks.ts';
import type { PoseFile, VariantFormat } from './pose-files.ts';
import { placeholderOf, type RawPixels } from './placeholder.ts';
import type { Placeholder } from './pose-record.ts';

/**
 * Validation and rendering of a pose image: what the thumbnail handler and savePoseWithThumbnail both run.
 * Thumbnails follow the reference: 400x400, fit cover, PNG quality 85.
 */
export const THUMBNAIL_SIZE = 400;

/**
 * The thumbnail encoding: the reference's `{quality: 85}` (which turns on palette quantisation), with the
 * quantiser's fastest effort and half-strength dithering. At its default effort (7) libimagequant spends
 * 100-400 ms on a 400x400 image for a palette barely smaller; at effort 1 it takes 30-45 ms (efforts 1-3 give
 * identical output). Full Floyd-Steinberg dither (1.0) makes the PNG a third larger at effort 1, and none (0)
 * bands on smooth gradients; 0.5 keeps every thumbnail within 1.3x the reference's bytes with about the
 * reference's smoothness. BENCHMARKS.md has the measurements (time, bytes, PSNR, SSIM).
 */
export const THUMBNAIL_PNG = { quality: 85, effort: 1, dither: 0.5, compressionLevel: 6 } as const satisfies PngOptions;

/**
 * Cover scales the whole image to 400 on its short side and then crops it: for a long strip that intermediate is
 * mostly thrown away (a 20000x20 JPEG turned by EXIF took 5 s), and past 83,886:1 libvips refuses to make it at all
 * (a valid 100000x1 PNG). Past 8:1 the thumbnail cuts out the centred square first, all that cover keeps of it;
 * up to 8:1 cover is as fast (a JPEG's shrink-on-load pays off), so ordinary images take the usual path.
 */
const CROP_FIRST_ASPECT_RATIO = 8;

/**
 * The published full-size PNG of a JPEG or WebP upload. Adaptive row filtering makes photographic PNGs 20-28%
 * smaller than unfiltered ones; with it, deflate level 3 is within 0-5% of level 6's size and up to twice as
 * fast (level 1 is faster still but 14-39% larger). Stored bytes cost more than the encoding's Lambda time
 * within days; see BENCHMARKS.md. A PNG upload is published as its own chunks, filtered (png-chunks.ts), and
 * never re-encoded, unless dropping its EXIF would lose its orientation: then it is converted upright like a JPEG.
 * Converted images carry no metadata (sharp's default) and are in sRGB, what the web assumes and the thumbnail
 * is in; a wide-gamut or CMYK source is converted through its ICC profile, so its colours stay right.
 */
export const IMAGE_PNG = { compressionLevel: 3, adaptiveFiltering: true } as const satisfies PngOptions;

let sharpModule: Promise<typeof import('sharp')> | undefined;
/** sharp once loadSharp() has loaded it, for the pipelines over pixels it decoded. */
let sharpLoaded: (typeof import('sharp'))['default'] | undefined;

/**
 * sharp (libvips, ~20 MB of native code) is loaded on first use, so the HTTP functions, which never decode an
 * image, neither ship nor load it.
 */
export async function loadSharp(): Promise<typeof import('sharp')> {
  sharpModule ??= import('sharp').then((module) => {
    // One pose is rendered once: libvips' operation cache would only hold memory across invocations.
    module.default.cache(false);
    sharpLoaded = module.default;
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
  /**
   * The image to publish, a PNG: a PNG upload's own chunks without its private metadata (the input itself, not
   * a copy, when there was nothing to drop); a JPEG or WebP converted.
   */
  image: Buffer;
  /** True exactly when `image` is the input's very bytes, so that publishing can copy the staged upload instead. */
  imageIsInput: boolean;
  /** The 400x400 PNG thumbnail; it never carries metadata. */
  thumbnail: Buffer;
  /** The configured variants (POSE_VARIANTS), by role; none carries metadata. */
  variants: Readonly<Record<string, Buffer>>;
  /** POSE_VARIANTS `placeholder`: what a page shows while the image loads, from the thumbnail. */
  placeholder?: Placeholder;
}

/** The bytes of one of a rendered pose's files. */
export function bodyOf(rendered: RenderedPose, file: PoseFile): Buffer {
  if (file.rendering.kind === 'image') return rendered.image;
  if (file.rendering.kind === 'thumbnail') return rendered.thumbnail;
  const body = rendered.variants[file.role];
  if (!body) throw new Error(`no ${file.role} was rendered`); // a caller's bug: render and publish take one table
  return body;
}

/**
 * The encoders of the variants (BENCHMARKS.md, variants, has the time, bytes and SSIM of each setting on the bench
 * corpus). WebP at effort 1: effort 2 saves 17% of the bytes for 30-50% more time, effort 0 saves 10-20% of the
 * time for 8% more bytes. AVIF at effort 0 with 4:2:0 chroma: 5x faster than effort 2 in 4:4:4 (10 ms rather
 * than 53 for 400x400), its SSIM within 0.005 of it at quality 55; every effort above 1 costs 2-8x more for a few
 * per cent of the bytes. Each stays as close to the exact resize as the palette PNG thumbnail is.
 */
export const VARIANT_ENCODERS: Readonly<Record<VariantFormat, (image: Sharp) => Sharp>> = {
  webp: (image) => image.webp({ quality: 80, effort: 1 }),
  avif: (image) => image.avif({ quality: 55, effort: 0, chromaSubsampling: '4:2:0' }),
  jpg: (image) => image.jpeg({ quality: 82, mozjpeg: true }),
};

export interface RenderOptions {
  maxInputPixels: number;
  /**
   * KEEP_IMAGE_METADATA: the published image keeps its text, EXIF, XMP and time metadata. By default (false) it
   * carries none. Either way a PNG's animation frames and anything after its IEND are dropped.
   */
  keepMetadata?: boolean;
  /**
   * PUBLISHED_MAX_BYTES: the largest image published. A JPEG or WebP converted to PNG can be ten times its upload
   * (a noisy 15 MB JPEG of 50 MP becomes a PNG of ~140 MB): larger is rejected `too_large`. Default: no limit.
   */
  maxImageBytes?: number;
  /** The variants to render besides the image and the thumbnail (POSE_VARIANTS); default none. */
  variants?: readonly PoseFile[];
  /** POSE_VARIANTS `placeholder`: compute the ThumbHash and dominant colour from the thumbnail; default not. */
  placeholder?: boolean;
}

/**
 * Validates `bytes` (magic bytes, size, full decode) and renders what gets published. Throws an
 * InvalidImageError with the rejection reason; nothing is written by this function.
 */
export async function renderPose(bytes: Uint8Array, options: RenderOptions): Promise<RenderedPose> {
  return decoding(bytes, options, async ({ format, input, width, height, published }) => {
    const { variants = [], keepMetadata = false } = options;
    let image: Buffer;
    let thumbnail: Buffer;
    let square: RawPixels | undefined;
    let rendered: Record<string, Buffer> = {};
    if (variants.length === 0) {
      // A PNG's full decode is the thumbnail's (PNG has no shrink-on-load); a JPEG's or WebP's is the conversion's.
      const thumbnailed = options.placeholder
        ? thumbnailPixels(input(), width, height).then(async (pixels) => ({ pixels, png: await thumbnailPngOf(pixels) }))
        : thumbnailOf(input(), width, height).then((png) => ({ pixels: undefined, png }));
      let small: { pixels: RawPixels | undefined; png: Buffer };
      [image, small] = await Promise.all([published?.png ?? converted(input(), keepMetadata), thumbnailed]);
      [thumbnail, square] = [small.png, small.pixels];
    } else {
      // Every file from one decode: the upright pixels, once, then each output from them (a second decode of a
      // 50 MP image per variant would cost what the whole publication does). The thumbnail's 400x400 resize is
      // made once too: the PNG thumbnail, the variants of its box and the placeholder are all encoded from it.
      const full = await rawPixelsOf(input().autoOrient());
      square = await thumbnailPixels(sharpOf(full), width, height);
      const pixels = square;
      const [png, thumbnailPng, ...outputs] = await Promise.all([
        published?.png ?? (keepMetadata ? converted(input(), true) : sharpOf(full).png(IMAGE_PNG).toBuffer()),
        thumbnailPngOf(pixels),
        ...variants.map((file) => variantOf(full, pixels, file)),
      ]);
      [image, thumbnail] = [png, thumbnailPng];
      rendered = Object.fromEntries(variants.map((file, i) => [file.role, outputs[i]!]));
    }
    const { maxImageBytes = Number.POSITIVE_INFINITY } = options;
    if (image.length > maxImageBytes) {
      throw new InvalidImageError('too_large', `As a PNG the image would be ${formatCount(image.length)} bytes, more than the ${formatCount(maxImageBytes)} allowed (PUBLISHED_MAX_BYTES).`);
    }
    const placeholder = options.placeholder && square ? placeholderOf(square) : undefined;
    return { format, width, height, image, imageIsInput: published?.dropped === false, thumbnail, variants: rendered, ...(placeholder && { placeholder }) };
  });
}

/** A pipeline's output as 8-bit pixels. */
async function rawPixelsOf(image: Sharp): Promise<RawPixels> {
  const { data, info } = await image.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, channels: info.channels };
}

/** A pipeline over pixels already decoded. */
function sharpOf({ data, width, height, channels }: RawPixels): Sharp {
  // loadSharp() has resolved before any pixels exist: they come out of sharp.
  return sharpLoaded!(data, { raw: { width, height, channels: channels as 1 | 2 | 3 | 4 } });
}

/**
 * A variant, from the upright pixels: a box filled (cover; past 8:1 against the box, its centred region first, as
 * the thumbnail does), or a width with the aspect ratio kept and never upscaled. A variant of the thumbnail's own
 * box is encoded from the thumbnail's pixels (the same resize). No metadata.
 */
function variantOf(full: RawPixels, thumbnail: RawPixels, file: PoseFile): Promise<Buffer> {
  const { rendering } = file;
  if (rendering.kind !== 'variant') throw new Error(`${file.role} is no variant`);
  const encode = VARIANT_ENCODERS[rendering.format];
  if (rendering.height === undefined) return encode(sharpOf(full).resize(rendering.width, undefined, { withoutEnlargement: true })).toBuffer();
  if (rendering.width === THUMBNAIL_SIZE && rendering.height === THUMBNAIL_SIZE) return encode(sharpOf(thumbnail)).toBuffer();
  const { width, height } = full;
  const box = rendering.width / rendering.height;
  const [regionWidth, regionHeight] = [Math.min(width, Math.round(height * box)), Math.min(height, Math.round(width / box))];
  const extreme = Math.max(width / regionWidth, height / regionHeight) > CROP_FIRST_ASPECT_RATIO;
  const image = sharpOf(full);
  const region = extreme
    ? image.extract({ left: Math.floor((width - regionWidth) / 2), top: Math.floor((height - regionHeight) / 2), width: regionWidth, height: regionHeight })
    : image;
  return encode(region.resize(rendering.width, rendering.height, { fit: 'cover' })).toBuffer();
}

/** The upright full-size PNG; with `keepMetadata`, its EXIF (orientation reset to upright) and XMP, in sRGB. */
function converted(image: Sharp, keepMetadata: boolean): Promise<Buffer> {
  const upright = image.autoOrient();
  return (keepMetadata ? upright.withMetadata() : upright).png(IMAGE_PNG).toBuffer();
}

/**
 * The thumbnail alone, exactly as renderPose makes it (same validation of the header, same pipeline); for the
 * benchmarks, which compare it with the reference's settings and other libraries.
 */
export async function renderThumbnail(bytes: Uint8Array, options: RenderOptions): Promise<Buffer> {
  return decoding(bytes, options, ({ input, width, height }) => thumbnailOf(input(), width, height));
}

/**
 * 400x400 cover, upright, without metadata (sharp's default). For a JPEG or WebP, libvips decodes at a reduced
 * scale (shrink-on-load), so the thumbnail never needs the full-size pixels. `width` and `height` are upright.
 */
function thumbnailOf(image: Sharp, width: number, height: number): Promise<Buffer> {
  return squareResize(image, width, height).png(THUMBNAIL_PNG).toBuffer();
}

/** The thumbnail's resize: the centred square first past 8:1, then 400x400 cover. */
function squareResize(image: Sharp, width: number, height: number): Sharp {
  const upright = image.autoOrient();
  const side = Math.min(width, height);
  const square =
    Math.max(width, height) > CROP_FIRST_ASPECT_RATIO * side
      ? upright.extract({ left: Math.floor((width - side) / 2), top: Math.floor((height - side) / 2), width: side, height: side })
      : upright;
  return square.resize(THUMBNAIL_SIZE, THUMBNAIL_SIZE, { fit: 'cover' });
}

/** The thumbnail's resize as 8-bit pixels: for the placeholder and the variants of its box, besides the PNG. */
function thumbnailPixels(image: Sharp, width: number, height: number): Promise<RawPixels> {
  return rawPixelsOf(squareResize(image, width, height));
}

/**
 * The PNG thumbnail from thumbnailPixels: the same pixels as thumbnailOf's, encoded alike; its pHYs says 72 dpi
 * rather than the upload's density.
 */
function thumbnailPngOf(pixels: RawPixels): Promise<Buffer> {
  return sharpOf(pixels).withDensity(72).png(THUMBNAIL_PNG).toBuffer();
}

interface Opened {
  format: ImageFormat;
  /** Upright dimensions. */
  width: number;
  height: number;
  /** A fresh pipeline over the bytes to render (each decode is streamed; the bytes are never copied). */
  input: () => Sharp;
  /** For a PNG published as its own chunks: those chunks, which are also what `input` decodes. */
  published: FilteredPng | undefined;
}

/** Checks the magic bytes and the header, then runs `render`; every decoding failure becomes a rejection. */
async function decoding<T>(bytes: Uint8Array, options: RenderOptions, render: (opened: Opened) => Promise<T>): Promise<T> {
  if (!(bytes instanceof Uint8Array)) throw new InvalidImageError('not_an_image', 'imageBuffer must be a Buffer or Uint8Array.');
  const format = sniffFormat(bytes);
  if (!format) {
    throw isOtherImageFormat(bytes)
      ? new InvalidImageError('unsupported_format', 'Only PNG, JPEG and WebP images are accepted.')
      : new InvalidImageError('not_an_image', `The data is not a PNG, JPEG or WebP image (${formatCount(bytes.length)} bytes).`);
  }
  // A PNG's chunk stream is checked and filtered before any decode, and the filtered bytes are what is decoded:
  // what is published is what was validated.
  const filtered = format === 'png' ? filterPngChunks(bytes, { keepMetadata: options.keepMetadata ?? false }) : undefined;
  const { default: sharp } = await loadSharp();
  const open = (source: Uint8Array) => (): Sharp => sharp(source, { limitInputPixels: options.maxInputPixels, failOn: 'error' });
  try {
    // The header alone, without the pixel limit (sharp would refuse it without saying the size): no pixel is
    // decoded here, so a decompression bomb costs nothing, and the rejection can say how large the image is.
    const metadata = await sharp(bytes, { limitInputPixels: false, failOn: 'error' }).metadata();
    const { width, height } = metadata;
    if (width * height > options.maxInputPixels) {
      throw new InvalidImageError(
        'too_large',
        `The image is ${width}x${height} (${formatCount(width * height)} pixels), more than the ${formatCount(options.maxInputPixels)} allowed.`,
      );
    }
    const orientation = metadata.orientation ?? 1;
    // Browsers turn a PNG by its eXIf orientation, as libvips does; a PNG whose eXIf the filter dropped would
    // lose it, so such a PNG is converted upright instead, like a JPEG.
    const published = filtered && !(orientation !== 1 && filtered.droppedTypes.includes('eXIf')) ? filtered : undefined;
    const upright = orientation >= 5;
    const input = open(published?.png ?? bytes);
    return await render({ format, width: upright ? height : width, height: upright ? width : height, input, published });
  } catch (error) {
    if (error instanceof InvalidImageError) throw error;
    const message = error instanceof Error ? error.message : String(error);
    if (/pixel limit/i.test(message)) {
      throw new InvalidImageError('too_large', `The image has more than the ${formatCount(options.maxInputPixels)} pixels allowed.`, { cause: error });
    }
    throw new InvalidImageError('corrupt_image', asSentence(`The ${format.toUpperCase()} image could not be decoded: ${firstLine(message)}`), {
      cause: error,
    });
  }
}

function firstLine(message: string): string {
  return message.split('\n')[0]!.slice(0, 200);
}
