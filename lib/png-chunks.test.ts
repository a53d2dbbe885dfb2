import fc from 'fast-check';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { animated, assemble, chunk, chunkBytes, chunksOf, chunkTypes, secondFrame, text, withChunks } from '../test/support/png-chunks.ts';
import { InvalidImageError, type RejectionReason } from './errors.ts';
import { filterPngChunks, type PngFilterOptions } from './png-chunks.ts';

const STRIP: PngFilterOptions = { keepMetadata: false };
const KEEP: PngFilterOptions = { keepMetadata: true };

const solid = (colour: string, width = 16, height = 16) => sharp({ create: { width, height, channels: 3, background: colour } });

/** A 16x16 gradient PNG as sharp writes it (IHDR, pHYs, IDAT, IEND), split into several IDATs. */
let base: Buffer;
beforeAll(async () => {
  const pixels = Buffer.alloc(16 * 16 * 3);
  for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 37) % 256;
  const png = await sharp(pixels, { raw: { width: 16, height: 16, channels: 3 } }).png({ compressionLevel: 0 }).toBuffer();
  // Several IDATs, as large images have: dropped chunks between kept ones must not reorder anything.
  const [header, ...rest] = chunksOf(png);
  const idat = rest.find((c) => c.type === 'IDAT')!.data;
  const third = Math.ceil(idat.length / 3);
  const others = rest.filter((c) => c.type !== 'IDAT');
  base = assemble([
    header!,
    ...others.filter((c) => c.type !== 'IEND'),
    ...[0, 1, 2].map((i) => chunk('IDAT', idat.subarray(i * third, (i + 1) * third))),
    chunk('IEND'),
  ]);
  expect(chunkTypes(base)).toEqual(['IHDR', 'pHYs', 'IDAT', 'IDAT', 'IDAT', 'IEND']);
});

function rejection(bytes: Uint8Array, options = STRIP): InvalidImageError {
  try {
    filterPngChunks(bytes, options);
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidImageError);
    return error as InvalidImageError;
  }
  throw new Error('filterPngChunks accepted the bytes');
}

function expectRejected(bytes: Uint8Array, reason: RejectionReason, message: RegExp): void {
  const error = rejection(bytes);
  expect(error.reason).toBe(reason);
  expect(error.message).toMatch(message);
  expect(error.message).not.toContain('\n');
}

/** The chunks that change how the image looks (PNG 3rd edition), with plausible contents. */
const RENDERING_CHUNKS = [
  chunk('iCCP', Buffer.concat([Buffer.from('profile\0\0', 'latin1'), Buffer.alloc(32, 1)])),
  chunk('sRGB', Buffer.from([0])),
  chunk('gAMA', Buffer.from([0, 0, 0xb1, 0x8f])),
  chunk('cHRM', Buffer.alloc(32, 7)),
  chunk('cICP', Buffer.from([1, 13, 0, 1])),
  chunk('mDCV', Buffer.alloc(24, 3)),
  chunk('cLLI', Buffer.alloc(8, 2)),
  chunk('sBIT', Buffer.from([8, 8, 8])),
  chunk('bKGD', Buffer.from([0, 1, 0, 2, 0, 3])),
  chunk('tRNS', Buffer.from([0, 1, 0, 2, 0, 3])),
];

/** Metadata chunks: dropped by default, kept with KEEP_IMAGE_METADATA. */
const METADATA_CHUNKS = [
  text('parameters', 'a secret prompt, Steps: 20, Sampler: Euler a, Seed: 1234'),
  chunk('zTXt', Buffer.concat([Buffer.from('prompt\0\0', 'latin1'), Buffer.from([0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01])])),
  chunk('iTXt', Buffer.from('XML:com.adobe.xmp\0\0\0\0\0<x:xmpmeta>secret</x:xmpmeta>', 'latin1')),
  chunk('eXIf', Buffer.from('MM\0*\0\0\0\x08\0\0\0\0\0\0', 'latin1')),
  chunk('tIME', Buffer.from([0x07, 0xe9, 1, 2, 3, 4, 5])),
  chunk('hIST', Buffer.alloc(6)),
  chunk('sPLT', Buffer.from('palette\0\x08', 'latin1')),
  chunk('oFFs', Buffer.alloc(9)),
  chunk('pCAL', Buffer.from('calibration\0', 'latin1')),
  chunk('sCAL', Buffer.from('\x011\x001', 'latin1')),
  chunk('sTER', Buffer.from([0])),
  chunk('dSIG', Buffer.alloc(16)),
  chunk('prVt', 'a private chunk of some tool'),
  chunk('caNv', Buffer.alloc(16)),
];

