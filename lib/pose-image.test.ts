import { randomBytes } from 'node:crypto';
import sharp, { type Sharp } from 'sharp';
import { describe, expect, it } from 'vitest';
import { describeTestImage, TEST_IMAGE_NAMES, testImage } from '../test/support/images.ts';
import { DEFAULTS } from './config.ts';
import { InvalidImageError, type RejectionReason } from './errors.ts';
import { renderPose, type RenderOptions, THUMBNAIL_SIZE } from './pose-image.ts';

const OPTIONS: RenderOptions = { maxInputPixels: DEFAULTS.MAX_INPUT_PIXELS };

type Rgb = readonly [number, number, number];
const RED: Rgb = [220, 20, 20];
const GREEN: Rgb = [20, 200, 20];
const BLUE: Rgb = [20, 20, 220];

/** A raw RGB image whose pixel at (x, y) has the colour `colourAt(x, y)`. */
function rawImage(width: number, height: number, colourAt: (x: number, y: number) => Rgb) {
  const data = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) data.set(colourAt(x, y), (y * width + x) * 3);
  }
  return sharp(data, { raw: { width, height, channels: 3 } });
}

const solid = (width: number, height: number) =>
  sharp({ create: { width, height, channels: 3, background: { r: 40, g: 120, b: 200 } } });

/** Reads the image and returns a function giving the RGB colour at (x, y). */
async function pixels(image: Buffer) {
  const { data, info } = await sharp(image).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return {
    width: info.width,
    height: info.height,
    at: (x: number, y: number): Rgb => {
      const i = (y * info.width + x) * info.channels;
      return [data[i]!, data[i + 1]!, data[i + 2]!];
    },
  };
}

function expectColour(actual: Rgb, expected: Rgb, where: string): void {
  const close = actual.every((channel, i) => Math.abs(channel - expected[i]!) <= 40);
  expect(close, `${where}: got rgb(${actual.join(',')}), expected about rgb(${expected.join(',')})`).toBe(true);
}

async function expectThumbnail(thumbnail: Buffer): Promise<void> {
  const metadata = await sharp(thumbnail).metadata();
  expect(metadata.format).toBe('png');
  expect([metadata.width, metadata.height]).toEqual([THUMBNAIL_SIZE, THUMBNAIL_SIZE]);
  expect(THUMBNAIL_SIZE).toBe(400);
}

async function rejection(bytes: Uint8Array, options: RenderOptions = OPTIONS): Promise<InvalidImageError> {
  const error = await renderPose(bytes, options).then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(InvalidImageError);
  return error as InvalidImageError;
}

