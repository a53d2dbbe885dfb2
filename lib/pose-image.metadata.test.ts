/**
 * What renderPose publishes carries no private metadata (issue 12, section 2) and nothing that was not validated
 * (issue 13: APNG frames, data after IEND). Every image is generated here.
 */
import sharp, { type Sharp } from 'sharp';
import { describe, expect, it } from 'vitest';
import { animated, chunk, chunkTypes, secondFrame, text, withChunks } from '../test/support/png-chunks.ts';
import { DEFAULTS } from './config.ts';
import { renderPose, type RenderOptions } from './pose-image.ts';

const STRIP: RenderOptions = { maxInputPixels: DEFAULTS.MAX_INPUT_PIXELS, keepMetadata: false };
const KEEP: RenderOptions = { maxInputPixels: DEFAULTS.MAX_INPUT_PIXELS, keepMetadata: true };

/** The chunks a published PNG may have without KEEP_IMAGE_METADATA. */
const PUBLISHABLE = new Set(['IHDR', 'PLTE', 'IDAT', 'IEND', 'tRNS', 'iCCP', 'sRGB', 'gAMA', 'cHRM', 'cICP', 'mDCV', 'cLLI', 'sBIT', 'pHYs', 'bKGD']);
/** What a thumbnail may have: what libvips' palette PNG writer emits, nothing else. */
const THUMBNAIL_CHUNKS = new Set(['IHDR', 'PLTE', 'tRNS', 'pHYs', 'IDAT', 'IEND']);
/** Strings the private metadata of the test images holds; none may appear in a published byte. */
const SECRETS = ['Exif', 'GPS', 'parameters', 'prompt', 'workflow', 'secret', 'xmpmeta', 'Photoshop', '8BIM', 'PhoneCo', '<html'];

type Rgb = readonly [number, number, number];

/** A width x height gradient: every pixel different, so that any change to the pixels shows. */
function gradient(width: number, height: number): Sharp {
  const data = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) data.set([x % 256, y % 256, (x * y) % 256], (y * width + x) * 3);
  }
  return sharp(data, { raw: { width, height, channels: 3 } });
}

const solid = (colour: Rgb, width = 64, height = 48) =>
  sharp({ create: { width, height, channels: 3, background: { r: colour[0], g: colour[1], b: colour[2] } } });

async function rawPixels(image: Buffer): Promise<Buffer> {
  return sharp(image).raw().toBuffer();
}

async function colourAt(image: Buffer, x = 0, y = 0): Promise<Rgb> {
  const { data, info } = await sharp(image).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const i = (y * info.width + x) * info.channels;
  return [data[i]!, data[i + 1]!, data[i + 2]!];
}

function expectColour(actual: Rgb, expected: Rgb, tolerance: number): void {
  const close = actual.every((channel, i) => Math.abs(channel - expected[i]!) <= tolerance);
  expect(close, `got rgb(${actual.join(',')}), expected rgb(${expected.join(',')}) ± ${tolerance}`).toBe(true);
}

/** No metadata in the chunks, none sharp can read, and none of the secrets in any byte. */
async function expectNoMetadata(png: Buffer, allowed: ReadonlySet<string> = PUBLISHABLE): Promise<void> {
  expect(chunkTypes(png).filter((type) => !allowed.has(type))).toEqual([]);
  const metadata = await sharp(png).metadata();
  expect(metadata.format).toBe('png');
  expect([metadata.exif, metadata.xmp, metadata.iptc, metadata.comments]).toEqual([undefined, undefined, undefined, undefined]);
  const bytes = png.toString('latin1');
  expect(SECRETS.filter((secret) => bytes.includes(secret))).toEqual([]);
}

/** A ComfyUI-like PNG: the whole workflow (~200 KB of JSON) and the prompt in tEXt chunks before the pixels. */
async function comfyUiPng(): Promise<Buffer> {
  const nodes = Array.from({ length: 900 }, (_, id) => ({
    id,
    type: 'KSampler',
    widgets_values: [id * 7919, 'randomize', 20, 7.5, 'euler_ancestral', 'normal', 1],
    inputs: [{ name: 'positive', type: 'CONDITIONING', link: id * 2 }],
    properties: { 'Node name for S&R': 'KSampler', secret_prompt: 'a dancer in a red dress, arms raised' },
  }));
  const workflow = JSON.stringify({ last_node_id: 900, nodes, links: [], version: 0.4 });
  expect(workflow.length).toBeGreaterThan(190_000);
  const prompt = JSON.stringify({ '3': { class_type: 'CLIPTextEncode', inputs: { text: 'a dancer in a red dress, arms raised' } } });
  return withChunks(await gradient(512, 512).png().toBuffer(), { afterHeader: [text('prompt', prompt), text('workflow', workflow)] });
}