/** Never published, whatever KEEP_IMAGE_METADATA says. */
const NEVER_PUBLISHED = [
  chunk('acTL', Buffer.from([0, 0, 0, 2, 0, 0, 0, 0])),
  chunk('fcTL', Buffer.alloc(26)),
  chunk('fdAT', Buffer.alloc(12)),
  chunk('iDOT', Buffer.alloc(28)),
  chunk('gdAT', Buffer.alloc(64)),
];

describe('filterPngChunks keeps', () => {
  it('a clean PNG as the very same Buffer (no copy)', () => {
    const filtered = filterPngChunks(base, STRIP);
    expect(filtered.png).toBe(base);
    expect(filtered).toMatchObject({ dropped: false, droppedTypes: [] });
  });

  it('a clean PNG given as a Uint8Array as a Buffer over the same memory', () => {
    const copy = new Uint8Array(base.length + 10).subarray(5, 5 + base.length);
    copy.set(base);
    const filtered = filterPngChunks(copy, STRIP);
    expect(filtered.dropped).toBe(false);
    expect([filtered.png.buffer, filtered.png.byteOffset, filtered.png.length]).toEqual([copy.buffer, copy.byteOffset, copy.length]);
  });

  it('a palette PNG (PLTE, tRNS) as is', async () => {
    const png = await sharp({ create: { width: 8, height: 8, channels: 4, background: { r: 200, g: 0, b: 0, alpha: 0.5 } } }).png({ palette: true }).toBuffer();
    expect(chunkTypes(png)).toEqual(expect.arrayContaining(['PLTE', 'tRNS']));
    expect(filterPngChunks(png, STRIP).png).toBe(png);
  });

  it.each(RENDERING_CHUNKS.map((c) => [c.type, c] as const))('%s, which changes how the image looks', (_, extra) => {
    const png = withChunks(base, { afterHeader: [extra] });
    expect(filterPngChunks(png, STRIP)).toEqual({ png, dropped: false, droppedTypes: [] });
    expect(filterPngChunks(png, STRIP).png).toBe(png);
  });

  it('every metadata chunk with KEEP_IMAGE_METADATA, as the same Buffer', () => {
    const png = withChunks(base, { afterHeader: [...RENDERING_CHUNKS, ...METADATA_CHUNKS.slice(0, 5)], beforeEnd: METADATA_CHUNKS.slice(5) });
    const filtered = filterPngChunks(png, KEEP);
    expect(filtered.png).toBe(png);
    expect(filtered.dropped).toBe(false);
  });
});

