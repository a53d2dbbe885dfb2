/**
 * Hostile and unusual images through the thumbnail flow (processUpload, what the handler runs). Each bad one
 * ends as a rejected pose with a clear reason, nothing published, its staging object gone, in bounded time and
 * memory; each unusual but valid one is published upright as a 400x400 thumbnail. All generated here.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_OBJECT_BYTES, parseConfig } from '../lib/config.ts';
import { createLogger } from '../lib/logger.ts';
import { createServices, type Services } from '../lib/services.ts';

const ROOT = new URL('../', import.meta.url).pathname;

let dir: string;
let services: Services;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'pose-hostile-'));
  services = createServices({ config: parseConfig({ UPLOAD_PATH: dir }), logger: createLogger(() => undefined) });
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Stages `bytes` as a client upload would leave them and returns the staging key. */
async function stage(bytes: Uint8Array, poseId: string): Promise<string> {
  const key = `staging/gen_hostile/${poseId}/${randomUUID()}`;
  await mkdir(path.join(dir, path.dirname(key)), { recursive: true });
  await writeFile(path.join(dir, key), bytes);
  return key;
}

async function published(poseId: string): Promise<string[]> {
  const files = await readdir(path.join(dir, 'poses', 'gen_hostile')).catch(() => []);
  return files.filter((file) => file.startsWith(`${poseId}.`) || file.startsWith(`${poseId}_`));
}

/** A PNG of the given header with one tiny zlib stream as data (what a "huge header, little data" file is). */
function png(width: number, height: number, bitDepth: number, colourType: number, rawRows: Buffer): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([length, body, crc]);
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.writeUInt8(bitDepth, 8);
  header.writeUInt8(colourType, 9);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(rawRows, { level: 9 })),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

function crc32(data: Buffer): number {
  let crc = ~0;
  for (const byte of data) {
    crc ^= byte;
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ 0xedb88320 : crc >>> 1;
  }
  return ~crc >>> 0;
}

const solid = (width: number, height: number) => sharp({ create: { width, height, channels: 3, background: '#c33' } });

describe('hostile images are rejected with a reason, nothing published', () => {
  const cases: [string, () => Promise<Buffer> | Buffer, string][] = [
    ['zero bytes', () => Buffer.alloc(0), 'not_an_image'],
    ['random bytes', () => Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919 + 13) % 251)), 'not_an_image'],
    ['an HTML page', () => Buffer.from('<!doctype html><html><script>alert(1)</script></html>'), 'not_an_image'],
    ['an SVG image', () => Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><script>alert(1)</script></svg>'), 'not_an_image'],
    ['a shell script', () => Buffer.from('#!/bin/sh\nrm -rf /\n'), 'not_an_image'],
    ['a truncated PNG', async () => (await solid(300, 300).png().toBuffer()).subarray(0, 200), 'corrupt_image'],
    ['a truncated JPEG', async () => (await solid(300, 300).jpeg().toBuffer()).subarray(0, 400), 'corrupt_image'],
    // 20000x20000 1-bit greyscale: 48 KB that decode to 400 MP.
    ['a decompression bomb', () => png(20000, 20000, 1, 0, Buffer.alloc(20000 * 2501)), 'too_large'],
    ['a huge header with almost no data', () => png(60000, 60000, 8, 2, Buffer.alloc(1)), 'too_large'],
    ['just over MAX_INPUT_PIXELS', () => png(7072, 7072, 1, 0, Buffer.alloc(7072 * 885)), 'too_large'],
    ['an animated GIF', () => sharp(Buffer.alloc(32 * 96 * 3, 90), { raw: { width: 32, height: 96, channels: 3, pageHeight: 32 } }).gif().toBuffer(), 'unsupported_format'],
  ];

  it.each(cases)('%s', async (name, make, reason) => {
    const poseId = `pose_${name.replace(/[^a-z]+/gi, '_')}`;
    const key = await stage(await make(), poseId);
    const started = performance.now();

    const status = await services.uploads.processUpload({ key: key });

    expect(status).toMatchObject({ status: 'rejected', reason });
    expect(performance.now() - started).toBeLessThan(20_000); // bounded: no bomb is decoded
    expect(await published(poseId)).toEqual([]);
    await expect(services.storage.store.head(key)).resolves.toBeUndefined();
    await expect(services.uploads.getStatus({ generationId: 'gen_hostile', poseId })).resolves.toMatchObject({ status: 'rejected', reason });
  });

  it('a rejection for size says the image\'s and the limit, in the very sentence the README shows', async () => {
    const key = await stage(png(12000, 12000, 1, 0, Buffer.alloc(1)), 'pose_readme_example');
    const message = 'The image is 12000x12000 (144,000,000 pixels), more than the 50,000,000 allowed.';
    expect(await services.uploads.processUpload({ key })).toMatchObject({ status: 'rejected', reason: 'too_large', message });
    expect(await readFile(path.join(ROOT, 'README.md'), 'utf8')).toContain(`("${message}")`);
  });

  it('a decompression bomb costs little memory: its header is refused before any pixel is decoded', async () => {
    const key = await stage(png(20000, 20000, 1, 0, Buffer.alloc(20000 * 2501)), 'pose_bomb_rss');
    const { stdout } = await promisify(execFile)(process.execPath, ['test/support/process-upload-child.ts', dir, key], { cwd: ROOT });
    const result = JSON.parse(stdout) as { status: { status: string; reason: string }; maxRssMb: number };
    expect(result.status).toMatchObject({ status: 'rejected', reason: 'too_large' });
    expect(result.maxRssMb).toBeLessThan(200); // a 400 MP decode would need over 400 MB
  });
});

