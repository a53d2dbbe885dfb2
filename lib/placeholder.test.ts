/**
 * The placeholder (POSE_VARIANTS `placeholder`): a ThumbHash and the dominant colour from the thumbnail; in the
 * record, the status and the save result on both adapters; absent, and the record unchanged, when not configured.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { thumbHashToAverageRGBA, thumbHashToRGBA } from 'thumbhash';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startS3Server, type S3TestServer } from '../test/support/s3-server.ts';
import { parseConfig } from './config.ts';
import { createLogger } from './logger.ts';
import { dominantColorOf, placeholderOf, type RawPixels } from './placeholder.ts';
import { renderPose } from './pose-image.ts';
import { readRecord } from './pose-record.ts';
import { createServices } from './services.ts';
import { S3Store } from './storage/s3-store.ts';

/** A red figure on a larger blue background, 600x400. */
const figure = () =>
  sharp({ create: { width: 600, height: 400, channels: 3, background: '#1040c0' } })
    .composite([{ input: { create: { width: 200, height: 200, channels: 3, background: '#e01010' } }, left: 200, top: 100 }])
    .png()
    .toBuffer();

/** A 400x400 cover resize's pixels, as the thumbnail render has them. */
const thumbnailPixels = async (image: Buffer): Promise<RawPixels> => {
  const { data, info } = await sharp(image).resize(400, 400, { fit: 'cover' }).raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, channels: info.channels };
};

describe('placeholderOf', () => {
  it('gives the most common colour, not the average, and a ThumbHash of ~25 bytes whose picture has the same colours', async () => {
    const placeholder = placeholderOf(await thumbnailPixels(await figure()));
    expect(placeholder.dominantColor).toMatch(/^#1040c[0-2]$/); // the background, within resampling
    const hash = Buffer.from(placeholder.thumbHash, 'base64');
    expect(hash.length).toBeGreaterThanOrEqual(20);
    expect(hash.length).toBeLessThanOrEqual(30);
    // Decoded: mostly blue, with red in the middle where the figure is.
    const average = thumbHashToAverageRGBA(hash);
    expect(average.b).toBeGreaterThan(average.r);
    const { w, h, rgba } = thumbHashToRGBA(hash);
    const centre = (Math.floor(h / 2) * w + Math.floor(w / 2)) * 4;
    expect(rgba[centre]!).toBeGreaterThan(rgba[centre + 2]!);
    expect(rgba[0 + 2]!).toBeGreaterThan(rgba[0]!);
  });

  it('is the same for the same pixels', async () => {
    const pixels = await thumbnailPixels(await figure());
    expect(placeholderOf(pixels)).toEqual(placeholderOf({ ...pixels, data: Uint8Array.from(pixels.data) }));
  });

  it('reads grey, grey with alpha, RGB and RGBA pixels; refuses a buffer of the wrong length, naming the sizes', () => {
    const grey = { data: new Uint8Array(40 * 30).fill(0x80), width: 40, height: 30, channels: 1 };
    expect(placeholderOf(grey).dominantColor).toBe('#808080');
    // Half the grey-with-alpha pixels are transparent white, half opaque black: black dominates.
    const greyAlpha = { data: Uint8Array.from({ length: 20 * 20 * 2 }, (_, i) => (i % 4 < 2 ? [255, 0][i % 2]! : [0, 255][i % 2]!)), width: 20, height: 20, channels: 2 };
    expect(placeholderOf(greyAlpha).dominantColor).toBe('#000000');
    const rgb = { data: Uint8Array.from({ length: 401 * 3 * 3 }, (_, i) => [0x10, 0x20, 0x30][i % 3]!), width: 401, height: 3, channels: 3 };
    expect(placeholderOf(rgb).dominantColor).toBe('#102030'); // 401 wide: boxes of 5, the last one partial
    expect(() => placeholderOf({ ...rgb, data: rgb.data.subarray(1) })).toThrow('401x3x3 pixels need 3609 bytes, not 3608');
    expect(() => placeholderOf({ ...rgb, channels: 5 })).toThrow('401x3x5');
  });

  it('comes with a thumbnail of the very pixels renderPose makes without it', async () => {
    const png = await figure();
    const [plain, withPlaceholder] = await Promise.all([renderPose(png, { maxInputPixels: 1e8 }), renderPose(png, { maxInputPixels: 1e8, placeholder: true })]);
    expect(plain.placeholder).toBeUndefined();
    const raw = (image: Buffer) => sharp(image).raw().toBuffer();
    expect((await raw(withPlaceholder.thumbnail)).equals(await raw(plain.thumbnail))).toBe(true);
    expect(withPlaceholder.image.equals(plain.image)).toBe(true);
    expect(withPlaceholder.placeholder).toEqual(placeholderOf(await thumbnailPixels(png)));
  });

  it('weights colours by opacity; a fully transparent image has black', () => {
    const pixels = Uint8Array.from([255, 0, 0, 10, 255, 0, 0, 10, 0, 255, 0, 255]);
    expect(dominantColorOf(pixels)).toBe('#00ff00');
    expect(dominantColorOf(Uint8Array.from([9, 9, 9, 0]))).toBe('#000000');
  });
});

describe.each(['directory', 's3'] as const)('a pose with POSE_VARIANTS=placeholder on the %s store', (kind) => {
  let dir: string;
  let server: S3TestServer | undefined;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'placeholder-'));
    if (kind === 's3') server = await startS3Server();
  });

  afterAll(async () => {
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const services = (variants?: string) => {
    const env = { UPLOAD_PATH: dir, ...(variants !== undefined && { POSE_VARIANTS: variants }) };
    if (!server) return createServices({ config: parseConfig(env), logger: createLogger(() => undefined) });
    const config = parseConfig({ ...env, STORAGE_MODE: 'r2', API_TOKEN: 'placeholder-test-token-01', ...server.r2Env });
    return createServices({ config, store: new S3Store(config.r2!), logger: createLogger(() => undefined) });
  };

  it('is in the save result, the record and the status', async () => {
    const app = services('placeholder');
    const pose = { generationId: 'gen_ph', poseId: `p_${kind}` };
    const saved = await app.storage.savePoseWithThumbnail({ ...pose, imageBuffer: await figure() });
    // The background's colour, within the thumbnail's resampling (a unit on a channel).
    expect(saved.placeholder).toEqual({ thumbHash: expect.stringMatching(/^[A-Za-z0-9+/]+=*$/), dominantColor: expect.stringMatching(/^#1040c[0-2]$/) });
    expect(await app.storage.readRecord(pose)).toMatchObject({ status: 'ready', placeholder: saved.placeholder });
    expect(await app.uploads.getStatus(pose)).toMatchObject({ status: 'ready', placeholder: saved.placeholder });
  });

  it('is absent when not configured: the reference fields only', async () => {
    const app = services();
    const pose = { generationId: 'gen_ph', poseId: `plain_${kind}` };
    const saved = await app.storage.savePoseWithThumbnail({ ...pose, imageBuffer: await figure() });
    expect(Object.keys(saved).sort()).toEqual(['imageUrl', 'originalImageUrl', 'thumbnailUrl']);
    expect(await readRecord(app.storage.store, pose, app.logger)).not.toHaveProperty('placeholder');
    expect(await app.uploads.getStatus(pose)).not.toHaveProperty('placeholder');
  });
});