describe('renderPose on valid images', () => {
  it('publishes a PNG byte for byte, with a 400x400 PNG thumbnail', async () => {
    const png = await solid(640, 480).png().toBuffer();
    const rendered = await renderPose(png, OPTIONS);
    expect(rendered.format).toBe('png');
    expect([rendered.width, rendered.height]).toEqual([640, 480]);
    expect(rendered.image.equals(png)).toBe(true);
    await expectThumbnail(rendered.thumbnail);
  });

  it('accepts a Uint8Array as well as a Buffer', async () => {
    const png = await solid(50, 50).png().toBuffer();
    const rendered = await renderPose(new Uint8Array(png), OPTIONS);
    expect(rendered.image.equals(png)).toBe(true);
  });

  it.each([
    ['JPEG', 'jpeg', (image: Sharp) => image.jpeg()],
    ['WebP', 'webp', (image: Sharp) => image.webp()],
    ['lossless WebP with alpha', 'webp', (image: Sharp) => image.ensureAlpha(0.5).webp({ lossless: true })],
  ] as const)('converts a %s to a PNG of the same size', async (_, format, encode) => {
    const input = await encode(solid(300, 200)).toBuffer();
    const rendered = await renderPose(input, OPTIONS);
    expect(rendered.format).toBe(format);
    expect([rendered.width, rendered.height]).toEqual([300, 200]);
    const metadata = await sharp(rendered.image).metadata();
    expect([metadata.format, metadata.width, metadata.height]).toEqual(['png', 300, 200]);
    await expectThumbnail(rendered.thumbnail);
  });

  it('makes a thumbnail of a tiny image too (upscaled to 400x400)', async () => {
    const rendered = await renderPose(await solid(1, 1).png().toBuffer(), OPTIONS);
    await expectThumbnail(rendered.thumbnail);
  });

  it('crops to fill the square (fit cover), keeping the centre', async () => {
    // Three vertical stripes, red | green | blue, each 400 wide: cover keeps exactly the green middle one.
    const input = await rawImage(1200, 400, (x) => (x < 400 ? RED : x < 800 ? GREEN : BLUE)).png().toBuffer();
    const thumbnail = await pixels((await renderPose(input, OPTIONS)).thumbnail);
    for (const [x, y] of [[2, 2], [397, 2], [2, 397], [397, 397], [200, 200]] as const) {
      expectColour(thumbnail.at(x, y), GREEN, `thumbnail (${x},${y})`);
    }
  });

  it('applies EXIF orientation 6 to a JPEG: the image and its thumbnail are upright', async () => {
    // Stored 300x200 with a red left half and a blue right half; orientation 6 shows it turned 90° clockwise,
    // so upright it is 200x300 with red on top and blue below.
    const input = await rawImage(300, 200, (x) => (x < 150 ? RED : BLUE))
      .jpeg({ quality: 95 })
      .withMetadata({ orientation: 6 })
      .toBuffer();
    const stored = await sharp(input).metadata();
    expect([stored.width, stored.height, stored.orientation]).toEqual([300, 200, 6]);

    const rendered = await renderPose(input, OPTIONS);
    expect([rendered.width, rendered.height]).toEqual([200, 300]);

    const imageMetadata = await sharp(rendered.image).metadata();
    expect([imageMetadata.format, imageMetadata.width, imageMetadata.height]).toEqual(['png', 200, 300]);
    expect(imageMetadata.orientation ?? 1).toBe(1); // the rotation is in the pixels, not in a tag
    const image = await pixels(rendered.image);
    expectColour(image.at(10, 10), RED, 'image top-left');
    expectColour(image.at(189, 10), RED, 'image top-right');
    expectColour(image.at(10, 289), BLUE, 'image bottom-left');
    expectColour(image.at(189, 289), BLUE, 'image bottom-right');

    await expectThumbnail(rendered.thumbnail);
    const thumbnail = await pixels(rendered.thumbnail);
    expectColour(thumbnail.at(10, 10), RED, 'thumbnail top-left');
    expectColour(thumbnail.at(389, 10), RED, 'thumbnail top-right');
    expectColour(thumbnail.at(10, 389), BLUE, 'thumbnail bottom-left');
    expectColour(thumbnail.at(389, 389), BLUE, 'thumbnail bottom-right');
  });

  it('accepts an image of exactly maxInputPixels', async () => {
    const rendered = await renderPose(await solid(1000, 1000).png().toBuffer(), { maxInputPixels: 1_000_000 });
    expect([rendered.width, rendered.height]).toEqual([1000, 1000]);
  });
});

