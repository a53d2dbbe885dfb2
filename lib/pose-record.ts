import * as z from 'zod/mini';
import { REJECTION_REASONS } from './errors.ts';
import { parseJson } from './json.ts';
import { recordKey, type PoseRef } from './layout.ts';
import type { Logger } from './logger.ts';
import type { ObjectStore } from './storage/object-store.ts';

/**
 * A pose's record (`records/{generationId}/{poseId}.json`, private): what the pose is now, so that a status
 * is one read, and which upload made it so, so that an older upload processed late never replaces a newer
 * one. Written under the pose's lock, after the files it describes.
 */
const uploadRefSchema = z.object({
  /** The staging key of an upload, or `save` for a pose saved by the library. */
  key: z.string(),
  etag: z.string(),
  uploadedAt: z.iso.datetime(),
});

export type UploadRef = z.infer<typeof uploadRefSchema>;

const poseRecordSchema = z.discriminatedUnion('status', [
  z.object({
    status: z.literal('ready'),
    upload: uploadRefSchema,
    width: z.number().check(z.int(), z.positive()),
    height: z.number().check(z.int(), z.positive()),
    /** Size of the published image. */
    bytes: z.number().check(z.int(), z.nonnegative()),
    publishedAt: z.iso.datetime(),
  }),
  z.object({
    status: z.literal('rejected'),
    upload: uploadRefSchema,
    reason: z.enum(REJECTION_REASONS),
    message: z.string(),
    rejectedAt: z.iso.datetime(),
  }),
]);

export type PoseRecord = z.infer<typeof poseRecordSchema>;

export type RecordState = { state: 'none' } | { state: 'unreadable' } | { state: 'ok'; record: PoseRecord };

/** The pose's record, or whether there is none or one that cannot be read as a record. */
export async function readRecordState(store: ObjectStore, pose: PoseRef): Promise<RecordState> {
  const stored = await store.get(recordKey(pose));
  if (!stored) return { state: 'none' };
  const parsed = poseRecordSchema.safeParse(parseJson(stored.body.toString('utf8')));
  return parsed.success ? { state: 'ok', record: parsed.data } : { state: 'unreadable' };
}

/** The pose's record; undefined when there is none, or (logged) when it cannot be read as one. */
export async function readRecord(store: ObjectStore, pose: PoseRef, logger: Logger): Promise<PoseRecord | undefined> {
  const read = await readRecordState(store, pose);
  if (read.state === 'unreadable') logger.warn('[Storage] Ignored an unreadable pose record', { ...pose, key: recordKey(pose) });
  return read.state === 'ok' ? read.record : undefined;
}

export async function writeRecord(store: ObjectStore, pose: PoseRef, record: PoseRecord): Promise<void> {
  await store.put(recordKey(pose), Buffer.from(JSON.stringify(record)), { contentType: 'application/json' });
}

/**
 * Whether upload `a` is newer than `b`, the upload a record describes. Uploads are ordered by the time their
 * upload URL was issued (a save by the time it was asked for), to the millisecond, ties broken by key so that
 * every process decides alike. A second upload to the same URL can only follow the one already settled (the
 * URL is create-only), so same key, other version means newer.
 */
export function isNewerUpload(a: UploadRef, b: UploadRef): boolean {
  if (a.key === b.key) return a.etag !== b.etag;
  const [x, y] = [Date.parse(a.uploadedAt), Date.parse(b.uploadedAt)];
  return x > y || (x === y && a.key > b.key);
}
