/**
 * pose-storage: the library's one public entry.
 *
 *   import { poseStorageService } from 'pose-storage/lib/index.ts'
 *   const { imageUrl, thumbnailUrl } = await poseStorageService.savePoseWithThumbnail({ imageBuffer, generationId, poseId })
 */
import type { PoseStorage } from './pose-storage.ts';
import { createServices, getServices, type ServiceOptions } from './services.ts';

/**
 * What backend code calls: the reference's methods, and nothing of how a pose is kept whole (its store, its
 * locks, the upload flow stay inside, so no caller can write around the lock).
 */
export interface PoseStorageService {
  savePoseWithThumbnail: PoseStorage['savePoseWithThumbnail'];
  deletePose: PoseStorage['deletePose'];
  deleteGeneration: PoseStorage['deleteGeneration'];
  saveFile: PoseStorage['saveFile'];
  getStorageMode: PoseStorage['getStorageMode'];
  initializeLocalStorage: PoseStorage['initializeLocalStorage'];
}

/** The service's methods on the instance `storage()` gives when called (made on first use by poseStorageService). */
function serviceOf(storage: () => PoseStorage): PoseStorageService {
  const service: PoseStorageService = {
    savePoseWithThumbnail: (...args) => storage().savePoseWithThumbnail(...args),
    deletePose: (...args) => storage().deletePose(...args),
    deleteGeneration: (...args) => storage().deleteGeneration(...args),
    saveFile: (...args) => storage().saveFile(...args),
    getStorageMode: () => storage().getStorageMode(),
    initializeLocalStorage: () => storage().initializeLocalStorage(),
  };
  return Object.freeze(service);
}

/** A library instance of your own (another configuration, store or logger); most callers use poseStorageService. */
export function createPoseStorage(options: ServiceOptions = {}): PoseStorageService {
  const { storage } = createServices(options);
  return serviceOf(() => storage);
}

/** The reference's service object: same methods, same behaviour, configured from the environment. */
export const poseStorageService: PoseStorageService = serviceOf(() => getServices().storage);

export { parseConfig, getConfig, type Config, type StorageMode } from './config.ts';
export * from './errors.ts';
export { ID_PATTERN, POSE_ID_PATTERN, type PoseRef } from './layout.ts';
export { fileKey, imageKey, thumbnailKey, type PoseFile, type PoseFiles } from './pose-files.ts';
export { createLogger, type Logger, type LogSink } from './logger.ts';
export type { ServiceOptions } from './services.ts';
export type { DeleteResult, PoseUrls, SavedFile, SavePoseParams } from './pose-storage.ts';
export { renderPose, THUMBNAIL_SIZE, type RenderedPose } from './pose-image.ts';
export type { ObjectStore, ObjectInfo, StoredObject, PresignedUpload } from './storage/object-store.ts';
export type { PoseRecord } from './pose-record.ts';
export { DirectoryStore } from './storage/directory-store.ts';
export { S3Store } from './storage/s3-store.ts';
export { createS3Client } from './storage/s3-client.ts';
