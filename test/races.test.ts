/**
 * Concurrency, on both adapters (a directory and the S3 test server): uploads of one pose processed at once,
 * deletes of a pose or a whole generation racing the thumbnailer, one event delivered twice, saves racing
 * uploads. Whatever the interleaving, a pose ends absent, rejected or whole: an image and the thumbnail of
 * that very image, from the newest upload; after a delete that answered ok, nothing of it is left.
 *
 * Interleavings are shuffled by a seeded jitter before every store operation (the S3 server adds its own
 * timing). `npm run test:stress` runs ten times as many.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lockKey, newStagingKey, recordKey, stagingPrefix, type PoseRef } from '../lib/layout.ts';
import { imageKey, thumbnailKey } from '../lib/pose-files.ts';
import { arrivedAfter } from '../lib/pose-record.ts';
import type { Services } from '../lib/services.ts';
import { DirectoryStore } from '../lib/storage/directory-store.ts';
import type { ObjectInfo, ObjectStore } from '../lib/storage/object-store.ts';
import { S3Store } from '../lib/storage/s3-store.ts';
import { startS3Server, type S3TestServer } from './support/s3-server.ts';
import { poseState, quietServices, stage, twoUploads, VARIANT_FILES, VARIANTS_ENV, type TwoUploads } from './support/two-uploads.ts';
import { wrapStore } from './support/wrap-store.ts';

const ROUNDS = process.env.STRESS === '1' ? 1000 : 100;
/** A test's time limit: a round takes well under 200 ms alone, but a lock's loser waits for its holder. */
const limitFor = (rounds: number) => 30_000 + rounds * 1_000;

let uploads: TwoUploads;
/** The same two uploads rendered with VARIANTS_ENV's variants too. */
let withVariants: TwoUploads;
let server: S3TestServer;
let dir: string;

beforeAll(async () => {
  [uploads, withVariants, server] = await Promise.all([twoUploads(), twoUploads(VARIANT_FILES), startS3Server()]);
  dir = await mkdtemp(path.join(os.tmpdir(), 'pose-races-'));
});

afterAll(async () => {
  await server?.stop();
  await rm(dir, { recursive: true, force: true });
});

/**
 * A store whose every operation first waits 0-2 ms (seeded), to shuffle how concurrent flows interleave;
 * `afterPut` hears of every write that succeeded.
 */
function jittery(inner: ObjectStore, seed: number, afterPut: (key: string) => void = () => undefined, trace?: (line: string) => void): ObjectStore {
  let state = seed >>> 0;
  const jitter = () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return sleep(Math.floor((state / 2 ** 32) * 3));
  };
  const delayed =
    <A extends unknown[], R>(run: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      await jitter();
      const name = `${run.name} ${String(args[0])}`;
      trace?.(`${name} ...`);
      try {
        const result = await run(...args);
        trace?.(`${name} done`);
        return result;
      } catch (error) {
        trace?.(`${name} failed: ${error instanceof Error ? error.message : String(error)}`);
        throw error;
      }
    };
  return wrapStore(inner, {
    put: delayed(async function put(...args: Parameters<ObjectStore['put']>) {
      const written = await inner.put(...args);
      afterPut(args[0]);
      return written;
    }),
    get: delayed(function get(...args: Parameters<ObjectStore['get']>) {
      return inner.get(...args);
    }),
    head: delayed(function head(...args: Parameters<ObjectStore['head']>) {
      return inner.head(...args);
    }),
    copy: delayed(function copy(...args: Parameters<ObjectStore['copy']>) {
      return inner.copy(...args);
    }),
    delete: delayed(function remove(...args: Parameters<ObjectStore['delete']>) {
      return inner.delete(...args);
    }),
  });
}

/** What the actors of a round did, in order: the failure message of that round. */
function roundTrace(): { as: (actor: string) => (line: string) => void; toString: () => string } {
  const lines: string[] = [];
  const started = performance.now();
  return {
    as: (actor) => (line) => lines.push(`${(performance.now() - started).toFixed(1).padStart(8)} ms ${actor} ${line}`),
    toString: () => lines.join('\n'),
  };
}

