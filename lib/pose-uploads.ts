import { z } from 'zod';
import { InvalidImageError, PoseDeletedError, PoseStorageError, type RejectionReason } from './errors.ts';
import { ID_PATTERN, newStagingKey, POSE_ID_PATTERN, POSE_ID_RULE, parseStagingKey, rejectionKey, stagingPrefix, thumbnailKey, type PoseRef } from './layout.ts';
import { CONTENT_TYPES } from './image-format.ts';
import { renderPose } from './pose-image.ts';
import type { PoseStorage } from './pose-storage.ts';
import type { WebhookNotifier } from './webhook.ts';

/**
 * Client uploads: a presigned PUT into the private staging area, then validation and publishing when the
 * object-created event arrives, and the pose's status in between. Plain logic: the Lambda handlers and the
 * local server are adapters around it.
 */
const id = z.string().regex(ID_PATTERN, 'must match ^[A-Za-z0-9_-]{1,128}$');
const poseId = z.string().regex(POSE_ID_PATTERN, POSE_ID_RULE);

export const UPLOAD_CONTENT_TYPES = Object.values(CONTENT_TYPES) as [string, ...string[]];

export const generationRefSchema = z.object({ generationId: id });
export const poseRefSchema = z.object({ generationId: id, poseId });

/** The body of `POST /uploads`. Content type and size limits are checked separately (415, 413). */
export const uploadRequestSchema = z.strictObject({
  generationId: id,
  poseId,
  contentType: z.string().max(255),
  contentLength: z.number().int('must be a whole number of bytes').positive('must be at least 1'),
  poseLibraryId: id.optional(),
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
  | { status: 'ready'; imageUrl: string; thumbnailUrl: string }
  | { status: 'rejected'; reason: RejectionReason };

export type PoseStatus = PoseRef & PoseState;

interface RejectionRecord {
  reason: RejectionReason;
  message: string;
  rejectedAt: string;
}

const rejectionRecordSchema = z.object({
  reason: z.enum(['not_an_image', 'unsupported_format', 'too_large', 'corrupt_image']),
});

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
      throw new PoseStorageError('unsupported_type', `contentType must be one of ${UPLOAD_CONTENT_TYPES.join(', ')}`);
    }
    if (request.contentLength > config.uploadMaxBytes) {
      throw new PoseStorageError('too_large', `contentLength must be at most ${config.uploadMaxBytes} bytes`);
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
   * Where a pose stands. A staged upload is newer than anything published or rejected, so it wins. A
   * rejection record is newer than what is published (publishing removes it before the staging object is
   * removed), so an invalid re-upload of a published pose reports rejected, not the earlier image as ready.
   * Undefined when nothing is known of the pose.
   */
  async getStatus(pose: PoseRef): Promise<PoseStatus | undefined> {
    const { store } = this.#storage;
    for await (const _staged of store.list(stagingPrefix(pose))) return { ...pose, status: 'pending' };
    const rejection = await store.get(rejectionKey(pose));
    if (rejection) {
      const record = rejectionRecordSchema.safeParse(safeJson(rejection.body));
      return { ...pose, status: 'rejected', reason: record.success ? record.data.reason : 'corrupt_image' };
    }
    if (await store.head(thumbnailKey(pose))) {
      const { imageUrl, thumbnailUrl } = this.#storage.urlsOf(pose);
      return { ...pose, status: 'ready', imageUrl, thumbnailUrl };
    }
    return undefined;
  }

  /**
   * Validates one staged upload and publishes it, or records why it is rejected; returns the pose's new
   * status. Idempotent: a repeated or stale event finds no staging object and returns undefined (as does a
   * key outside the staging area, and a pose deleted while it was processed). Store failures are thrown, so
   * the caller retries.
   */
  async processUpload(key: string): Promise<PoseStatus | undefined> {
    const pose = parseStagingKey(key);
    if (!pose) return undefined;
    const { store, logger } = this.#storage;
    const staged = await store.get(key);
    if (!staged) return undefined;
    let status: PoseStatus;
    try {
      status = await this.#publishOrReject(pose, staged.body);
    } catch (error) {
      if (!(error instanceof PoseDeletedError)) throw error;
      await store.delete([key]);
      logger.info(`[Storage] ${error.message}: nothing published`, { ...pose });
      return undefined;
    }
    await store.delete([key]);
    await this.#webhook?.notify(status);
    return status;
  }

  async #publishOrReject(pose: PoseRef, bytes: Buffer): Promise<PoseStatus> {
    const { store, config, logger } = this.#storage;
    try {
      const rendered = await renderPose(bytes, { maxInputPixels: config.maxInputPixels, keepMetadata: config.keepImageMetadata });
      const { imageUrl, thumbnailUrl } = await this.#storage.publish(pose, rendered);
      return { ...pose, status: 'ready', imageUrl, thumbnailUrl };
    } catch (error) {
      if (!(error instanceof InvalidImageError)) throw error;
      const record: RejectionRecord = { reason: error.reason, message: error.message, rejectedAt: new Date().toISOString() };
      await store.put(rejectionKey(pose), Buffer.from(JSON.stringify(record)), { contentType: 'application/json' });
      logger.warn(`[Storage] Rejected upload: ${error.message}`, { ...pose, reason: error.reason });
      return { ...pose, status: 'rejected', reason: error.reason };
    }
  }
}

function safeJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
}
