/**
 * The library's smoke test, the reference's scripts/test-storage.ts: init, save with thumbnail, verify the
 * files, delete, error handling, against whichever mode the environment configures (`npm run smoke`,
 * `pose-storage smoke`); and first, that the store enforces the conditional writes the pose lock is built on
 * (an S3-compatible store that ignores them would let two writers publish one pose). A deployed API is proved
 * by api-smoke.ts instead.
 *
 * The error-handling check provokes failures on purpose: their `[Storage] Failed to save pose` lines are
 * checked, not printed, so a passing run shows no error line.
 */
import { randomUUID } from 'node:crypto';
import sharp from 'sharp';
import type { Config } from '../config.ts';
import { InvalidIdError, InvalidImageError, PreconditionFailedError } from '../errors.ts';
import { lockKey, STAGING_PREFIX } from '../layout.ts';
import { fileKey, imageKey, thumbnailKey } from '../pose-files.ts';
import { describeDialect } from '../storage/store-dialect.ts';
import { checkImage } from './verify.ts';
import { fileVerdict } from './verify-inspect.ts';
import type { Logger } from '../logger.ts';
import { THUMBNAIL_SIZE } from '../pose-image.ts';
import { PoseStorage } from '../pose-storage.ts';
import { publicBaseUrl } from '../storage/stores.ts';
import { describeLocation } from './config.ts';
import { readFirst } from './migrate.ts';

export interface SmokeOptions {
  storage: PoseStorage;
  config: Config;
  /** Prints one line of the report. */
  write: (line: string) => void;
}

export interface SmokeResult {
  passed: number;
  failed: number;
}