describe('renderPose rejects', () => {
  const cases: Array<[string, () => Promise<Uint8Array>, RejectionReason]> = [
    ['zero bytes', async () => new Uint8Array(0), 'not_an_image'],
    ['random bytes', async () => randomBytes(4096), 'not_an_image'],
    ['HTML text', async () => Buffer.from('<!DOCTYPE html><html><body><img src="x.png"></body></html>'), 'not_an_image'],
    ['JSON text', async () => Buffer.from('{"imageUrl":"/uploads/poses/g/p.png"}'), 'not_an_image'],
    ['a PNG signature alone', async () => Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), 'corrupt_image'],
    ['a GIF', () => solid(64, 64).gif().toBuffer(), 'unsupported_format'],
    ['a TIFF', () => solid(64, 64).tiff().toBuffer(), 'unsupported_format'],
    ['a truncated PNG', async () => truncated(await rawImage(256, 256, (x, y) => [x, y, (x * y) % 256]).png().toBuffer()), 'corrupt_image'],
    ['a truncated JPEG', async () => truncated(await rawImage(256, 256, (x, y) => [x, y, (x * y) % 256]).jpeg().toBuffer()), 'corrupt_image'],
    ['a truncated WebP', async () => truncated(await rawImage(256, 256, (x, y) => [x, y, (x * y) % 256]).webp().toBuffer()), 'corrupt_image'],
    ['a PNG with a corrupted body', async () => corruptedMiddle(await rawImage(256, 256, (x, y) => [x, y, 0]).png().toBuffer()), 'corrupt_image'],
  ];

  it.each(cases)('%s', async (_, make, reason) => {
    const error = await rejection(await make());
    expect(error.reason).toBe(reason);
    expect(error.code).toBe('invalid_image');
    // One sentence for people, as the status answer shows it: a capital, a full stop, one line.
    expect(error.message).toMatch(/^[A-Z][^\n]*\.$/);
  });

  it('something that is not bytes at all', async () => {
    const error = await rejection('a string' as unknown as Uint8Array);
    expect(error.reason).toBe('not_an_image');
  });

  it('an image above maxInputPixels, as too_large, saying its size and the limit', async () => {
    const big = await solid(3000, 3000).png().toBuffer();
    const error = await rejection(big, { maxInputPixels: 1_000_000 });
    expect(error.reason).toBe('too_large');
    expect(error.code).toBe('too_large');
    expect(error.message).toBe('The image is 3000x3000 (9,000,000 pixels), more than the 1,000,000 allowed.');
    // One pixel over the limit is too many.
    const justOver = await rejection(await solid(1000, 1001).png().toBuffer(), { maxInputPixels: 1_000_000 });
    expect(justOver.reason).toBe('too_large');
    expect(justOver.message).toBe('The image is 1000x1001 (1,001,000 pixels), more than the 1,000,000 allowed.');
    const jpeg = await rejection(await solid(2000, 1000).jpeg().toBuffer(), { maxInputPixels: 1_000_000 });
    expect(jpeg.reason).toBe('too_large');
    expect(jpeg.message).toBe('The image is 2000x1000 (2,000,000 pixels), more than the 1,000,000 allowed.');
    const webp = await rejection(await solid(1200, 1000).webp().toBuffer(), { maxInputPixels: 1_000_000 });
    expect(webp.message).toBe('The image is 1200x1000 (1,200,000 pixels), more than the 1,000,000 allowed.');
  });
});

function truncated(bytes: Buffer): Buffer {
  return bytes.subarray(0, Math.floor(bytes.length * 0.6));
}

/** Overwrites bytes in the middle of the compressed data (past the header), keeping the length. */
function corruptedMiddle(bytes: Buffer): Buffer {
  const copy = Buffer.from(bytes);
  const start = Math.floor(copy.length / 2);
  copy.fill(0xff, start, start + 64);
  return copy;
}

// ---------------------------------------------------------------------------------------------------------
// Every kind of image users send, generated (test/support/images.ts): photographic PNGs and JPEGs, alpha,
// 16 bits per channel, CMYK, EXIF-rotated, WebP, 5K.

describe('renderPose on every kind of test image', () => {
  it.each(TEST_IMAGE_NAMES.map((name) => [name, describeTestImage(name)]))(
    '%s (%s): a 400x400 PNG thumbnail and a PNG image of the upright source size',
    async (name) => {
      const { bytes, format, width, height } = await testImage(name);
      const source = await sharp(bytes).metadata();
      expect([source.format, source.autoOrient.width, source.autoOrient.height]).toEqual([format, width, height]);
      const rendered = await renderPose(bytes, OPTIONS);

      expect(rendered.format).toBe(format);
      expect([rendered.width, rendered.height]).toEqual([width, height]);
      await expectThumbnail(rendered.thumbnail);

      const image = await sharp(rendered.image).metadata();
      expect(image.format).toBe('png');
      expect([image.width, image.height]).toEqual([width, height]);
      if (format === 'png') expect(rendered.image.equals(bytes)).toBe(true);
      else expect(image.space).toBe('srgb'); // a CMYK JPEG too
    },
  );
});
