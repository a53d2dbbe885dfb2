import { randomUUID } from 'node:crypto';
import path from 'node:path';
import type { Config, StorageMode } from './config.ts';
import { asStorageError, InvalidIdError, InvalidImageError, PoseStorageError, PreconditionFailedError } from './errors.ts';
import { generationPrefixes, parseId, parsePoseRef, PUBLIC_PREFIX, publicUrl, publishedCacheControl, stagingPrefix, type PoseRef } from './layout.ts';
import { backupKey, fileKey, IMAGE_FILE, keyOfRole, poseKeys, poseOfKey, THUMBNAIL_FILE, type PoseFile, type PoseFiles } from './pose-files.ts';
import { LOCK_WAIT_MS, UPLOAD_LOCK_WAIT_MS, type LockTiming } from './deadlines.ts';
import type { Logger } from './logger.ts';
import { PoseLocks, type PoseLock } from './pose-lock.ts';
import { arrivedAfter, readRecord, writeRecord, type Placeholder, type PoseRecord, type UploadRef } from './pose-record.ts';
import { bodyOf, renderPose, type RenderedPose } from './pose-image.ts';
import { forEachConcurrent } from './concurrency.ts';
import type { ObjectInfo, ObjectStore } from './storage/object-store.ts';

/**
 * The pose storage library: the reference's API (savePoseWithThumbnail, deletePose, getStorageMode,
 * initializeLocalStorage) plus deleteGeneration and saveFile, and the publication of uploads that
 * pose-uploads.ts validates. It works on any ObjectStore and never knows which one; only its log lines name
 * local files in local mode, as the reference's do.
 *
 * A pose is absent, pending (an upload is staged), rejected, or whole: an image and a thumbnail made from
 * that very image, described by its record. Every change of a pose's files happens under the pose's lock
 * (pose-lock.ts), and the newest upload (or save) wins: see RELIABILITY.md.
 */
export interface SavePoseParams {
  imageBuffer: Uint8Array;
  generationId: string;
  poseId: string;
  poseLibraryId?: string | undefined;
}

export interface PoseUrls {
  imageUrl: string;
  thumbnailUrl: string;
  /** Same as imageUrl (the reference keeps both names). */
  originalImageUrl: string;
  /** The configured variants' URLs by role (POSE_VARIANTS), when there are any. */
  variants?: Record<string, string>;
  /** What to show while the image loads (POSE_VARIANTS `placeholder`), in savePoseWithThumbnail's result. */
  placeholder?: Placeholder;
}

/** What a delete did. Deletes never throw: a failure is logged as a warning and returned. */
export type DeleteResult = { ok: true; deletedCount: number } | { ok: false; error: PoseStorageError };

export interface SavedFile {
  key: string;
  url: string;
}

export interface PoseStorageDeps {
  config: Config;
  store: ObjectStore;
  logger: Logger;
  /** The locks' deadlines (lib/deadlines.ts); tests shorten them. */
  lockTiming?: LockTiming | undefined;
}

/** A staged upload as it was read: what settleUpload publishes or rejects. */
export interface StagedUpload {
  /** The staged object as it was read (its etag is the version validated). */
  object: ObjectInfo;
  /** Its validated rendering, or why it is refused. */
  verdict: RenderedPose | InvalidImageError;
}

/** How an upload was settled: published, rejected, or left alone (gone, or superseded by a newer one). */
export type Settlement =
  | { outcome: 'ready'; record: Extract<PoseRecord, { status: 'ready' }> }
  | { outcome: 'rejected'; record: Extract<PoseRecord, { status: 'rejected' }> }
  | { outcome: 'superseded' }
  | { outcome: 'gone' };

const PNG = 'image/png';

/** Poses of a generation locked at once by deleteGeneration. */
const DELETE_CONCURRENCY = 8;

export class PoseStorage {
  readonly config: Config;
  readonly store: ObjectStore;
  readonly logger: Logger;
  readonly locks: PoseLocks;
  readonly #publicBaseUrl: string;
  readonly #cacheControl: string;
  /** What a pose publishes (pose-files.ts). */
  readonly files: PoseFiles;

  constructor({ config, store, logger, lockTiming }: PoseStorageDeps, publicBaseUrl: string) {
    this.config = config;
    this.store = store;
    this.logger = logger;
    this.locks = new PoseLocks(store, logger, lockTiming && { timing: lockTiming });
    this.#publicBaseUrl = publicBaseUrl;
    this.#cacheControl = publishedCacheControl(config.cacheMaxAgeSeconds);
    this.files = config.poseFiles;
  }

