import type { S3Client } from '@aws-sdk/client-s3';
import type { R2Config } from '../config.ts';
import { ObjectTooLargeError, PermissionDeniedError, PoseStorageError, PreconditionFailedError, StoreUnavailableError, UnsafeStoreError } from '../errors.ts';
import {
  abortedRequestError,
  type CopyOptions,
  type GetOptions,
  type ObjectInfo,
  type ObjectStore,
  type PresignedUpload,
  type PresignUploadOptions,
  type PutOptions,
  type RequestOptions,
  type StoredObject,
  type Written,
} from './object-store.ts';
import { storeDateOf } from './s3-store-date.ts';
import { FULL_DIALECT, ifMatchHeader, probeDialect, type StoreDialect } from './store-dialect.ts';

/** DeleteObjects takes at most 1,000 keys a request (S3 and R2 alike). */
const DELETE_BATCH = 1000;

/** The SDK, loaded on the first request (see s3-client.ts). */
const sdk = () => import('@aws-sdk/client-s3');

/**
 * The R2 (S3 API) adapter. Upload URLs are signed without the SDK; everything else goes through the S3
 * client, made on first use unless one is given (tests give a mocked one).
 */
export class S3Store implements ObjectStore {
  readonly #r2: R2Config;
  readonly #bucket: string;
  #client: Promise<S3Client> | undefined;
  /** Made on the first upload URL: only the presign function signs any, the others never load the signer. */
  #presign: Promise<(key: string, options: PresignUploadOptions) => Promise<PresignedUpload>> | undefined;
  /** Measured on the first write that needs a condition (probeDialect), then kept; measured again after a failure. */
  #dialect: Promise<StoreDialect> | undefined;

  /**
   * `dialect`, when given, is taken as measured: for a client that is no store to probe (tests give a mocked
   * client answering as S3 documents, and count its calls).
   */
  constructor(r2: R2Config, client?: S3Client, dialect?: StoreDialect) {
    this.#r2 = r2;
    this.#bucket = r2.bucketName;
    if (client) this.#client = Promise.resolve(client);
    if (dialect) this.#dialect = Promise.resolve(dialect);
  }

