/**
 * A failed write never destroys what was published before (RELIABILITY.md, invariant 2). A pose is published
 * (red), then a new upload or save of it (blue) fails at one write of its publication: the published pose stays
 * whole (the red image with the red thumbnail, or, once both blue files are written, the blue pair), the
 * upload stays staged for the retry, nothing is left behind (no lock, no backup, no temporary file), and the
 * retry ends with the blue pose.
 *
 * On both adapters with a failure injected at each write, and on a real full disk (a tmpfs filled up at the
 * moment the thumbnail is written).
 */
import { writeFileSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DiskFullError, StoreUnavailableError } from '../lib/errors.ts';
import { recordKey, type PoseRef } from '../lib/layout.ts';
import { imageKey, thumbnailKey } from '../lib/pose-files.ts';
import { DirectoryStore } from '../lib/storage/directory-store.ts';
import type { ObjectStore } from '../lib/storage/object-store.ts';
import { S3Store } from '../lib/storage/s3-store.ts';
import { startS3Server, type S3TestServer } from './support/s3-server.ts';
import { mountTmpfs, tmpfs, unmount } from './support/tmpfs.ts';
import { backupKey, fileKey } from '../lib/pose-files.ts';
import { poseState, quietServices as services, stage, twoUploads, VARIANT_FILES, VARIANTS_ENV, type TwoUploads } from './support/two-uploads.ts';
import { wrapStore } from './support/wrap-store.ts';

let uploads: TwoUploads;
let withVariants: TwoUploads;
let server: S3TestServer;
let dir: string;

beforeAll(async () => {
  [uploads, withVariants, server] = await Promise.all([twoUploads(), twoUploads(VARIANT_FILES), startS3Server()]);
  dir = await mkdtemp(path.join(os.tmpdir(), 'pose-republish-'));
});

afterAll(async () => {
  await server.stop();
  await rm(dir, { recursive: true, force: true });
});

/** Which upload the pose's image and thumbnail are, what its record says, and what else is left of it. */
async function stateOf(store: ObjectStore, pose: PoseRef) {
  const [image, thumbnail, record] = await Promise.all([store.get(imageKey(pose)), store.get(thumbnailKey(pose)), store.get(recordKey(pose))]);
  const left: string[] = [];
  for (const area of ['staging', 'locks', 'backups']) for await (const _object of store.list(`${area}/${pose.generationId}/`)) left.push(area);
  const status = record ? (JSON.parse(record.body.toString()) as { status: string }).status : 'none';
  return { image: uploads.which(image?.body, 'image'), thumbnail: uploads.which(thumbnail?.body, 'thumbnail'), record: status, left };
}

/** The writes of a re-publication, in order, as the store operation and key that carry each. */
const writes: { step: string; operation: 'put' | 'copy'; key: (pose: PoseRef) => string; after: 'red' | 'blue' }[] = [
  { step: 'keeping the published image aside', operation: 'copy', key: (pose) => `backups/${pose.generationId}/${pose.poseId}.png`, after: 'red' },
  { step: 'publishing the image', operation: 'copy', key: imageKey, after: 'red' },
  { step: 'writing the thumbnail', operation: 'put', key: thumbnailKey, after: 'red' },
  { step: 'writing the record', operation: 'put', key: recordKey, after: 'blue' },
];

/** The image is published by a copy of the upload, or by a PUT on a store without the copy-source condition (RGW). */
async function asTheStoreWrites(store: ObjectStore, step: string, operation: 'put' | 'copy'): Promise<'put' | 'copy'> {
  return step === 'publishing the image' && !(await store.dialect()).copySourceCondition ? 'put' : operation;
}

const adapters = {
  directory: () => new DirectoryStore({ root: dir, uploadBaseUrl: 'http://127.0.0.1:1' }),
  's3 server': () => new S3Store(server.r2Config),
} as const;

