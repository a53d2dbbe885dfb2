import { PoseStorageError, StoreUnavailableError } from '../errors.ts';
import type { StoreDialect } from './store-dialect.ts';

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
  /**
   * The store's own clock when it answered (S3: its `Date` header; directory: this host's clock, which also
   * sets the files' mtimes). With `lastModified` it tells an object's age by one clock, whatever the reader's.
   */
  storeDate: Date;
}

/** What every request may carry. */
export interface RequestOptions {
  /**
   * Ends the request (and the SDK's retries and backoff) when it aborts. A write aborted before the store has
   * its whole body is not made; under a pose's lock every request carries the lock's deadline (pose-lock.ts).
   */
  signal?: AbortSignal | undefined;
}

export interface GetOptions extends RequestOptions {
  /** Refuse (ObjectTooLargeError) an object larger than this before reading its body. */
  maxBytes?: number;
}

/** The version a write made. */
export interface Written {
  etag: string;
}

/** Conditions of a write, checked by the store atomically with the write (PreconditionFailedError if not met). */
export interface WriteConditions {
  /** `*`: create only; fails if the key exists. */
  ifNoneMatch?: '*';
  /** Replace only this version (its etag); fails if the key is missing or holds another version. */
  ifMatch?: string;
}

export interface PutOptions extends WriteConditions, RequestOptions {
  contentType: string;
  cacheControl?: string;
}

export interface CopyOptions extends RequestOptions {
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
  /**
   * Writes the whole object, atomically: readers see the old object or the new one, never a part. Returns the
   * version it made.
   */
  put(key: string, body: Uint8Array, options: PutOptions): Promise<Written>;
  /** The object, or undefined when there is none. */
  get(key: string, options?: GetOptions): Promise<StoredObject | undefined>;
  head(key: string, options?: RequestOptions): Promise<ObjectInfo | undefined>;
  /**
   * Copies an object inside the store without sending its bytes through this process (S3 CopyObject, a hard
   * link on disk). Atomic like put; returns the version of the copy. A missing source is a PreconditionFailedError.
   */
  copy(sourceKey: string, targetKey: string, options: CopyOptions): Promise<Written>;
  /** Removes the objects; keys that do not exist are not an error. */
  delete(keys: readonly string[], options?: RequestOptions): Promise<void>;
  /** Every object whose key starts with `prefix`, page by page (never all keys at once), in key order. */
  list(prefix: string, options?: RequestOptions): AsyncIterable<ObjectInfo>;
  /**
   * A short-lived URL that lets a client create exactly this key, with this type and length, once: the
   * `If-None-Match: *` it must send makes a second PUT to the same URL fail while the object exists.
   */
  presignUpload(key: string, options: PresignUploadOptions): Promise<PresignedUpload>;
  /**
   * Which conditions the store enforces (store-dialect.ts): measured on an S3 store before its first write that
   * needs one; the directory store enforces them all itself.
   */
  dialect(): Promise<StoreDialect>;
  /**
   * Makes what the store needs before its first use, once at start-up (initializeLocalStorage): a directory
   * store its areas' directories; a bucket is made with the deploy, so an S3 store has nothing to make.
   */
  prepare(): Promise<void>;
}

/**
 * What a request whose signal aborted throws: the signal's reason when it is one of ours (a pose lock's deadline
 * says which lock and that the work is retried), else a StoreUnavailableError saying the request was stopped.
 */
export function abortedRequestError(signal: AbortSignal, what: string): PoseStorageError {
  const reason: unknown = signal.reason;
  return reason instanceof PoseStorageError ? reason : new StoreUnavailableError(`${what} was stopped before the store answered`, { cause: reason });
}

/**
 * `store` with `signal` on every request it makes: what the work under a pose's lock is given, so that no
 * request of it can outlive the lock's deadline (pose-lock.ts). Upload URLs are signed without a request.
 */
export function withSignal(store: ObjectStore, signal: AbortSignal): ObjectStore {
  return {
    put: (key, body, options) => store.put(key, body, { ...options, signal }),
    get: (key, options) => store.get(key, { ...options, signal }),
    head: (key) => store.head(key, { signal }),
    copy: (sourceKey, targetKey, options) => store.copy(sourceKey, targetKey, { ...options, signal }),
    delete: (keys) => store.delete(keys, { signal }),
    list: (prefix) => store.list(prefix, { signal }),
    presignUpload: (key, options) => store.presignUpload(key, options),
    dialect: () => store.dialect(),
    prepare: () => store.prepare(),
  };
}