  #s3(): Promise<S3Client> {
    this.#client ??= import('./s3-client.ts').then(({ createS3Client }) => createS3Client(this.#r2));
    return this.#client;
  }

  async put(key: string, body: Uint8Array, options: PutOptions): Promise<Written> {
    const [{ PutObjectCommand }, client] = await Promise.all([sdk(), this.#s3()]);
    const { signal } = options;
    const conditional = options.ifNoneMatch !== undefined || options.ifMatch !== undefined;
    const dialect = conditional ? await this.#enforcing(options.ifMatch === undefined ? 'create-only' : 'replace-if-version') : FULL_DIALECT;
    const response = await this.#send('put', key, signal, () =>
      client.send(
        new PutObjectCommand({
          Bucket: this.#bucket,
          Key: key,
          Body: body,
          ContentType: options.contentType,
          CacheControl: options.cacheControl,
          IfNoneMatch: options.ifNoneMatch,
          IfMatch: options.ifMatch === undefined ? undefined : ifMatchHeader(dialect, options.ifMatch),
        }),
        aborting(signal),
      ),
    );
    return { etag: unquoted(response.ETag) };
  }

  async get(key: string, options: GetOptions = {}): Promise<StoredObject | undefined> {
    const [{ GetObjectCommand }, client] = await Promise.all([sdk(), this.#s3()]);
    const { signal } = options;
    const response = await this.#sendOrMissing('get', key, signal, () =>
      client.send(new GetObjectCommand({ Bucket: this.#bucket, Key: key }), aborting(signal)),
    );
    const stream = response?.Body;
    if (!stream) return undefined;
    const { maxBytes } = options;
    if (maxBytes !== undefined && response.ContentLength !== undefined && response.ContentLength > maxBytes) {
      // Headers only: the body is never read.
      (stream as { destroy?: () => void }).destroy?.();
      throw new ObjectTooLargeError(key, response.ContentLength, maxBytes);
    }
    // The body streams after the headers: a connection cut now is a failure of the store as well.
    const bytes = await this.#send('get', key, signal, () => stream.transformToByteArray());
    if (maxBytes !== undefined && bytes.length > maxBytes) throw new ObjectTooLargeError(key, bytes.length, maxBytes);
    const body = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength); // a view, not a copy of up to 25 MB
    const lastModified = response.LastModified ?? new Date(0);
    return { key, body, size: body.length, lastModified, etag: unquoted(response.ETag), storeDate: storeDateOf(response) };
  }

  async head(key: string, { signal }: RequestOptions = {}): Promise<ObjectInfo | undefined> {
    const [{ HeadObjectCommand }, client] = await Promise.all([sdk(), this.#s3()]);
    const response = await this.#sendOrMissing('head', key, signal, () =>
      client.send(new HeadObjectCommand({ Bucket: this.#bucket, Key: key }), aborting(signal)),
    );
    return response && { key, size: response.ContentLength ?? 0, lastModified: response.LastModified ?? new Date(0), etag: unquoted(response.ETag) };
  }

  /** CopyObject: the bytes stay in the store. The metadata is replaced, so the copy gets its own type and caching. */
  async copy(sourceKey: string, targetKey: string, options: CopyOptions): Promise<Written> {
    const [{ CopyObjectCommand }, client] = await Promise.all([sdk(), this.#s3()]);
    const { signal } = options;
    if (options.sourceEtag !== undefined && !(await this.dialect()).copySourceCondition) {
      // Callers ask dialect() first and put the bytes instead; a copy that would not be conditional is never made.
      throw new UnsafeStoreError(this.#where(), 'x-amz-copy-source-if-match on CopyObject', 'a conditional copy needs');
    }
    try {
      const response = await client.send(
        new CopyObjectCommand({
          Bucket: this.#bucket,
          Key: targetKey,
          CopySource: `${this.#bucket}/${sourceKey.split('/').map(encodeURIComponent).join('/')}`,
          CopySourceIfMatch: options.sourceEtag === undefined ? undefined : quoted(options.sourceEtag),
          MetadataDirective: 'REPLACE',
          ContentType: options.contentType,
          CacheControl: options.cacheControl,
        }),
        aborting(signal),
      );
      return { etag: unquoted(response.CopyObjectResult?.ETag) };
    } catch (error) {
      if (signal?.aborted) throw abortedRequestError(signal, `copy ${sourceKey}`);
      // A missing source is a broken precondition of the copy, like a changed one.
      if (isMissing(error)) throw new PreconditionFailedError(sourceKey, 'the copy source does not exist', { cause: error });
      throw this.#error(error, 'copy', targetKey);
    }
  }

  async delete(keys: readonly string[], { signal }: RequestOptions = {}): Promise<void> {
    if (keys.length === 0) return;
    const [{ DeleteObjectsCommand }, client] = await Promise.all([sdk(), this.#s3()]);
    for (let start = 0; start < keys.length; start += DELETE_BATCH) {
      const batch = keys.slice(start, start + DELETE_BATCH);
      const response = await this.#send('delete', batch[0] ?? '', signal, () =>
        client.send(
          new DeleteObjectsCommand({
            Bucket: this.#bucket,
            Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true },
          }),
          aborting(signal),
        ),
      );
      const failed = response.Errors?.filter((error) => error.Code !== 'NoSuchKey') ?? [];
      if (failed.length > 0) {
        throw new StoreUnavailableError(`could not delete ${failed.length} object(s), first ${failed[0]?.Key} (${failed[0]?.Code})`);
      }
    }
  }

  async *list(prefix: string, { signal }: RequestOptions = {}): AsyncIterable<ObjectInfo> {
    const [{ paginateListObjectsV2 }, client] = await Promise.all([sdk(), this.#s3()]);
    const pages = paginateListObjectsV2({ client }, { Bucket: this.#bucket, Prefix: prefix }, aborting(signal));
    try {
      for await (const page of pages) {
        for (const object of page.Contents ?? []) {
          if (object.Key === undefined) continue;
          yield { key: object.Key, size: object.Size ?? 0, lastModified: object.LastModified ?? new Date(0), etag: unquoted(object.ETag) };
        }
      }
    } catch (error) {
      if (signal?.aborted) throw abortedRequestError(signal, `list ${prefix}`);
      throw this.#error(error, 'list', prefix);
    }
  }

  prepare(): Promise<void> {
    return Promise.resolve();
  }

  dialect(): Promise<StoreDialect> {
    this.#dialect ??= this.#s3()
      .then((client) => probeDialect(client, this.#bucket))
      .catch((error: unknown) => {
        this.#dialect = undefined; // a store that failed to answer is asked again next time
        throw this.#error(error, 'probe the conditions of', '');
      });
    return this.#dialect;
  }

  /** The dialect, when the store enforces the kind of write asked for; else an UnsafeStoreError naming it. */
  async #enforcing(kind: 'create-only' | 'replace-if-version'): Promise<StoreDialect> {
    const dialect = await this.dialect();
    if (kind === 'create-only' && !dialect.createOnly) {
      throw new UnsafeStoreError(this.#where(), 'If-None-Match: * on PutObject', 'the pose lock and create-once upload URLs are built on (two writers could change a pose at once)');
    }
    if (kind === 'replace-if-version' && dialect.ifMatch === 'none') {
      throw new UnsafeStoreError(this.#where(), 'If-Match on PutObject', 'taking over the lock of a writer that died needs (two takers could both win)');
    }
    return dialect;
  }

  /** The store's host and bucket, for people. */
  #where(): string {
    return `${safeUrl(this.#r2.endpoint)?.host ?? 'the endpoint'} (bucket ${this.#bucket})`;
  }

  async presignUpload(key: string, options: PresignUploadOptions): Promise<PresignedUpload> {
    this.#presign ??= import('./s3-presign.ts').then(({ createUploadPresigner }) => createUploadPresigner(this.#r2));
    return (await this.#presign)(key, options);
  }

  async #send<T>(operation: string, key: string, signal: AbortSignal | undefined, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      if (signal?.aborted) throw abortedRequestError(signal, `${operation} ${key}`);
      throw this.#error(error, operation, key);
    }
  }

  /** Like #send, but "no such key" is an answer (undefined), not an error. */
  async #sendOrMissing<T>(operation: string, key: string, signal: AbortSignal | undefined, call: () => Promise<T>): Promise<T | undefined> {
    try {
      return await call();
    } catch (error) {
      if (signal?.aborted) throw abortedRequestError(signal, `${operation} ${key}`);
      if (isMissing(error)) return undefined;
      throw this.#error(error, operation, key);
    }
  }

  #error(error: unknown, operation: string, key: string): PoseStorageError {
    return describeS3Failure(error, { operation, key, bucket: this.#bucket, endpoint: this.#r2.endpoint });
  }
}

const quoted = (etag: string) => `"${etag}"`;

/** The SDK's request options for `signal` (it aborts the request, its retries and their backoff). */
const aborting = (signal: AbortSignal | undefined) => (signal === undefined ? {} : { abortSignal: signal });

/** S3 quotes its ETags; the digest is what callers compare. */
const unquoted = (etag: string | undefined) => (etag ?? '').replace(/"/g, '');

interface SdkError {
  name?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
  cause?: unknown;
}

function httpStatusOf(error: unknown): number | undefined {
  return (error as SdkError | null)?.$metadata?.httpStatusCode;
}

function isMissing(error: unknown): boolean {
  const name = (error as SdkError | null)?.name;
  return (name === 'NoSuchKey' || name === 'NotFound' || httpStatusOf(error) === 404) && name !== 'NoSuchBucket';
}

/** The system error code (ECONNREFUSED, ENOTFOUND, CERT_HAS_EXPIRED...) of a failure or of its causes. */
function systemCode(error: unknown): string | undefined {
  for (let current = error, depth = 0; current && depth < 5; current = (current as SdkError).cause, depth++) {
    const code = (current as SdkError).code;
    if (typeof code === 'string' && /^[A-Z][A-Z0-9_]+$/.test(code)) return code;
  }
  return undefined;
}

interface S3FailureContext {
  operation: string;
  key: string;
  bucket: string;
  endpoint: string;
}

/**
 * Maps an SDK failure (after its own retries) to the typed error a caller can act on, saying what happened
 * and what to check: the host that did not resolve or answer, the TLS failure, the keys the store refused,
 * the bucket that does not exist. Only names, codes, hosts and the bucket are quoted: never a secret, and
 * never the SDK's own message (it can echo request details).
 */
function describeS3Failure(error: unknown, { operation, key, bucket, endpoint }: S3FailureContext): PoseStorageError {
  if (error instanceof PoseStorageError) return error;
  const name = (error as SdkError | null)?.name ?? 'UnknownError';
  const status = httpStatusOf(error);
  const code = systemCode(error);
  const url = safeUrl(endpoint);
  const host = url?.hostname ?? 'the endpoint';
  const hostPort = url ? `${url.hostname}:${url.port || (url.protocol === 'https:' ? '443' : '80')}` : 'the endpoint';
  const what = key === '' ? operation : `${operation} ${key}`;
  const unavailable = (detail: string) => new StoreUnavailableError(`${what} failed: ${detail}`, { cause: error });
  const refused = (detail: string) => new PermissionDeniedError(`for ${what}: ${detail}`, { cause: error });

  if (name === 'PreconditionFailed' || status === 412 || name === 'ConditionalRequestConflict' || status === 409) {
    return new PreconditionFailedError(key, `the condition of the ${operation} did not hold (${name})`, { cause: error });
  }
  if (name === 'InvalidAccessKeyId') return refused(`the store does not know the access key (InvalidAccessKeyId): check R2_ACCESS_KEY_ID`);
  if (name === 'SignatureDoesNotMatch') {
    return refused(`the store refused the request signature (SignatureDoesNotMatch): check R2_SECRET_ACCESS_KEY`);
  }
  if (name === 'NoSuchBucket') return unavailable(`bucket "${bucket}" does not exist at ${host} (NoSuchBucket): check R2_BUCKET_NAME and R2_ACCOUNT_ID`);
  if (status === 401 || status === 403 || name === 'AccessDenied') {
    // A HEAD's refusal has no body, so no error code: it may be wrong keys as well as missing permissions.
    const why = name === 'AccessDenied' ? 'check the API token\'s permissions for this bucket' : 'check the keys and the API token\'s permissions for this bucket';
    return refused(`the store refused access to bucket "${bucket}" (${name === 'Unknown' ? 'no error code' : name}, HTTP ${status ?? 403}): ${why}`);
  }
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return unavailable(`the host ${host} does not resolve (DNS ${code}): check R2_ACCOUNT_ID or R2_ENDPOINT`);
  if (code === 'ECONNREFUSED') return unavailable(`connection refused by ${hostPort}`);
  if (code === 'ETIMEDOUT' || name === 'TimeoutError' || name === 'RequestTimeout' || code === 'ECONNABORTED') {
    return unavailable(`no answer from ${hostPort} in time (${code ?? name})`);
  }
  if (code === 'ECONNRESET' || code === 'EPIPE') return unavailable(`${hostPort} closed the connection (${code})`);
  if (code !== undefined && (/^(CERT_|ERR_TLS_|ERR_SSL_|UNABLE_TO_|DEPTH_ZERO|SELF_SIGNED)/.test(code) || code.includes('CERT'))) {
    return unavailable(`TLS error with ${host} (${code})`);
  }
  if (code === 'EPROTO' || /wrong version number|ssl/i.test((error as SdkError | null)?.message ?? '')) {
    return unavailable(`TLS error with ${host} (is R2_ENDPOINT's scheme right?)`);
  }
  if (status !== undefined) return unavailable(`the store answered HTTP ${status} (${name})`);
  return unavailable(`${name}${code ? ` ${code}` : ''}`);
}

function safeUrl(endpoint: string): URL | undefined {
  try {
    return new URL(endpoint);
  } catch {
    return undefined;
  }
}