describe.each(Object.keys(adapters) as (keyof typeof adapters)[])('a re-publication failing part-way on the %s store', (adapter) => {
  it.each(writes)('at $step: the published pose stays whole, and the retry publishes the new upload', async ({ step, operation: written, key, after }) => {
    const store = adapters[adapter]();
    const operation = await asTheStoreWrites(store, step, written);
    const pose = { generationId: `gen_${adapter.length}_${writes.findIndex((write) => write.step === step)}`, poseId: 'pose' };
    await services(store, dir).storage.savePoseWithThumbnail({ imageBuffer: uploads.red.bytes, ...pose });

    // The store fails that one write once, as a store that is briefly unavailable does.
    let failed = false;
    const failOnce = (target: string) => {
      if (failed || target !== key(pose)) return;
      failed = true;
      throw new StoreUnavailableError(`injected failure of the ${operation} to ${target}`);
    };
    const faulty = wrapStore(store, {
      put: async (...args) => (operation === 'put' && failOnce(args[0]), store.put(...args)),
      copy: async (...args) => (operation === 'copy' && failOnce(args[1]), store.copy(...args)),
    });
    const app = services(faulty, dir);
    const staged = await stage(store, pose, uploads.blue);

    await expect(app.uploads.processUpload({ key: staged })).rejects.toBeInstanceOf(StoreUnavailableError);
    expect(failed).toBe(true);
    // Whole, and the upload kept for the retry; the lock and the kept-aside image are gone.
    expect(await stateOf(store, pose)).toEqual({ image: after, thumbnail: after, record: 'ready', left: ['staging'] });

    expect((await app.uploads.processUpload({ key: staged }))?.status).toBe('ready');
    expect(await stateOf(store, pose)).toEqual({ image: 'blue', thumbnail: 'blue', record: 'ready', left: [] });
  });
});

/** With variants, each write of the table's order: every file but the last kept aside, every file, the record. */
const variantWrites: { step: string; operation: 'put' | 'copy'; key: (pose: PoseRef) => string; after: 'red' | 'blue' }[] = [
  ...VARIANT_FILES.all.slice(0, -1).map((file) => ({ step: `keeping the ${file.role} aside`, operation: 'copy' as const, key: (pose: PoseRef) => backupKey(pose, file), after: 'red' as const })),
  ...VARIANT_FILES.all.map((file, i) => ({
    step: `publishing the ${file.role}`,
    operation: i === 0 ? ('copy' as const) : ('put' as const),
    key: (pose: PoseRef) => fileKey(pose, file),
    after: 'red' as const,
  })),
  { step: 'writing the record', operation: 'put', key: recordKey, after: 'blue' },
];

describe.each(Object.keys(adapters) as (keyof typeof adapters)[])('a re-publication with variants failing part-way on the %s store', (adapter) => {
  it.each(variantWrites)('at $step: every file of the published pose stays, and the retry publishes the new upload', async ({ step, operation: written, key, after }) => {
    const store = adapters[adapter]();
    const operation = await asTheStoreWrites(store, step, written);
    const pose = { generationId: `gen_v${adapter.length}_${variantWrites.findIndex((write) => write.step === step)}`, poseId: 'pose' };
    await services(store, dir, VARIANTS_ENV).storage.savePoseWithThumbnail({ imageBuffer: withVariants.red.bytes, ...pose });
    let failed = false;
    const failOnce = (target: string) => {
      if (failed || target !== key(pose)) return;
      failed = true;
      throw new StoreUnavailableError(`injected failure of the ${operation} to ${target}`);
    };
    const faulty = wrapStore(store, {
      put: async (...args) => (operation === 'put' && failOnce(args[0]), store.put(...args)),
      copy: async (...args) => (operation === 'copy' && failOnce(args[1]), store.copy(...args)),
    });
    const app = services(faulty, dir, VARIANTS_ENV);
    const staged = await stage(store, pose, withVariants.blue);

    await expect(app.uploads.processUpload({ key: staged })).rejects.toBeInstanceOf(StoreUnavailableError);
    expect(failed).toBe(true);
    expect(await poseState(store, pose, withVariants, VARIANT_FILES)).toEqual({ files: after, record: 'ready', staged: 1 });
    const backups: string[] = [];
    for await (const object of store.list(`backups/${pose.generationId}/`)) backups.push(object.key);
    expect(backups, 'no file kept aside outlives the publication').toEqual([]);

    expect((await app.uploads.processUpload({ key: staged }))?.status).toBe('ready');
    expect(await poseState(store, pose, withVariants, VARIANT_FILES)).toEqual({ files: 'blue', record: 'ready', staged: 0 });
  });
});

