/**
 * The one storage interface. Two adapters implement it: a directory (local mode) and the S3 API (R2 or any
 * S3-compatible store). Keys are layout keys (see layout.ts); callers never know which adapter they hold.
 */
export interface ObjectInfo {
  key: string;
  size: number;
  lastModified: Date;
  /**
   * Identifies this version of the object: it changes whenever the object is written again. S3/R2: the ETag
   * (an MD5 hex digest for single-part uploads); directory: derived from the file's inode, size and mtime.
   */
  etag: string;
}

export interface StoredObject extends ObjectInfo {
  body: Buffer;
}

export interface GetOptions {
  /** Refuse (ObjectTooLargeError) an object larger than this before reading its body. */
  maxBytes?: number;
}

/** Conditions of a write, checked by the store atomically with the write (PreconditionFailedError if not met). */
export interface WriteConditions {
  /** `*`: create only; fails if the key exists. */
  ifNoneMatch?: '*';
  /** Replace only this version (its etag); fails if the key is missing or holds another version. */
  ifMatch?: string;
}

export interface PutOptions extends WriteConditions {
  contentType: string;
  cacheControl?: string;
}

export interface CopyOptions {
  contentType: string;
  cacheControl?: string;
  /** Copy only this version of the source (its etag); fails if the source changed or is gone. */
  sourceEtag?: string;
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
  get(key: string, options?: GetOptions): Promise<StoredObject | undefined>;
  head(key: string): Promise<ObjectInfo | undefined>;
  /**
   * Copies an object inside the store without sending its bytes through this process (S3 CopyObject, a hard
   * link on disk). Atomic like put. A missing source is a PreconditionFailedError.
   */
  copy(sourceKey: string, targetKey: string, options: CopyOptions): Promise<void>;
  /** Removes the objects; keys that do not exist are not an error. */
  delete(keys: readonly string[]): Promise<void>;
  /** Every object whose key starts with `prefix`, page by page (never all keys at once), in key order. */
  list(prefix: string): AsyncIterable<ObjectInfo>;
  /**
   * A short-lived URL that lets a client create exactly this key, with this type and length, once: the
   * `If-None-Match: *` it must send makes a second PUT to the same URL fail while the object exists.
   */
  presignUpload(key: string, options: PresignUploadOptions): Promise<PresignedUpload>;
}
