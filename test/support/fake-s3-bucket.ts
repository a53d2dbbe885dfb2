/**
 * An in-memory bucket behind an aws-sdk-client-mock'ed S3Client: GetObject, HeadObject, PutObject (with
 * If-None-Match / If-Match), CopyObject (with x-amz-copy-source-if-match), DeleteObjects and ListObjectsV2
 * behave like a store (404s and 412s included, ETags and dates kept per version), and `fail` injects a
 * fault before any command reaches the bucket, so a test can break one step of a flow and mend it again.
 */
import { createHash } from 'node:crypto';
import {
  CopyObjectCommand,
  type CopyObjectCommandInput,
  DeleteObjectsCommand,
  type DeleteObjectsCommandInput,
  GetObjectCommand,
  type GetObjectCommandInput,
  type GetObjectCommandOutput,
  HeadObjectCommand,
  type HeadObjectCommandInput,
  ListObjectsV2Command,
  type ListObjectsV2CommandInput,
  NoSuchKey,
  NotFound,
  PutObjectCommand,
  type PutObjectCommandInput,
  type S3ClientResolvedConfig,
  S3ServiceException,
  type ServiceInputTypes,
  type ServiceOutputTypes,
} from '@aws-sdk/client-s3';
import type { AwsStub } from 'aws-sdk-client-mock';

export interface StoredTestObject {
  body: Buffer;
  contentType?: string | undefined;
  cacheControl?: string | undefined;
  /** Quoted MD5 of the body, as S3 answers it; set by the bucket when absent. */
  etag?: string;
  lastModified?: Date;
}

export type S3CommandName = 'GetObject' | 'HeadObject' | 'PutObject' | 'CopyObject' | 'DeleteObjects' | 'ListObjectsV2';

/**
 * Decides, per command and key (the first key for DeleteObjects, the prefix for lists, the target for
 * copies), whether it fails.
 */
export type FaultRule = (command: S3CommandName, key: string) => Error | undefined;

export function serviceError(name: string, httpStatusCode: number): S3ServiceException {
  return new S3ServiceException({ name, message: name, $fault: httpStatusCode >= 500 ? 'server' : 'client', $metadata: { httpStatusCode } });
}

export interface FakeBucket {
  objects: Map<string, StoredTestObject>;
  /** Installs the bucket's behaviour on the mock (again after each `s3.reset()`). */
  install(): void;
  /** Every key under a prefix, sorted. */
  keysUnder(prefix: string): string[];
  /** The current fault rule; undefined means no faults. */
  fail: FaultRule | undefined;
}

type S3Stub = AwsStub<ServiceInputTypes, ServiceOutputTypes, S3ClientResolvedConfig>;

const etagOf = (body: Buffer) => `"${createHash('md5').update(body).digest('hex')}"`;

const preconditionFailed = () => serviceError('PreconditionFailed', 412);

export function fakeBucket(s3: S3Stub): FakeBucket {
  const objects = new Map<string, StoredTestObject>();
  /** The object at `key` with its version filled in (objects set directly by a test get one on first sight). */
  const versioned = (key: string): Required<Pick<StoredTestObject, 'etag' | 'lastModified'>> & StoredTestObject | undefined => {
    const object = objects.get(key);
    if (!object) return undefined;
    object.etag ??= etagOf(object.body);
    object.lastModified ??= new Date();
    return object as Required<Pick<StoredTestObject, 'etag' | 'lastModified'>> & StoredTestObject;
  };
  const matches = (header: string, etag: string | undefined) =>
    header.split(',').some((item) => item.trim() === '*' || item.trim() === etag);

  const bucket: FakeBucket = {
    objects,
    fail: undefined,
    keysUnder: (prefix) => [...objects.keys()].filter((key) => key.startsWith(prefix)).sort(),
    install() {
      const guard = (command: S3CommandName, key: string) => {
        const fault = bucket.fail?.(command, key);
        if (fault) throw fault;
      };
      s3.on(GetObjectCommand).callsFake((input: GetObjectCommandInput) => {
        guard('GetObject', input.Key ?? '');
        const object = versioned(input.Key ?? '');
        if (!object) throw new NoSuchKey({ message: 'NoSuchKey', $metadata: { httpStatusCode: 404 } });
        const bytes = new Uint8Array(object.body);
        return {
          Body: { transformToByteArray: () => Promise.resolve(bytes), destroy: () => undefined } as unknown as GetObjectCommandOutput['Body'],
          ContentLength: bytes.length,
          ETag: object.etag,
          LastModified: object.lastModified,
        };
      });
      s3.on(HeadObjectCommand).callsFake((input: HeadObjectCommandInput) => {
        guard('HeadObject', input.Key ?? '');
        const object = versioned(input.Key ?? '');
        if (!object) throw new NotFound({ message: 'NotFound', $metadata: { httpStatusCode: 404 } });
        return { ContentLength: object.body.length, ETag: object.etag, LastModified: object.lastModified };
      });
      s3.on(PutObjectCommand).callsFake((input: PutObjectCommandInput) => {
        const key = input.Key ?? '';
        guard('PutObject', key);
        const current = versioned(key);
        if (input.IfNoneMatch !== undefined && current && matches(input.IfNoneMatch, current.etag)) throw preconditionFailed();
        if (input.IfMatch !== undefined && !(current && matches(input.IfMatch, current.etag))) throw preconditionFailed();
        const body = Buffer.from(input.Body as Uint8Array);
        objects.set(key, { body, contentType: input.ContentType, cacheControl: input.CacheControl, etag: etagOf(body), lastModified: new Date() });
        return { ETag: etagOf(body) };
      });
      s3.on(CopyObjectCommand).callsFake((input: CopyObjectCommandInput) => {
        const key = input.Key ?? '';
        guard('CopyObject', key);
        const sourceKey = decodeURIComponent((input.CopySource ?? '').split('/').slice(1).join('/'));
        const source = versioned(sourceKey);
        if (!source) throw new NoSuchKey({ message: 'NoSuchKey', $metadata: { httpStatusCode: 404 } });
        if (input.CopySourceIfMatch !== undefined && !matches(input.CopySourceIfMatch, source.etag)) throw preconditionFailed();
        const replace = input.MetadataDirective === 'REPLACE';
        objects.set(key, {
          body: source.body,
          contentType: replace ? input.ContentType : source.contentType,
          cacheControl: replace ? input.CacheControl : source.cacheControl,
          etag: source.etag,
          lastModified: new Date(),
        });
        return { CopyObjectResult: { ETag: source.etag } };
      });
      s3.on(DeleteObjectsCommand).callsFake((input: DeleteObjectsCommandInput) => {
        guard('DeleteObjects', input.Delete?.Objects?.[0]?.Key ?? '');
        for (const object of input.Delete?.Objects ?? []) objects.delete(object.Key ?? '');
        return {};
      });
      s3.on(ListObjectsV2Command).callsFake((input: ListObjectsV2CommandInput) => {
        guard('ListObjectsV2', input.Prefix ?? '');
        const keys = bucket.keysUnder(input.Prefix ?? '');
        return {
          Contents: keys.map((Key) => {
            const object = versioned(Key)!;
            return { Key, Size: object.body.length, ETag: object.etag, LastModified: object.lastModified };
          }),
          KeyCount: keys.length,
        };
      });
    },
  };
  return bucket;
}
