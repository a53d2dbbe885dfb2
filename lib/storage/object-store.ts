/**
 * The one storage interface. Two adapters implement it: a directory (local mode) and the S3 API (R2 or any
 * S3-compatible store). Keys are layout keys (see layout.ts); callers never know which adapter they hold.
 */
export interface ObjectInfo {
  key: string;
  size: number;
  lastModified: Date;
  /** The store's checksum when it keeps one (S3/R2: the ETag, an MD5 hex digest for single-part uploads). */
  etag?: string;
}

export interface StoredObject extends ObjectInfo {
  body: Buffer;
}

export interface PutOptions {
  contentType: string;
  cacheControl?: string;
}

export interface PresignUploadOptions {
  contentType: string;
  contentLength: number;
  expiresInSeconds: number;
}

/** Everything a client needs to PUT the bytes: exactly these headers, before `expiresAt`. */
export interface PresignedUpload {
  url: string;
  method: 'PUT';
  headers: Record<string, string>;
  expiresAt: Date;
}

export interface ObjectStore {
  /** Writes the whole object, atomically: readers see the old object or the new one, never a part. */
  put(key: string, body: Uint8Array, options: PutOptions): Promise<void>;
  /** The object, or undefined when there is none. */
  get(key: string): Promise<StoredObject | undefined>;
  head(key: string): Promise<ObjectInfo | undefined>;
  /** Removes the objects; keys that do not exist are not an error. */
  delete(keys: readonly string[]): Promise<void>;
  /** Every object whose key starts with `prefix`, page by page (never all keys at once). */
  list(prefix: string): AsyncIterable<ObjectInfo>;
  /** A short-lived URL that lets a client PUT exactly this key, type and length, and nothing else. */
  presignUpload(key: string, options: PresignUploadOptions): Promise<PresignedUpload>;
}

/** Cache-Control of published files: their keys never change content except by delete and re-upload. */
export const PUBLISHED_CACHE_CONTROL = 'public, max-age=31536000, immutable';
