import {
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  paginateListObjectsV2,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { R2Config } from '../config.ts';
import { PermissionDeniedError, PoseStorageError, StoreUnavailableError } from '../errors.ts';
import type { ObjectInfo, ObjectStore, PresignedUpload, PresignUploadOptions, PutOptions, StoredObject } from './object-store.ts';

/** DeleteObjects takes at most 1,000 keys a request (S3 and R2 alike). */
const DELETE_BATCH = 1000;

/** An S3 client for R2 or any S3-compatible endpoint. */
export function createS3Client(r2: R2Config): S3Client {
  return new S3Client({
    region: r2.region,
    endpoint: r2.endpoint,
    credentials: { accessKeyId: r2.accessKeyId, secretAccessKey: r2.secretAccessKey },
    // Path-style works on R2, MinIO and test servers alike; virtual hosts need DNS per bucket.
    forcePathStyle: true,
    // The SDK's default CRC32/aws-chunked uploads are not accepted by every S3-compatible store.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: 3,
    // Without throwOnRequestTimeout the SDK only warns, and a hung connection would wait for the Lambda timeout.
    requestHandler: { connectionTimeout: 5_000, requestTimeout: 60_000, throwOnRequestTimeout: true },
  });
}

/** The R2 (S3 API) adapter. */
export class S3Store implements ObjectStore {
  readonly #client: S3Client;
  readonly #bucket: string;

  constructor(client: S3Client, bucket: string) {
    this.#client = client;
    this.#bucket = bucket;
  }

  async put(key: string, body: Uint8Array, options: PutOptions): Promise<void> {
    await this.#send('put', key, () =>
      this.#client.send(
        new PutObjectCommand({
          Bucket: this.#bucket,
          Key: key,
          Body: body,
          ContentType: options.contentType,
          CacheControl: options.cacheControl,
        }),
      ),
    );
  }

  async get(key: string): Promise<StoredObject | undefined> {
    const response = await this.#sendOrMissing('get', key, () =>
      this.#client.send(new GetObjectCommand({ Bucket: this.#bucket, Key: key })),
    );
    if (!response?.Body) return undefined;
    const bytes = await response.Body.transformToByteArray();
    const body = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength); // a view, not a copy of up to 25 MB
    return { key, body, size: body.length, lastModified: response.LastModified ?? new Date(0) };
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    const response = await this.#sendOrMissing('head', key, () =>
      this.#client.send(new HeadObjectCommand({ Bucket: this.#bucket, Key: key })),
    );
    return response && withEtag({ key, size: response.ContentLength ?? 0, lastModified: response.LastModified ?? new Date(0) }, response.ETag);
  }

  async delete(keys: readonly string[]): Promise<void> {
    for (let start = 0; start < keys.length; start += DELETE_BATCH) {
      const batch = keys.slice(start, start + DELETE_BATCH);
      const response = await this.#send('delete', batch[0] ?? '', () =>
        this.#client.send(
          new DeleteObjectsCommand({
            Bucket: this.#bucket,
            Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true },
          }),
        ),
      );
      const failed = response.Errors?.filter((error) => error.Code !== 'NoSuchKey') ?? [];
      if (failed.length > 0) {
        throw new StoreUnavailableError(`could not delete ${failed.length} object(s), first ${failed[0]?.Key} (${failed[0]?.Code})`);
      }
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    const pages = paginateListObjectsV2({ client: this.#client }, { Bucket: this.#bucket, Prefix: prefix });
    try {
      for await (const page of pages) {
        for (const object of page.Contents ?? []) {
          if (object.Key === undefined) continue;
          yield withEtag({ key: object.Key, size: object.Size ?? 0, lastModified: object.LastModified ?? new Date(0) }, object.ETag);
        }
      }
    } catch (error) {
      throw s3Error(error, 'list', prefix);
    }
  }

  async presignUpload(key: string, options: PresignUploadOptions): Promise<PresignedUpload> {
    const command = new PutObjectCommand({
      Bucket: this.#bucket,
      Key: key,
      ContentType: options.contentType,
      ContentLength: options.contentLength,
    });
    // Both headers are signed, so the store refuses another type or size (R2 has no POST policy to do it).
    // Content-Length is signed because the command sets it; the presigner leaves Content-Type unsigned unless
    // it is listed here. SigV4 dates are whole seconds, so expiry is computed from the truncated time.
    const signingDate = new Date(Math.floor(Date.now() / 1000) * 1000);
    const url = await getSignedUrl(this.#client, command, {
      expiresIn: options.expiresInSeconds,
      signingDate,
      signableHeaders: new Set(['content-type']),
    });
    return {
      url,
      method: 'PUT',
      headers: { 'Content-Type': options.contentType },
      expiresAt: new Date(signingDate.getTime() + options.expiresInSeconds * 1000),
    };
  }

  async #send<T>(operation: string, key: string, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      throw s3Error(error, operation, key);
    }
  }

  /** Like #send, but "no such key" is an answer (undefined), not an error. */
  async #sendOrMissing<T>(operation: string, key: string, call: () => Promise<T>): Promise<T | undefined> {
    try {
      return await call();
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw s3Error(error, operation, key);
    }
  }
}

/** S3 quotes its ETags; the digest is what callers compare. */
function withEtag(info: ObjectInfo, etag: string | undefined): ObjectInfo {
  return etag ? { ...info, etag: etag.replace(/"/g, '') } : info;
}

function isMissing(error: unknown): boolean {
  return (
    error instanceof S3ServiceException &&
    (error.name === 'NoSuchKey' || error.name === 'NotFound' || error.$metadata.httpStatusCode === 404) &&
    error.name !== 'NoSuchBucket'
  );
}

/**
 * Maps an SDK failure (after its own retries) to the typed error a caller can act on. Only the error's name
 * and status are kept in the message: SDK messages can echo request details.
 */
function s3Error(error: unknown, operation: string, key: string): PoseStorageError {
  if (error instanceof PoseStorageError) return error;
  const name = error instanceof Error ? error.name : 'UnknownError';
  const status = error instanceof S3ServiceException ? error.$metadata.httpStatusCode : undefined;
  const detail = `${operation} ${key} failed with ${name}${status ? ` (HTTP ${status})` : ''}`;
  if (status === 403 || name === 'AccessDenied' || name === 'InvalidAccessKeyId' || name === 'SignatureDoesNotMatch') {
    return new PermissionDeniedError(`${key}: the store refused the credentials (${name})`, { cause: error });
  }
  return new StoreUnavailableError(detail, { cause: error });
}