describe('filterPngChunks drops', () => {
  it.each(METADATA_CHUNKS.map((c) => [c.type, c] as const))('%s (before IDAT and before IEND), leaving the rest byte for byte', (type, extra) => {
    for (const where of [{ afterHeader: [extra] }, { beforeEnd: [extra] }]) {
      const filtered = filterPngChunks(withChunks(base, where), STRIP);
      expect(filtered.png.equals(base)).toBe(true);
      expect(filtered).toMatchObject({ dropped: true, droppedTypes: [type] });
    }
  });

  it.each(NEVER_PUBLISHED.map((c) => [c.type, c] as const))('%s, even with KEEP_IMAGE_METADATA', (type, extra) => {
    for (const options of [STRIP, KEEP]) {
      const filtered = filterPngChunks(withChunks(base, { afterHeader: [extra] }), options);
      expect(filtered.png.equals(base)).toBe(true);
      expect(filtered).toMatchObject({ dropped: true, droppedTypes: [type] });
    }
  });

  it('every metadata chunk at once, keeping the rendering ones in their order', () => {
    const png = withChunks(base, { afterHeader: [...METADATA_CHUNKS, ...RENDERING_CHUNKS, ...NEVER_PUBLISHED], beforeEnd: METADATA_CHUNKS });
    const filtered = filterPngChunks(png, STRIP);
    expect(filtered.png.equals(withChunks(base, { afterHeader: RENDERING_CHUNKS }))).toBe(true);
    expect(filtered.droppedTypes).toEqual([...METADATA_CHUNKS, ...NEVER_PUBLISHED].map((c) => c.type));
  });

  it('metadata between IDAT chunks', () => {
    const chunks = chunksOf(base);
    const png = assemble([...chunks.slice(0, 3), text('prompt', 'secret'), ...chunks.slice(3)]);
    expect(filterPngChunks(png, STRIP).png.equals(base)).toBe(true);
  });

  it('everything after IEND, as a view of the input (no copy), even with KEEP_IMAGE_METADATA', () => {
    const html = Buffer.from(`<!doctype html><html><script>alert(1)</script>${'x'.repeat(100_000)}</html>`);
    for (const trailer of [html, Buffer.from([0]), chunkBytes(text('after', 'the end'))]) {
      const input = Buffer.concat([base, trailer]);
      for (const options of [STRIP, KEEP]) {
        const filtered = filterPngChunks(input, options);
        expect(filtered).toMatchObject({ dropped: true, droppedTypes: [] });
        expect(filtered.png.equals(base)).toBe(true);
        expect(filtered.png.buffer).toBe(input.buffer);
        expect(filtered.png.byteOffset).toBe(input.byteOffset);
      }
    }
  });

  it('the frames of an APNG: what is left is exactly its default image', async () => {
    const red = await solid('#d01010').png().toBuffer();
    const blue = await solid('#1010d0').png().toBuffer();
    const apng = animated(red, blue, 16, 16);
    // The fixture is what it claims: two frames, the second blue.
    expect(chunkTypes(apng)).toEqual(['IHDR', 'acTL', 'fcTL', 'pHYs', 'IDAT', 'fcTL', 'fdAT', 'IEND']);
    const frame = await sharp(secondFrame(apng)).raw().toBuffer();
    expect([...frame.subarray(0, 3)]).toEqual([0x10, 0x10, 0xd0]);

    for (const options of [STRIP, KEEP]) {
      const filtered = filterPngChunks(apng, options);
      expect(filtered.droppedTypes).toEqual(['acTL', 'fcTL', 'fdAT']);
      expect(filtered.png.equals(red)).toBe(true);
      const shown = await sharp(filtered.png).raw().toBuffer();
      expect(shown.equals(await sharp(red).raw().toBuffer())).toBe(true);
    }
  });
});

