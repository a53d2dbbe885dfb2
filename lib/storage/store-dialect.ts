import { randomUUID } from 'node:crypto';
import type { S3Client } from '@aws-sdk/client-s3';

/**
 * Which of the conditions the design relies on a store enforces, and in what form: measured by trying each on
 * the store itself, once per process, before the first write that needs one (S3Store), and shown by `health` and
 * `smoke`. S3 implementations differ: Ceph RGW 16 compares If-Match only without the quotes S3 puts around
 * ETags, and ignores the copy-source condition (README: stores).
 */
export interface StoreDialect {
  /** PutObject `If-None-Match: *` refuses an existing key (the pose lock is made with it). */
  createOnly: boolean;
  /** How PutObject `If-Match` names a version: as S3 sends ETags (`quoted`), bare (`unquoted`), or not at all. */
  ifMatch: 'quoted' | 'unquoted' | 'none';
  /**
   * CopyObject `x-amz-copy-source-if-match` is enforced. Without it an upload is published by a PUT of the
   * validated bytes instead of a copy of the staged object (which could be another version by then).
   */
  copySourceCondition: boolean;
}

/** What the directory store enforces itself, and S3 and R2 document. */
export const FULL_DIALECT: StoreDialect = { createOnly: true, ifMatch: 'quoted', copySourceCondition: true };

/** The form of `If-Match` the store compares. */
export const ifMatchHeader = (dialect: StoreDialect, etag: string): string => (dialect.ifMatch === 'unquoted' ? etag : `"${etag}"`);

/** Private probe objects (locks/ is never public; `.store-dialect` is no generation id, so no tool counts them). */
const PROBE_PREFIX = 'locks/.store-dialect/';

/** Tries each condition on `bucket` with objects of its own, removed after. A store failure is thrown as it is. */
export async function probeDialect(client: S3Client, bucket: string): Promise<StoreDialect> {
  const { CopyObjectCommand, DeleteObjectsCommand, PutObjectCommand } = await import('@aws-sdk/client-s3');
  const base = `${PROBE_PREFIX}${randomUUID()}`;
  const [key, copy] = [`${base}.json`, `${base}-copy.json`];
  const refused = (error: unknown) => {
    const status = (error as { $metadata?: { httpStatusCode?: number } } | null)?.$metadata?.httpStatusCode;
    if (status === 412 || status === 409) return undefined;
    throw error;
  };
  const put = async (body: string, conditions: { IfNoneMatch?: string; IfMatch?: string } = {}) => {
    try {
      const output = await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentType: 'application/json', ...conditions }));
      return (output.ETag ?? '').replace(/"/g, '');
    } catch (error) {
      return refused(error);
    }
  };
  try {
    const first = (await put('{"probe":1}'))!;
    const second = await put('{"probe":2}', { IfNoneMatch: '*' });
    let current = second ?? first;
    let ifMatch: StoreDialect['ifMatch'] = 'none';
    for (const form of ['quoted', 'unquoted'] as const) {
      const written = await put(`{"probe":"${form}"}`, { IfMatch: ifMatchHeader({ ...FULL_DIALECT, ifMatch: form }, current) });
      if (written === undefined) continue;
      current = written;
      // Accepted: it is a condition only if a version that is no longer current is then refused.
      if ((await put('{"probe":"stale"}', { IfMatch: ifMatchHeader({ ...FULL_DIALECT, ifMatch: form }, first) })) === undefined) ifMatch = form;
      break;
    }
    let copied: true | undefined;
    try {
      const copyCommand = new CopyObjectCommand({
        Bucket: bucket,
        Key: copy,
        CopySource: `${bucket}/${key}`,
        CopySourceIfMatch: '"00000000000000000000000000000000"',
        MetadataDirective: 'REPLACE',
        ContentType: 'application/json',
      });
      await client.send(copyCommand);
      copied = true;
    } catch (error) {
      copied = refused(error);
    }
    return { createOnly: second === undefined, ifMatch, copySourceCondition: copied === undefined };
  } finally {
    try {
      await client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: [{ Key: key }, { Key: copy }], Quiet: true } }));
    } catch {
      // Left behind: two small private objects under locks/.store-dialect/, counted by no tool.
    }
  }
}

/**
 * The dialect in a sentence, for `health` and `smoke`; what is missing that the service cannot run without; and,
 * when something is, the sentence that says so.
 */
export function describeDialect(dialect: StoreDialect): { text: string; missing: string[]; problem?: string } {
  const missing = [
    ...(dialect.createOnly ? [] : ['create-only writes (If-None-Match: * on PutObject)']),
    ...(dialect.ifMatch === 'none' ? ['replace-if-version writes (If-Match on PutObject)'] : []),
  ];
  const text = [
    `create-only writes ${dialect.createOnly ? 'enforced' : 'NOT enforced'}`,
    dialect.ifMatch === 'none' ? 'If-Match NOT enforced' : `If-Match compared ${dialect.ifMatch === 'quoted' ? 'quoted (as S3 and R2)' : 'unquoted (as Ceph RGW; sent so)'}`,
    dialect.copySourceCondition
      ? 'copy-source condition enforced (uploads published by a copy inside the store)'
      : 'copy-source condition not enforced (uploads published by a PUT of the validated bytes)',
  ].join('; ');
  if (missing.length === 0) return { text, missing };
  return { text, missing, problem: `the store lacks ${missing.join(' and ')}, which the pose lock needs; pose-storage refuses to write to it` };
}
