/**
 * migrate() between a real directory and a real S3-compatible server (s3rver, signatures checked): byte
 * equality, headers, resume after failures and after an abort, dry runs, --verify, the concurrency bound, and
 * the way back (r2 -> local, where the target has no ETag).
 */
import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startS3Server, type S3TestServer } from '../../test/support/s3-server.ts';
import { wrapStore } from '../../test/support/wrap-store.ts';
import { DirectoryStore } from '../storage/directory-store.ts';
import { type ObjectStore } from '../storage/object-store.ts';
import { createS3Client } from '../storage/s3-client.ts';
import { S3Store } from '../storage/s3-store.ts';
import { contentTypeOf, migrate, type MigrationProgress } from './migrate.ts';

/** Cache-Control of published files with the default CACHE_MAX_AGE_SECONDS. */
const PUBLISHED_CACHE = 'public, max-age=300';

let server: S3TestServer;
let client: S3Client;
let bucket: S3Store;
let root: string;
let local: DirectoryStore;

beforeAll(async () => {
  server = await startS3Server();
  client = createS3Client(server.r2Config);
  bucket = new S3Store(server.r2Config, client);
});

afterAll(async () => {
  client?.destroy();
  await server?.stop();
});

beforeEach(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'migrate-'));
  local = new DirectoryStore({ root, uploadBaseUrl: 'http://127.0.0.1:1' });
});

afterEach(async () => {
  await bucket.delete(await keysOf(bucket, ''));
  await rm(root, { recursive: true, force: true });
});

async function keysOf(store: ObjectStore, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const object of store.list(prefix)) keys.push(object.key);
  return keys;
}

/** A small PNG of its own: 16x16, a colour derived from `n`. */
function png(n: number): Promise<Buffer> {
  return sharp({ create: { width: 16, height: 16, channels: 3, background: { r: n % 256, g: Math.floor(n / 256) % 256, b: 77 } } })
    .png()
    .toBuffer();
}

/** `count` poses (image and thumbnail, all distinct) in generations of 20; returns every key with its bytes. */
async function seed(store: ObjectStore, count: number): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  await Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const generation = `gen_${String(Math.floor(i / 20)).padStart(2, '0')}`;
      const [image, thumbnail] = await Promise.all([png(2 * i), png(2 * i + 1)]);
      files.set(`poses/${generation}/pose_${i}.png`, image);
      files.set(`poses/${generation}/pose_${i}_thumb.png`, thumbnail);
    }),
  );
  for (const [key, body] of files) await store.put(key, body, { contentType: 'image/png' });
  return files;
}

async function expectSameBytes(store: ObjectStore, files: Map<string, Buffer>): Promise<void> {
  expect((await keysOf(store, 'poses/')).sort()).toEqual([...files.keys()].sort());
  for (const [key, body] of files) {
    const stored = await store.get(key);
    expect(stored?.body.equals(body), key).toBe(true);
  }
}


/** A store whose puts fail once `allowed` of them have succeeded (a connection that drops mid-migration). */
function failingAfter(store: ObjectStore, allowed: number): ObjectStore {
  let puts = 0;
  return wrapStore(store, {
    put: async (key, body, putOptions) => {
      if (puts >= allowed) throw new Error('connection reset by peer');
      puts++;
      return store.put(key, body, putOptions);
    },
  });
}

const options = (source: ObjectStore, target: ObjectStore) => ({ source, target, from: 'local', to: 'r2' });