describe('filterPngChunks rejects a malformed chunk stream', () => {
  const atIdat = () => chunksOf(base).slice(0, 2).reduce((offset, c) => offset + 12 + c.data.length, 8);

  it('a bad signature', () => {
    expectRejected(Buffer.concat([Buffer.from('\x89PNG\r\n\x1a\x0b', 'latin1'), base.subarray(8)]), 'corrupt_image', /PNG signature/);
    expectRejected(base.subarray(0, 5), 'corrupt_image', /PNG signature/);
  });

  it('a CRC error in a critical chunk, and in a chunk that would be dropped anyway', () => {
    const idat = Buffer.from(base);
    idat[atIdat() + 10]! ^= 0x01;
    expectRejected(idat, 'corrupt_image', /^The PNG is corrupt: chunk 3 \(IDAT at byte \d+\) fails its CRC check\.$/);
    const withText = withChunks(base, { beforeEnd: [text('prompt', 'secret')] });
    withText[withText.length - 12 - 8]! ^= 0x20; // a letter of the text
    expectRejected(withText, 'corrupt_image', /tEXt at byte \d+\) fails its CRC check/);
    const crc = Buffer.from(base);
    crc[atIdat() - 1]! ^= 0xff; // the pHYs chunk's stored CRC
    expectRejected(crc, 'corrupt_image', /pHYs .* fails its CRC check/);
  });

  it('truncation anywhere: inside a chunk header, inside its data, or before IEND', () => {
    expectRejected(base.subarray(0, 8), 'corrupt_image', /ends without an IEND chunk, after 0 chunks/);
    expectRejected(base.subarray(0, 8 + 6), 'corrupt_image', /ends inside the header of chunk 1 at byte 8/);
    expectRejected(base.subarray(0, atIdat() + 20), 'corrupt_image', /chunk 3 \(IDAT at byte \d+\) declares [\d,]+ bytes but only 8 follow \(truncated\)\.$/);
    expectRejected(base.subarray(0, base.length - 12), 'corrupt_image', /ends without an IEND chunk, after 5 chunks/);
    for (let length = 0; length < base.length; length++) {
      expect(rejection(base.subarray(0, length)).reason).toBe('corrupt_image');
    }
  });

  it('a length beyond the buffer or beyond what PNG allows', () => {
    for (const length of [0xffffffff, 0x80000000, 0x7fffffff, 1_000_000]) {
      const png = Buffer.from(base);
      png.writeUInt32BE(length, atIdat());
      expectRejected(png, 'corrupt_image', length > 0x7fffffff ? /declares [\d,]+ bytes, more than the 2\^31-1 PNG allows\.$/ : /declares [\d,]+ bytes but only [\d,]+ follow \(truncated\)\.$/);
    }
  });

  it('a chunk type that is not four letters', () => {
    expectRejected(withChunks(base, { afterHeader: [chunk('t3XT', 'x')] }), 'corrupt_image', /chunk 2 \(of an invalid type at byte 33\): .* got 0x74335854/);
    expectRejected(withChunks(base, { afterHeader: [chunk('\0\0\0\0', 'x')] }), 'corrupt_image', /invalid type/);
  });

  it('a stream that does not start with one 13-byte IHDR, or has no IDAT', () => {
    const [header, ...rest] = chunksOf(base);
    expectRejected(assemble([text('a', 'b'), header!, ...rest]), 'corrupt_image', /must start with a 13-byte IHDR chunk, not chunk 1 \(tEXt at byte 8\)/);
    expectRejected(assemble([chunk('IHDR', Buffer.concat([header!.data, Buffer.alloc(1)])), ...rest]), 'corrupt_image', /13-byte IHDR/);
    expectRejected(assemble([header!, header!, ...rest]), 'corrupt_image', /chunk 2 \(IHDR at byte 33\) is a second IHDR/);
    expectRejected(assemble([header!, chunk('IEND')]), 'corrupt_image', /no IDAT chunk before IEND/);
  });

  it('an unknown critical chunk, as an unsupported format (Apple CgBI, or anything else)', () => {
    expectRejected(assemble([chunk('CgBI', Buffer.alloc(4)), ...chunksOf(base)]), 'unsupported_format', /critical chunk "CgBI" \(chunk 1 .*\) that is not part of standard PNG/);
    expectRejected(withChunks(base, { beforeEnd: [chunk('ABCD', 'x')] }), 'unsupported_format', /critical chunk "ABCD"/);
    expect(rejection(withChunks(base, { afterHeader: [chunk('IDaT', 'x')] }), KEEP).reason).toBe('unsupported_format');
  });

  it('never fails otherwise, whatever the bytes: a filtered PNG or a rejection', () => {
    const png = withChunks(base, { afterHeader: [text('prompt', 'secret'), ...RENDERING_CHUNKS.slice(0, 3)] });
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(png.length - 1), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 4 }),
        fc.nat(png.length),
        fc.boolean(),
        (flips, cut, keepMetadata) => {
          const bytes = Buffer.from(png.subarray(0, Math.max(8, cut)));
          for (const [at, mask] of flips) if (at < bytes.length) bytes[at]! ^= mask;
          try {
            const filtered = filterPngChunks(bytes, { keepMetadata });
            expect(filtered.png.length).toBeLessThanOrEqual(bytes.length);
          } catch (error) {
            expect(error).toBeInstanceOf(InvalidImageError);
          }
        },
      ),
      { numRuns: 2000 },
    );
  });
});