/** A promise resolved the first time `key` is written through `jittery`'s afterPut, and its listener. */
function firstWriteOf(key: string): { written: Promise<void>; afterPut: (written: string) => void } {
  let resolve: () => void = () => undefined;
  const written = new Promise<void>((done) => (resolve = done));
  return { written, afterPut: (writtenKey) => writtenKey === key && resolve() };
}

const adapters = {
  directory: () => new DirectoryStore({ root: dir, uploadBaseUrl: 'http://127.0.0.1:1' }),
  's3 server': () => new S3Store(server.r2Config),
} as const;

/** Runs `round(1..count)`, four at a time (each on its own poses), failing with the first failure. */
async function rounds(count: number, round: (n: number) => Promise<void>): Promise<void> {
  for (let first = 1; first <= count; first += 4) {
    await Promise.all([first, first + 1, first + 2, first + 3].filter((n) => n <= count).map(round));
  }
}

const services = (store: ObjectStore): Services => quietServices(store, dir);

/** What the pose is in the store: which upload its image and thumbnail are, and whether a record says ready. */
async function endState(store: ObjectStore, pose: PoseRef): Promise<{ image: string; thumbnail: string; record: string; staged: number }> {
  const [image, thumbnail, record] = await Promise.all([store.get(imageKey(pose)), store.get(thumbnailKey(pose)), store.get(recordKey(pose))]);
  let staged = 0;
  for await (const _ of store.list(`staging/${pose.generationId}/${pose.poseId}/`)) staged++;
  const status = record ? (JSON.parse(record.body.toString()) as { status: string }).status : 'none';
  return { image: uploads.which(image?.body, 'image'), thumbnail: uploads.which(thumbnail?.body, 'thumbnail'), record: status, staged };
}

