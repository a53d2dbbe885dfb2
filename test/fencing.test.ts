/**
 * Fencing and clocks (RELIABILITY.md, invariant 1 and 3), on both adapters:
 * - a write still in flight when its writer's lock expires never lands after the lock was taken over: a
 *   thumbnail PUT held on the wire (the S3 server behind a stalling proxy) or a write stalled in a slow
 *   store (the directory) past the lock's deadline is dropped, and the pose ends whole with the taker's upload;
 * - "newest wins" never compares the clocks of two hosts: an upload made after a save returned wins whether the
 *   saving host's clock is fast or slow, and so does an upload whose URL a slow host issued.
 * Lock deadlines are shortened here (lib/deadlines.ts holds the deployed ones); the S3 server dates objects to the
 * second, which the margin covers.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { parseConfig } from '../lib/config.ts';
import { lockTtlMs, type LockTiming } from '../lib/deadlines.ts';
import { PoseBusyError } from '../lib/errors.ts';
import { newStagingKey, recordKey, stagingPrefix, type PoseRef } from '../lib/layout.ts';
import { imageKey, thumbnailKey } from '../lib/pose-files.ts';
import { createLogger } from '../lib/logger.ts';
import { createServices, type Services } from '../lib/services.ts';
import { DirectoryStore } from '../lib/storage/directory-store.ts';
import type { ObjectStore } from '../lib/storage/object-store.ts';
import { S3Store } from '../lib/storage/s3-store.ts';
import { startFlakyProxy, type FlakyProxy } from './support/flaky-proxy.ts';
import { startS3Server, type S3TestServer } from './support/s3-server.ts';
import { testLockTiming } from './support/lock-expiry.ts';
import { twoUploads, type TwoUploads, type Upload } from './support/two-uploads.ts';
import { wrapStore } from './support/wrap-store.ts';

/** Holders write for at most 500 ms (2 s on RGW); a lock may be taken over 1.5 s after that. */
const TIMING: LockTiming = testLockTiming({ holdMs: 500, marginMs: 1500 });

let uploads: TwoUploads;
let server: S3TestServer;
let proxy: FlakyProxy;
let dir: string;

beforeAll(async () => {
  [uploads, server] = await Promise.all([twoUploads(), startS3Server()]);
  proxy = await startFlakyProxy(server.endpoint);
  dir = await mkdtemp(path.join(os.tmpdir(), 'pose-fencing-'));
});

afterAll(async () => {
  await proxy?.close();
  await server?.stop();
  await rm(dir, { recursive: true, force: true });
});

const quiet = createLogger(() => undefined);

function servicesOn(store: ObjectStore): Services {
  return createServices({ config: parseConfig({ UPLOAD_PATH: dir }), store, logger: quiet, lockTiming: TIMING });
}

/** Which upload each of the pose's files is, whether its record says ready, and how many uploads are staged. */
async function endState(store: ObjectStore, pose: PoseRef) {
  const [image, thumbnail, record] = await Promise.all([store.get(imageKey(pose)), store.get(thumbnailKey(pose)), store.get(recordKey(pose))]);
  let staged = 0;
  for await (const _ of store.list(stagingPrefix(pose))) staged++;
  return {
    image: uploads.which(image?.body, 'image'),
    thumbnail: uploads.which(thumbnail?.body, 'thumbnail'),
    record: record ? (JSON.parse(record.body.toString()) as { status: string }).status : 'none',
    staged,
  };
}

async function stage(store: ObjectStore, pose: PoseRef, upload: Upload): Promise<string> {
  const key = newStagingKey(pose);
  await store.put(key, upload.bytes, { contentType: 'image/png' });
  return key;
}

/** Processes an upload as its queue would: again after a busy pose (the queue's retry). */
async function processUntilSettled(services: Services, key: string): Promise<void> {
  for (;;) {
    try {
      await services.uploads.processUpload({ key });
      return;
    } catch (error) {
      if (!(error instanceof PoseBusyError)) throw error;
    }
    await sleep(50); // a queue's redelivery delay, not a tight loop against the store
  }
}

/**
 * Red is published by a writer whose thumbnail write stalls past its lock's deadline; meanwhile blue is uploaded
 * and another writer takes the expired lock over and publishes it. Then the stalled write's moment comes.
 */
async function stalledWriterRound(
  pose: PoseRef,
  stores: { slow: ObjectStore; healthy: ObjectStore },
  stallThumbnail: () => Promise<void>,
  stallMs: number,
) {
  const slow = servicesOn(stores.slow);
  const healthy = servicesOn(stores.healthy);
  const red = await stage(stores.healthy, pose, uploads.red);
  const stalled = stallThumbnail();
  const redWriter = slow.uploads.processUpload({ key: red }).then(
    () => 'published',
    (error: unknown) => (error instanceof Error ? error.message : String(error)),
  );
  // Red's thumbnail write is in flight, its image already published. A red writer that ends first (a store
  // error before the thumbnail) fails the test with its outcome, instead of leaving it waiting for the stall.
  const held = Symbol('held');
  const first = await Promise.race([stalled.then(() => held), redWriter]);
  if (first !== held) throw new Error(`the red writer ended (${String(first)}) before its thumbnail write was stalled`);
  const blue = await stage(stores.healthy, pose, uploads.blue);
  await processUntilSettled(healthy, blue);
  expect(await endState(stores.healthy, pose)).toEqual({ image: 'blue', thumbnail: 'blue', record: 'ready', staged: 0 });
  // The red writer gave up at its deadline, and nothing it had in flight lands after the take-over.
  expect(await redWriter).toMatch(new RegExp(`reached its ${TIMING.holdMs} ms deadline`));
  await sleep(stallMs);
  expect(await endState(stores.healthy, pose)).toEqual({ image: 'blue', thumbnail: 'blue', record: 'ready', staged: 0 });
}

