import * as z from 'zod/mini';
import { formatCount, InvalidImageError, ObjectTooLargeError, PoseStorageError, type RejectionReason } from './errors.ts';
import { ID_PATTERN, newStagingKey, POSE_ID_PATTERN, POSE_ID_RULE, parseStagingKey, stagingPrefix, type PoseRef } from './layout.ts';
import { CONTENT_TYPES } from './image-format.ts';
import type { Placeholder, PoseRecord } from './pose-record.ts';
import type { PoseStorage, StagedUpload } from './pose-storage.ts';
import type { WebhookNotifier } from './webhook.ts';

/**
 * Client uploads: a presigned PUT into the private staging area, then validation and publishing when the
 * object-created event arrives, and the pose's status in between. Plain logic: the Lambda handlers and the
 * local server are adapters around it.
 */
const id = z.string().check(z.regex(ID_PATTERN, 'must match ^[A-Za-z0-9_-]{1,128}$'));
const poseId = z.string().check(z.regex(POSE_ID_PATTERN, POSE_ID_RULE));

export const UPLOAD_CONTENT_TYPES = Object.values(CONTENT_TYPES) as [string, ...string[]];

export const generationRefSchema = z.object({ generationId: id });
export const poseRefSchema = z.object({ generationId: id, poseId });

/** The body of `POST /uploads`. Content type and size limits are checked separately (415, 413). */
export const uploadRequestSchema = z.strictObject({
  generationId: id,
  poseId,
  contentType: z.string().check(z.maxLength(255, 'must be at most 255 characters')),
  contentLength: z.number().check(z.int('must be a whole number of bytes'), z.positive('must be at least 1')),
  poseLibraryId: z.optional(id),
});

export type UploadRequest = z.infer<typeof uploadRequestSchema>;

export interface UploadTicket {
  uploadUrl: string;
  method: 'PUT';
  headers: Record<string, string>;
  expiresAt: string;
  imageUrl: string;
  thumbnailUrl: string;
}

export type PoseState =
  | { status: 'pending' }
  | {
      status: 'ready';
      imageUrl: string;
      thumbnailUrl: string;
      width: number;
      height: number;
      /** Size of the published image. */
      bytes: number;
      /** Changes with every publication of the pose: `?v={version}` gets past caches of an earlier one. */
      version: string;
      /** The configured variants' URLs by role (POSE_VARIANTS), when there are any. */
      variants?: Record<string, string>;
      /** What to show while the image loads (POSE_VARIANTS `placeholder`). */
      placeholder?: Placeholder;
    }
  | { status: 'rejected'; reason: RejectionReason; message: string };

export type PoseStatus = PoseRef & PoseState;

/** An object-created event's object: its key and, when the event says, its size. */
export interface CreatedUpload {
  key: string;
  size?: number | undefined;
}

export class PoseUploads {
  readonly #storage: PoseStorage;
  readonly #webhook: WebhookNotifier | undefined;

  constructor(storage: PoseStorage, webhook?: WebhookNotifier) {
    this.#storage = storage;
    this.#webhook = webhook;
  }

  /** A presigned PUT for one upload, bound to a fresh staging key, the content type and the exact length. */
  async createUpload(request: UploadRequest): Promise<UploadTicket> {
    const { config, store } = this.#storage;
    if (!UPLOAD_CONTENT_TYPES.includes(request.contentType)) {
      throw new PoseStorageError('unsupported_type', `contentType must be one of ${UPLOAD_CONTENT_TYPES.join(', ')}.`);
    }
    if (request.contentLength > config.uploadMaxBytes) {
      throw new PoseStorageError('too_large', `contentLength must be at most ${formatCount(config.uploadMaxBytes)} bytes.`);
    }
    const pose = { generationId: request.generationId, poseId: request.poseId };
    const presigned = await store.presignUpload(newStagingKey(pose), {
      contentType: request.contentType,
      contentLength: request.contentLength,
      expiresInSeconds: config.uploadUrlTtlSeconds,
    });
    const { imageUrl, thumbnailUrl } = this.#storage.urlsOf(pose);
    return {
      uploadUrl: presigned.url,
      method: presigned.method,
      headers: presigned.headers,
      expiresAt: presigned.expiresAt.toISOString(),
      imageUrl,
      thumbnailUrl,
    };
  }

