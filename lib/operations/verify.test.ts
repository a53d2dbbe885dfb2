/**
 * verifyStore() against every kind of inconsistency of the layout, planted next to healthy poses that the
 * library itself published, in a directory and in a real S3-compatible server: what it finds, what --repair
 * makes whole (checked by reading the poses back), and what it says it cannot repair.
 */
import { mkdtemp, rm, utimes } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { S3_TEST_BACKEND, startS3Server, type S3TestServer } from '../../test/support/s3-server.ts';
import { wrapStore } from '../../test/support/wrap-store.ts';
import { parseConfig } from '../config.ts';
import { lockKey, newStagingKey, recordKey, type PoseRef } from '../layout.ts';
import { backupKey, fileKey, imageKey, thumbnailKey } from '../pose-files.ts';
import { createLogger } from '../logger.ts';
import { createServices, type Services } from '../services.ts';
import { DirectoryStore } from '../storage/directory-store.ts';
import type { ObjectStore } from '../storage/object-store.ts';
import { S3Store } from '../storage/s3-store.ts';
import { lostUploadAfterMs } from '../deadlines.ts';
import { checkImage, thumbnailProblem, verifyStore, type Finding, type VerifyOptions } from './verify.ts';

const MAX_PIXELS = 50_000_000;
const PNG = { contentType: 'image/png' };
const JSON_TYPE = { contentType: 'application/json' };

let server: S3TestServer;
let bucket: S3Store;
let root: string;

beforeAll(async () => {
  server = await startS3Server();
  bucket = new S3Store(server.r2Config);
});

afterAll(async () => {
  await server?.stop();
});

beforeEach(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'verify-'));
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
  const keys: string[] = [];
  for await (const object of bucket.list('')) keys.push(object.key);
  await bucket.delete(keys);
});

function servicesOn(store: ObjectStore): Services {
  const config = parseConfig({ STORAGE_MODE: 'local', UPLOAD_PATH: root });
  return createServices({ config, store, logger: createLogger(() => undefined) });
}

function image(n: number, width = 48, height = 64): Promise<Buffer> {
  return sharp({ create: { width, height, channels: 3, background: { r: 40 * n, g: 90, b: 200 - 10 * n } } }).png().toBuffer();
}

const pose = (generationId: string, poseId: string): PoseRef => ({ generationId, poseId });

const HTML = Buffer.from('<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>');

/** Makes an object `ageMs` old to its store (its Last-Modified). */
type Backdate = (key: string, ageMs: number) => Promise<void>;

const backdateFile: Backdate = async (key, ageMs) => {
  const then = new Date(Date.now() - ageMs);
  await utimes(path.join(root, key), then, then);
};

