/**
 * Concurrency: the thumbnailer against deletes and against itself. Whatever the interleaving, the end state
 * is consistent: the pose is ready (image and thumbnail) or gone, never a thumbnail without its image, and
 * its staging object is gone.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import sharp from 'sharp';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../lib/config.ts';
import { imageKey, thumbnailKey, type PoseRef } from '../lib/layout.ts';
import { createLogger } from '../lib/logger.ts';
import { createServices, type Services } from '../lib/services.ts';
import { DirectoryStore } from '../lib/storage/directory-store.ts';
import type { ObjectStore } from '../lib/storage/object-store.ts';

/** npm run test:stress tries ten times as many. */
const INTERLEAVINGS = process.env.STRESS === '1' ? 600 : 60;

let png: Buffer;
let dir: string;

beforeAll(async () => {
  png = await sharp({ create: { width: 96, height: 64, channels: 3, background: '#4a7' } }).png().toBuffer();
});

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'pose-races-'));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A store whose every operation may first wait a little (seeded), to shuffle how concurrent flows interleave. */
function jitteryStore(inner: ObjectStore, random: () => number, hooks: { beforePut?: (key: string) => Promise<void> } = {}): ObjectStore {
  const jitter = () => sleep(Math.floor(random() * 3));
  return {
    put: async (key, body, options) => {
      await jitter();
      await hooks.beforePut?.(key);
      return inner.put(key, body, options);
    },
    get: async (key) => (await jitter(), inner.get(key)),
    head: async (key) => (await jitter(), inner.head(key)),
    delete: async (keys) => (await jitter(), inner.delete(keys)),
    list: (prefix) => inner.list(prefix),
    presignUpload: (key, options) => inner.presignUpload(key, options),
  };
}

function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

function services(store: ObjectStore): Services {
  return createServices({ config: parseConfig({ UPLOAD_PATH: dir }), store, logger: createLogger(() => undefined) });
}

async function stage(store: ObjectStore, pose: PoseRef): Promise<string> {
  const key = `staging/${pose.generationId}/${pose.poseId}/${randomUUID()}`;
  await store.put(key, png, { contentType: 'image/png' });
  return key;
}

async function endState(store: ObjectStore, pose: PoseRef, stagingKey: string) {
  return {
    image: (await store.head(imageKey(pose))) !== undefined,
    thumbnail: (await store.head(thumbnailKey(pose))) !== undefined,
    staged: (await store.head(stagingKey)) !== undefined,
  };
}

describe('the thumbnailer racing deletes and itself', () => {
  it('a delete between the image and the thumbnail writes wins: nothing is left, not even a thumbnail', async () => {
    const base = new DirectoryStore({ root: dir, uploadBaseUrl: 'http://127.0.0.1:1' });
    const pose = { generationId: 'gen_race', poseId: 'pose_1' };
    let app: Services | undefined;
    const store = jitteryStore(base, () => 0, {
      beforePut: async (key) => {
        if (key === thumbnailKey(pose)) expect((await app!.storage.deletePose(pose)).ok).toBe(true);
      },
    });
    app = services(store);
    const stagingKey = await stage(base, pose);

    await expect(app.uploads.processUpload(stagingKey)).resolves.toBeUndefined();

    expect(await endState(base, pose, stagingKey)).toEqual({ image: false, thumbnail: false, staged: false });
    await expect(app.uploads.getStatus(pose)).resolves.toBeUndefined();
  });

  it('the same event delivered twice at once publishes the pose once, consistently', async () => {
    const base = new DirectoryStore({ root: dir, uploadBaseUrl: 'http://127.0.0.1:1' });
    const app = services(jitteryStore(base, seeded(7)));
    const pose = { generationId: 'gen_twice', poseId: 'pose_1' };
    const stagingKey = await stage(base, pose);

    const results = await Promise.all([app.uploads.processUpload(stagingKey), app.uploads.processUpload(stagingKey)]);

    expect(results.some((status) => status?.status === 'ready')).toBe(true);
    expect(await endState(base, pose, stagingKey)).toEqual({ image: true, thumbnail: true, staged: false });
    expect((await base.get(imageKey(pose)))?.body.equals(png)).toBe(true);
  });

  it(`over ${INTERLEAVINGS} shuffled interleavings of processing and delete, the pose always ends ready or gone`, async () => {
    const outcomes = new Set<string>();
    for (let seed = 1; seed <= INTERLEAVINGS; seed++) {
      const base = new DirectoryStore({ root: path.join(dir, String(seed)), uploadBaseUrl: 'http://127.0.0.1:1' });
      const app = services(jitteryStore(base, seeded(seed)));
      const pose = { generationId: `gen_${seed}`, poseId: 'pose_1' };
      const stagingKey = await stage(base, pose);

      const [processed, deleted] = await Promise.allSettled([
        app.uploads.processUpload(stagingKey),
        sleep(seed % 30).then(() => app.storage.deletePose(pose)),
      ]);
      expect(processed.status, processed.status === 'rejected' ? String(processed.reason) : '').toBe('fulfilled');
      expect(deleted.status === 'fulfilled' && deleted.value.ok).toBe(true);

      const state = await endState(base, pose, stagingKey);
      expect(state.staged).toBe(false);
      expect(state.thumbnail && !state.image, `seed ${seed}: a thumbnail without its image`).toBe(false);
      expect(state.image === state.thumbnail, `seed ${seed}: half a pose ${JSON.stringify(state)}`).toBe(true);
      outcomes.add(state.image ? 'ready' : 'gone');
    }
    // The shuffling really produced both orders; otherwise this test would prove little.
    expect([...outcomes].sort()).toEqual(['gone', 'ready']);
  });
});