  /**
   * Where a pose stands: pending while an upload is staged (it is newer than what the record says, or being
   * settled), else what its record says. Undefined when nothing is known of the pose.
   *
   * The staging area is read first, the record after: a settlement writes the record before it removes the
   * upload, so a listing that finds no upload is followed by a record at least as new as that upload's. (Read
   * at once, a record read just before a settlement and a listing just after it would answer the previous
   * `ready` as final, for an upload about to be rejected.)
   */
  async getStatus(pose: PoseRef): Promise<PoseStatus | undefined> {
    if (await this.#hasStaged(pose)) return { ...pose, status: 'pending' };
    const record = await this.#storage.readRecord(pose);
    return record && this.#statusOf(pose, record);
  }

  async #hasStaged(pose: PoseRef): Promise<boolean> {
    for await (const _staged of this.#storage.store.list(stagingPrefix(pose))) return true;
    return false;
  }

  #statusOf(pose: PoseRef, record: PoseRecord): PoseStatus {
    if (record.status === 'rejected') return { ...pose, status: 'rejected', reason: record.reason, message: record.message };
    const { imageUrl, thumbnailUrl, variants } = this.#storage.urlsOf(pose);
    const { width, height, bytes, placeholder } = record;
    const version = Date.parse(record.publishedAt).toString(36);
    return { ...pose, status: 'ready', imageUrl, thumbnailUrl, width, height, bytes, version, ...(variants && { variants }), ...(placeholder && { placeholder }) };
  }

  /**
   * Validates one staged upload and publishes it, or records why it is rejected; returns the pose's new
   * status, or undefined when there was nothing to do (a key outside the staging area, an upload already
   * gone or settled, one superseded by a newer upload). An upload larger than UPLOAD_MAX_BYTES (by the
   * event's size, or the store's) is rejected without being downloaded. Store failures are thrown, so the
   * caller retries.
   */
  async processUpload({ key, size }: CreatedUpload): Promise<PoseStatus | undefined> {
    const pose = parseStagingKey(key);
    if (!pose) return undefined;
    const staged = await this.#read(key, size);
    if (!staged) return undefined;
    const settlement = await this.#storage.settleUpload(pose, staged);
    if (settlement.outcome === 'gone' || settlement.outcome === 'superseded') return undefined;
    const status = this.#statusOf(pose, settlement.record);
    await this.#webhook?.notify(status);
    return status;
  }

  /** The staged upload and its verdict; undefined when it is gone. */
  async #read(key: string, size: number | undefined): Promise<StagedUpload | undefined> {
    const { store, config } = this.#storage;
    const maxBytes = config.uploadMaxBytes;
    const tooLarge = async (actualSize: number): Promise<StagedUpload | undefined> => {
      const info = await store.head(key);
      return info && { object: info, verdict: new InvalidImageError('too_large', `The upload has ${formatCount(actualSize)} bytes, more than the ${formatCount(maxBytes)} allowed.`) };
    };
    if (size !== undefined && size > maxBytes) return tooLarge(size);
    let object;
    try {
      object = await store.get(key, { maxBytes });
    } catch (error) {
      if (error instanceof ObjectTooLargeError) return tooLarge(error.size);
      throw error;
    }
    if (!object) return undefined;
    const { body, ...info } = object;
    const verdict = await this.#storage.render(body).catch((error: unknown) => {
      if (error instanceof InvalidImageError) return error;
      throw error;
    });
    return { object: { key: info.key, size: info.size, lastModified: info.lastModified, etag: info.etag }, verdict };
  }
}
