import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { Config, StorageMode } from './config.ts';
import { asStorageError, InvalidIdError, PoseDeletedError, PoseStorageError } from './errors.ts';
import {
  generationPrefixes,
  imageKey,
  parseId,
  parsePoseRef,
  PUBLIC_PREFIX,
  publicUrl,
  REJECTIONS_PREFIX,
  rejectionKey,
  STAGING_PREFIX,
  stagingPrefix,
  thumbnailKey,
  type PoseRef,
} from './layout.ts';
import type { Logger } from './logger.ts';
import { renderPose, type RenderedPose } from './pose-image.ts';
import { PUBLISHED_CACHE_CONTROL, type ObjectStore } from './storage/object-store.ts';
import { fileSystemError } from './storage/directory-store.ts';

/**
 * The pose storage library: the reference's API (savePoseWithThumbnail, deletePose, getStorageMode,
 * initializeLocalStorage) plus deleteGeneration and saveFile. It works on any ObjectStore and never knows
 * which one; only its log lines name local files in local mode, as the reference's do.
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

const PNG = 'image/png';

export class PoseStorage {
  readonly config: Config;
  readonly store: ObjectStore;
  readonly logger: Logger;
  readonly #publicBaseUrl: string;

  constructor({ config, store, logger }: PoseStorageDeps, publicBaseUrl: string) {
    this.config = config;
    this.store = store;
    this.logger = logger;
    this.#publicBaseUrl = publicBaseUrl;
  }

  getStorageMode(): StorageMode {
    return this.config.storageMode;
  }

  /** Creates the local directory structure (local mode); in r2 mode there is nothing to create. */
  async initializeLocalStorage(): Promise<void> {
    const mode = this.config.storageMode;
    if (mode === 'local') {
      for (const area of [PUBLIC_PREFIX, STAGING_PREFIX, REJECTIONS_PREFIX]) {
        const directory = path.join(this.config.uploadPath, area);
        try {
          await mkdir(directory, { recursive: true });
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
   * Validates the image, then publishes it (as PNG) and its 400x400 thumbnail under the layout. An invalid
   * image writes nothing; a failure between the two writes removes the image again.
   */
  async savePoseWithThumbnail(params: SavePoseParams): Promise<PoseUrls> {
    try {
      const pose = parsePoseRef(params);
      if (params.poseLibraryId !== undefined) parseId('poseLibraryId', params.poseLibraryId);
      const rendered = await renderPose(params.imageBuffer, { maxInputPixels: this.config.maxInputPixels, keepMetadata: this.config.keepImageMetadata });
      return await this.publish(pose, rendered);
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

  /**
   * Publishes a rendered pose: image first, thumbnail last, so a thumbnail never exists without its image;
   * then removes any rejection record of an earlier upload, which would otherwise shadow it in the status.
   * A delete that ran between the two writes took the image: the thumbnail is taken back too and
   * PoseDeletedError thrown, so the pose ends deleted, not half there.
   */
  async publish(pose: PoseRef, rendered: RenderedPose): Promise<PoseUrls> {
    const image = imageKey(pose);
    const thumbnail = thumbnailKey(pose);
    await this.store.put(image, rendered.image, { contentType: PNG, cacheControl: PUBLISHED_CACHE_CONTROL });
    try {
      await this.store.put(thumbnail, rendered.thumbnail, { contentType: PNG, cacheControl: PUBLISHED_CACHE_CONTROL });
    } catch (error) {
      // Remove the thumbnail too: on a re-save it would be the old image's, left without its image.
      await this.store.delete([thumbnail, image]).catch(() => undefined);
      throw error;
    }
    if (!(await this.store.head(image))) {
      await this.store.delete([thumbnail]);
      throw new PoseDeletedError(pose.poseId);
    }
    await this.store.delete([rejectionKey(pose)]);
    this.#logSaved([image, thumbnail], pose);
    return this.urlsOf(pose);
  }

  urlsOf(pose: PoseRef): PoseUrls {
    const imageUrl = publicUrl(this.#publicBaseUrl, imageKey(pose));
    return { imageUrl, thumbnailUrl: publicUrl(this.#publicBaseUrl, thumbnailKey(pose)), originalImageUrl: imageUrl };
  }

  /** Removes a pose's image, thumbnail, staged uploads and rejection record. Never throws. */
  async deletePose(params: { generationId: string; poseId: string }): Promise<DeleteResult> {
    return this.#deleting('pose', async () => {
      const pose = parsePoseRef(params);
      const staged = await this.#collect(stagingPrefix(pose));
      const keys = [thumbnailKey(pose), imageKey(pose), rejectionKey(pose), ...staged];
      await this.store.delete(keys);
      this.logger.info(`[Storage] Deleted pose: ${pose.poseId}`, { ...pose });
      return keys.length;
    });
  }

  /** Removes every file of a generation (the reference's batch delete), page by page. Never throws. */
  async deleteGeneration(generationId: string): Promise<DeleteResult> {
    return this.#deleting('generation', async () => {
      const id = parseId('generationId', generationId);
      let deletedCount = 0;
      for (const prefix of generationPrefixes(id)) {
        const keys = await this.#collect(prefix);
        await this.store.delete(keys);
        deletedCount += keys.length;
      }
      this.logger.info(`[Storage] Deleted generation: ${id}`, { generationId: id, deletedCount });
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
      await this.store.put(key, body, { contentType, cacheControl: PUBLISHED_CACHE_CONTROL });
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
