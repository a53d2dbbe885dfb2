import type { Config, R2Config } from '../config.ts';
import { DirectoryStore } from './directory-store.ts';
import type { ObjectStore } from './object-store.ts';
import { S3Store } from './s3-store.ts';

/**
 * The one place an adapter is chosen: the S3 API (R2) when `r2` is given, else the directory of UPLOAD_PATH.
 * The local server makes its own directory store (its upload URLs follow each request's origin).
 */
export function createStore(config: Pick<Config, 'uploadPath' | 'port'>, r2: R2Config | undefined): ObjectStore {
  if (r2) return new S3Store(r2);
  return new DirectoryStore({ root: config.uploadPath, uploadBaseUrl: `http://localhost:${config.port}` });
}

/** The adapter of the configured mode. */
export const configuredStore = (config: Config): ObjectStore => createStore(config, config.r2);

/** Base of public URLs: the local server's `/uploads` route, or R2's public (custom domain) URL. */
export function publicBaseUrl(config: Config): string {
  return config.r2 ? config.r2.publicUrl : '/uploads';
}