describe(`a re-publication on a full disk (a real 2 MiB tmpfs)${tmpfs.note}`, () => {
  let mountPoint: string;
  let uploadPath: string;
  let store: DirectoryStore;
  const filler = () => path.join(mountPoint, 'filler');

  beforeAll(async () => {
    if (!tmpfs.ok) return;
    mountPoint = await mkdtemp(path.join(os.tmpdir(), 'pose-republish-tmpfs-'));
    mountTmpfs(mountPoint, '2m');
    uploadPath = path.join(mountPoint, 'uploads');
    store = new DirectoryStore({ root: uploadPath, uploadBaseUrl: 'http://127.0.0.1:1' });
  });

  afterEach(async () => {
    if (tmpfs.ok) await rm(filler(), { force: true });
  });

  afterAll(async () => {
    if (!mountPoint) return;
    unmount(mountPoint);
    await rm(mountPoint, { recursive: true, force: true });
  });

  /** The store, with the disk filled up to the last byte just before the thumbnail is written. */
  function fillingUpAtTheThumbnail(pose: PoseRef): ObjectStore {
    return wrapStore(store, {
      put: async (...args) => {
        if (args[0] === thumbnailKey(pose)) {
          try {
            writeFileSync(filler(), Buffer.alloc(4 * 1024 * 1024));
          } catch (error) {
            if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
          }
        }
        return store.put(...args);
      },
    });
  }

  const leftovers = async () => (await readdir(path.join(uploadPath, '.tmp'))).length;

  it.skipIf(!tmpfs.ok)('savePoseWithThumbnail: DiskFullError, the published pose stays whole; once space is freed the save succeeds', async () => {
    const pose = { generationId: 'gen_full_save', poseId: 'pose' };
    await services(store, uploadPath).storage.savePoseWithThumbnail({ imageBuffer: uploads.red.bytes, ...pose });

    const save = services(fillingUpAtTheThumbnail(pose), uploadPath).storage.savePoseWithThumbnail({ imageBuffer: uploads.blue.bytes, ...pose });
    await expect(save).rejects.toBeInstanceOf(DiskFullError);
    expect(await stateOf(store, pose)).toEqual({ image: 'red', thumbnail: 'red', record: 'ready', left: [] });
    expect(await leftovers()).toBe(0);

    await rm(filler());
    await services(store, uploadPath).storage.savePoseWithThumbnail({ imageBuffer: uploads.blue.bytes, ...pose });
    expect(await stateOf(store, pose)).toEqual({ image: 'blue', thumbnail: 'blue', record: 'ready', left: [] });
  });

  it.skipIf(!tmpfs.ok)('an upload: DiskFullError, the published pose stays whole, the upload stays staged and is published once space is freed', async () => {
    const pose = { generationId: 'gen_full_upload', poseId: 'pose' };
    await services(store, uploadPath).storage.savePoseWithThumbnail({ imageBuffer: uploads.red.bytes, ...pose });
    const staged = await stage(store, pose, uploads.blue);

    await expect(services(fillingUpAtTheThumbnail(pose), uploadPath).uploads.processUpload({ key: staged })).rejects.toBeInstanceOf(DiskFullError);
    expect(await stateOf(store, pose)).toEqual({ image: 'red', thumbnail: 'red', record: 'ready', left: ['staging'] });
    expect(await leftovers()).toBe(0);

    await rm(filler());
    expect((await services(store, uploadPath).uploads.processUpload({ key: staged }))?.status).toBe('ready');
    expect(await stateOf(store, pose)).toEqual({ image: 'blue', thumbnail: 'blue', record: 'ready', left: [] });
  });
});