describe('sizes no path can process end rejected, never retried for ever', () => {
  it('an upload larger than any path reads (a sparse 2 GiB + 1 file), with UPLOAD_MAX_BYTES at its largest', async () => {
    const largest = createServices({ config: parseConfig({ UPLOAD_PATH: dir, UPLOAD_MAX_BYTES: String(MAX_OBJECT_BYTES) }), logger: createLogger(() => undefined) });
    const key = await stage(Buffer.alloc(0), 'pose_huge');
    await truncate(path.join(dir, key), 2 * 1024 ** 3 + 1); // a hole: costs no disk
    const status = await largest.uploads.processUpload({ key });
    expect(status).toMatchObject({ status: 'rejected', reason: 'too_large', message: expect.stringMatching(/2,?147,?483,?649 bytes/) });
    await expect(largest.storage.store.head(key)).resolves.toBeUndefined();
    // And no configuration lets such an upload in: the limit itself is refused (lib/config.test.ts).
    expect(() => parseConfig({ UPLOAD_MAX_BYTES: String(5 * 1024 ** 3) })).toThrow(/UPLOAD_MAX_BYTES must be at most 536870912 \(512 MiB\)/);
  });

  it('a noisy JPEG whose PNG would be larger than PUBLISHED_MAX_BYTES is rejected too_large, nothing published', async () => {
    const noise = Buffer.from(Array.from({ length: 900 * 900 * 3 }, (_, i) => (i * 2654435761) >>> 24));
    const jpeg = await sharp(noise, { raw: { width: 900, height: 900, channels: 3 } }).jpeg({ quality: 80 }).toBuffer();
    const limit = 1024 * 1024;
    expect(jpeg.length).toBeLessThan(limit);
    const bounded = createServices({
      config: parseConfig({ UPLOAD_PATH: dir, UPLOAD_MAX_BYTES: String(limit), PUBLISHED_MAX_BYTES: String(limit) }),
      logger: createLogger(() => undefined),
    });
    const status = await bounded.uploads.processUpload({ key: await stage(jpeg, 'pose_noisy') });
    expect(status).toMatchObject({ status: 'rejected', reason: 'too_large', message: expect.stringMatching(/As a PNG the image would be [\d,]+ bytes, more than the 1,?048,?576 allowed \(PUBLISHED_MAX_BYTES\)/) });
    expect(await published('pose_noisy')).toEqual([]);
  });
});

describe('unusual valid images are published upright as 400x400 PNG thumbnails', () => {
  const cases: [string, () => Promise<Buffer>, { width: number; height: number }][] = [
    ['a CMYK JPEG', () => solid(640, 480).toColourspace('cmyk').jpeg().toBuffer(), { width: 640, height: 480 }],
    ['a 16-bit PNG', () => solid(500, 300).toColourspace('rgb16').png().toBuffer(), { width: 500, height: 300 }],
    [
      'a greyscale PNG with alpha',
      () => sharp({ create: { width: 300, height: 500, channels: 4, background: { r: 90, g: 90, b: 90, alpha: 0.5 } } }).toColourspace('b-w').png().toBuffer(),
      { width: 300, height: 500 },
    ],
    // Stored 600 wide and 200 high, with EXIF orientation 6 (rotate 90°): upright it is 200x600.
    ['an EXIF-rotated JPEG', () => solid(600, 200).jpeg().withMetadata({ orientation: 6 }).toBuffer(), { width: 200, height: 600 }],
    [
      'an animated WebP (its first frame is used)',
      () => sharp(Buffer.alloc(64 * 192 * 3, 200), { raw: { width: 64, height: 192, channels: 3, pageHeight: 64 } }).webp({ loop: 0 }).toBuffer(),
      { width: 64, height: 64 },
    ],
  ];

  it.each(cases)('%s', async (name, make, upright) => {
    const poseId = `pose_${name.replace(/[^a-z0-9]+/gi, '_')}`;
    const key = await stage(await make(), poseId);

    const status = await services.uploads.processUpload({ key: key });

    expect(status).toMatchObject({ status: 'ready' });
    const image = await sharp(path.join(dir, 'poses', 'gen_hostile', `${poseId}.png`)).metadata();
    expect([image.format, image.width, image.height]).toEqual(['png', upright.width, upright.height]);
    expect(image.orientation ?? 1).toBe(1);
    const thumbnail = await sharp(path.join(dir, 'poses', 'gen_hostile', `${poseId}_thumb.png`)).metadata();
    expect([thumbnail.format, thumbnail.width, thumbnail.height]).toEqual(['png', 400, 400]);
  });
});