describe('migrate local -> r2', () => {
  it('copies 200 poses to the bucket byte for byte, with Content-Type and Cache-Control, and nothing else', async () => {
    const files = await seed(local, 200);
    await local.put('staging/gen_00/pose_0/0b6c5d0e-2f0a-4c54-9d0e-5b8a8f5f0a11', Buffer.from('staged'), { contentType: 'image/png' });
    await local.put('locks/gen_00/pose_1.json', Buffer.from('{}'), { contentType: 'application/json' });
    const progress: MigrationProgress[] = [];

    const result = await migrate({ cacheControl: PUBLISHED_CACHE, ...options(local, bucket), onProgress: (p) => progress.push(p) });

    const bytes = [...files.values()].reduce((sum, body) => sum + body.length, 0);
    expect(result.total).toEqual({ files: 400, bytes });
    expect(result.copied).toEqual({ files: 400, bytes });
    expect(result.skipped.files).toBe(0);
    expect(result.failed.files).toBe(0);
    expect(result.aborted).toBe(false);
    await expectSameBytes(bucket, files);
    expect(await keysOf(bucket, '')).toHaveLength(400); // no staging object, no lock

    const head = await client.send(new HeadObjectCommand({ Bucket: server.bucket, Key: 'poses/gen_03/pose_61_thumb.png' }));
    expect(head.ContentType).toBe('image/png');
    expect(head.CacheControl).toBe(PUBLISHED_CACHE);

    // Progress: totals known first, then one update per object, ending at the totals.
    expect(progress[0]).toMatchObject({ total: { files: 400, bytes }, done: { files: 0, bytes: 0 } });
    expect(progress).toHaveLength(401);
    expect(progress.at(-1)).toMatchObject({ done: { files: 400, bytes }, copied: { files: 400, bytes } });

    // Run again: everything is there with the same size and MD5 (the bucket's ETag), nothing is copied.
    const again = await migrate({ cacheControl: PUBLISHED_CACHE, ...options(local, bucket) });
    expect(again.copied.files).toBe(0);
    expect(again.skipped).toEqual({ files: 400, bytes });
  });

  it('copies records/ too, after poses/, as JSON without Cache-Control; and back into a directory', async () => {
    const files = await seed(local, 6);
    const records = new Map<string, Buffer>();
    for (let i = 0; i < 6; i++) {
      const body = Buffer.from(JSON.stringify({ status: 'ready', pose: i }));
      records.set(`records/gen_00/pose_${i}.json`, body);
      await local.put(`records/gen_00/pose_${i}.json`, body, { contentType: 'application/json' });
    }
    const started: string[] = [];
    const recording = wrapStore(bucket, {
      put: (key, body, putOptions) => {
        started.push(key);
        return bucket.put(key, body, putOptions);
      },
    });
    const result = await migrate({ cacheControl: PUBLISHED_CACHE, ...options(local, recording), concurrency: 4 });
    expect(result.copied.files).toBe(18);
    await expectSameBytes(bucket, files);
    for (const [key, body] of records) expect((await bucket.get(key))?.body.equals(body), key).toBe(true);
    // Every published file is started before the first record.
    const firstRecord = started.findIndex((key) => key.startsWith('records/'));
    expect(started.slice(0, firstRecord).every((key) => key.startsWith('poses/'))).toBe(true);
    expect(firstRecord).toBe(12);
    const head = await client.send(new HeadObjectCommand({ Bucket: server.bucket, Key: 'records/gen_00/pose_3.json' }));
    expect(head.ContentType).toBe('application/json');
    expect(head.CacheControl).toBeUndefined();

    const back = new DirectoryStore({ root: path.join(root, 'back'), uploadBaseUrl: 'http://127.0.0.1:1' });
    const returned = await migrate({ cacheControl: PUBLISHED_CACHE, source: bucket, target: back, from: 'r2', to: 'local' });
    expect(returned.copied.files).toBe(18);
    for (const [key, body] of records) expect((await back.get(key))?.body.equals(body), key).toBe(true);
    const again = await migrate({ cacheControl: PUBLISHED_CACHE, source: bucket, target: back, from: 'r2', to: 'local' });
    expect(again).toMatchObject({ copied: { files: 0 }, skipped: { files: 18 } });
  });

  it('resumes after failures: the second run copies only what the first did not', async () => {
    const files = await seed(local, 40);
    const flaky = failingAfter(bucket, 30);

    const first = await migrate({ cacheControl: PUBLISHED_CACHE, ...options(local, flaky), concurrency: 4 });
    expect(first.copied.files).toBe(30);
    expect(first.failed.files).toBe(50);
    expect(first.failures).toHaveLength(50);
    expect(first.failures[0]?.reason).toBe('connection reset by peer');
    expect(await keysOf(bucket, '')).toHaveLength(30);

    const second = await migrate({ cacheControl: PUBLISHED_CACHE, ...options(local, bucket) });
    expect(second.skipped.files).toBe(30);
    expect(second.copied.files).toBe(50);
    expect(second.failed.files).toBe(0);
    await expectSameBytes(bucket, files);
  });

  it('resumes after an abort: copies in flight finish, the rest is copied by the next run', async () => {
    const files = await seed(local, 40);
    const controller = new AbortController();

    const first = await migrate({ cacheControl: PUBLISHED_CACHE,
      ...options(local, bucket),
      concurrency: 4,
      signal: controller.signal,
      onProgress: (p) => p.done.files >= 25 && controller.abort(),
    });
    expect(first.aborted).toBe(true);
    expect(first.failed.files).toBe(0);
    expect(first.copied.files).toBeGreaterThanOrEqual(25);
    expect(first.copied.files).toBeLessThanOrEqual(28); // at most the 3 other copies in flight
    expect(await keysOf(bucket, '')).toHaveLength(first.copied.files);

    const second = await migrate({ cacheControl: PUBLISHED_CACHE, ...options(local, bucket) });
    expect(second.aborted).toBe(false);
    expect(second.skipped.files).toBe(first.copied.files);
    expect(second.copied.files).toBe(80 - first.copied.files);
    await expectSameBytes(bucket, files);
  });

  it('copies again an object whose bytes changed though its size did not (MD5 differs)', async () => {
    const files = await seed(local, 5);
    await migrate({ cacheControl: PUBLISHED_CACHE, ...options(local, bucket) });
    const key = 'poses/gen_00/pose_3.png';
    const changed = Buffer.from(files.get(key)!);
    changed[changed.length - 20] = changed[changed.length - 20]! ^ 0xff;
    await writeFile(path.join(root, key), changed);
    files.set(key, changed);

    const result = await migrate({ cacheControl: PUBLISHED_CACHE, ...options(local, bucket) });
    expect(result.copied.files).toBe(1);
    expect(result.skipped.files).toBe(9);
    await expectSameBytes(bucket, files);
  });

  it('--dry-run compares and counts, and writes nothing', async () => {
    const files = await seed(local, 10);
    const dry = await migrate({ cacheControl: PUBLISHED_CACHE, ...options(local, bucket), dryRun: true });
    expect(dry.dryRun).toBe(true);
    expect(dry.copied.files).toBe(20); // would copy
    expect(await keysOf(bucket, '')).toEqual([]);

    // Half there already: the dry run sees which.
    const half = [...files].slice(0, 10);
    for (const [key, body] of half) await bucket.put(key, body, { contentType: 'image/png' });
    const partial = await migrate({ cacheControl: PUBLISHED_CACHE, ...options(local, bucket), dryRun: true });
    expect(partial.skipped.files).toBe(10);
    expect(partial.copied.files).toBe(10);
    expect(await keysOf(bucket, '')).toHaveLength(10);
  });

  it('--verify reads every copy back: equal copies count as verified, a copy that differs fails', async () => {
    const files = await seed(local, 5);
    const good = await migrate({ cacheControl: PUBLISHED_CACHE, ...options(local, bucket), verify: true });
    expect(good.verified.files).toBe(10);
    expect(good.failed.files).toBe(0);

    await bucket.delete(await keysOf(bucket, ''));
    const corrupting = wrapStore(bucket, {
      put: (key, body, putOptions) =>
        bucket.put(key, key.endsWith('pose_2.png') ? Buffer.concat([Buffer.from(body), Buffer.from('!')]) : body, putOptions),
    });
    const bad = await migrate({ cacheControl: PUBLISHED_CACHE, ...options(local, corrupting), verify: true });
    expect(bad.verified.files).toBe(9);
    expect(bad.failed.files).toBe(1);
    expect(bad.failures).toEqual([
      { key: 'poses/gen_00/pose_2.png', reason: expect.stringMatching(/^verification failed: the copy differs/) as unknown as string },
    ]);
    expect(files.size).toBe(10);
  });

  it('keeps at most `concurrency` copies in flight', async () => {
    await seed(local, 30);
    let inFlight = 0;
    let most = 0;
    const counting = wrapStore(bucket, {
      put: async (key, body, putOptions) => {
        most = Math.max(most, ++inFlight);
        try {
          await new Promise((resolve) => setTimeout(resolve, 2));
          return await bucket.put(key, body, putOptions);
        } finally {
          inFlight--;
        }
      },
    });
    const result = await migrate({ cacheControl: PUBLISHED_CACHE, ...options(local, counting), concurrency: 3 });
    expect(result.copied.files).toBe(60);
    expect(most).toBe(3);
  });

  it('fails before copying anything when the target bucket does not exist', async () => {
    await seed(local, 2);
    const missing = new S3Store({ ...server.r2Config, bucketName: 'no-such-bucket' }, client);
    await expect(migrate({ cacheControl: PUBLISHED_CACHE, ...options(local, missing) })).rejects.toThrow(/NoSuchBucket/);
  });

  it('refuses a concurrency outside 1-64', async () => {
    await expect(migrate({ cacheControl: PUBLISHED_CACHE, ...options(local, bucket), concurrency: 0 })).rejects.toThrow(RangeError);
    await expect(migrate({ cacheControl: PUBLISHED_CACHE, ...options(local, bucket), concurrency: 65 })).rejects.toThrow(RangeError);
  });
});

