/**
 * Images of extreme aspect ratios are valid (issue 13): each gets its 400x400 thumbnail, the centre of the image
 * as cover keeps it. A 100000x1 PNG used to be rejected as corrupt_image because libvips refused cover's
 * intermediate image (40,000,000 pixels wide).
 */
import sharp, { type Sharp } from 'sharp';
import { describe, expect, it } from 'vitest';
import { renderPose } from './pose-image.ts';

type Rgb = readonly [number, number, number];
const RED: Rgb = [220, 20, 20];
const GREEN: Rgb = [20, 200, 20];
const BLUE: Rgb = [20, 20, 220];

/** A width x height image in three bands along its long side: red, green, blue. */
function bands(width: number, height: number): Sharp {
  const long = Math.max(width, height);
  const data = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const along = width >= height ? x : y;
      data.set(along < long / 3 ? RED : along < (2 * long) / 3 ? GREEN : BLUE, (y * width + x) * 3);
    }
  }
  return sharp(data, { raw: { width, height, channels: 3 } });
}

async function expectGreenSquare(thumbnail: Buffer): Promise<void> {
  const { data, info } = await sharp(thumbnail).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  expect([info.width, info.height]).toEqual([400, 400]);
  for (const [x, y] of [[0, 0], [399, 0], [0, 399], [399, 399], [200, 200]] as const) {
    const i = (y * info.width + x) * info.channels;
    const colour = [data[i]!, data[i + 1]!, data[i + 2]!];
    expect(colour.every((channel, c) => Math.abs(channel - GREEN[c]!) <= 40), `(${x},${y}) is rgb(${colour.join(',')})`).toBe(true);
  }
}

describe('extreme aspect ratios get a thumbnail of their centre', () => {
  it.each([
    [100_000, 1],
    [1, 100_000],
    [200_000, 3], // past the crop-first threshold, short of libvips' limit for cover
    [83_887, 1], // the first width cover alone cannot do
    [801, 100], // just past 8:1, where the centred square is cut out first
    [800, 100], // 8:1, the usual cover path
    [3, 300],
  ])('a %ix%i PNG', async (width, height) => {
    const input = await bands(width, height).png().toBuffer();
    const rendered = await renderPose(input, { maxInputPixels: 50_000_000 });
    expect([rendered.format, rendered.width, rendered.height, rendered.imageIsInput]).toEqual(['png', width, height, true]);
    await expectGreenSquare(rendered.thumbnail);
  });

  it('a 10000000x1 PNG at a pixel limit of exactly 10000000', async () => {
    const input = await bands(10_000_000, 1).png().toBuffer();
    const rendered = await renderPose(input, { maxInputPixels: 10_000_000 });
    expect([rendered.width, rendered.height]).toEqual([10_000_000, 1]);
    await expectGreenSquare(rendered.thumbnail);
    await expect(renderPose(input, { maxInputPixels: 9_999_999 })).rejects.toMatchObject({ reason: 'too_large' });
  });

  it('a 65000x2 JPEG turned upright by EXIF orientation 6 (2x65000): the crop is taken upright', async () => {
    const input = await bands(65_000, 2).jpeg({ quality: 95 }).withMetadata({ orientation: 6 }).toBuffer();
    const rendered = await renderPose(input, { maxInputPixels: 50_000_000 });
    expect([rendered.width, rendered.height]).toEqual([2, 65_000]);
    await expectGreenSquare(rendered.thumbnail);
    const image = await sharp(rendered.image).metadata();
    expect([image.width, image.height]).toEqual([2, 65_000]);
  });

  it('a 16383x1 WebP (the widest WebP)', async () => {
    const input = await bands(16_383, 1).webp({ lossless: true }).toBuffer();
    const rendered = await renderPose(input, { maxInputPixels: 50_000_000 });
    expect([rendered.width, rendered.height]).toEqual([16_383, 1]);
    await expectGreenSquare(rendered.thumbnail);
  });
});
