import { randomUUID } from 'node:crypto';
import path from 'node:path';
import type { Config, StorageMode } from './config.ts';
import { asStorageError, InvalidIdError, InvalidImageError, PoseStorageError, PreconditionFailedError } from './errors.ts';
import {
  AREAS,
  backupKey,
  generationPrefixes,
  imageKey,
  LOCKS_PREFIX,
  parseId,
  parsePoseRef,
  PUBLIC_PREFIX,
  poseKeys,
  poseOfKey,
  publicUrl,
  publishedCacheControl,
  stagingPrefix,
  thumbnailKey,
  type PoseRef,
} from './layout.ts';
import type { Logger } from './logger.ts';
import { PoseLocks, type PoseLock } from './pose-lock.ts';
import { isNewerUpload, readRecord, writeRecord, type PoseRecord, type UploadRef } from './pose-record.ts';
import { renderPose, type RenderedPose } from './pose-image.ts';
import { forEachConcurrent } from './operations/concurrency.ts';
import { fileSystemError, makeDirectory } from './storage/directory-store.ts';
import type { ObjectStore } from './storage/object-store.ts';

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
}

/** A staged upload as it was read: what settleUpload publishes or rejects. */
export interface StagedUpload extends UploadRef {
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

/** How long a save or a delete waits for another writer of the pose; an upload waits less (its event is retried). */
const WAIT_FOR_LOCK_MS = 10_000;
const UPLOAD_WAIT_FOR_LOCK_MS = 5_000;

/** Poses of a generation locked at once by deleteGeneration. */
const DELETE_CONCURRENCY = 8;

export class PoseStorage {
  readonly config: Config;
  readonly store: ObjectStore;
  readonly logger: Logger;
  readonly locks: PoseLocks;
  readonly #publicBaseUrl: string;
  readonly #published: { contentType: string; cacheControl: string };

  constructor({ config, store, logger }: PoseStorageDeps, publicBaseUrl: string) {
    this.config = config;
    this.store = store;
    this.logger = logger;
    this.locks = new PoseLocks(store, logger);
    this.#publicBaseUrl = publicBaseUrl;
    this.#published = { contentType: PNG, cacheControl: publishedCacheControl(config.cacheMaxAgeSeconds) };
  }

  getStorageMode(): StorageMode {
    return this.config.storageMode;
  }

  /** Creates the local directory structure (local mode); in r2 mode there is nothing to create. */
  async initializeLocalStorage(): Promise<void> {
    const mode = this.config.storageMode;
    if (mode === 'local') {
      for (const area of AREAS) {
        const directory = path.join(this.config.uploadPath, area.slice(0, -1)); // the area prefix without its slash
        try {
          await makeDirectory(directory);
        } catch (error) {
          const failure = fileSystemError(error, directory);
          this.logger.error(`[Storage] Failed to initialize local storage: ${failure.message}`, { code: failure.code });
          throw failure;
        }
      }
    }
    this.logger.info(`[Storage] Initialized in ${mode} mode`, { mode, ...(mode === 'local' && { uploadPath: this.config.uploadPath }) });
  }

