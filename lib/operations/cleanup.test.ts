/**
 * cleanupGenerations() on a directory whose files have set modification times: exactly the generations whose
 * newest file is older than the cutoff go (all three areas), the others stay; dry runs delete nothing.
 */
import { mkdtemp, rm, utimes } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { wrapStore } from '../../test/support/wrap-store.ts';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import sharp from 'sharp';
import { lockKey, newStagingKey } from '../layout.ts';
import { createLogger } from '../logger.ts';
import type { PoseStatus } from '../pose-uploads.ts';
import type { PoseStorage } from '../pose-storage.ts';
import { createServices } from '../services.ts';
import { DirectoryStore } from '../storage/directory-store.ts';
import type { ObjectStore } from '../storage/object-store.ts';
import { cleanupGenerations, type OldGeneration } from './cleanup.ts';
import { parseOperationsConfig } from './config.ts';
import { parseDuration } from './format.ts';

const DAY = 86_400_000;
const UUID = '0b6c5d0e-2f0a-4c54-9d0e-5b8a8f5f0a11';

let root: string;
let store: DirectoryStore;
const logLines: string[] = [];

beforeEach(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'cleanup-'));
  store = new DirectoryStore({ root, uploadBaseUrl: 'http://127.0.0.1:1' });
  logLines.length = 0;
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

function storageOn(objects: ObjectStore): PoseStorage {
  const config = parseOperationsConfig({ UPLOAD_PATH: root });
  return createServices({ config, store: objects, logger: createLogger((line) => logLines.push(line)) }).storage;
}

/** Writes `key` with a modification time `daysAgo` days back. */
async function file(key: string, daysAgo: number, size = 10): Promise<void> {
  await store.put(key, Buffer.alloc(size, 1), { contentType: 'image/png' });
  const when = new Date(Date.now() - daysAgo * DAY);
  await utimes(path.join(root, key), when, when);
}

async function keys(): Promise<string[]> {
  const all: string[] = [];
  for await (const object of store.list('')) all.push(object.key);
  return all;
}

async function plant(): Promise<void> {
  // Old: every file of the generation, in every area, is older than 30 days.
  await file('poses/gen_old/p1.png', 45, 100);
  await file('poses/gen_old/p1_thumb.png', 45, 20);
  await file(`staging/gen_old/p2/${UUID}`, 40, 30);
  await file('records/gen_old/p3.json', 31, 5);
  // Old, published files only.
  await file('poses/gen_old2/p1.png', 60);
  await file('poses/gen_old2/p1_thumb.png', 60);
  // Old poses, but an upload arrived yesterday: its newest file is new, so it stays whole.
  await file('poses/gen_active/p1.png', 90);
  await file('poses/gen_active/p1_thumb.png', 90);
  await file(`staging/gen_active/p2/${UUID}`, 1);
  // New.
  await file('poses/gen_new/p1.png', 2);
  await file('poses/gen_new/p1_thumb.png', 2);
  // Outside any generation: never touched.
  await file('health/leftover', 400);
}

const KEPT = [
  'health/leftover',
  'poses/gen_active/p1.png',
  'poses/gen_active/p1_thumb.png',
  'poses/gen_new/p1.png',
  'poses/gen_new/p1_thumb.png',
  `staging/gen_active/p2/${UUID}`,
];

