/**
 * pose-storage: the library's one public entry.
 *
 *   import { poseStorageService } from 'pose-storage/lib/index.ts'
 *   const { imageUrl, thumbnailUrl } = await poseStorageService.savePoseWithThumbnail({ imageBuffer, generationId, poseId })
 */
import type { PoseStorage } from './pose-storage.ts';
import { createServices, getServices, type ServiceOptions } from './services.ts';

/** A library instance of your own (another configuration, store or logger); most callers use poseStorageService. */
export function createPoseStorage(options: ServiceOptions = {}): PoseStorage {
  return createServices(options).storage;
}

const getPoseStorage = (): PoseStorage => getServices().storage;

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
export { ID_PATTERN, POSE_ID_PATTERN, type PoseRef } from './layout.ts';
export { fileKey, imageKey, thumbnailKey, type PoseFile, type PoseFiles } from './pose-files.ts';
export { createLogger, type Logger, type LogSink } from './logger.ts';
export { createServices, getServices, type Services, type ServiceOptions } from './services.ts';
export { PoseStorage, type DeleteResult, type PoseUrls, type SavedFile, type SavePoseParams } from './pose-storage.ts';
export { renderPose, THUMBNAIL_SIZE, type RenderedPose } from './pose-image.ts';
export type { ObjectStore, ObjectInfo, StoredObject, PresignedUpload } from './storage/object-store.ts';
export type { PoseRecord } from './pose-record.ts';
export { DirectoryStore } from './storage/directory-store.ts';
export { S3Store } from './storage/s3-store.ts';
export { createS3Client } from './storage/s3-client.ts';
