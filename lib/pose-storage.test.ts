import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { testImage } from '../test/support/images.ts';
import { wrapStore } from '../test/support/wrap-store.ts';
import type { PoseStorage } from './pose-storage.ts';
import { createServices, type ServiceOptions } from './services.ts';
import {
  createLogger,
  DirectoryStore,
  DiskFullError,
  InvalidIdError,
  InvalidImageError,
  parseConfig,
  PoseStorageError,
  StoreUnavailableError,
  type LogSink,
  type ObjectStore,
} from './index.ts';
import * as library from './index.ts';

/** The class behind the library's service, with its store at hand to stage uploads and write records directly. */
const createPoseStorage = (options: ServiceOptions): PoseStorage => createServices(options).storage;

const UUID = '0b0c0d0e-0000-4000-8000-000000000000';
const AREA_DIRECTORIES = ['backups', 'locks', 'poses', 'records', 'staging'];

const R2_ENV = {
  STORAGE_MODE: 'r2',
  R2_ACCOUNT_ID: 'abc123',
  R2_ACCESS_KEY_ID: 'test-access-key',
  R2_SECRET_ACCESS_KEY: 'test-secret-key',
  R2_BUCKET_NAME: 'lumiku-poses',
  R2_PUBLIC_URL: 'https://poses.example.test/',
  API_TOKEN: 'test-token-0123456789abcdef',
};

interface LogEntry {
  level: string;
  message: string;
  [field: string]: unknown;
}

/** A log sink that keeps every line, parsed. */
function capturingSink(): { sink: LogSink; entries: LogEntry[] } {
  const entries: LogEntry[] = [];
  return {
    entries,
    sink: (line, level) => {
      const entry = JSON.parse(line) as LogEntry;
      expect(entry.level).toBe(level);
      entries.push(entry);
    },
  };
}

/** Every file under `directory`, as sorted relative paths with "/" separators (no directories). */
async function filesUnder(directory: string): Promise<string[]> {
  const entries = await readdir(directory, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => path.relative(directory, path.join(entry.parentPath, entry.name)).split(path.sep).join('/'))
    .sort();
}

let photoPng: Buffer;
let photoJpeg: Buffer;
let smallPng: Buffer;

beforeAll(async () => {
  [{ bytes: photoPng }, { bytes: photoJpeg }] = await Promise.all([testImage('photoPng1024'), testImage('photoJpeg2048')]);
  smallPng = await sharp({ create: { width: 120, height: 80, channels: 3, background: '#336699' } }).png().toBuffer();
});

describe("the library's public API", () => {
  const METHODS = ['deleteGeneration', 'deletePose', 'getStorageMode', 'initializeLocalStorage', 'saveFile', 'savePoseWithThumbnail'];

  it('an instance of createPoseStorage has the six methods and nothing else: no store, locks or upload flow to write around the lock', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'pose-api-'));
    try {
      const storage = library.createPoseStorage({ config: parseConfig({ UPLOAD_PATH: dir }), logger: createLogger(() => undefined) });
      expect(Object.keys(storage).sort()).toEqual(METHODS);
      expect(Object.isFrozen(storage)).toBe(true);
      expect(storage.getStorageMode()).toBe('local');
      expect(Object.keys(library.poseStorageService).sort()).toEqual(METHODS);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('exports neither the class behind it nor the services the handlers use', () => {
    expect(Object.keys(library)).not.toContain('PoseStorage');
    expect(Object.keys(library)).not.toContain('createServices');
    expect(Object.keys(library)).not.toContain('getServices');
  });
});