/** An Automatic1111-like PNG: `parameters` in tEXt, and the same as iTXt (UTF-8), with the other metadata chunks. */
async function automatic1111Png(): Promise<Buffer> {
  const parameters = 'a dancer, arms raised\nNegative prompt: blurry\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1234';
  return withChunks(await gradient(320, 200).png().toBuffer(), {
    afterHeader: [
      text('parameters', parameters),
      chunk('iTXt', Buffer.concat([Buffer.from('parameters\0\0\0\0\0', 'latin1'), Buffer.from(`${parameters} ✓`, 'utf8')])),
      chunk('eXIf', Buffer.from('MM\0*\0\0\0\x08\0\x01\x01\x0f\0\x02\0\0\0\x08\0\0\0\x1a\0\0\0\0PhoneCo\0', 'latin1')),
      chunk('tIME', Buffer.from([0x07, 0xe9, 6, 1, 12, 0, 0])),
    ],
    beforeEnd: [chunk('zTXt', Buffer.concat([Buffer.from('workflow\0\0', 'latin1'), Buffer.from([0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01])])), chunk('prVt', 'secret')],
  });
}

/** An APP13 (Photoshop IRB) segment holding an IPTC caption, which no sharp call writes. */
function iptcSegment(caption: string): Buffer {
  const dataset = Buffer.concat([Buffer.from([0x1c, 2, 120, 0, caption.length]), Buffer.from(caption, 'latin1')]);
  const size = Buffer.alloc(4);
  size.writeUInt32BE(dataset.length);
  const resource = Buffer.concat([Buffer.from('8BIM\x04\x04\0\0', 'latin1'), size, dataset, Buffer.alloc(dataset.length % 2)]);
  const body = Buffer.concat([Buffer.from('Photoshop 3.0\0', 'latin1'), resource]);
  const length = Buffer.alloc(2);
  length.writeUInt16BE(body.length + 2);
  return Buffer.concat([Buffer.from([0xff, 0xed]), length, body]);
}

const XMP =
  '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">' +
  '<rdf:Description xmlns:exif="http://ns.adobe.com/exif/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/" exif:GPSLatitude="48,51.4N">' +
  '<dc:description>secret prompt</dc:description></rdf:Description></rdf:RDF></x:xmpmeta>';

const PHONE_EXIF = {
  IFD0: { ImageDescription: 'prompt: secret', Make: 'PhoneCo' },
  IFD3: { GPSLatitudeRef: 'N', GPSLatitude: '48/1 51/1 2400/100', GPSLongitudeRef: 'E', GPSLongitude: '2/1 21/1 0/1' },
};

/** A phone-like JPEG: EXIF with GPS, XMP and IPTC. */
async function phoneJpeg(): Promise<Buffer> {
  const jpeg = await gradient(300, 200).jpeg({ quality: 90 }).withExif(PHONE_EXIF).withXmp(XMP).toBuffer();
  return Buffer.concat([jpeg.subarray(0, 2), iptcSegment('secret caption'), jpeg.subarray(2)]);
}