  getStorageMode(): StorageMode {
    return this.config.storageMode;
  }

  /** Creates the local directory structure (local mode); in r2 mode there is nothing to create. */
  async initializeLocalStorage(): Promise<void> {
    const mode = this.config.storageMode;
    try {
      // The reference's name says it: in r2 mode this creates nothing (the bucket comes with the deploy).
      if (mode === 'local') await this.store.prepare();
    } catch (error) {
      const failure = asStorageError(error);
      this.logger.error(`[Storage] Failed to initialize local storage: ${failure.message}`, { code: failure.code });
      throw failure;
    }
    this.logger.info(`[Storage] Initialized in ${mode} mode`, { mode, ...(mode === 'local' && { uploadPath: this.config.uploadPath }) });
  }

  /**
   * Validates the image, then publishes it (as PNG) and its 400x400 thumbnail under the layout, replacing
   * what the pose had. An invalid image writes nothing; a failed write leaves the pose as it was. A save is
   * newer than every upload the store holds for the pose when it takes the lock: those are superseded
   * (removed), and any upload that arrives later is newer than the save.
   */
  async savePoseWithThumbnail(params: SavePoseParams): Promise<PoseUrls> {
    try {
      const pose = parsePoseRef(params);
      if (params.poseLibraryId !== undefined) parseId('poseLibraryId', params.poseLibraryId);
      const rendered = await this.render(params.imageBuffer);
      const upload: UploadRef = { key: 'save', etag: randomUUID(), uploadedAt: new Date().toISOString() };
      await this.locks.withLock(pose, 'save', { waitMs: LOCK_WAIT_MS }, async (lock) => {
        const [staged, record] = await Promise.all([collect(lock.store, stagingPrefix(pose)), readRecord(lock.store, pose, this.logger)]);
        await this.#publish(lock, rendered, upload, record);
        return { result: undefined, remove: [...staged.map((object) => object.key), ...this.#backupKeys(pose)] };
      });
      this.#logSaved(this.#fileKeys(pose), pose);
      return { ...this.urlsOf(pose), ...(rendered.placeholder && { placeholder: rendered.placeholder }) };
    } catch (error) {
      const failure = asStorageError(error);
      this.logger.error(`[Storage] Failed to save pose: ${failure.message}`, {
        code: failure.code,
        generationId: describeId(params.generationId),
        poseId: describeId(params.poseId),
      });
      throw failure;
    }
  }

  /** Validates and renders an image (throws InvalidImageError with the rejection reason). */
  render(bytes: Uint8Array): Promise<RenderedPose> {
    const { maxInputPixels, keepImageMetadata: keepMetadata, publishedMaxBytes: maxImageBytes } = this.config;
    return renderPose(bytes, { maxInputPixels, keepMetadata, maxImageBytes, variants: this.files.variants, placeholder: this.files.placeholder });
  }

  /**
   * Publishes or rejects a staged upload, under the pose's lock. The newest upload decides what the pose is,
   * newest by when the store received it (arrivedAfter), never by a host's clock:
   * - the upload is gone, or not the version read (a delete, its event seen twice): nothing is done;
   * - the store holds a newer upload of the pose: this one is superseded (removed), the newer one's own event
   *   settles the pose;
   * - else this one is published (or its rejection recorded, which withdraws an older publication), and the
   *   older uploads still staged are removed with it, superseded.
   * So every settlement leaves no upload older than the one that decided the pose, and whatever is staged
   * later is newer than the record: the record's own upload is never compared with a host's clock.
   */
  async settleUpload(pose: PoseRef, staged: StagedUpload): Promise<Settlement> {
    const { verdict, object } = staged;
    return this.locks.withLock<Settlement>(pose, `upload ${object.key}`, { waitMs: UPLOAD_LOCK_WAIT_MS }, async (lock) => {
      const [stagedNow, record] = await Promise.all([collect(lock.store, stagingPrefix(pose)), readRecord(lock.store, pose, this.logger)]);
      const current = stagedNow.find((other) => other.key === object.key);
      if (current?.etag !== object.etag) return { result: { outcome: 'gone' }, remove: [] };
      const others = stagedNow.filter((other) => other !== current);
      if (others.some((other) => arrivedAfter(other, current))) return { result: { outcome: 'superseded' }, remove: [object.key] };
      const settled = [object.key, ...others.map((other) => other.key)];
      const upload: UploadRef = { key: object.key, etag: object.etag, uploadedAt: current.lastModified.toISOString() };
      if (verdict instanceof InvalidImageError) {
        const rejected = {
          status: 'rejected' as const,
          upload,
          reason: verdict.reason,
          message: verdict.message,
          rejectedAt: new Date().toISOString(),
        };
        lock.assertHeld();
        await writeRecord(lock.store, pose, rejected);
        this.logger.warn(`[Storage] Rejected upload: ${verdict.message}`, { ...pose, reason: verdict.reason });
        return { result: { outcome: 'rejected', record: rejected }, remove: [...settled, ...this.#fileKeys(pose), ...this.#backupKeys(pose)] };
      }
      const ready = await this.#publish(lock, verdict, upload, record, verdict.imageIsInput);
      this.#logSaved(this.#fileKeys(pose), pose);
      return { result: { outcome: 'ready', record: ready }, remove: [...settled, ...this.#backupKeys(pose)] };
    });
  }

  /**
   * Writes every file of the table in its order (the image, the variants, the thumbnail last), then the record,
   * under the lock (through its store: every request ends by the lock's deadline). The image is copied inside the
   * store from the upload when `copyUpload` (it is the upload itself: no byte sent again), on the condition that
   * the upload is still the version validated; on a store that does not enforce that condition (store-dialect.ts)
   * the validated bytes are written instead, so that what is published is always what was validated. If the pose was published, each of its files but the last is
   * first kept aside, so that a failure part-way puts them all back: a failed write never destroys what was
   * published, and never leaves a file with another upload's files. Once the last file is written the pose is
   * whole (the newer one), and only its record may be behind. The record names the version of each file, so
   * that which files belong together is known from what they are (verify).
   */
  async #publish(
    lock: PoseLock,
    rendered: RenderedPose,
    upload: UploadRef,
    previous: PoseRecord | undefined,
    copyUpload = false,
  ): Promise<Extract<PoseRecord, { status: 'ready' }>> {
    const { pose, store } = lock;
    const files = this.files.all;
    const keptAside = new Set<string>();
    const copy = copyUpload && (await store.dialect()).copySourceCondition;
    // What is written so far (writes are atomic: a failed one changed nothing).
    const written: PoseFile[] = [];
    const versions: Record<string, string> = {};
    try {
      if (previous?.status === 'ready') {
        for (const file of files.slice(0, -1)) {
          lock.assertHeld();
          const kept = await store.copy(fileKey(pose, file), backupKey(pose, file), { contentType: file.contentType }).then(
            () => true,
            (error: unknown) => {
              if (error instanceof PreconditionFailedError) return false; // no such file to keep
              throw error;
            },
          );
          if (kept) keptAside.add(file.role);
        }
      }
      for (const file of files) {
        const key = fileKey(pose, file);
        const options = { contentType: file.contentType, cacheControl: this.#cacheControl };
        lock.assertHeld();
        const version =
          file === IMAGE_FILE && copy
            ? await store.copy(upload.key, key, { ...options, sourceEtag: upload.etag })
            : await store.put(key, bodyOf(rendered, file), options);
        written.push(file);
        versions[file.role] = version.etag;
      }
      const record = {
        status: 'ready' as const,
        upload,
        width: rendered.width,
        height: rendered.height,
        bytes: rendered.image.length,
        publishedAt: new Date().toISOString(),
        files: versions,
        ...(rendered.placeholder && { placeholder: rendered.placeholder }),
      };
      lock.assertHeld();
      await writeRecord(store, pose, record);
      return record;
    } catch (error) {
      // Part-way: put back what was kept aside, remove the rest of what was written. (Past the lock's deadline
      // the undo is aborted too: a later holder owns the pose, and verify tells the files apart by version.)
      const undo = written.length === files.length ? [] : written;
      await Promise.all(
        undo.map((file) =>
          keptAside.has(file.role)
            ? store.copy(backupKey(pose, file), fileKey(pose, file), { contentType: file.contentType, cacheControl: this.#cacheControl })
            : store.delete([fileKey(pose, file)]),
        ),
      )
        .then(() => store.delete(this.#backupKeys(pose)))
        .catch((undoError: unknown) => {
          this.logger.error(`[Storage] Could not undo a half-written pose: ${asStorageError(undoError).message}`, { ...pose });
        });
      throw error;
    }
  }

  /** The keys of the pose's files, in the table's order. */
  #fileKeys(pose: PoseRef): string[] {
    return this.files.all.map((file) => fileKey(pose, file));
  }

  /** Where a publication keeps the pose's files aside. */
  #backupKeys(pose: PoseRef): string[] {
    return this.files.all.map((file) => backupKey(pose, file));
  }

  urlsOf(pose: PoseRef): PoseUrls {
    const url = (file: PoseFile) => publicUrl(this.#publicBaseUrl, fileKey(pose, file));
    const [imageUrl, thumbnailUrl] = [url(IMAGE_FILE), url(THUMBNAIL_FILE)];
    const { variants } = this.files;
    return {
      imageUrl,
      thumbnailUrl,
      originalImageUrl: imageUrl,
      ...(variants.length > 0 && { variants: Object.fromEntries(variants.map((file) => [file.role, url(file)])) }),
    };
  }

  /** The pose's record (what the status answers from). */
  readRecord(pose: PoseRef): Promise<PoseRecord | undefined> {
    return readRecord(this.store, pose, this.logger);
  }

  /**
   * Removes a pose: image, thumbnail, record and every staged upload, under its lock (a publication in
   * flight finishes first, then is removed). Never throws.
   */
  async deletePose(params: { generationId: string; poseId: string }): Promise<DeleteResult> {
    return this.#deleting('pose', async () => {
      const pose = parsePoseRef(params);
      const deletedCount = await this.locks.withLock(pose, 'delete', { waitMs: LOCK_WAIT_MS }, (lock) => this.#removePose(lock));
      this.logger.info(`[Storage] Deleted pose: ${pose.poseId}`, { ...pose, deletedCount });
      return deletedCount;
    });
  }

  /**
   * Removes every file of a generation (the reference's batch delete). Each pose found is removed under its
   * own lock, so a publication in flight finishes and is removed too (its fixed keys, and the uploads listed);
   * an upload that arrives meanwhile is a pose created after the delete. With `olderThan` (cleanup), a pose is
   * removed only when every object of it, as read under its lock, is older than that (by the store's
   * Last-Modified), and only the objects so read: a pose uploaded or published while the generation is
   * deleted is kept whole. Never throws.
   */
  async deleteGeneration(generationId: string, options: { olderThan?: Date } = {}): Promise<DeleteResult & { keptPoses?: number }> {
    let keptPoses = 0;
    const result = await this.#deleting('generation', async () => {
      const id = parseId('generationId', generationId);
      const cutoff = options.olderThan?.getTime();
      const poses = new Map<string, { pose: PoseRef; listed: string[] }>();
      const others: ObjectInfo[] = [];
      for (const prefix of generationPrefixes(id)) {
        for (const object of await collect(this.store, prefix)) {
          const pose = poseOfKey(object.key);
          if (!pose) others.push(object);
          else if (poses.has(pose.poseId)) poses.get(pose.poseId)!.listed.push(object.key);
          else poses.set(pose.poseId, { pose, listed: [object.key] });
        }
      }
      let deletedCount = 0;
      await forEachConcurrent(poses.values(), DELETE_CONCURRENCY, async ({ pose, listed }) => {
        const removed = await this.locks.withLock<number | 'kept'>(pose, 'delete', { waitMs: LOCK_WAIT_MS }, async (lock) =>
          cutoff === undefined
            ? { result: listed.filter((key) => key !== lock.key).length, remove: [...new Set([...listed, ...poseKeys(pose, this.files)])] }
            : this.#removeOldPose(lock, cutoff),
        );
        if (removed === 'kept') keptPoses++;
        else deletedCount += removed;
      });
      // Files of no pose (saved with saveFile): no writer of a pose touches them.
      const files = others.filter((object) => cutoff === undefined || object.lastModified.getTime() < cutoff).map((object) => object.key);
      await this.store.delete(files);
      deletedCount += files.length;
      this.logger.info(`[Storage] Deleted generation: ${id}`, { generationId: id, poses: poses.size - keptPoses, deletedCount, ...(cutoff !== undefined && { keptPoses }) });
      return deletedCount;
    });
    return options.olderThan && result.ok ? { ...result, keptPoses } : result;
  }

  /**
   * Under the pose's lock: what to remove of it (its fixed keys and the uploads staged now, read through the
   * lock's store), and how many files that is (those its record tells of, and the staged uploads).
   */
  async #removePose({ pose, store }: PoseLock): Promise<{ result: number; remove: string[] }> {
    const [staged, record] = await Promise.all([collect(store, stagingPrefix(pose)), readRecord(store, pose, this.logger)]);
    // The files the record tells of (a backup never outlives its writer's lock, which we hold).
    const known = record === undefined ? 0 : record.status === 'ready' ? 3 : 1;
    return { result: staged.length + known, remove: [...staged.map((object) => object.key), ...poseKeys(pose, this.files), ...recordedKeys(pose, record)] };
  }

  /** Like #removePose, but only the objects read now, and nothing (`kept`) when one was modified at `cutoff` (ms) or after. */
  async #removeOldPose({ pose, store }: PoseLock, cutoff: number): Promise<{ result: number | 'kept'; remove: string[] }> {
    const [staged, fixed] = await Promise.all([collect(store, stagingPrefix(pose)), Promise.all(poseKeys(pose, this.files).map((key) => store.head(key)))]);
    const objects = [...staged, ...fixed.filter((object) => object !== undefined)];
    if (objects.some((object) => object.lastModified.getTime() >= cutoff)) return { result: 'kept', remove: [] };
    return { result: objects.length, remove: objects.map((object) => object.key) };
  }

  /**
   * Saves any file under the public layout (`poses/{relativePath}`), as the reference's saveLocal does for
   * custom thumbnails. Path segments follow the id rules plus one extension. A generation's own folder
   * (`{generationId}/{file}`) holds its poses' files only, written under their locks: a custom file goes a
   * folder deeper or elsewhere, so that it is never taken for (or written over) a pose's file.
   */
  async saveFile(relativePath: string, body: Uint8Array, contentType = PNG): Promise<SavedFile> {
    const segments = typeof relativePath === 'string' ? relativePath.split('/') : [];
    const valid = segments.every((segment, i) =>
      i === segments.length - 1 ? /^[A-Za-z0-9_-]{1,128}(\.[A-Za-z0-9]{1,10})?$/.test(segment) : /^[A-Za-z0-9_-]{1,128}$/.test(segment),
    );
    if (!valid || segments.length === 0 || segments.length > 8) throw new InvalidIdError('relativePath', relativePath);
    if (segments.length === 2) {
      throw new InvalidIdError(
        'relativePath',
        relativePath,
        `must not name a file in a generation's own folder, where its poses' files are published: save it a folder deeper, such as ${segments[0]}/custom/${segments[1]}`,
      );
    }
    const key = `${PUBLIC_PREFIX}${relativePath}`;
    try {
      await this.store.put(key, body, { contentType, cacheControl: this.#cacheControl });
    } catch (error) {
      const failure = asStorageError(error);
      this.logger.error(`[Storage] Failed to save file: ${failure.message}`, { code: failure.code, key });
      throw failure;
    }
    this.#logSaved([key]);
    return { key, url: publicUrl(this.#publicBaseUrl, key) };
  }

  #logSaved(keys: string[], pose?: PoseRef): void {
    if (this.config.storageMode === 'local') {
      const files = keys.map((key) => path.join(this.config.uploadPath, key));
      this.logger.info(`[Storage] Saved local files: ${files.join(', ')}`, { ...pose });
    } else {
      this.logger.info(`[Storage] Saved R2 objects: ${keys.join(', ')}`, { ...pose });
    }
  }

  async #deleting(what: 'pose' | 'generation', run: () => Promise<number>): Promise<DeleteResult> {
    try {
      return { ok: true, deletedCount: await run() };
    } catch (error) {
      const failure = asStorageError(error);
      this.logger.warn(`[Storage] Failed to delete ${what}: ${failure.message}`, { code: failure.code });
      return { ok: false, error: failure };
    }
  }
}

/**
 * The keys of the files a ready record names, configured or not any more (a variant removed from POSE_VARIANTS
 * since): a delete removes them too.
 */
function recordedKeys(pose: PoseRef, record: PoseRecord | undefined): string[] {
  return record?.status === 'ready' ? Object.keys(record.files ?? {}).flatMap((role) => keyOfRole(pose, role) ?? []) : [];
}

/** Every object under `prefix`. */
async function collect(store: ObjectStore, prefix: string): Promise<ObjectInfo[]> {
  const objects: ObjectInfo[] = [];
  for await (const object of store.list(prefix)) objects.push(object);
  return objects;
}

/** An id for a log line: itself when valid, else a bounded, quoted description (logs stay one line). */
function describeId(value: unknown): string {
  return typeof value === 'string' && /^[A-Za-z0-9_-]{1,128}$/.test(value) ? value : 'invalid';
}
