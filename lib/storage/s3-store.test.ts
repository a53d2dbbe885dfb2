import {
  DeleteObjectsCommand,
  GetObjectCommand,
  type GetObjectCommandOutput,
  HeadObjectCommand,
  ListObjectsV2Command,
  type ListObjectsV2CommandInput,
  type ListObjectsV2CommandOutput,
  NoSuchKey,
  NotFound,
  PutObjectCommand,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-vitest/extend';
import { beforeEach, describe, expect, it } from 'vitest';
import { PermissionDeniedError, StoreUnavailableError } from '../errors.ts';
import { createS3Client } from './s3-client.ts';
import { S3Store } from './s3-store.ts';

/** Cache-Control of published files with the default CACHE_MAX_AGE_SECONDS. */
const PUBLISHED_CACHE = 'public, max-age=300';

const BUCKET = 'poses-unit';
const SECRET = 'unit-SECRET-access-key-0123456789abcdef';

const r2 = {
  accountId: undefined,
  endpoint: 'http://127.0.0.1:9',
  region: 'auto',
  accessKeyId: 'AKIAUNITTEST',
  secretAccessKey: SECRET,
  bucketName: BUCKET,
  publicUrl: 'https://poses.example.test',
};
const client = createS3Client(r2);
const s3 = mockClient(client);
const store = new S3Store(r2, client);

beforeEach(() => {
  s3.reset();
});

function serviceError(name: string, httpStatusCode: number, message = name): S3ServiceException {
  return new S3ServiceException({ name, message, $fault: httpStatusCode >= 500 ? 'server' : 'client', $metadata: { httpStatusCode } });
}

/** A GetObject body: only the method the adapter reads. */
function body(bytes: Uint8Array): NonNullable<GetObjectCommandOutput['Body']> {
  return { transformToByteArray: () => Promise.resolve(bytes) } as unknown as NonNullable<GetObjectCommandOutput['Body']>;
}

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const all: T[] = [];
  for await (const item of items) all.push(item);
  return all;
}