describe('cleanup --older-than 30d', () => {
  it('deletes exactly the generations whose newest file is older, in all three areas, and keeps the rest', async () => {
    await plant();
    const seen: OldGeneration[] = [];
    const result = await cleanupGenerations({ storage: storageOn(store), olderThanMs: parseDuration('30d'), onGeneration: (g) => seen.push(g) });

    expect(result.old.map(({ newest: _, ...g }) => g)).toEqual([
      { generationId: 'gen_old', files: 4, bytes: 155, deleted: true },
      { generationId: 'gen_old2', files: 2, bytes: 20, deleted: true },
    ]);
    expect(seen).toEqual(result.old);
    expect(result).toMatchObject({ dryRun: false, scanned: 4, kept: 2, deletedFiles: 6, deletedBytes: 175, failed: 0 });
    expect(Date.parse(result.old[0]!.newest)).toBeCloseTo(Date.now() - 31 * DAY, -5);
    expect(await keys()).toEqual(KEPT);
    expect(logLines.some((line) => line.includes('[Storage] Deleted generation: gen_old'))).toBe(true);
  });

  it('--dry-run lists the same generations and deletes nothing', async () => {
    await plant();
    const before = await keys();
    const result = await cleanupGenerations({ storage: storageOn(store), olderThanMs: 30 * DAY, dryRun: true });
    expect(result.old.map((g) => [g.generationId, g.deleted])).toEqual([
      ['gen_old', false],
      ['gen_old2', false],
    ]);
    expect(result).toMatchObject({ dryRun: true, kept: 2, deletedFiles: 0 });
    expect(await keys()).toEqual(before);
  });

  it('a shorter duration takes newer generations too; a longer one none', async () => {
    await plant();
    const none = await cleanupGenerations({ storage: storageOn(store), olderThanMs: parseDuration('13w'), dryRun: true });
    expect(none.old).toEqual([]);
    const more = await cleanupGenerations({ storage: storageOn(store), olderThanMs: parseDuration('36h') });
    expect(more.old.map((g) => g.generationId)).toEqual(['gen_new', 'gen_old', 'gen_old2']);
    expect(await keys()).toEqual(['health/leftover', 'poses/gen_active/p1.png', 'poses/gen_active/p1_thumb.png', `staging/gen_active/p2/${UUID}`]);
  });

  it('keeps a generation that receives a file between the scan and its deletion', async () => {
    await plant();
    // The look just before deleting gen_old2 finds an upload that arrived after the scan.
    const wrapped = wrapStore(store, {
      list: (prefix) => {
        if (prefix === 'staging/gen_old2/') {
          return (async function* () {
            await store.put(`staging/gen_old2/p9/${UUID}`, Buffer.from('new upload'), { contentType: 'image/png' });
            yield* store.list(prefix);
          })();
        }
        return store.list(prefix);
      },
    });
    const result = await cleanupGenerations({ storage: storageOn(wrapped), olderThanMs: 30 * DAY });
    expect(result.old.map((g) => g.generationId)).toEqual(['gen_old']);
    expect(result.kept).toBe(3);
    expect(await keys()).toContain('poses/gen_old2/p1.png');
  });

  it('never deletes an upload acknowledged and published while it runs, nor its pose; the rest of the generation goes', async () => {
    await plant();
    const pose = { generationId: 'gen_old2', poseId: 'p1' };
    const services = createServices({ config: parseOperationsConfig({ UPLOAD_PATH: root }), store, logger: createLogger(() => undefined) });
    const upload = await sharp({ create: { width: 64, height: 48, channels: 3, background: '#c33' } }).png().toBuffer();
    let published: PoseStatus | undefined;
    // Right before cleanup locks pose p1 (after every scan that found the generation old), a client uploads a
    // new p1, which is published under its lock first: cleanup then waits for it.
    const racing = wrapStore(store, {
      put: async (key, body, options) => {
        if (key === lockKey(pose) && options.ifNoneMatch === '*' && published === undefined) {
          const staged = newStagingKey(pose);
          await store.put(staged, upload, { contentType: 'image/png' });
          published = await services.uploads.processUpload({ key: staged });
        }
        return store.put(key, body, options);
      },
    });
    const logger = createLogger((line) => logLines.push(line));
    const result = await cleanupGenerations({ storage: storageOn(racing), olderThanMs: 30 * DAY, logger });
    expect(published).toMatchObject({ status: 'ready' });
    expect(result.old.find((g) => g.generationId === 'gen_old2')).toMatchObject({ deleted: true, keptPoses: 1 });
    // The pose published meanwhile is whole (image, thumbnail, record); nothing else of the old generations is left.
    expect((await keys()).filter((key) => key.includes('gen_old'))).toEqual(['poses/gen_old2/p1.png', 'poses/gen_old2/p1_thumb.png', 'records/gen_old2/p1.json']);
    expect(await services.uploads.getStatus(pose)).toMatchObject({ status: 'ready', width: 64, height: 48 });
    expect(logLines.some((line) => line.includes('Cleanup kept 1 pose(s) of generation gen_old2 (changed while it was deleted)'))).toBe(true);
  });

  it('reports a generation that could not be deleted', async () => {
    await plant();
    const failing = wrapStore(store, { delete: () => Promise.reject(new Error('disk on fire')) });
    const result = await cleanupGenerations({ storage: storageOn(failing), olderThanMs: 30 * DAY });
    expect(result.failed).toBe(2);
    expect(result.old.every((g) => !g.deleted && g.error !== undefined)).toBe(true);
    // Nothing was deleted; the poses' locks stay behind (a store that cannot delete cannot release them either)
    // and expire (pose-lock.ts).
    expect((await keys()).filter((key) => !key.startsWith('locks/'))).toHaveLength(12);
  });
});

describe('parseDuration', () => {
  it('takes a positive whole number and a unit', () => {
    expect(parseDuration('12h')).toBe(12 * 3600_000);
    expect(parseDuration('30d')).toBe(30 * DAY);
    expect(parseDuration('2w')).toBe(14 * DAY);
    expect(parseDuration('90m')).toBe(90 * 60_000);
    expect(parseDuration('45s')).toBe(45_000);
  });

  it.each(['', '30', 'd', '0d', '-1d', '1.5d', '3y', '30 days', '1e3d'])('refuses %j', (text) => {
    expect(() => parseDuration(text)).toThrow(/is not a duration/);
  });
});
