/**
 * verifyStore() finds and repairs every planted inconsistency, in a directory (stale staging by mtime) and in
 * a real S3-compatible server (stale staging by a later clock).
 */
import { mkdtemp, rm, utimes } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startS3Server, type S3TestServer } from '../../test/support/s3-server.ts';
import { renderPose } from '../pose-image.ts';
import { DirectoryStore } from '../storage/directory-store.ts';
import type { ObjectStore } from '../storage/object-store.ts';
import { S3Store } from '../storage/s3-store.ts';
import { stagingMaxAgeMs, thumbnailProblem, verifyStore, type Finding, type VerifyOptions } from './verify.ts';

const MAX_PIXELS = 50_000_000;
const MAX_AGE = stagingMaxAgeMs(600); // 70 minutes
const PNG = { contentType: 'image/png' };
const STALE = 'staging/gen_1/p9/0b6c5d0e-2f0a-4c54-9d0e-5b8a8f5f0a11';
const FRESH = 'staging/gen_1/p8/1b6c5d0e-2f0a-4c54-9d0e-5b8a8f5f0a11';

let server: S3TestServer;
let bucket: S3Store;
let root: string;
let local: DirectoryStore;

beforeAll(async () => {
  server = await startS3Server();
  bucket = new S3Store(server.r2Config);
});

afterAll(async () => {
  await server?.stop();
});

beforeEach(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'verify-'));
  local = new DirectoryStore({ root, uploadBaseUrl: 'http://127.0.0.1:1' });
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
  const keys: string[] = [];
  for await (const object of bucket.list('')) keys.push(object.key);
  await bucket.delete(keys);
});

function image(n: number, width = 48, height = 64): Promise<Buffer> {
  return sharp({ create: { width, height, channels: 3, background: { r: 40 * n, g: 90, b: 200 - 10 * n } } }).png().toBuffer();
}

/** Every kind of inconsistency, next to healthy poses. Returns the images by pose key. */
async function plant(store: ObjectStore): Promise<Map<string, Buffer>> {
  const images = new Map<string, Buffer>();
  const put = (key: string, body: Uint8Array) => store.put(key, body, PNG);
  for (const n of [1, 2, 3, 4, 5]) {
    const body = await image(n);
    images.set(`poses/gen_1/p${n}`, body);
    await put(`poses/gen_1/p${n}.png`, body);
  }
  const goodThumbnail = (await renderPose(images.get('poses/gen_1/p1')!, { maxInputPixels: MAX_PIXELS })).thumbnail;
  await put('poses/gen_1/p1_thumb.png', goodThumbnail); // healthy
  // p2: no thumbnail
  await put('poses/gen_1/p3_thumb.png', goodThumbnail.subarray(0, Math.floor(goodThumbnail.length / 2))); // truncated PNG
  await put('poses/gen_1/p4_thumb.png', await image(9, 16, 16)); // a valid PNG, but 16x16
  await put('poses/gen_1/p5_thumb.png', Buffer.from('not an image at all')); // not a PNG
  // gen_2: an orphan thumbnail, and a pose whose id ends in _thumb (with its own thumbnail: no orphan)
  await put('poses/gen_2/q1_thumb.png', goodThumbnail);
  const thumbId = await image(7);
  images.set('poses/gen_2/z_thumb', thumbId);
  await put('poses/gen_2/z_thumb.png', thumbId);
  await put('poses/gen_2/z_thumb_thumb.png', (await renderPose(thumbId, { maxInputPixels: MAX_PIXELS })).thumbnail);
  // gen_3: healthy
  const healthy = await image(6);
  images.set('poses/gen_3/ok', healthy);
  await put('poses/gen_3/ok.png', healthy);
  await put('poses/gen_3/ok_thumb.png', (await renderPose(healthy, { maxInputPixels: MAX_PIXELS })).thumbnail);
  await put(STALE, Buffer.from('an upload nobody processed'));
  await put(FRESH, Buffer.from('an upload being processed'));
  await store.put('records/gen_1/p7.json', Buffer.from(JSON.stringify({ status: 'rejected', upload: { key: 'save', etag: 'e', uploadedAt: '2026-01-01T00:00:00.000Z' }, reason: 'not_an_image', message: 'no', rejectedAt: '2026-01-01T00:00:00.000Z' })), {
    contentType: 'application/json',
  });
  return images;
}

const summary = (findings: Finding[]) => findings.map((f) => [f.kind, f.key, f.problem, f.repaired]);

const EXPECTED_FINDINGS = (repaired: boolean) => [
  ['missing_thumbnail', 'poses/gen_1/p2.png', true, repaired],
  ['broken_thumbnail', 'poses/gen_1/p3_thumb.png', true, repaired],
  ['broken_thumbnail', 'poses/gen_1/p4_thumb.png', true, repaired],
  ['broken_thumbnail', 'poses/gen_1/p5_thumb.png', true, repaired],
  ['orphan_thumbnail', 'poses/gen_2/q1_thumb.png', true, repaired],
  ['stale_staging', STALE, true, repaired],
  ['rejection_record', 'records/gen_1/p7.json', false, false],
];

async function run(store: ObjectStore, options: Partial<VerifyOptions> = {}) {
  const findings: Finding[] = [];
  const result = await verifyStore({
    store,
    cacheControl: 'public, max-age=300',
    maxInputPixels: MAX_PIXELS,
    stagingMaxAgeMs: MAX_AGE,
    onFinding: (finding) => findings.push(finding),
    ...options,
  });
  return { result, findings };
}