describe('migrate r2 -> local', () => {
  it('copies the bucket into the directory; a second run hashes the files (no ETag) and skips them', async () => {
    const files = await seed(bucket, 15);
    const first = await migrate({ cacheControl: PUBLISHED_CACHE, source: bucket, target: local, from: 'r2', to: 'local', verify: true });
    expect(first.copied.files).toBe(30);
    expect(first.verified).toEqual(first.copied);
    await expectSameBytes(local, files);

    const key = 'poses/gen_00/pose_7_thumb.png';
    const changed = Buffer.from(files.get(key)!);
    changed[changed.length - 20] = changed[changed.length - 20]! ^ 0x01;
    await writeFile(path.join(root, key), changed); // same size, other bytes: the bucket's copy wins again

    const second = await migrate({ cacheControl: PUBLISHED_CACHE, source: bucket, target: local, from: 'r2', to: 'local' });
    expect(second.skipped.files).toBe(29);
    expect(second.copied.files).toBe(1);
    await expectSameBytes(local, files);
  });
});

describe('contentTypeOf', () => {
  it('goes by extension', () => {
    expect(contentTypeOf('poses/g/p.png')).toBe('image/png');
    expect(contentTypeOf('poses/g/p.PNG')).toBe('image/png');
    expect(contentTypeOf('poses/g/p.jpeg')).toBe('image/jpeg');
    expect(contentTypeOf('poses/g/p.webp')).toBe('image/webp');
    expect(contentTypeOf('poses/g/p')).toBe('application/octet-stream');
  });
});