describe('S3Store (mocked S3 client)', () => {
  it('put sends the bucket, key, bytes, content type and cache control', async () => {
    s3.on(PutObjectCommand).resolves({});
    const bytes = new Uint8Array([1, 2, 3]);

    await store.put('poses/p1/original.png', bytes, { contentType: 'image/png', cacheControl: PUBLISHED_CACHE });

    expect(s3).toHaveReceivedCommandExactlyOnceWith(PutObjectCommand, {
      Bucket: BUCKET,
      Key: 'poses/p1/original.png',
      Body: bytes,
      ContentType: 'image/png',
      CacheControl: PUBLISHED_CACHE,
    });
  });

  it('get returns the bytes, size and date of the object', async () => {
    const lastModified = new Date('2025-01-02T03:04:05Z');
    s3.on(GetObjectCommand, { Bucket: BUCKET, Key: 'a/b.webp' }).resolves({
      Body: body(new Uint8Array([9, 8, 7, 6])),
      LastModified: lastModified,
      ETag: '"e1"',
    });

    const object = await store.get('a/b.webp');

    // A mocked client has no Date header to give: the store's clock falls back to this host's.
    expect(object).toEqual({ key: 'a/b.webp', body: Buffer.from([9, 8, 7, 6]), size: 4, lastModified, etag: 'e1', storeDate: expect.any(Date) });
    expect(Buffer.isBuffer(object?.body)).toBe(true);
  });

  it('get: a connection cut while the body streams is a StoreUnavailableError that says so', async () => {
    const cut = Object.assign(new Error('aborted'), { code: 'ECONNRESET' });
    s3.on(GetObjectCommand).resolves({ Body: { transformToByteArray: () => Promise.reject(cut) } as unknown as NonNullable<GetObjectCommandOutput['Body']>, ETag: '"e1"' });

    const error = await store.get('a/b.png').catch((e: unknown) => e);

    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect((error as Error).message).toMatch(/^Storage is unavailable: get a\/b\.png failed: \S+ closed the connection \(ECONNRESET\)$/);
    expect((error as Error).cause).toBe(cut);
  });

  it('get returns undefined on NoSuchKey', async () => {
    s3.on(GetObjectCommand).rejects(new NoSuchKey({ message: 'The specified key does not exist.', $metadata: { httpStatusCode: 404 } }));

    await expect(store.get('missing')).resolves.toBeUndefined();
  });

  it('head returns size and date, and undefined on a 404 NotFound', async () => {
    const lastModified = new Date('2025-05-06T07:08:09Z');
    s3.on(HeadObjectCommand, { Key: 'there' }).resolves({ ContentLength: 1234, LastModified: lastModified, ETag: '"e2"' });
    s3.on(HeadObjectCommand, { Key: 'gone' }).rejects(new NotFound({ message: 'NotFound', $metadata: { httpStatusCode: 404 } }));

    await expect(store.head('there')).resolves.toEqual({ key: 'there', size: 1234, lastModified, etag: 'e2' });
    await expect(store.head('gone')).resolves.toBeUndefined();
  });

  it('a missing bucket is not a missing object', async () => {
    s3.on(GetObjectCommand).rejects(serviceError('NoSuchBucket', 404));

    await expect(store.get('k')).rejects.toBeInstanceOf(StoreUnavailableError);
  });

  it('delete sends at most 1,000 keys a request (2,500 keys: 3 requests), quietly', async () => {
    s3.on(DeleteObjectsCommand).resolves({});
    const keys = Array.from({ length: 2500 }, (_, i) => `k/${i}`);

    await store.delete(keys);

    expect(s3).toHaveReceivedCommandTimes(DeleteObjectsCommand, 3);
    const batches = s3.commandCalls(DeleteObjectsCommand).map((call) => call.args[0].input);
    expect(batches.map((input) => input.Delete?.Objects?.length)).toEqual([1000, 1000, 500]);
    expect(batches.flatMap((input) => input.Delete?.Objects?.map((object) => object.Key))).toEqual(keys);
    for (const input of batches) {
      expect(input.Bucket).toBe(BUCKET);
      expect(input.Delete?.Quiet).toBe(true);
    }
  });

  it('delete of no keys sends nothing', async () => {
    await store.delete([]);

    expect(s3).not.toHaveReceivedAnyCommand();
  });

  it('delete throws StoreUnavailableError when the response lists errors', async () => {
    s3.on(DeleteObjectsCommand).resolves({ Errors: [{ Key: 'k/1', Code: 'InternalError', Message: 'We encountered an internal error.' }] });

    const error = await store.delete(['k/0', 'k/1']).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect((error as StoreUnavailableError).code).toBe('storage_unavailable');
    expect((error as Error).message).toContain('k/1');
  });

  it('delete ignores NoSuchKey entries in the response (missing keys are not an error)', async () => {
    s3.on(DeleteObjectsCommand).resolves({ Errors: [{ Key: 'k/1', Code: 'NoSuchKey' }] });

    await expect(store.delete(['k/1'])).resolves.toBeUndefined();
  });

  it('list follows continuation tokens across pages, with the prefix on every request', async () => {
    const date = new Date('2025-01-01T00:00:00Z');
    const pages: ListObjectsV2CommandOutput[] = [
      {
        Contents: [
          { Key: 'p/1', Size: 1, LastModified: date, ETag: '"1"' },
          { Key: 'p/2', Size: 2, LastModified: date, ETag: '"2"' },
        ],
        IsTruncated: true,
        NextContinuationToken: 'token-1',
        $metadata: {},
      },
      { Contents: [{ Key: 'p/3', Size: 3, LastModified: date, ETag: '"3"' }], IsTruncated: true, NextContinuationToken: 'token-2', $metadata: {} },
      { Contents: [{ Key: 'p/4', Size: 4, LastModified: date, ETag: '"4"' }], IsTruncated: false, $metadata: {} },
    ];
    // The paginator reuses (mutates) its input object, so record each request as it is sent.
    const requests: ListObjectsV2CommandInput[] = [];
    s3.on(ListObjectsV2Command).callsFake((input: ListObjectsV2CommandInput) => {
      requests.push({ ...input });
      return pages[requests.length - 1];
    });

    const listed = await collect(store.list('p/'));

    expect(listed).toEqual([1, 2, 3, 4].map((n) => ({ key: `p/${n}`, size: n, lastModified: date, etag: String(n) })));
    expect(requests).toEqual([
      { Bucket: BUCKET, Prefix: 'p/' },
      { Bucket: BUCKET, Prefix: 'p/', ContinuationToken: 'token-1' },
      { Bucket: BUCKET, Prefix: 'p/', ContinuationToken: 'token-2' },
    ]);
  });

  it('list maps a failure on a later page to a typed error', async () => {
    s3.on(ListObjectsV2Command)
      .resolvesOnce({ Contents: [{ Key: 'p/1', Size: 1 }], IsTruncated: true, NextContinuationToken: 't' })
      .rejectsOnce(serviceError('SlowDown', 503));

    const seen: string[] = [];
    const error = await (async () => {
      for await (const object of store.list('p/')) seen.push(object.key);
    })().catch((e: unknown) => e);

    expect(seen).toEqual(['p/1']);
    expect(error).toBeInstanceOf(StoreUnavailableError);
  });

  describe('error mapping', () => {
    const unavailable: [string, () => Error][] = [
      ['503 ServiceUnavailable', () => serviceError('ServiceUnavailable', 503)],
      ['503 SlowDown', () => serviceError('SlowDown', 503)],
      ['500 InternalError', () => serviceError('InternalError', 500)],
      ['a connection reset', () => Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET', errno: -104, syscall: 'read' })],
      ['a connection refused', () => Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED' })],
      ['a timeout', () => Object.assign(new Error('Connection timed out after 1000 ms'), { name: 'TimeoutError' })],
    ];

    it.each(unavailable)('%s -> StoreUnavailableError', async (_, makeError) => {
      s3.on(PutObjectCommand).rejects(makeError());
      s3.on(GetObjectCommand).rejects(makeError());

      const putError = await store.put('k', new Uint8Array(1), { contentType: 'image/png' }).catch((e: unknown) => e);
      const getError = await store.get('k').catch((e: unknown) => e);

      for (const error of [putError, getError]) {
        expect(error).toBeInstanceOf(StoreUnavailableError);
        expect((error as StoreUnavailableError).code).toBe('storage_unavailable');
        expect((error as Error).cause).toBeInstanceOf(Error);
      }
    });

    const denied: [string, () => Error][] = [
      ['403 AccessDenied', () => serviceError('AccessDenied', 403)],
      ['403 SignatureDoesNotMatch', () => serviceError('SignatureDoesNotMatch', 403)],
      ['403 InvalidAccessKeyId', () => serviceError('InvalidAccessKeyId', 403)],
    ];

    it.each(denied)('%s -> PermissionDeniedError', async (_, makeError) => {
      s3.on(HeadObjectCommand).rejects(makeError());
      s3.on(DeleteObjectsCommand).rejects(makeError());

      const headError = await store.head('k').catch((e: unknown) => e);
      const deleteError = await store.delete(['k']).catch((e: unknown) => e);

      for (const error of [headError, deleteError]) {
        expect(error).toBeInstanceOf(PermissionDeniedError);
        expect((error as PermissionDeniedError).code).toBe('permission_denied');
      }
    });

    it('a 403 on HEAD (no error body, so no error code) is a permission error, not a missing object', async () => {
      s3.on(HeadObjectCommand).rejects(serviceError('Forbidden', 403));

      await expect(store.head('k')).rejects.toBeInstanceOf(PermissionDeniedError);
    });

    it('never puts the secret access key in the message, even when the SDK error echoes it', async () => {
      const echo = `The request signature we calculated does not match. Key: ${SECRET}`;
      s3.on(PutObjectCommand).rejects(serviceError('SignatureDoesNotMatch', 403, echo));
      s3.on(GetObjectCommand).rejects(serviceError('InternalError', 500, echo));
      s3.on(ListObjectsV2Command).rejects(Object.assign(new Error(echo), { code: 'ECONNRESET' }));

      const errors = [
        await store.put('k', new Uint8Array(1), { contentType: 'image/png' }).catch((e: unknown) => e),
        await store.get('k').catch((e: unknown) => e),
        await collect(store.list('p/')).catch((e: unknown) => e),
      ];

      expect(errors[0]).toBeInstanceOf(PermissionDeniedError);
      expect(errors[1]).toBeInstanceOf(StoreUnavailableError);
      expect(errors[2]).toBeInstanceOf(StoreUnavailableError);
      for (const error of errors) {
        expect((error as Error).message).not.toContain(SECRET);
        expect(String(error)).not.toContain(SECRET);
        expect((error as Error).stack ?? '').not.toContain(SECRET);
      }
    });
  });
});