describe('a published PNG carries no private metadata, and its pixels are unchanged', () => {
  it.each([
    ['ComfyUI-like (a 200 KB workflow and the prompt in tEXt)', comfyUiPng],
    ['Automatic1111-like (parameters in tEXt and iTXt, eXIf, tIME, zTXt, a private chunk)', automatic1111Png],
  ])('%s', async (_, make) => {
    const input = await make();
    const before = await sharp(input).metadata();
    expect(before.comments?.length).toBeGreaterThan(0); // the fixture does hold text chunks

    const rendered = await renderPose(input, STRIP);

    expect(rendered.imageIsInput).toBe(false);
    await expectNoMetadata(rendered.image);
    await expectNoMetadata(rendered.thumbnail, THUMBNAIL_CHUNKS);
    expect((await rawPixels(rendered.image)).equals(await rawPixels(input))).toBe(true);
    expect(rendered.image.length).toBeLessThan(input.length);
  });

  it('a clean PNG is published as the very input Buffer (imageIsInput)', async () => {
    const input = await gradient(200, 100).png().toBuffer();
    const rendered = await renderPose(input, STRIP);
    expect(rendered.image).toBe(input);
    expect(rendered.imageIsInput).toBe(true);
    await expectNoMetadata(rendered.image);
  });

  it('a PNG keeps what changes how it looks: its ICC profile (and the thumbnail is converted to sRGB)', async () => {
    const orange: Rgb = [200, 100, 50];
    const input = await solid(orange).withIccProfile('p3').withExif(PHONE_EXIF).png().toBuffer();
    expect(chunkTypes(input)).toEqual(['IHDR', 'iCCP', 'eXIf', 'pHYs', 'IDAT', 'IEND']);
    const stored = await sharp(input).keepIccProfile().raw().toBuffer();
    expect(Math.abs(stored[0]! - orange[0])).toBeGreaterThan(5); // stored in Display P3, not sRGB

    const rendered = await renderPose(input, STRIP);

    expect(chunkTypes(rendered.image)).toEqual(['IHDR', 'iCCP', 'pHYs', 'IDAT', 'IEND']);
    await expectNoMetadata(rendered.image);
    expect((await sharp(rendered.image).keepIccProfile().raw().toBuffer()).equals(stored)).toBe(true);
    await expectNoMetadata(rendered.thumbnail, THUMBNAIL_CHUNKS);
    expectColour(await colourAt(rendered.thumbnail, 200, 200), orange, 3);
  });

  it('a PNG turned by its EXIF orientation is published upright (converted), since its EXIF is dropped', async () => {
    // Stored 300x200, red left half and blue right half; orientation 6 shows it turned 90° clockwise.
    const halves = Buffer.alloc(300 * 200 * 3);
    for (let i = 0; i < 300 * 200; i++) halves.set(i % 300 < 150 ? [220, 20, 20] : [20, 20, 220], i * 3);
    const input = await sharp(halves, { raw: { width: 300, height: 200, channels: 3 } }).withMetadata({ orientation: 6 }).png().toBuffer();
    expect((await sharp(input).metadata()).orientation).toBe(6);

    const rendered = await renderPose(input, STRIP);

    expect([rendered.width, rendered.height, rendered.imageIsInput]).toEqual([200, 300, false]);
    await expectNoMetadata(rendered.image);
    const image = await sharp(rendered.image).metadata();
    expect([image.width, image.height, image.orientation ?? 1]).toEqual([200, 300, 1]);
    expectColour(await colourAt(rendered.image, 100, 10), [220, 20, 20], 2);
    expectColour(await colourAt(rendered.image, 100, 289), [20, 20, 220], 2);
    expectColour(await colourAt(rendered.thumbnail, 200, 10), [220, 20, 20], 40);

    // With KEEP_IMAGE_METADATA its eXIf stays, so it is published as is and viewers turn it as before.
    const kept = await renderPose(input, KEEP);
    expect(kept.image).toBe(input);
    expect(kept.imageIsInput).toBe(true);
  });
});

describe('a published PNG is only what was validated', () => {
  it('an APNG is published as its default image: no frames, and it decodes to what the thumbnail shows', async () => {
    const red = await solid([220, 20, 20]).png().toBuffer();
    const blue = await solid([20, 20, 220]).png().toBuffer();
    const apng = animated(red, blue, 64, 48);
    expectColour(await colourAt(secondFrame(apng)), [20, 20, 220], 0); // browsers would show a blue frame

    for (const options of [STRIP, KEEP]) {
      const rendered = await renderPose(apng, options);
      expect(rendered.imageIsInput).toBe(false);
      expect(chunkTypes(rendered.image).filter((type) => ['acTL', 'fcTL', 'fdAT'].includes(type))).toEqual([]);
      expect(rendered.image.equals(red)).toBe(true);
      expect((await rawPixels(rendered.image)).equals(await rawPixels(red))).toBe(true);
      expectColour(await colourAt(rendered.thumbnail, 200, 200), [220, 20, 20], 2);
    }
  });

  it('nothing after IEND is published (100 KB of HTML)', async () => {
    const png = await gradient(120, 80).png().toBuffer();
    const input = Buffer.concat([png, Buffer.from(`<html><script>alert(1)</script>${'<p>x</p>'.repeat(12_500)}</html>`)]);
    for (const options of [STRIP, KEEP]) {
      const rendered = await renderPose(input, options);
      expect(rendered.imageIsInput).toBe(false);
      expect(rendered.image.equals(png)).toBe(true);
      await expectNoMetadata(rendered.image);
    }
  });

  it.each([
    ['an unknown critical chunk', (png: Buffer) => withChunks(png, { beforeEnd: [chunk('ABCD', 'x')] }), 'unsupported_format'],
    ['a CRC error in a text chunk', (png: Buffer) => flipLastDataByte(withChunks(png, { beforeEnd: [text('prompt', 'secret')] })), 'corrupt_image'],
  ] as const)('%s is a rejection, nothing rendered', async (_, make, reason) => {
    const input = make(await gradient(40, 40).png().toBuffer());
    await expect(renderPose(input, STRIP)).rejects.toMatchObject({ reason });
    await expect(renderPose(input, KEEP)).rejects.toMatchObject({ reason });
  });
});