describe.each(Object.keys(adapters) as (keyof typeof adapters)[])('races on the %s store', (adapter) => {
  const base = () => adapters[adapter]();

  it(`two uploads of one pose processed at once end whole, with the newer upload, over ${ROUNDS} interleavings`, async () => {
    await rounds(ROUNDS, async (round) => {
      const store = base();
      const app = services(jittery(store, round));
      const pose = { generationId: `gen_two_${adapter.length}_${round}`, poseId: 'pose' };
      const [redKey, blueKey] = [await stage(store, pose, uploads.red), await stage(store, pose, uploads.blue)];
      // Newer by when the store received it (within its clock's resolution, by when its URL was issued).
      const staged = new Map<string, ObjectInfo>();
      for await (const object of store.list(stagingPrefix(pose))) staged.set(object.key, object);
      const newer = arrivedAfter(staged.get(blueKey)!, staged.get(redKey)!) ? 'blue' : 'red';

      const outcomes = await Promise.allSettled([app.uploads.processUpload({ key: redKey }), app.uploads.processUpload({ key: blueKey })]);
      for (const outcome of outcomes) expect(outcome.status, String((outcome as PromiseRejectedResult).reason)).toBe('fulfilled');

      const state = await endState(store, pose);
      expect(state, `round ${round}`).toEqual({ image: newer, thumbnail: newer, record: 'ready', staged: 0 });
    });
  }, limitFor(ROUNDS));

  it(`processing racing deletePose: once the delete answered ok, nothing is left, over ${ROUNDS} interleavings`, async () => {
    const orders = new Set<string>();
    await rounds(ROUNDS, async (round) => {
      const store = base();
      const pose = { generationId: `gen_del_${adapter.length}_${round}`, poseId: 'pose' };
      // A third of the rounds let the processor take the pose's lock first, a third the delete; the rest race
      // freely. Each actor has its own store, so its lock write is its own.
      const processorLocked = firstWriteOf(lockKey(pose));
      const deleterLocked = firstWriteOf(lockKey(pose));
      const trace = roundTrace();
      const processor = services(jittery(store, round, processorLocked.afterPut, trace.as('processor')));
      const deleter = services(jittery(store, round + 7919, deleterLocked.afterPut, trace.as('delete')));
      const key = await stage(store, pose, uploads.red);
      const order = round % 3;
      const [processed, deleted] = await Promise.all([
        (order === 1 ? deleterLocked.written : Promise.resolve()).then(() => processor.uploads.processUpload({ key })),
        (order === 0 ? processorLocked.written : sleep(round % 11)).then(() => deleter.storage.deletePose(pose)),
      ]);
      expect(deleted.ok, `round ${round}`).toBe(true);
      expect(await endState(store, pose), `round ${round}:\n${trace}`).toEqual({ image: 'none', thumbnail: 'none', record: 'none', staged: 0 });
      orders.add(processed?.status === 'ready' ? 'published, then deleted' : 'deleted first');
    });
    // Both orders happened (the first two kinds of rounds make sure of it): the end state holds after either.
    expect([...orders].sort()).toEqual(['deleted first', 'published, then deleted']);
  }, limitFor(ROUNDS));

  it(`processing racing deleteGeneration of a generation with other poses: nothing is left, over ${ROUNDS / 4} interleavings`, async () => {
    await rounds(ROUNDS / 4, async (round) => {
      const store = base();
      const app = services(jittery(store, round));
      const generationId = `gen_gen_${adapter.length}_${round}`;
      const poses = ['a', 'b', 'c', 'd'].map((poseId) => ({ generationId, poseId }));
      // Two poses already published, two being processed while the generation is deleted.
      for (const pose of poses.slice(0, 2)) await app.storage.savePoseWithThumbnail({ imageBuffer: uploads.red.bytes, ...pose });
      const keys = await Promise.all(poses.slice(2).map((pose) => stage(store, pose, uploads.blue)));

      const [, deleted] = await Promise.all([
        Promise.all(keys.map((key) => app.uploads.processUpload({ key }))),
        sleep(round % 5).then(() => app.storage.deleteGeneration(generationId)),
      ]);
      expect(deleted.ok, `round ${round}`).toBe(true);
      const left = [];
      for (const area of ['poses', 'staging', 'records', 'locks', 'backups']) for await (const object of store.list(`${area}/${generationId}/`)) left.push(object.key);
      expect(left, `round ${round}`).toEqual([]);
    });
  }, limitFor(ROUNDS / 4));

  it(`the same event delivered twice at once publishes the pose once, whole, over ${ROUNDS / 4} interleavings`, async () => {
    await rounds(ROUNDS / 4, async (round) => {
      const store = base();
      const app = services(jittery(store, round));
      const pose = { generationId: `gen_twice_${adapter.length}_${round}`, poseId: 'pose' };
      const key = await stage(store, pose, uploads.blue);
      const results = await Promise.all([app.uploads.processUpload({ key }), app.uploads.processUpload({ key })]);
      expect(results.filter((status) => status?.status === 'ready'), `round ${round}`).toHaveLength(1);
      expect(await endState(store, pose), `round ${round}`).toEqual({ image: 'blue', thumbnail: 'blue', record: 'ready', staged: 0 });
    });
  }, limitFor(ROUNDS / 4));

  it(`the status never answers the previous ready as final while a newer upload is settled, over ${ROUNDS} interleavings`, async () => {
    await rounds(ROUNDS, async (round) => {
      const store = base();
      const pose = { generationId: `gen_status_${adapter.length}_${round}`, poseId: 'pose' };
      await services(store).storage.savePoseWithThumbnail({ imageBuffer: uploads.red.bytes, ...pose });
      // A newer upload, acknowledged (staged), which will be rejected: from now on "ready" is never the answer.
      const key = newStagingKey(pose);
      await store.put(key, Buffer.from('not an image at all'), { contentType: 'image/png' });
      const processor = services(jittery(store, round));
      // Listings are slower than reads of one object (on S3 as on disk): the reader's listing lags by 0-6 ms.
      let lag = round >>> 0;
      const reader = services(
        wrapStore(store, {
          list: (prefix) => ({
            async *[Symbol.asyncIterator]() {
              lag = (lag * 1664525 + 1013904223) >>> 0;
              await sleep(Math.floor((lag / 2 ** 32) * 7));
              yield* store.list(prefix);
            },
          }),
        }),
      );
      let settled = false;
      const processing = processor.uploads.processUpload({ key }).finally(() => (settled = true));
      const answers: string[] = [];
      while (!settled) answers.push((await reader.uploads.getStatus(pose))?.status ?? 'none');
      expect(await processing).toMatchObject({ status: 'rejected' });
      answers.push((await reader.uploads.getStatus(pose))?.status ?? 'none');
      expect(answers.filter((status) => status !== 'pending' && status !== 'rejected'), `round ${round}: ${answers.join(' ')}`).toEqual([]);
      expect(answers.at(-1)).toBe('rejected');
    });
  }, limitFor(ROUNDS));

  it(`a save racing the processing of an older upload ends whole with the save, over ${ROUNDS / 4} interleavings`, async () => {
    await rounds(ROUNDS / 4, async (round) => {
      const store = base();
      const app = services(jittery(store, round));
      const pose = { generationId: `gen_save_${adapter.length}_${round}`, poseId: 'pose' };
      const key = await stage(store, pose, uploads.blue);
      await Promise.all([app.uploads.processUpload({ key }), app.storage.savePoseWithThumbnail({ imageBuffer: uploads.red.bytes, ...pose })]);
      expect(await endState(store, pose), `round ${round}`).toEqual({ image: 'red', thumbnail: 'red', record: 'ready', staged: 0 });
    });
  }, limitFor(ROUNDS / 4));
});