/** Every kind of inconsistency, each in a pose of its own, next to healthy poses. */
async function plant({ storage, uploads }: Services, backdate: Backdate): Promise<void> {
  const { store } = storage;
  const save = async (ref: PoseRef, n: number) => storage.savePoseWithThumbnail({ ...ref, imageBuffer: await image(n) });
  const record = async (ref: PoseRef) => JSON.parse((await store.get(recordKey(ref)))!.body.toString()) as Record<string, unknown>;
  /** Puts `body` under the pose's image key with a record that agrees on its size: only the image is at fault. */
  const replaceImage = async (ref: PoseRef, body: Buffer) => {
    const ready = await record(ref);
    await store.put(imageKey(ref), body, PNG);
    await store.put(recordKey(ref), Buffer.from(JSON.stringify({ ...ready, bytes: body.length })), JSON_TYPE);
  };

  await save(pose('gen_1', 'ok'), 1);
  await save(pose('gen_1', 'trunc'), 2);
  const valid = (await store.get(imageKey(pose('gen_1', 'trunc'))))!.body;
  await replaceImage(pose('gen_1', 'trunc'), valid.subarray(0, Math.floor(valid.length / 2)));
  await save(pose('gen_1', 'garbage'), 3);
  await replaceImage(pose('gen_1', 'garbage'), Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 7919) % 256)));
  await save(pose('gen_1', 'html'), 4);
  await replaceImage(pose('gen_1', 'html'), HTML);
  await save(pose('gen_1', 'jpeg'), 5);
  await replaceImage(pose('gen_1', 'jpeg'), await sharp(await image(5)).jpeg().toBuffer());
  await save(pose('gen_1', 'nothumb'), 6);
  await store.delete([thumbnailKey(pose('gen_1', 'nothumb'))]);
  await save(pose('gen_1', 'badthumb'), 7);
  await store.put(thumbnailKey(pose('gen_1', 'badthumb')), await image(7, 16, 16), PNG);
  // Published by a version before records: image and thumbnail, no record.
  await store.put(imageKey(pose('gen_1', 'legacy')), await image(8), PNG);
  await store.put(thumbnailKey(pose('gen_1', 'legacy')), (await storage.render(await image(8))).thumbnail, PNG);
  await save(pose('gen_1', 'sizes'), 9);
  await store.put(recordKey(pose('gen_1', 'sizes')), Buffer.from(JSON.stringify({ ...(await record(pose('gen_1', 'sizes'))), width: 640, bytes: 1 })), JSON_TYPE);

  // gen_2: what interrupted writers leave.
  await store.put(thumbnailKey(pose('gen_2', 'orphan')), (await storage.render(await image(1))).thumbnail, PNG);
  await save(pose('gen_2', 'gone'), 2);
  await store.delete([imageKey(pose('gen_2', 'gone')), thumbnailKey(pose('gen_2', 'gone'))]);
  const rejected = newStagingKey(pose('gen_2', 'rej'));
  await store.put(rejected, Buffer.from('not an image'), PNG);
  expect(await uploads.processUpload({ key: rejected })).toMatchObject({ status: 'rejected' });
  await store.put(imageKey(pose('gen_2', 'rej')), await image(3), PNG);
  // A publication that died after putting the new image in place: the previous one is the backup.
  await save(pose('gen_2', 'backup'), 4);
  await store.copy(imageKey(pose('gen_2', 'backup')), backupKey(pose('gen_2', 'backup')), PNG);
  await store.put(imageKey(pose('gen_2', 'backup')), await image(5, 120, 90), PNG);
  await save(pose('gen_2', 'locked'), 6);
  // A lock its writer left 10 minutes ago, by the store's clock (whatever a body says: this one claims a day more).
  const expired = { holder: 'upload staging/x', token: 'dead', expiresAt: new Date(Date.now() + 86_400_000).toISOString() };
  await store.put(lockKey(pose('gen_2', 'locked')), Buffer.from(JSON.stringify(expired)), JSON_TYPE);
  await backdate(lockKey(pose('gen_2', 'locked')), 600_000);

  // gen_3: uploads, and a pose a writer holds.
  await store.put(newStagingKey(pose('gen_3', 'lost'), Date.now() - 3 * 3600_000), await image(7, 300, 200), PNG);
  await store.put(newStagingKey(pose('gen_3', 'fresh')), await image(8), PNG);
  await save(pose('gen_3', 'busy'), 9);
  // A live lock, just written, though its body claims it expired an hour ago.
  const live = { holder: 'delete', token: 'alive', expiresAt: new Date(Date.now() - 3_600_000).toISOString() };
  await store.put(lockKey(pose('gen_3', 'busy')), Buffer.from(JSON.stringify(live)), JSON_TYPE);
}

const summary = (findings: Finding[]) => findings.map((f) => [f.kind, f.key.replace(/[0-9a-f-]{36}$/, '<uuid>'), f.repaired]);

const UNREPAIRABLE = ['poses/gen_1/garbage.png', 'poses/gen_1/html.png', 'poses/gen_1/trunc.png'];

