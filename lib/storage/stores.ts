import type { Config } from './config.ts';
import { DirectoryStore } from './storage/directory-store.ts';
import type { ObjectStore } from './storage/object-store.ts';
import { S3Store } from './storage/s3-store.ts';

/** The adapter of the configured mode: a directory in local mode, the S3 API (R2) in r2 mode. */
export function createStore(config: Config): ObjectStore {
  if (config.r2) return new S3Store(config.r2);
  return new DirectoryStore({ root: config.uploadPath, uploadBaseUrl: `http://localhost:${config.port}` });
}

/** Base of public URLs: the local server's `/uploads` route, or R2's public (custom domain) URL. */
export function publicBaseUrl(config: Config): string {
  return config.r2 ? config.r2.publicUrl : '/uploads';
}