async function expectRepaired(store: ObjectStore, images: Map<string, Buffer>): Promise<void> {
  for (const pose of ['poses/gen_1/p1', 'poses/gen_1/p2', 'poses/gen_1/p3', 'poses/gen_1/p4', 'poses/gen_1/p5']) {
    const thumbnail = await store.get(`${pose}_thumb.png`);
    const expected = (await renderPose(images.get(pose)!, { maxInputPixels: MAX_PIXELS })).thumbnail;
    expect(thumbnail?.body.equals(expected), pose).toBe(true);
    expect(await thumbnailProblem(thumbnail!.body, MAX_PIXELS)).toBeUndefined();
  }
  expect(await store.head('poses/gen_2/q1_thumb.png')).toBeUndefined();
  expect(await store.head('poses/gen_2/z_thumb.png')).toBeDefined();
  expect(await store.head('poses/gen_2/z_thumb_thumb.png')).toBeDefined();
  expect(await store.head(STALE)).toBeUndefined();
  expect(await store.head(FRESH)).toBeDefined();
  expect(await store.head('records/gen_1/p7.json')).toBeDefined();
}

describe('verify in local mode', () => {
  it('finds every planted problem, changes nothing without --repair, and repairs all with it', async () => {
    const images = await plant(local);
    const old = new Date(Date.now() - 3 * 3600_000);
    await utimes(path.join(root, STALE), old, old);

    const found = await run(local);
    expect(summary(found.findings)).toEqual(EXPECTED_FINDINGS(false));
    expect(found.result).toMatchObject({
      repair: false,
      problems: 6,
      unrepaired: 6,
      checked: { generations: 3, poses: 7, thumbnails: 6, stagingObjects: 2, rejectionRecords: 1 },
      found: { missing_thumbnail: 1, broken_thumbnail: 3, orphan_thumbnail: 1, stale_staging: 1, rejection_record: 1 },
    });
    expect(found.findings.find((f) => f.key.endsWith('p4_thumb.png'))?.detail).toBe('16x16, not 400x400');
    expect(found.findings.find((f) => f.key.endsWith('p5_thumb.png'))?.detail).toBe('not a PNG');
    expect(found.findings.find((f) => f.key.endsWith('p3_thumb.png'))?.detail).toMatch(/^not decodable/);
    expect(found.findings.at(-1)?.detail).toBe('upload rejected: not_an_image');
    // Nothing changed.
    expect(await local.head('poses/gen_1/p2_thumb.png')).toBeUndefined();
    expect(await local.head(STALE)).toBeDefined();

    const repaired = await run(local, { repair: true });
    expect(summary(repaired.findings)).toEqual(EXPECTED_FINDINGS(true));
    expect(repaired.result).toMatchObject({ repair: true, problems: 6, unrepaired: 0 });
    await expectRepaired(local, images);

    const after = await run(local);
    expect(summary(after.findings)).toEqual([['rejection_record', 'records/gen_1/p7.json', false, false]]);
    expect(after.result.problems).toBe(0);
  });

  it('a thumbnail that cannot be rendered (the image is corrupt) stays a problem', async () => {
    await local.put('poses/gen_4/bad.png', Buffer.from('\x89PNG\r\n\x1a\n and then garbage', 'latin1'), PNG);
    const { result, findings } = await run(local, { repair: true });
    expect(findings).toEqual([
      expect.objectContaining({ kind: 'missing_thumbnail', key: 'poses/gen_4/bad.png', repaired: false, repairError: expect.stringMatching(/^the image cannot be rendered/) }),
    ]);
    expect(result).toMatchObject({ problems: 1, unrepaired: 1 });
    expect(await local.head('poses/gen_4/bad_thumb.png')).toBeUndefined();
  });
});

describe('verify in r2 mode', () => {
  it('finds and repairs the same problems in the bucket (staging judged by a later clock)', async () => {
    const images = await plant(bucket);
    // Just written: no staging object is stale yet.
    const now = await run(bucket);
    expect(summary(now.findings)).toEqual(EXPECTED_FINDINGS(false).filter(([kind]) => kind !== 'stale_staging'));

    // Three hours later both staging objects are stale, and both are removed.
    const later = new Date(Date.now() + 3 * 3600_000);
    const repaired = await run(bucket, { repair: true, now: later });
    expect(summary(repaired.findings).filter(([kind]) => kind === 'stale_staging')).toEqual([
      ['stale_staging', FRESH, true, true],
      ['stale_staging', STALE, true, true],
    ]);
    expect(repaired.result.unrepaired).toBe(0);
    await bucket.put(FRESH, Buffer.from('again'), PNG); // (expectRepaired wants it there)
    await expectRepaired(bucket, images);

    const after = await run(bucket);
    expect(after.result.problems).toBe(0);
  });
});

describe('thumbnailProblem', () => {
  it('accepts a 400x400 PNG and names what is wrong with anything else', async () => {
    const square = await sharp({ create: { width: 400, height: 400, channels: 4, background: '#fff' } }).png().toBuffer();
    expect(await thumbnailProblem(square, MAX_PIXELS)).toBeUndefined();
    expect(await thumbnailProblem(await sharp(square).jpeg().toBuffer(), MAX_PIXELS)).toBe('not a PNG');
    expect(await thumbnailProblem(await image(1, 400, 300), MAX_PIXELS)).toBe('400x300, not 400x400');
    expect(await thumbnailProblem(square.subarray(0, 60), MAX_PIXELS)).toMatch(/^not decodable/);
  });
});