/** Flips a bit in the last byte of the data of the chunk before IEND. */
function flipLastDataByte(png: Buffer): Buffer {
  png[png.length - 12 - 5]! ^= 0x01;
  return png;
}

describe('converted JPEG and WebP images carry no EXIF, XMP or IPTC', () => {
  it.each([
    ['a phone-like JPEG (EXIF with GPS, XMP, IPTC)', phoneJpeg],
    ['a WebP with EXIF and XMP', () => gradient(300, 200).webp().withExif(PHONE_EXIF).withXmp(XMP).toBuffer()],
  ])('%s', async (_, make) => {
    const input = await make();
    const before = await sharp(input).metadata();
    expect(before.exif && before.xmp).toBeTruthy();
    expect(before.exif!.includes(Buffer.from([0x25, 0x88])) || before.exif!.includes(Buffer.from([0x88, 0x25]))).toBe(true); // GPSInfo
    if (before.format === 'jpeg') expect(before.iptc).toBeDefined();

    const rendered = await renderPose(input, STRIP);

    expect(rendered.imageIsInput).toBe(false);
    await expectNoMetadata(rendered.image);
    expect((await sharp(rendered.image).metadata()).icc).toBeUndefined();
    await expectNoMetadata(rendered.thumbnail, THUMBNAIL_CHUNKS);
  });

  it('a wide-gamut JPEG is converted to sRGB through its profile: the colour stays right', async () => {
    const orange: Rgb = [200, 100, 50];
    const input = await solid(orange).withIccProfile('p3').jpeg({ quality: 100 }).toBuffer();
    const stored = await sharp(input).keepIccProfile().raw().toBuffer();
    expect(Math.abs(stored[0]! - orange[0])).toBeGreaterThan(5); // the stored values are Display P3's

    const rendered = await renderPose(input, STRIP);

    expect((await sharp(rendered.image).metadata()).icc).toBeUndefined();
    expectColour(await colourAt(rendered.image, 10, 10), orange, 3);
    expectColour(await colourAt(rendered.thumbnail, 200, 200), orange, 3);
  });
});

describe('KEEP_IMAGE_METADATA keeps the metadata of the image, never of the thumbnail', () => {
  it('a ComfyUI-like PNG is published as is, its workflow included', async () => {
    const input = await comfyUiPng();
    const rendered = await renderPose(input, KEEP);
    expect(rendered.image).toBe(input);
    expect(rendered.imageIsInput).toBe(true);
    expect((await sharp(rendered.image).metadata()).comments?.map((c) => c.keyword)).toEqual(['prompt', 'workflow']);
    await expectNoMetadata(rendered.thumbnail, THUMBNAIL_CHUNKS);
  });

  it('an Automatic1111-like PNG keeps every chunk', async () => {
    const input = await automatic1111Png();
    const rendered = await renderPose(input, KEEP);
    expect(rendered.image).toBe(input);
    expect(chunkTypes(rendered.image)).toEqual(expect.arrayContaining(['tEXt', 'iTXt', 'eXIf', 'tIME', 'zTXt', 'prVt']));
    await expectNoMetadata(rendered.thumbnail, THUMBNAIL_CHUNKS);
  });

  it('a converted JPEG keeps its EXIF (orientation reset to upright) and XMP, in sRGB', async () => {
    const input = await gradient(300, 200).jpeg().withExif(PHONE_EXIF).withXmp(XMP).withMetadata({ orientation: 6 }).toBuffer();
    expect((await sharp(input).metadata()).orientation).toBe(6);

    const rendered = await renderPose(input, KEEP);

    const image = await sharp(rendered.image).metadata();
    expect([image.width, image.height, image.orientation]).toEqual([200, 300, 1]);
    expect(image.exif?.includes('PhoneCo')).toBe(true);
    expect(image.xmp?.includes('secret prompt')).toBe(true);
    await expectNoMetadata(rendered.thumbnail, THUMBNAIL_CHUNKS);
  });
});
