/**
 * The generated test images are what their names promise, and the same bytes on every run: the tests that use
 * them assert exact sizes and byte-for-byte publication.
 */
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { generateTestImage, TEST_IMAGE_NAMES, testImage } from './images.ts';

describe('test images', () => {
  it.each(TEST_IMAGE_NAMES)('%s has the declared format and upright size, and is generated the same every time', async (name) => {
    const image = await testImage(name);
    const metadata = await sharp(image.bytes).metadata();
    expect([metadata.format, metadata.autoOrient.width, metadata.autoOrient.height]).toEqual([image.format, image.width, image.height]);
    expect(image.contentType).toBe(`image/${image.format}`);
    expect((await generateTestImage(name)).bytes.equals(image.bytes)).toBe(true);
    expect(await testImage(name)).toBe(image); // kept for the process
  });

  it('has photographic detail, not flat colour: every channel varies', async () => {
    for (const name of TEST_IMAGE_NAMES) {
      const { channels } = await sharp((await testImage(name)).bytes).stats();
      for (const channel of channels) expect(channel.stdev, name).toBeGreaterThan(10);
    }
  });

  it('covers alpha, 16 bits, CMYK and EXIF orientation', async () => {
    const alpha = await sharp((await testImage('alphaPng')).bytes).stats();
    expect([alpha.channels[3]?.min, alpha.channels[3]?.max]).toEqual([0, 255]);
    expect(alpha.isOpaque).toBe(false);

    const deep = await sharp((await testImage('deepPng')).bytes).metadata();
    expect([deep.depth, deep.bitsPerSample]).toEqual(['ushort', 16]);

    const cmyk = await sharp((await testImage('cmykJpeg')).bytes).metadata();
    expect([cmyk.space, cmyk.channels]).toEqual(['cmyk', 4]);

    const rotated = await testImage('rotatedJpeg');
    const stored = await sharp(rotated.bytes).metadata();
    expect([stored.orientation, stored.width, stored.height]).toEqual([6, rotated.height, rotated.width]);
    expect(rotated.width).not.toBe(rotated.height);

    const large = await testImage('largeJpeg');
    expect(large.width * large.height).toBeGreaterThan(14_000_000);
  });
});