describe('PoseStorage on a directory', () => {
  let parent: string;
  let dir: string;
  let logs: LogEntry[];
  let storage: PoseStorage;

  const messages = (level?: string) => logs.filter((entry) => !level || entry.level === level).map((entry) => entry.message);

  /** A PoseStorage on `dir` in local mode, logging into `logs`. */
  function localStorage(store?: ObjectStore): PoseStorage {
    const { sink, entries } = capturingSink();
    logs = entries;
    const config = parseConfig({ UPLOAD_PATH: dir });
    return createPoseStorage({ config, logger: createLogger(sink), ...(store && { store }) });
  }

  /** A PoseStorage configured for r2 mode whose store is a directory (no network needed). */
  function r2Storage(store: ObjectStore = new DirectoryStore({ root: dir, uploadBaseUrl: 'http://127.0.0.1:1' })): PoseStorage {
    const { sink, entries } = capturingSink();
    logs = entries;
    return createPoseStorage({ config: parseConfig({ ...R2_ENV, UPLOAD_PATH: dir }), store, logger: createLogger(sink) });
  }

  beforeEach(async () => {
    // UPLOAD_PATH is a directory inside `parent`, so anything written outside it shows up in `parent`.
    parent = await mkdtemp(path.join(os.tmpdir(), 'pose-storage-'));
    dir = path.join(parent, 'uploads');
    storage = localStorage();
  });

  afterEach(async () => {
    await rm(parent, { recursive: true, force: true });
  });

  describe('savePoseWithThumbnail', () => {
    it('replaces the record of an earlier rejected upload: the pose is ready', async () => {
      const upload = { key: `staging/gen_r/pose_r/${UUID}`, etag: 'x', uploadedAt: new Date(Date.now() - 1000).toISOString() };
      const rejected = { status: 'rejected', upload, reason: 'not_an_image', message: 'x', rejectedAt: new Date().toISOString() };
      await storage.store.put('records/gen_r/pose_r.json', Buffer.from(JSON.stringify(rejected)), { contentType: 'application/json' });

      await storage.savePoseWithThumbnail({ imageBuffer: photoPng, generationId: 'gen_r', poseId: 'pose_r' });

      expect(await filesUnder(dir)).toEqual(['poses/gen_r/pose_r.png', 'poses/gen_r/pose_r_thumb.png', 'records/gen_r/pose_r.json']);
      expect(await storage.readRecord({ generationId: 'gen_r', poseId: 'pose_r' })).toMatchObject({ status: 'ready', upload: { key: 'save' } });
    });

    it('saves a photographic PNG as is and its 400x400 thumbnail, with local URLs and the reference log line', async () => {
      const urls = await storage.savePoseWithThumbnail({ imageBuffer: photoPng, generationId: 'gen_abc123', poseId: 'pose_xyz789' });

      expect(urls).toEqual({
        imageUrl: '/uploads/poses/gen_abc123/pose_xyz789.png',
        thumbnailUrl: '/uploads/poses/gen_abc123/pose_xyz789_thumb.png',
        originalImageUrl: '/uploads/poses/gen_abc123/pose_xyz789.png',
      });
      expect(await filesUnder(dir)).toEqual([
        'poses/gen_abc123/pose_xyz789.png',
        'poses/gen_abc123/pose_xyz789_thumb.png',
        'records/gen_abc123/pose_xyz789.json',
      ]);

      const image = await readFile(path.join(dir, 'poses', 'gen_abc123', 'pose_xyz789.png'));
      expect(image.equals(photoPng)).toBe(true);
      const thumbnail = await sharp(path.join(dir, 'poses', 'gen_abc123', 'pose_xyz789_thumb.png')).metadata();
      expect([thumbnail.format, thumbnail.width, thumbnail.height]).toEqual(['png', 400, 400]);

      const saved = logs.find((entry) => entry.message.startsWith('[Storage] Saved local files: '));
      expect(saved?.level).toBe('info');
      expect(saved?.message).toBe(
        `[Storage] Saved local files: ${path.join(dir, 'poses/gen_abc123/pose_xyz789.png')}, ${path.join(dir, 'poses/gen_abc123/pose_xyz789_thumb.png')}`,
      );
      expect(saved).toMatchObject({ generationId: 'gen_abc123', poseId: 'pose_xyz789' });
      expect(messages('error')).toEqual([]);
    });

    it('saves a photographic JPEG as a PNG of the same size, with its thumbnail', async () => {
      const urls = await storage.savePoseWithThumbnail({
        imageBuffer: photoJpeg,
        generationId: 'gen_1',
        poseId: 'pose-2',
        poseLibraryId: 'lib_optional',
      });
      expect(urls.imageUrl).toBe('/uploads/poses/gen_1/pose-2.png');
      expect(urls.thumbnailUrl).toBe('/uploads/poses/gen_1/pose-2_thumb.png');
      expect(urls.originalImageUrl).toBe(urls.imageUrl);

      const image = await sharp(path.join(dir, 'poses', 'gen_1', 'pose-2.png')).metadata();
      expect([image.format, image.width, image.height]).toEqual(['png', 2048, 2048]);
      const thumbnail = await sharp(path.join(dir, 'poses', 'gen_1', 'pose-2_thumb.png')).metadata();
      expect([thumbnail.format, thumbnail.width, thumbnail.height]).toEqual(['png', 400, 400]);
      expect(await filesUnder(dir)).toEqual(['poses/gen_1/pose-2.png', 'poses/gen_1/pose-2_thumb.png', 'records/gen_1/pose-2.json']);
      expect(await storage.readRecord({ generationId: 'gen_1', poseId: 'pose-2' })).toMatchObject({ status: 'ready', width: 2048, height: 2048 });
    });

    it('gives R2 public URLs in r2 mode', async () => {
      storage = r2Storage();
      expect(storage.getStorageMode()).toBe('r2');
      const urls = await storage.savePoseWithThumbnail({ imageBuffer: photoPng, generationId: 'gen_abc123', poseId: 'pose_xyz789' });
      expect(urls).toEqual({
        imageUrl: 'https://poses.example.test/poses/gen_abc123/pose_xyz789.png',
        thumbnailUrl: 'https://poses.example.test/poses/gen_abc123/pose_xyz789_thumb.png',
        originalImageUrl: 'https://poses.example.test/poses/gen_abc123/pose_xyz789.png',
      });
      expect(await filesUnder(dir)).toEqual([
        'poses/gen_abc123/pose_xyz789.png',
        'poses/gen_abc123/pose_xyz789_thumb.png',
        'records/gen_abc123/pose_xyz789.json',
      ]);
      expect(messages('info')).toContain(
        '[Storage] Saved R2 objects: poses/gen_abc123/pose_xyz789.png, poses/gen_abc123/pose_xyz789_thumb.png',
      );
    });

    it('replaces an earlier save of the same pose (the newest save wins), leaving no lock or backup behind', async () => {
      await storage.savePoseWithThumbnail({ imageBuffer: photoPng, generationId: 'g', poseId: 'p' });
      await storage.savePoseWithThumbnail({ imageBuffer: smallPng, generationId: 'g', poseId: 'p' });
      expect((await readFile(path.join(dir, 'poses', 'g', 'p.png'))).equals(smallPng)).toBe(true);
      expect(await filesUnder(dir)).toEqual(['poses/g/p.png', 'poses/g/p_thumb.png', 'records/g/p.json']);
      expect(await storage.readRecord({ generationId: 'g', poseId: 'p' })).toMatchObject({ width: 120, height: 80, bytes: smallPng.length });
    });

    it.each([
      ['HTML', Buffer.from('<html><body>not an image</body></html>'), 'not_an_image'],
      ['nothing', Buffer.alloc(0), 'not_an_image'],
      ['a truncated PNG', null, 'corrupt_image'],
    ] as const)('refuses %s with an InvalidImageError, writes nothing and logs the failure', async (_, bytes, reason) => {
      const imageBuffer = bytes ?? photoPng.subarray(0, 50_000);
      const error = await storage.savePoseWithThumbnail({ imageBuffer, generationId: 'g', poseId: 'p' }).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(InvalidImageError);
      expect((error as InvalidImageError).reason).toBe(reason);
      expect(await filesUnder(parent)).toEqual([]);
      const failed = logs.filter((entry) => entry.message.startsWith('[Storage] Failed to save pose:'));
      expect(failed).toHaveLength(1);
      expect(failed[0]).toMatchObject({ level: 'error', code: 'invalid_image', generationId: 'g', poseId: 'p' });
    });

    it('refuses an image over MAX_INPUT_PIXELS as too_large', async () => {
      const { sink, entries } = capturingSink();
      logs = entries;
      storage = createPoseStorage({ config: parseConfig({ UPLOAD_PATH: dir, MAX_INPUT_PIXELS: '1000000' }), logger: createLogger(sink) });
      const error = await storage.savePoseWithThumbnail({ imageBuffer: photoJpeg, generationId: 'g', poseId: 'p' }).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(InvalidImageError);
      expect((error as InvalidImageError).code).toBe('too_large');
      expect(await filesUnder(parent)).toEqual([]);
    });

    const badIds = ['../x', '', 'x'.repeat(129), 'a/b', '..', 'a b', 'pose.png', 'a\u0000b'];

    it.each(badIds.map((id) => [JSON.stringify(id).slice(0, 30), id]))('refuses the id %s, writes nothing', async (_, id) => {
      for (const params of [
        { generationId: id, poseId: 'p' },
        { generationId: 'g', poseId: id },
        { generationId: 'g', poseId: 'p', poseLibraryId: id },
      ]) {
        await expect(storage.savePoseWithThumbnail({ imageBuffer: smallPng, ...params })).rejects.toBeInstanceOf(InvalidIdError);
      }
      expect(await filesUnder(parent)).toEqual([]);
      const failed = logs.filter((entry) => entry.message.startsWith('[Storage] Failed to save pose:'));
      expect(failed).toHaveLength(3);
      for (const entry of failed) expect(entry).toMatchObject({ level: 'error', code: 'invalid_id' });
    });

    it('refuses ids of non-string type', async () => {
      const params = { imageBuffer: smallPng, generationId: 42, poseId: 'p' } as unknown as Parameters<PoseStorage['savePoseWithThumbnail']>[0];
      await expect(storage.savePoseWithThumbnail(params)).rejects.toBeInstanceOf(InvalidIdError);
      expect(await filesUnder(parent)).toEqual([]);
    });

    it('removes the image again when the thumbnail cannot be written', async () => {
      const inner = new DirectoryStore({ root: dir, uploadBaseUrl: 'http://127.0.0.1:1' });
      const store = wrapStore(inner, {
        put: (key, body, options) => (key.endsWith('_thumb.png') ? Promise.reject(new DiskFullError(key)) : inner.put(key, body, options)),
      });
      storage = localStorage(store);

      const error = await storage.savePoseWithThumbnail({ imageBuffer: smallPng, generationId: 'g', poseId: 'p' }).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(DiskFullError);
      expect(await filesUnder(parent)).toEqual([]);
      expect(logs.find((entry) => entry.message.startsWith('[Storage] Failed to save pose:'))).toMatchObject({ code: 'disk_full' });
      expect(messages().some((message) => message.startsWith('[Storage] Saved'))).toBe(false);
    });

    it.each([
      ['the image', (key: string) => key === 'poses/g/p.png'],
      ['the thumbnail', (key: string) => key.endsWith('_thumb.png')],
      ['the record', (key: string) => key.startsWith('records/')],
    ])('a re-save that fails writing %s leaves the published pose whole, as it was', async (_, failing) => {
      await storage.savePoseWithThumbnail({ imageBuffer: smallPng, generationId: 'g', poseId: 'p' });
      const before = await Promise.all(['poses/g/p.png', 'poses/g/p_thumb.png'].map((key) => readFile(path.join(dir, key))));
      const inner = new DirectoryStore({ root: dir, uploadBaseUrl: 'http://127.0.0.1:1' });
      const store = wrapStore(inner, {
        put: (key, body, options) => (failing(key) ? Promise.reject(new DiskFullError(key)) : inner.put(key, body, options)),
        copy: (source, target, options) => (failing(target) ? Promise.reject(new DiskFullError(target)) : inner.copy(source, target, options)),
      });
      storage = localStorage(store);

      await expect(storage.savePoseWithThumbnail({ imageBuffer: photoPng, generationId: 'g', poseId: 'p' })).rejects.toBeInstanceOf(
        DiskFullError,
      );
      const after = await Promise.all(['poses/g/p.png', 'poses/g/p_thumb.png'].map((key) => readFile(path.join(dir, key))));
      if (failing('records/g/p.json')) {
        // Image and thumbnail were both replaced; only the record is stale, and says the older size.
        expect(after[0]?.equals(photoPng)).toBe(true);
      } else {
        expect(after[0]?.equals(before[0]!), 'the old image').toBe(true);
        expect(after[1]?.equals(before[1]!), 'the old thumbnail').toBe(true);
      }
      expect(await filesUnder(dir)).toEqual(['poses/g/p.png', 'poses/g/p_thumb.png', 'records/g/p.json']);
    });

    it('wraps an unexpected store failure as an internal error, without its message', async () => {
      const inner = new DirectoryStore({ root: dir, uploadBaseUrl: 'http://127.0.0.1:1' });
      storage = localStorage(wrapStore(inner, { put: () => Promise.reject(new Error('socket hang up at 10.0.0.1')) }));
      const error = await storage.savePoseWithThumbnail({ imageBuffer: smallPng, generationId: 'g', poseId: 'p' }).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(PoseStorageError);
      expect((error as PoseStorageError).code).toBe('internal_error');
      expect((error as PoseStorageError).message).not.toContain('10.0.0.1');
    });
  });

  describe('deletePose', () => {
    async function seedPose(generationId: string, poseId: string): Promise<void> {
      await storage.savePoseWithThumbnail({ imageBuffer: smallPng, generationId, poseId });
      await storage.store.put(`staging/${generationId}/${poseId}/${UUID}`, smallPng, { contentType: 'image/png' });
    }

    it('removes the image, thumbnail, record and staged uploads of that pose only', async () => {
      await seedPose('gen_1', 'pose_1');
      await seedPose('gen_1', 'pose_1-b');
      await storage.store.put(`staging/gen_1/pose_1/${UUID.replace('0000-4000', '1111-4000')}`, smallPng, { contentType: 'image/png' });

      const result = await storage.deletePose({ generationId: 'gen_1', poseId: 'pose_1' });
      expect(result).toEqual({ ok: true, deletedCount: 5 });
      expect(await filesUnder(dir)).toEqual([
        'poses/gen_1/pose_1-b.png',
        'poses/gen_1/pose_1-b_thumb.png',
        'records/gen_1/pose_1-b.json',
        `staging/gen_1/pose_1-b/${UUID}`,
      ]);
      const deleted = logs.find((entry) => entry.message === '[Storage] Deleted pose: pose_1');
      expect(deleted).toMatchObject({ level: 'info', generationId: 'gen_1', poseId: 'pose_1' });
    });

    it('succeeds when there is nothing to delete', async () => {
      const result = await storage.deletePose({ generationId: 'gen_none', poseId: 'pose_none' });
      expect(result.ok).toBe(true);
      expect(messages('info')).toContain('[Storage] Deleted pose: pose_none');
    });

    it('never throws: a failing store gives {ok: false} and a warning', async () => {
      await seedPose('g', 'p');
      const inner = new DirectoryStore({ root: dir, uploadBaseUrl: 'http://127.0.0.1:1' });
      storage = localStorage(wrapStore(inner, { delete: () => Promise.reject(new StoreUnavailableError('disk went away')) }));

      const result = await storage.deletePose({ generationId: 'g', poseId: 'p' });
      expect(result.ok).toBe(false);
      if (!result.ok) {
        expect(result.error).toBeInstanceOf(StoreUnavailableError);
        expect(result.error.code).toBe('storage_unavailable');
      }
      const warning = logs.find((entry) => entry.message.startsWith('[Storage] Failed to delete pose:'));
      expect(warning).toMatchObject({ level: 'warn', code: 'storage_unavailable' });
      expect(messages('info').some((message) => message.startsWith('[Storage] Deleted pose'))).toBe(false);
    });

    it('never throws on a listing failure or an unexpected error', async () => {
      const inner = new DirectoryStore({ root: dir, uploadBaseUrl: 'http://127.0.0.1:1' });
      storage = localStorage(
        wrapStore(inner, {
          list: () => ({
            [Symbol.asyncIterator]: () => ({ next: () => Promise.reject(new TypeError('boom')) }),
          }),
        }),
      );
      const result = await storage.deletePose({ generationId: 'g', poseId: 'p' });
      expect(result.ok).toBe(false);
      if (!result.ok) expect(result.error.code).toBe('internal_error');
      expect(logs.filter((entry) => entry.level === 'warn').map((entry) => entry.message)[0]).toMatch(/^\[Storage\] Failed to delete pose: /);
    });

    it('never throws on invalid ids, and deletes nothing', async () => {
      await seedPose('g', 'p');
      for (const params of [
        { generationId: '../g', poseId: 'p' },
        { generationId: 'g', poseId: '' },
        { generationId: 'g', poseId: 'p/../../x' },
        { generationId: 'g', poseId: 'x'.repeat(129) },
      ]) {
        const result = await storage.deletePose(params);
        expect(result.ok).toBe(false);
        if (!result.ok) expect(result.error).toBeInstanceOf(InvalidIdError);
      }
      expect(await filesUnder(dir)).toHaveLength(4);
      expect(messages('warn').every((message) => message.startsWith('[Storage] Failed to delete pose:'))).toBe(true);
      expect(messages('warn')).toHaveLength(4);
    });
  });

  describe('deleteGeneration', () => {
    it('removes everything of that generation and nothing of another', async () => {
      for (const [generationId, poseId] of [
        ['gen_1', 'a'],
        ['gen_1', 'b'],
        ['gen_10', 'a'],
        ['gen_1-x', 'a'],
        ['gen_2', 'a'],
      ] as const) {
        await storage.savePoseWithThumbnail({ imageBuffer: smallPng, generationId, poseId });
        await storage.store.put(`staging/${generationId}/${poseId}/${UUID}`, smallPng, { contentType: 'image/png' });
      }
      const before = await filesUnder(dir);

      const result = await storage.deleteGeneration('gen_1');
      expect(result).toEqual({ ok: true, deletedCount: 8 });
      const after = await filesUnder(dir);
      expect(after).toEqual(before.filter((file) => !file.split('/').slice(1, 2).includes('gen_1')));
      expect(after.some((file) => file.includes('/gen_1/'))).toBe(false);
      expect(after).toHaveLength(12);
      expect(logs.find((entry) => entry.message === '[Storage] Deleted generation: gen_1')).toMatchObject({ level: 'info', deletedCount: 8 });
    });

    it('is fine with an unknown generation, and refuses an invalid id without throwing', async () => {
      expect(await storage.deleteGeneration('gen_none')).toEqual({ ok: true, deletedCount: 0 });
      const result = await storage.deleteGeneration('../');
      expect(result.ok).toBe(false);
      if (!result.ok) expect(result.error).toBeInstanceOf(InvalidIdError);
      expect(messages('warn')[0]).toMatch(/^\[Storage\] Failed to delete generation: /);
    });
  });

  describe('saveFile', () => {
    it('writes under poses/ and returns its key and URL', async () => {
      const body = Buffer.from('custom thumbnail');
      expect(await storage.saveFile('gen_1/custom/pose_1_200.png', body)).toEqual({
        key: 'poses/gen_1/custom/pose_1_200.png',
        url: '/uploads/poses/gen_1/custom/pose_1_200.png',
      });
      expect(await readFile(path.join(dir, 'poses', 'gen_1', 'custom', 'pose_1_200.png'))).toEqual(body);
      expect(messages('info')).toContain(`[Storage] Saved local files: ${path.join(dir, 'poses/gen_1/custom/pose_1_200.png')}`);
    });

    it('refuses a file in a generation\'s own folder, where poses are published, and says where to put it instead', async () => {
      await storage.savePoseWithThumbnail({ imageBuffer: smallPng, generationId: 'gen_1', poseId: 'pose_1' });
      const before = await readFile(path.join(dir, 'poses', 'gen_1', 'pose_1.png'));
      for (const relativePath of ['gen_1/custom_200.png', 'gen_1/pose_1.png', 'gen_1/pose_1_thumb.png', 'gen_1/notes.txt']) {
        const error = await storage.saveFile(relativePath, Buffer.from('x')).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(InvalidIdError);
        expect((error as Error).message).toContain(`such as gen_1/custom/${relativePath.split('/')[1]}`);
      }
      // The pose's own files were not written over.
      expect(await readFile(path.join(dir, 'poses', 'gen_1', 'pose_1.png'))).toEqual(before);
      expect(await readdir(path.join(dir, 'poses', 'gen_1'))).toEqual(['pose_1.png', 'pose_1_thumb.png']);
    });

    it.each(['../x.png', '../../etc/passwd', 'gen_1/../../x.png', '/etc/passwd', '', 'gen_1//x.png', 'gen_1/./x.png', 'gen_1\\..\\x.png', '.tmp/x', 'a/.png', '%2e%2e/x.png', 'a/b/c/d/e/f/g/h/i.png'])(
      'refuses %j and writes nothing',
      async (relativePath) => {
        await expect(storage.saveFile(relativePath, Buffer.from('x'))).rejects.toBeInstanceOf(InvalidIdError);
        expect(await filesUnder(parent)).toEqual([]);
      },
    );
  });

  describe('initializeLocalStorage and getStorageMode', () => {
    it('creates the layout\'s areas and logs the mode', async () => {
      const nested = path.join(parent, 'nested', 'uploads');
      const { sink, entries } = capturingSink();
      storage = createPoseStorage({ config: parseConfig({ UPLOAD_PATH: nested }), logger: createLogger(sink) });
      expect(storage.getStorageMode()).toBe('local');

      await storage.initializeLocalStorage();
      expect((await readdir(nested)).sort()).toEqual(AREA_DIRECTORIES);
      expect(entries.map((entry) => entry.message)).toEqual(['[Storage] Initialized in local mode']);
      expect(entries[0]).toMatchObject({ level: 'info', mode: 'local', uploadPath: nested });

      await storage.initializeLocalStorage(); // idempotent
      expect((await readdir(nested)).sort()).toEqual(AREA_DIRECTORIES);
    });

    it('creates nothing in r2 mode', async () => {
      storage = r2Storage();
      await storage.initializeLocalStorage();
      expect(await readdir(parent)).toEqual([]);
      expect(messages()).toEqual(['[Storage] Initialized in r2 mode']);
    });

    it('throws and logs when the directory cannot be created', async () => {
      const file = path.join(parent, 'a-file');
      await writeFile(file, 'not a directory');
      const { sink, entries } = capturingSink();
      storage = createPoseStorage({ config: parseConfig({ UPLOAD_PATH: path.join(file, 'uploads') }), logger: createLogger(sink) });
      await expect(storage.initializeLocalStorage()).rejects.toBeInstanceOf(PoseStorageError);
      expect(entries[0]?.message).toMatch(/^\[Storage\] Failed to initialize local storage: /);
      expect(entries[0]?.level).toBe('error');
    });
  });

  it('works end to end: initialize, save, delete', async () => {
    await storage.initializeLocalStorage();
    const urls = await storage.savePoseWithThumbnail({ imageBuffer: smallPng, generationId: 'g', poseId: 'p' });
    expect(urls.thumbnailUrl).toBe('/uploads/poses/g/p_thumb.png');
    expect((await storage.deletePose({ generationId: 'g', poseId: 'p' })).ok).toBe(true);
    expect(await filesUnder(parent)).toEqual([]);
    // The area directories stay.
    expect((await readdir(dir)).filter((name) => name !== '.tmp').sort()).toEqual(AREA_DIRECTORIES);
  });
});