const EXPECTED = (repaired: boolean) => [
  ['broken_thumbnail', 'poses/gen_1/badthumb_thumb.png', repaired],
  ['broken_image', 'poses/gen_1/garbage.png', false],
  ['broken_image', 'poses/gen_1/html.png', false],
  ['broken_image', 'poses/gen_1/jpeg.png', repaired],
  ['unrecorded_pose', 'poses/gen_1/legacy.png', repaired],
  ['missing_thumbnail', 'poses/gen_1/nothumb.png', repaired],
  ['broken_image', 'poses/gen_1/trunc.png', false],
  ['record_mismatch', 'records/gen_1/sizes.json', repaired],
  ['leftover_backup', 'backups/gen_2/backup.png', repaired],
  ['expired_lock', 'locks/gen_2/locked.json', repaired],
  ['missing_image', 'poses/gen_2/orphan.png', repaired],
  ['rejected_with_files', 'poses/gen_2/rej.png', repaired],
  ['record_mismatch', 'records/gen_2/backup.json', repaired],
  ['dangling_record', 'records/gen_2/gone.json', repaired],
  ['rejection_record', 'records/gen_2/rej.json', false],
  ['busy_pose', 'locks/gen_3/busy.json', false],
  ['unprocessed_upload', 'staging/gen_3/lost/<uuid>', repaired],
];

async function run(services: Services, options: Partial<VerifyOptions> = {}) {
  const findings: Finding[] = [];
  const result = await verifyStore({
    storage: services.storage,
    uploads: services.uploads,
    stagingMaxAgeMs: lostUploadAfterMs(600),
    onFinding: (finding) => findings.push(finding),
    ...options,
  });
  return { result, findings };
}

/** What a client would see of a pose: its status, and its files' sizes. */
async function seen({ storage, uploads }: Services, ref: PoseRef) {
  const status = await uploads.getStatus(ref);
  const [image, thumbnail] = await Promise.all([storage.store.get(imageKey(ref)), storage.store.get(thumbnailKey(ref))]);
  const decoded = image && (await checkImage(image.body, MAX_PIXELS));
  return {
    status: status?.status,
    ...(status?.status === 'ready' && { record: { width: status.width, height: status.height, bytes: status.bytes } }),
    image: decoded?.ok ? { format: decoded.format, width: decoded.width, height: decoded.height, bytes: image!.size } : image && 'broken',
    thumbnail: thumbnail && ((await thumbnailProblem(thumbnail.body, MAX_PIXELS)) ?? 'ok'),
  };
}

async function expectRepaired(services: Services): Promise<void> {
  const whole = (width: number, height: number) => ({
    status: 'ready',
    record: { width, height, bytes: expect.any(Number) },
    image: { format: 'png', width, height, bytes: expect.any(Number) },
    thumbnail: 'ok',
  });
  for (const id of ['ok', 'jpeg', 'nothumb', 'badthumb', 'legacy', 'sizes']) expect(await seen(services, pose('gen_1', id)), id).toEqual(whole(48, 64));
  for (const id of ['backup', 'locked']) expect(await seen(services, pose('gen_2', id)), id).toEqual(whole(48, 64));
  expect(await seen(services, pose('gen_3', 'lost'))).toEqual(whole(300, 200));
  for (const id of ['sizes', 'jpeg']) {
    const status = await seen(services, pose('gen_1', id));
    expect(status.record?.bytes, id).toBe((status.image as { bytes: number }).bytes);
  }
  // Absent now: nothing was left to make them whole.
  for (const id of ['orphan', 'gone']) expect(await seen(services, pose('gen_2', id)), id).toEqual({ status: undefined, image: undefined, thumbnail: undefined });
  expect(await seen(services, pose('gen_2', 'rej'))).toEqual({ status: 'rejected', image: undefined, thumbnail: undefined });
  const { store } = services.storage;
  expect(await store.head(backupKey(pose('gen_2', 'backup')))).toBeUndefined();
  expect(await store.head(lockKey(pose('gen_2', 'locked')))).toBeUndefined();
  // Left alone: the pose being written, the pending upload, and the images nothing can rebuild.
  expect(await store.head(lockKey(pose('gen_3', 'busy')))).toBeDefined();
  expect(await seen(services, pose('gen_3', 'fresh'))).toMatchObject({ status: 'pending' });
  for (const key of UNREPAIRABLE) expect(await store.head(key), key).toBeDefined();
}

