/**
 * pose-storage: the library's one public entry.
 *
 *   import { poseStorageService } from 'pose-storage/lib/index.ts'
 *   const { imageUrl, thumbnailUrl } = await poseStorageService.savePoseWithThumbnail({ imageBuffer, generationId, poseId })
 */
import { getConfig, type Config } from './config.ts';
import { createLogger, type Logger } from './logger.ts';
import { PoseStorage } from './pose-storage.ts';
import type { ObjectStore } from './storage/object-store.ts';
import { createStore, publicBaseUrl } from './stores.ts';

export interface CreatePoseStorageOptions {
  /** Defaults to the configuration parsed from process.env. */
  config?: Config;
  /** Defaults to the adapter of the configured mode. */
  store?: ObjectStore;
  logger?: Logger;
}

export function createPoseStorage(options: CreatePoseStorageOptions = {}): PoseStorage {
  const config = options.config ?? getConfig();
  return new PoseStorage(
    { config, store: options.store ?? createStore(config), logger: options.logger ?? createLogger() },
    publicBaseUrl(config),
  );
}

let shared: PoseStorage | undefined;

/** The process-wide instance, configured from the environment on first use (so importing never throws). */
export function getPoseStorage(): PoseStorage {
  shared ??= createPoseStorage();
  return shared;
}

/** The reference's service object: same methods, same behaviour, configured from the environment. */
export const poseStorageService = {
  savePoseWithThumbnail: (...args: Parameters<PoseStorage['savePoseWithThumbnail']>) => getPoseStorage().savePoseWithThumbnail(...args),
  deletePose: (...args: Parameters<PoseStorage['deletePose']>) => getPoseStorage().deletePose(...args),
  deleteGeneration: (...args: Parameters<PoseStorage['deleteGeneration']>) => getPoseStorage().deleteGeneration(...args),
  saveFile: (...args: Parameters<PoseStorage['saveFile']>) => getPoseStorage().saveFile(...args),
  getStorageMode: () => getPoseStorage().getStorageMode(),
  initializeLocalStorage: () => getPoseStorage().initializeLocalStorage(),
};

export { parseConfig, getConfig, type Config, type StorageMode } from './config.ts';
export * from './errors.ts';
export { imageKey, thumbnailKey, ID_PATTERN, type PoseRef } from './layout.ts';
export { createLogger, type Logger, type LogSink } from './logger.ts';
export { PoseStorage, type DeleteResult, type PoseUrls, type SavedFile, type SavePoseParams } from './pose-storage.ts';
export { renderPose, THUMBNAIL_SIZE, type RenderedPose } from './pose-image.ts';
export type { ObjectStore, ObjectInfo, StoredObject, PresignedUpload } from './storage/object-store.ts';
export { DirectoryStore } from './storage/directory-store.ts';
export { S3Store, createS3Client } from './storage/s3-store.ts';
