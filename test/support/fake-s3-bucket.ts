/**
 * An in-memory bucket behind an aws-sdk-client-mock'ed S3Client: GetObject, HeadObject, PutObject,
 * DeleteObjects and ListObjectsV2 behave like a store (404s included), and `fail` injects a fault before any
 * command reaches the bucket, so a test can break one step of a flow and mend it again.
 */
import {
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
}

export type S3CommandName = 'GetObject' | 'HeadObject' | 'PutObject' | 'DeleteObjects' | 'ListObjectsV2';

/** Decides, per command and key (the first key for DeleteObjects, the prefix for lists), whether it fails. */
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

export function fakeBucket(s3: S3Stub): FakeBucket {
  const objects = new Map<string, StoredTestObject>();
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
        const object = objects.get(input.Key ?? '');
        if (!object) throw new NoSuchKey({ message: 'NoSuchKey', $metadata: { httpStatusCode: 404 } });
        const bytes = new Uint8Array(object.body);
        return { Body: { transformToByteArray: () => Promise.resolve(bytes) } as unknown as GetObjectCommandOutput['Body'], ContentLength: bytes.length };
      });
      s3.on(HeadObjectCommand).callsFake((input: HeadObjectCommandInput) => {
        guard('HeadObject', input.Key ?? '');
        const object = objects.get(input.Key ?? '');
        if (!object) throw new NotFound({ message: 'NotFound', $metadata: { httpStatusCode: 404 } });
        return { ContentLength: object.body.length };
      });
      s3.on(PutObjectCommand).callsFake((input: PutObjectCommandInput) => {
        guard('PutObject', input.Key ?? '');
        objects.set(input.Key ?? '', { body: Buffer.from(input.Body as Uint8Array), contentType: input.ContentType, cacheControl: input.CacheControl });
        return {};
      });
      s3.on(DeleteObjectsCommand).callsFake((input: DeleteObjectsCommandInput) => {
        guard('DeleteObjects', input.Delete?.Objects?.[0]?.Key ?? '');
        for (const object of input.Delete?.Objects ?? []) objects.delete(object.Key ?? '');
        return {};
      });
      s3.on(ListObjectsV2Command).callsFake((input: ListObjectsV2CommandInput) => {
        guard('ListObjectsV2', input.Prefix ?? '');
        const keys = bucket.keysUnder(input.Prefix ?? '');
        return { Contents: keys.map((Key) => ({ Key, Size: objects.get(Key)?.body.length ?? 0 })), KeyCount: keys.length };
      });
    },
  };
  return bucket;
}