describe.each([
  ['local', () => new DirectoryStore({ root, uploadBaseUrl: 'http://127.0.0.1:1' }), () => backdateFile],
  ['r2', () => bucket, () => server.backdate!],
] as const)('verify in %s mode', (mode, makeStore, backdate) => {
  // The planted expired lock is dated in the past, which RGW cannot do.
  it.skipIf(mode === 'r2' && S3_TEST_BACKEND === 'rgw')('finds every planted problem, changes nothing without --repair, repairs what it can with it', async () => {
    const services = servicesOn(makeStore());
    await plant(services, backdate());
    const before = await seen(services, pose('gen_1', 'nothumb'));

    const found = await run(services);
    expect(summary(found.findings)).toEqual(EXPECTED(false));
    expect(found.result).toMatchObject({
      repair: false,
      problems: 15,
      unrepaired: 15,
      checked: { generations: 3, poses: 17, stagedUploads: 2 },
    });
    const detail = (key: string) => found.findings.find((f) => f.key === key)?.detail;
    expect(detail('poses/gen_1/trunc.png')).toMatch(/^not decodable \(/);
    expect(detail('poses/gen_1/garbage.png')).toBe('not an image (3000 bytes of something else)');
    expect(detail('poses/gen_1/html.png')).toBe('an HTML page, not an image');
    expect(detail('poses/gen_1/jpeg.png')).toBe('a JPEG, not the PNG published images are');
    expect(detail('poses/gen_1/badthumb_thumb.png')).toBe('16x16, not 400x400');
    expect(detail('records/gen_1/sizes.json')).toMatch(/^the record says 1 bytes, the image has \d+; 640x64, the image is 48x64$/);
    for (const key of UNREPAIRABLE) {
      expect(found.findings.find((f) => f.key === key)?.cannotRepair).toBe(
        `nothing valid to rebuild it from: delete the pose (DELETE /poses/gen_1/${path.basename(key, '.png')}, or pose-storage cleanup for its generation) or upload it again`,
      );
    }
    expect(await seen(services, pose('gen_1', 'nothumb'))).toEqual(before); // nothing changed

    const repaired = await run(services, { repair: true });
    expect(summary(repaired.findings)).toEqual(EXPECTED(true));
    expect(repaired.result).toMatchObject({ repair: true, problems: 15, unrepaired: 3 });
    await expectRepaired(services);

    const after = await run(services);
    expect(summary(after.findings)).toEqual([
      ['broken_image', 'poses/gen_1/garbage.png', false],
      ['broken_image', 'poses/gen_1/html.png', false],
      ['broken_image', 'poses/gen_1/trunc.png', false],
      ['rejection_record', 'records/gen_2/rej.json', false],
      ['busy_pose', 'locks/gen_3/busy.json', false],
    ]);
  });
});

describe.each([
  ['local', () => new DirectoryStore({ root, uploadBaseUrl: 'http://127.0.0.1:1' }), () => backdateFile],
  ['r2', () => bucket, () => server.backdate!],
] as const)('verify --repair in %s mode', (mode, makeStore, backdate) => {
  it.skipIf(mode === 'r2' && S3_TEST_BACKEND === 'rgw')('pairs no files it has not checked belong together: a re-save that died after its thumbnail and before its record', async () => {
    const store = makeStore();
    const services = servicesOn(store);
    const ref = pose('gen_4', 'resave');
    const [red, blue] = [await image(3, 60, 40), await image(6, 40, 90)];
    await services.storage.savePoseWithThumbnail({ ...ref, imageBuffer: red });
    // The re-save with blue: its process dies once the thumbnail is written (the record, the clean-up of the
    // kept-aside image and the lock's release never happen).
    let dead = false;
    const dying = wrapStore(store, {
      put: (key, body, options) => {
        if (key === recordKey(ref)) dead = true;
        return dead ? Promise.reject(new Error('the process died')) : store.put(key, body, options);
      },
      delete: () => Promise.reject(new Error('the process died')),
    });
    await expect(servicesOn(dying).storage.savePoseWithThumbnail({ ...ref, imageBuffer: blue })).rejects.toThrow();
    expect(await store.head(backupKey(ref))).toBeDefined();
    await backdate()(lockKey(ref), 600_000); // time passes: its lock expired

    const found = await run(services);
    expect(summary(found.findings).filter(([, key]) => String(key).includes('resave'))).toEqual([
      ['leftover_backup', 'backups/gen_4/resave.png', false],
      ['expired_lock', 'locks/gen_4/resave.json', false],
      ['record_mismatch', 'records/gen_4/resave.json', false],
    ]);
    expect(found.findings.find((f) => f.kind === 'record_mismatch')?.detail).toMatch(/other versions than the image and the thumbnail now published/);

    await run(services, { repair: true });
    // Whole: the image the record names (red, put back), with a thumbnail made from it, not blue's.
    const [imageNow, thumbnailNow] = await Promise.all([store.get(imageKey(ref)), store.get(thumbnailKey(ref))]);
    expect(imageNow?.body.equals(red)).toBe(true);
    expect(thumbnailNow?.body.equals((await services.storage.render(red)).thumbnail)).toBe(true);
    expect(await services.uploads.getStatus(ref)).toMatchObject({ status: 'ready', width: 60, height: 40 });
    expect(summary((await run(services)).findings).filter(([, key]) => String(key).includes('resave'))).toEqual([]);
  });

  it('a custom file saved beside the poses is no pose: verify finds nothing, and --repair makes it nothing', async () => {
    const store = makeStore();
    const services = servicesOn(store);
    await services.storage.savePoseWithThumbnail({ ...pose('gen_abc123', 'pose_xyz789'), imageBuffer: await image(2) });
    const custom = await services.storage.saveFile('gen_abc123/custom/pose_xyz789_200.png', await image(4, 200, 200));
    expect((await run(services)).result).toMatchObject({ problems: 0 });
    expect((await run(services, { repair: true })).result).toMatchObject({ problems: 0 });
    expect(await store.head(recordKey(pose('gen_abc123', 'custom')))).toBeUndefined();
    expect(await store.head(custom.key)).toBeDefined();
  });
});

describe.each([
  ['local', () => new DirectoryStore({ root, uploadBaseUrl: 'http://127.0.0.1:1' })],
  ['r2', () => bucket],
] as const)('verify with variants in %s mode', (_mode, makeStore) => {
  it('finds missing, broken and no longer configured variants and the files a record does not name, and repairs them', async () => {
    const store = makeStore();
    const config = parseConfig({ STORAGE_MODE: 'local', UPLOAD_PATH: root, POSE_VARIANTS: 'thumb.webp:400x400,preview.avif:64w' });
    const services = createServices({ config, store, logger: createLogger(() => undefined) });
    const [thumbWebp, previewAvif] = services.storage.files.variants;
    const save = async (poseId: string, n: number) => services.storage.savePoseWithThumbnail({ ...pose('gen_v', poseId), imageBuffer: await image(n, 120, 90) });
    await save('ok', 1);
    await save('missing', 2);
    await store.delete([fileKey(pose('gen_v', 'missing'), thumbWebp!)]);
    await save('broken', 3);
    await store.put(fileKey(pose('gen_v', 'broken'), previewAvif!), await image(3, 64, 48), PNG); // a PNG under an AVIF name
    await save('stranger', 4);
    // A valid WebP of another image: it decodes as a thumb.webp should, but it is not the one the record names.
    await store.put(fileKey(pose('gen_v', 'stranger'), thumbWebp!), await sharp(await image(9)).resize(400, 400).webp().toBuffer(), { contentType: 'image/webp' });
    await save('gone', 5);
    await store.put('poses/gen_v/gone_old.webp', await sharp(await image(5)).webp().toBuffer(), { contentType: 'image/webp' }); // a variant no longer listed

    const found = await run(services);
    expect(summary(found.findings)).toEqual([
      ['unconfigured_variant', 'poses/gen_v/gone_old.webp', false],
      ['missing_variant', 'poses/gen_v/missing_thumb.webp', false],
      ['broken_variant', 'poses/gen_v/broken_preview.avif', false],
      ['record_mismatch', 'records/gen_v/stranger.json', false],
    ].sort((a, b) => (a[1]! < b[1]! ? -1 : 1)));
    expect(found.findings.find((f) => f.kind === 'broken_variant')?.detail).toBe('a PNG, not an AVIF');
    expect(found.findings.find((f) => f.kind === 'record_mismatch')?.detail).toBe('the record says other versions than the thumb.webp variant now published');

    const repaired = await run(services, { repair: true });
    expect(repaired.result).toMatchObject({ problems: 4, unrepaired: 0 });
    expect((await run(services)).result).toMatchObject({ problems: 0 });
    expect(await store.head('poses/gen_v/gone_old.webp')).toBeUndefined();
    // Every variant is the one the image renders to.
    for (const poseId of ['ok', 'missing', 'broken', 'stranger']) {
      const ref = pose('gen_v', poseId);
      const rendered = await services.storage.render((await store.get(imageKey(ref)))!.body);
      for (const file of services.storage.files.variants) {
        expect((await store.get(fileKey(ref, file)))?.body.equals(rendered.variants[file.role]!), `${poseId} ${file.role}`).toBe(true);
      }
    }
  });
});

describe('verify', () => {
  it('reports progress by poses and image bytes, from a first count to the end', async () => {
    const services = servicesOn(new DirectoryStore({ root, uploadBaseUrl: 'http://127.0.0.1:1' }));
    for (let i = 0; i < 5; i++) await services.storage.savePoseWithThumbnail({ generationId: `gen_${i % 2}`, poseId: `p${i}`, imageBuffer: await image(i) });
    await services.storage.store.put(newStagingKey(pose('gen_0', 'pending')), await image(9), PNG);
    const seenProgress: { done: number; total: number; bytes: number }[] = [];
    await run(services, { onProgress: (p) => seenProgress.push({ done: p.done.files, total: p.total.files, bytes: p.total.bytes }) });
    expect(seenProgress.map((p) => p.done)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(new Set(seenProgress.map((p) => p.total))).toEqual(new Set([6]));
    expect(seenProgress[0]!.bytes).toBeGreaterThan(0);
  });
});

describe('checkImage', () => {
  it('decodes in full: a valid PNG or JPEG gives its size; truncated, garbage and HTML say what they are', async () => {
    const png = await image(1, 400, 300);
    expect(await checkImage(png, MAX_PIXELS)).toEqual({ ok: true, format: 'png', width: 400, height: 300 });
    expect(await checkImage(await sharp(png).jpeg().toBuffer(), MAX_PIXELS)).toEqual({ ok: true, format: 'jpeg', width: 400, height: 300 });
    expect(await checkImage(png.subarray(0, 60), MAX_PIXELS)).toMatchObject({ ok: false, problem: expect.stringMatching(/^not decodable/) });
    expect(await checkImage(HTML, MAX_PIXELS)).toEqual({ ok: false, problem: 'an HTML page, not an image' });
    expect(await checkImage(Buffer.alloc(0), MAX_PIXELS)).toEqual({ ok: false, problem: 'an empty file, not an image' });
    expect(await checkImage(png, 1000)).toMatchObject({ ok: false, problem: expect.stringMatching(/pixel limit/) });
  });

  it('thumbnailProblem accepts a 400x400 PNG and names what is wrong with anything else', async () => {
    const square = await sharp({ create: { width: 400, height: 400, channels: 4, background: '#fff' } }).png().toBuffer();
    expect(await thumbnailProblem(square, MAX_PIXELS)).toBeUndefined();
    expect(await thumbnailProblem(await sharp(square).jpeg().toBuffer(), MAX_PIXELS)).toBe('a JPEG, not a PNG');
    expect(await thumbnailProblem(await image(1, 400, 300), MAX_PIXELS)).toBe('400x300, not 400x400');
    expect(await thumbnailProblem(square.subarray(0, 60), MAX_PIXELS)).toMatch(/^not decodable/);
  });
});