describe('a write in flight when its lock expires', () => {
  it('s3 server: a thumbnail PUT held on the wire past the deadline is dropped; the taker\'s upload is whole', async () => {
    const pose = { generationId: 'gen_fence', poseId: 's3' };
    const healthy = new S3Store(server.r2Config);
    const slow = new S3Store({ ...server.r2Config, endpoint: proxy.endpoint });
    const stallMs = lockTtlMs(TIMING) + 3000; // held until after the take-over (S3 dates the lock to the second)
    await stalledWriterRound(pose, { slow, healthy }, () => proxy.stallAt(/^PUT \S+s3_thumb\.png/m, stallMs), stallMs);
    // The proxy held it, then dropped it: the red writer's connection was closed at its deadline.
    expect(proxy.stalled.dropped).toBeGreaterThanOrEqual(1);
  }, 30_000);

  it('directory: a write stalled in a slow store past the deadline is not made; the taker\'s upload is whole', async () => {
    const pose = { generationId: 'gen_fence', poseId: 'dir' };
    const inner = new DirectoryStore({ root: dir, uploadBaseUrl: 'http://127.0.0.1:1' });
    const stallMs = lockTtlMs(TIMING) + 2000;
    let stall: (() => void) | undefined;
    const stalled = new Promise<void>((resolve) => (stall = resolve));
    // A slow disk (NFS, a full queue): the thumbnail write takes 4 s to reach the file system.
    const slow = wrapStore(inner, {
      put: async (key, body, options) => {
        if (key === thumbnailKey(pose)) {
          stall?.();
          await sleep(stallMs);
        }
        return inner.put(key, body, options);
      },
    });
    await stalledWriterRound(pose, { slow, healthy: inner }, () => stalled, stallMs);
  }, 30_000);
});

describe('newest wins by what the store saw, never by two hosts\' clocks', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  const adapters = {
    directory: () => new DirectoryStore({ root: dir, uploadBaseUrl: 'http://127.0.0.1:1' }),
    's3 server': () => new S3Store(server.r2Config),
  } as const;

  describe.each(Object.keys(adapters) as (keyof typeof adapters)[])('on the %s store', (adapter) => {
    it.each([
      ['5 s fast', 5_000],
      ['3 minutes fast', 180_000],
      ['5 s slow', -5_000],
    ])('an upload made after a save returned wins when the saving host\'s clock is %s', async (_skew, skewMs) => {
      const store = adapters[adapter]();
      const app = servicesOn(store);
      const pose = { generationId: 'gen_skew', poseId: `save_${adapter.length}_${skewMs}` };
      // The saving host: every Date it makes is off by skewMs (timers run as usual).
      vi.useFakeTimers({ toFake: ['Date'], now: Date.now() + skewMs });
      await app.storage.savePoseWithThumbnail({ imageBuffer: uploads.red.bytes, ...pose });
      vi.useRealTimers();
      // Then, on a host with the right time, a client uploads blue.
      const blue = await stage(store, pose, uploads.blue);
      expect(await app.uploads.processUpload({ key: blue })).toMatchObject({ status: 'ready' });
      expect(await endState(store, pose)).toEqual({ image: 'blue', thumbnail: 'blue', record: 'ready', staged: 0 });
    });

    it('an upload whose URL a slow host issued, uploaded after a newer one was published, does not replace it', async () => {
      const store = adapters[adapter]();
      const app = servicesOn(store);
      const pose = { generationId: 'gen_skew', poseId: `slow_${adapter.length}` };
      // Red's URL was issued by a host 5 s fast, blue's by one 5 s slow: their clocks say blue is older...
      const red = newStagingKey(pose, Date.now() + 5_000);
      const blue = newStagingKey(pose, Date.now() - 5_000);
      await store.put(red, uploads.red.bytes, { contentType: 'image/png' });
      expect(await app.uploads.processUpload({ key: red })).toMatchObject({ status: 'ready' });
      // ...but blue reached the store after red was published: it is the newer upload.
      await store.put(blue, uploads.blue.bytes, { contentType: 'image/png' });
      expect(await app.uploads.processUpload({ key: blue })).toMatchObject({ status: 'ready' });
      expect(await endState(store, pose)).toEqual({ image: 'blue', thumbnail: 'blue', record: 'ready', staged: 0 });
    });
  });
});