  /**
   * Validates the image, then publishes it (as PNG) and its 400x400 thumbnail under the layout, replacing
   * what the pose had. An invalid image writes nothing; a failed write leaves the pose as it was.
   */
  async savePoseWithThumbnail(params: SavePoseParams): Promise<PoseUrls> {
    try {
      const pose = parsePoseRef(params);
      if (params.poseLibraryId !== undefined) parseId('poseLibraryId', params.poseLibraryId);
      const rendered = await this.render(params.imageBuffer);
      const upload: UploadRef = { key: 'save', etag: randomUUID(), uploadedAt: new Date().toISOString() };
      await this.locks.withLock(pose, 'save', { waitMs: WAIT_FOR_LOCK_MS }, async (lock) => {
        const record = await readRecord(this.store, pose, this.logger);
        await this.#publish(lock, rendered, upload, record);
        return { result: undefined, remove: [backupKey(pose)] };
      });
      this.#logSaved([imageKey(pose), thumbnailKey(pose)], pose);
      return this.urlsOf(pose);
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
    return renderPose(bytes, { maxInputPixels: this.config.maxInputPixels, keepMetadata: this.config.keepImageMetadata });
  }

  /**
   * Publishes or rejects a staged upload, under the pose's lock. Nothing is done when the upload is gone or
   * was replaced since it was read (a delete, or its event seen twice), or when a newer upload already
   * settled the pose (then the staged object is removed). A rejection withdraws an older publication: the
   * newest upload decides what the pose is. The staged object is removed once the pose is settled.
   */
  async settleUpload(pose: PoseRef, staged: StagedUpload): Promise<Settlement> {
    const { verdict, ...upload } = staged;
    return this.locks.withLock<Settlement>(pose, `upload ${upload.key}`, { waitMs: UPLOAD_WAIT_FOR_LOCK_MS }, async (lock) => {
      const [current, record] = await Promise.all([this.store.head(upload.key), readRecord(this.store, pose, this.logger)]);
      if (current?.etag !== upload.etag) return { result: { outcome: 'gone' }, remove: [] };
      if (record && !isNewerUpload(upload, record.upload)) return { result: { outcome: 'superseded' }, remove: [upload.key] };
      if (verdict instanceof InvalidImageError) {
        const rejected = {
          status: 'rejected' as const,
          upload,
          reason: verdict.reason,
          message: verdict.message,
          rejectedAt: new Date().toISOString(),
        };
        lock.assertHeld();
        await writeRecord(this.store, pose, rejected);
        this.logger.warn(`[Storage] Rejected upload: ${verdict.message}`, { ...pose, reason: verdict.reason });
        return { result: { outcome: 'rejected', record: rejected }, remove: [upload.key, imageKey(pose), thumbnailKey(pose), backupKey(pose)] };
      }
      const ready = await this.#publish(lock, verdict, upload, record, verdict.imageIsInput);
      this.#logSaved([imageKey(pose), thumbnailKey(pose)], pose);
      return { result: { outcome: 'ready', record: ready }, remove: [upload.key, backupKey(pose)] };
    });
  }

  /**
   * Writes the image, then the thumbnail, then the record, under the lock. The image is copied inside the
   * store from the upload when `copyUpload` (it is the upload itself: no byte sent again). If the pose was published, its
   * image is first kept aside, so that a failed thumbnail write puts it back: a failed write never destroys
   * what was published, and never leaves an image with another upload's thumbnail.
   */
  async #publish(
    lock: PoseLock,
    rendered: RenderedPose,
    upload: UploadRef,
    previous: PoseRecord | undefined,
    copyUpload = false,
  ): Promise<Extract<PoseRecord, { status: 'ready' }>> {
    const { pose } = lock;
    const [image, thumbnail, backup] = [imageKey(pose), thumbnailKey(pose), backupKey(pose)];
    let keptAside = false;
    if (previous?.status === 'ready') {
      lock.assertHeld();
      keptAside = await this.store.copy(image, backup, { contentType: PNG }).then(
        () => true,
        (error: unknown) => {
          if (error instanceof PreconditionFailedError) return false; // no image to keep
          throw error;
        },
      );
    }
    // What is written so far: nothing, the image, or both files (writes are atomic: a failed one changed nothing).
    let written: 'nothing' | 'image' | 'both' = 'nothing';
    try {
      lock.assertHeld();
      if (copyUpload) await this.store.copy(upload.key, image, { ...this.#published, sourceEtag: upload.etag });
      else await this.store.put(image, rendered.image, this.#published);
      written = 'image';
      lock.assertHeld();
      await this.store.put(thumbnail, rendered.thumbnail, this.#published);
      written = 'both';
      const record = {
        status: 'ready' as const,
        upload,
        width: rendered.width,
        height: rendered.height,
        bytes: rendered.image.length,
        publishedAt: new Date().toISOString(),
      };
      lock.assertHeld();
      await writeRecord(this.store, pose, record);
      return record;
    } catch (error) {
      // Both files written: the pose is whole (the newer one) and only its record is behind, which the retry
      // writes. The image alone: put the previous one back, or remove the new one.
      const undo =
        written !== 'image' ? Promise.resolve() : keptAside ? this.store.copy(backup, image, this.#published) : this.store.delete([image]);
      await undo
        .then(() => this.store.delete([backup]))
        .catch((undoError: unknown) => {
          this.logger.error(`[Storage] Could not undo a half-written pose: ${asStorageError(undoError).message}`, { ...pose });
        });
      throw error;
    }
  }

  urlsOf(pose: PoseRef): PoseUrls {
    const imageUrl = publicUrl(this.#publicBaseUrl, imageKey(pose));
    return { imageUrl, thumbnailUrl: publicUrl(this.#publicBaseUrl, thumbnailKey(pose)), originalImageUrl: imageUrl };
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
      const deletedCount = await this.locks.withLock(pose, 'delete', { waitMs: WAIT_FOR_LOCK_MS }, async () => {
        const [staged, record] = await Promise.all([this.#collect(stagingPrefix(pose)), this.readRecord(pose)]);
        // The files the record tells of (a backup never outlives its writer's lock, which we hold).
        const known = record === undefined ? 0 : record.status === 'ready' ? 3 : 1;
        return { result: staged.length + known, remove: [...staged, ...poseKeys(pose)] };
      });
      this.logger.info(`[Storage] Deleted pose: ${pose.poseId}`, { ...pose, deletedCount });
      return deletedCount;
    });
  }

  /**
   * Removes every file of a generation (the reference's batch delete). Each pose found is locked first, so
   * a publication in flight finishes and is removed too; an upload that arrives meanwhile is a pose created
   * after the delete. Never throws.
   */
  async deleteGeneration(generationId: string): Promise<DeleteResult> {
    return this.#deleting('generation', async () => {
      const id = parseId('generationId', generationId);
      const listed = new Set<string>();
      for (const prefix of generationPrefixes(id)) for (const key of await this.#collect(prefix)) listed.add(key);
      const poses = new Map<string, PoseRef>();
      for (const key of listed) {
        const pose = poseOfKey(key);
        if (pose) poses.set(pose.poseId, pose);
      }
      const locks: PoseLock[] = [];
      try {
        await forEachConcurrent(poses.values(), DELETE_CONCURRENCY, async (pose) => {
          locks.push(await this.locks.acquire(pose, 'delete', { waitMs: WAIT_FOR_LOCK_MS }));
        });
        // What a publication wrote before we held its lock is not in the listing: each pose's own keys are.
        const keys = new Set([...listed, ...[...poses.values()].flatMap(poseKeys), ...locks.map((lock) => lock.key)]);
        await this.store.delete([...keys]);
      } catch (error) {
        await this.store.delete(locks.map((lock) => lock.key)).catch(() => undefined);
        throw error;
      }
      const deletedCount = [...listed].filter((key) => !key.startsWith(LOCKS_PREFIX)).length;
      this.logger.info(`[Storage] Deleted generation: ${id}`, { generationId: id, poses: poses.size, deletedCount });
      return deletedCount;
    });
  }

  /**
   * Saves any file under the public layout (`poses/{relativePath}`), as the reference's saveLocal does for
   * custom thumbnails. Path segments follow the id rules plus one extension.
   */
  async saveFile(relativePath: string, body: Uint8Array, contentType = PNG): Promise<SavedFile> {
    const segments = relativePath.split('/');
    const valid = segments.every((segment, i) =>
      i === segments.length - 1 ? /^[A-Za-z0-9_-]{1,128}(\.[A-Za-z0-9]{1,10})?$/.test(segment) : /^[A-Za-z0-9_-]{1,128}$/.test(segment),
    );
    if (!valid || segments.length > 8) throw new InvalidIdError('relativePath', relativePath);
    const key = `${PUBLIC_PREFIX}${relativePath}`;
    try {
      await this.store.put(key, body, { contentType, cacheControl: this.#published.cacheControl });
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

  async #collect(prefix: string): Promise<string[]> {
    const keys: string[] = [];
    for await (const object of this.store.list(prefix)) keys.push(object.key);
    return keys;
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

/** An id for a log line: itself when valid, else a bounded, quoted description (logs stay one line). */
function describeId(value: unknown): string {
  return typeof value === 'string' && /^[A-Za-z0-9_-]{1,128}$/.test(value) ? value : 'invalid';
}