describe.each(Object.keys(adapters) as (keyof typeof adapters)[])('races on the %s store, with variants (every file of the table)', (adapter) => {
  const base = () => adapters[adapter]();
  const app = (store: ObjectStore) => quietServices(store, dir, VARIANTS_ENV);
  const state = (store: ObjectStore, pose: PoseRef) => poseState(store, pose, withVariants, VARIANT_FILES);

  it(`two uploads of one pose processed at once end whole in every file, with the newer upload, over ${ROUNDS / 4} interleavings`, async () => {
    await rounds(ROUNDS / 4, async (round) => {
      const store = base();
      const services = app(jittery(store, round));
      const pose = { generationId: `gen_vtwo_${adapter.length}_${round}`, poseId: 'pose' };
      const [redKey, blueKey] = [await stage(store, pose, withVariants.red), await stage(store, pose, withVariants.blue)];
      const staged = new Map<string, ObjectInfo>();
      for await (const object of store.list(stagingPrefix(pose))) staged.set(object.key, object);
      const newer = arrivedAfter(staged.get(blueKey)!, staged.get(redKey)!) ? 'blue' : 'red';
      await Promise.all([services.uploads.processUpload({ key: redKey }), services.uploads.processUpload({ key: blueKey })]);
      expect(await state(store, pose), `round ${round}`).toEqual({ files: newer, record: 'ready', staged: 0 });
    });
  }, limitFor(ROUNDS / 4));

  it(`processing racing deletePose leaves no file of the table, over ${ROUNDS / 4} interleavings`, async () => {
    await rounds(ROUNDS / 4, async (round) => {
      const store = base();
      const pose = { generationId: `gen_vdel_${adapter.length}_${round}`, poseId: 'pose' };
      const key = await stage(store, pose, withVariants.red);
      const [, deleted] = await Promise.all([
        app(jittery(store, round)).uploads.processUpload({ key }),
        sleep(round % 7).then(() => app(jittery(store, round + 7919)).storage.deletePose(pose)),
      ]);
      expect(deleted.ok, `round ${round}`).toBe(true);
      expect(await state(store, pose), `round ${round}`).toEqual({ files: 'none', record: 'none', staged: 0 });
    });
  }, limitFor(ROUNDS / 4));

  it(`a save racing the processing of an older upload ends whole with the save in every file, over ${ROUNDS / 4} interleavings`, async () => {
    await rounds(ROUNDS / 4, async (round) => {
      const store = base();
      const services = app(jittery(store, round));
      const pose = { generationId: `gen_vsave_${adapter.length}_${round}`, poseId: 'pose' };
      const key = await stage(store, pose, withVariants.blue);
      await Promise.all([services.uploads.processUpload({ key }), services.storage.savePoseWithThumbnail({ imageBuffer: withVariants.red.bytes, ...pose })]);
      expect(await state(store, pose), `round ${round}`).toEqual({ files: 'red', record: 'ready', staged: 0 });
    });
  }, limitFor(ROUNDS / 4));
});