/** Runs the checks against `storage`, printing a PASS/FAIL line each and a summary. */
export async function runSmoke({ storage, config, write }: SmokeOptions): Promise<SmokeResult> {
  const results: { name: string; ok: boolean; detail: string }[] = [];

  async function check(name: string, run: () => Promise<string>): Promise<void> {
    try {
      results.push({ name, ok: true, detail: await run() });
    } catch (error) {
      results.push({ name, ok: false, detail: error instanceof Error ? error.message : String(error) });
    }
    const last = results.at(-1)!;
    write(`${last.ok ? 'PASS' : 'FAIL'}  ${name}: ${last.detail}`);
  }

  function expect(condition: boolean, message: string): void {
    if (!condition) throw new Error(message);
  }

  const pose = { generationId: `smoke_${Date.now()}`, poseId: `pose_${randomUUID().slice(0, 8)}` };
  write(`Storage smoke test, ${storage.getStorageMode()} mode (${describeLocation(config.storageMode, config, config.r2)})\n`);

  await check('initialization', async () => {
    await storage.initializeLocalStorage();
    await readFirst(storage.store.list(STAGING_PREFIX)); // the store answers (in r2 mode, nothing else asks it)
    return `initialized in ${storage.getStorageMode()} mode, the store answers`;
  });
  if (!results[0]!.ok) {
    // Every other check would fail the same way: the first line says why.
    write('\n0 passed, 1 failed (the other checks need the store)');
    return { passed: 0, failed: 1 };
  }

  await check('store dialect', async () => {
    const { text, problem } = describeDialect(await storage.store.dialect());
    expect(problem === undefined, `${text}: ${problem}`);
    return text;
  });

  await check('conditional writes', async () => {
    // On the smoke pose's own lock key: nothing else writes there.
    const key = lockKey(pose);
    const options = { contentType: 'application/json' };
    const refused = (write: Promise<unknown>) =>
      write.then(
        () => false,
        (error: unknown) => {
          if (error instanceof PreconditionFailedError) return true;
          throw error;
        },
      );
    await storage.store.put(key, Buffer.from('{"n":1}'), { ...options, ifNoneMatch: '*' });
    try {
      const enforced = 'the pose lock needs it: use a store that enforces If-None-Match and If-Match on PUT (R2 and S3 do)';
      expect(await refused(storage.store.put(key, Buffer.from('{"n":2}'), { ...options, ifNoneMatch: '*' })), `a second create-only write (If-None-Match: *) was accepted; ${enforced}`);
      const current = await storage.store.head(key);
      expect(current !== undefined, `${key} is missing after it was written`);
      expect(await refused(storage.store.put(key, Buffer.from('{"n":3}'), { ...options, ifMatch: '0-not-this-version' })), `a write for another version (If-Match) was accepted; ${enforced}`);
      await storage.store.put(key, Buffer.from('{"n":4}'), { ...options, ifMatch: current!.etag });
    } finally {
      await storage.store.delete([key]);
    }
    return 'create-only and replace-if-version writes are enforced';
  });

  await check('save pose with thumbnail', async () => {
    const imageBuffer = await sharp({ create: { width: 640, height: 960, channels: 3, background: '#3a7bd5' } }).png().toBuffer();
    const urls = await storage.savePoseWithThumbnail({ imageBuffer, ...pose });
    expect(urls.imageUrl.endsWith(`/${imageKey(pose)}`), `unexpected imageUrl ${urls.imageUrl}`);
    expect(urls.thumbnailUrl.endsWith(`/${thumbnailKey(pose)}`), `unexpected thumbnailUrl ${urls.thumbnailUrl}`);
    expect(urls.originalImageUrl === urls.imageUrl, 'originalImageUrl differs from imageUrl');
    return urls.imageUrl;
  });

  await check('verify files', async () => {
    const image = await storage.store.get(imageKey(pose));
    const thumbnail = await storage.store.get(thumbnailKey(pose));
    expect(image !== undefined && thumbnail !== undefined, 'image or thumbnail missing');
    const meta = await sharp(thumbnail!.body).metadata();
    expect(meta.format === 'png' && meta.width === THUMBNAIL_SIZE && meta.height === THUMBNAIL_SIZE, `thumbnail is ${meta.format} ${meta.width}x${meta.height}`);
    // Each configured variant is what its table entry makes (as verify checks it).
    const variants: string[] = [];
    for (const file of storage.files.variants) {
      const stored = await storage.store.get(fileKey(pose, file));
      expect(stored !== undefined, `the ${file.role} variant is missing`);
      const checked = await checkImage(stored!.body, storage.config.maxInputPixels);
      const fault = fileVerdict(checked, file, { width: 640, height: 960 });
      expect(fault === undefined, `the ${file.role} variant is ${fault}`);
      variants.push(`${file.role} ${checked.ok ? `${checked.width}x${checked.height}` : ''} ${stored!.size} bytes`);
    }
    return [`image ${image!.size} bytes, thumbnail ${meta.width}x${meta.height} PNG ${thumbnail!.size} bytes`, ...variants].join(', ');
  });

  await check('delete pose', async () => {
    const result = await storage.deletePose(pose);
    expect(result.ok, result.ok ? '' : result.error.message);
    for (const file of storage.files.all) expect(!(await storage.store.head(fileKey(pose, file))), `the ${file.role} is still there`);
    return storage.files.variants.length > 0 ? 'image, thumbnail and variants removed' : 'image and thumbnail removed';
  });

  await check('error handling', async () => {
    // The same store, with a logger that keeps the failures' lines for the checks below.
    const errors: string[] = [];
    const keep: Logger = { info: () => undefined, warn: (message) => errors.push(message), error: (message) => errors.push(message) };
    const probe = new PoseStorage({ config, store: storage.store, logger: keep }, publicBaseUrl(config));
    const refused = async (run: () => Promise<unknown>, type: new (...args: never[]) => Error) => {
      try {
        await run();
      } catch (error) {
        if (error instanceof type) return;
        throw error;
      }
      throw new Error(`expected ${type.name}`);
    };
    await refused(() => probe.savePoseWithThumbnail({ imageBuffer: Buffer.from('not an image'), ...pose }), InvalidImageError);
    await refused(() => probe.savePoseWithThumbnail({ imageBuffer: Buffer.alloc(8), generationId: '../etc', poseId: 'x' }), InvalidIdError);
    const logged = errors.filter((message) => message.startsWith('[Storage] Failed to save pose: ')).length;
    expect(logged === 2, `expected two "[Storage] Failed to save pose" lines, got: ${JSON.stringify(errors)}`);
    expect(!(await storage.store.head(imageKey(pose))), 'a refused save wrote a file');
    const missing = await probe.deletePose({ generationId: pose.generationId, poseId: 'never_saved' });
    expect(missing.ok, 'deleting a missing pose failed');
    return 'invalid image and invalid id refused and logged, nothing written; deleting a missing pose is fine';
  });

  const failed = results.filter((result) => !result.ok).length;
  write(`\n${results.length - failed} passed, ${failed} failed`);
  return { passed: results.length - failed, failed };
}
