import * as z from 'zod/mini';
import { REJECTION_REASONS } from './errors.ts';
import { parseJson } from './json.ts';
import { issuedAt, recordKey, type PoseRef } from './layout.ts';
import type { Logger } from './logger.ts';
import type { ObjectInfo, ObjectStore } from './storage/object-store.ts';

/**
 * A pose's record (`records/{generationId}/{poseId}.json`, private): what the pose is now, so that a status
 * is one read, and which upload made it so, so that an older upload processed late never replaces a newer
 * one. Written under the pose's lock, after the files it describes.
 */
const uploadRefSchema = z.object({
  /** The staging key of an upload, or `save` for a pose saved by the library. */
  key: z.string(),
  etag: z.string(),
  /** When the store received the upload (its Last-Modified), or when the save was asked for. For people only. */
  uploadedAt: z.iso.datetime(),
});

export type UploadRef = z.infer<typeof uploadRefSchema>;

const placeholderSchema = z.object({ thumbHash: z.string().check(z.maxLength(64)), dominantColor: z.string().check(z.regex(/^#[0-9a-f]{6}$/)) });

export type Placeholder = z.infer<typeof placeholderSchema>;

const poseRecordSchema = z.discriminatedUnion('status', [
  z.object({
    status: z.literal('ready'),
    upload: uploadRefSchema,
    width: z.number().check(z.int(), z.positive()),
    height: z.number().check(z.int(), z.positive()),
    /** Size of the published image. */
    bytes: z.number().check(z.int(), z.nonnegative()),
    publishedAt: z.iso.datetime(),
    /**
     * The version (etag) of each file the publication wrote, by role (`image`, `thumbnail`): which files belong
     * together, told by what they are. Records written before it have none.
     */
    files: z.optional(z.record(z.string(), z.string())),
    /** POSE_VARIANTS `placeholder`: a ThumbHash (base64) and the dominant colour (#rrggbb), from the thumbnail. */
    placeholder: z.optional(placeholderSchema),
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
 * Whether staged upload `a` reached the store after `b`: by the store's Last-Modified (one clock, the store's),
 * then, within its resolution (a second on AWS S3), by when their upload URLs were issued, then by key, so that
 * every process orders them alike. No host's clock decides between uploads the store saw a second apart.
 */
export function arrivedAfter(a: ObjectInfo, b: ObjectInfo): boolean {
  const [x, y] = [a.lastModified.getTime(), b.lastModified.getTime()];
  if (x !== y) return x > y;
  const [i, j] = [issuedAt(a.key)?.getTime() ?? 0, issuedAt(b.key)?.getTime() ?? 0];
  return i !== j ? i > j : a.key > b.key;
}
