import type { Context, SQSBatchResponse } from 'aws-lambda';
import { ConfigError, describeValue, StoreUnavailableError } from '../../errors.ts';
import { normalizeObjectEvent, type CreatedObject } from '../object-events.ts';
import { printable } from '../../logger.ts';
import type { UploadObserver, UploadOutcome } from '../upload-observer.ts';
import type { Services } from '../../services.ts';

/**
 * Object-created events: validate each staged upload, publish image and thumbnail (or reject it), remove
 * the staging object. Batches (SQS, and Cloudflare Queues batches that the forwarding Worker passes on through
 * the Lambda Invoke API) answer with `batchItemFailures` so only failed messages are retried; single events
 * (S3 delivered directly, local events) throw so that they are retried. The function has no HTTP entry: only
 * its queue (SQS) or the Worker's IAM user (R2) may invoke it.
 */
export type ThumbnailResult = SQSBatchResponse & { processed: number };

/**
 * The most messages one invocation processes when none is configured: the default batch size of both SQS
 * and Cloudflare Queues. The deployment sets THUMBNAIL_BATCH_SIZE to its queues' batch size (infra/thumbnails.ts).
 */
export const DEFAULT_BATCH_SIZE = 10;

export interface ThumbnailOptions {
  /**
   * The most batch messages processed per invocation (the function's timeout is sized for it). The objects of
   * later messages are not touched; their ids are answered in `batchItemFailures`, so the queue delivers them again.
   */
  batchSize?: number;
  /** Told of each upload's processing and outcome (in Lambda: log keys and metrics). */
  observer?: UploadObserver;
}

const unobserved: UploadObserver = { begin: () => () => undefined };

export function createHandler(services: Services, options: ThumbnailOptions = {}) {
  const { logger, uploads } = services;
  const batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
  const observer = options.observer ?? unobserved;

  async function processAll(event: unknown): Promise<ThumbnailResult> {
    const { kind, objects, skipped } = normalizeObjectEvent(event);
    logger.debug?.(`[Storage] Received ${objects.length} object(s) in a ${kind} event`, { kind, objects: objects.length, skipped: skipped.length });
    for (const reason of skipped) logger.warn(`[Storage] Skipped ${reason}`, { kind });
    const { accepted, deferred } = withinBatchSize(objects);
    if (deferred.size > 0) {
      logger.warn(`[Storage] Batch over THUMBNAIL_BATCH_SIZE=${batchSize}: ${deferred.size} message(s) returned to the queue`, { kind });
    }
    const failed = new Set<string>();
    // One at a time: a 50 MP image needs hundreds of MB while it is decoded.
    for (const object of accepted) {
      if (!(await processOne(object))) failed.add(object.messageId ?? object.key);
    }
    const batched = kind === 'sqs' || objects.some((object) => object.messageId !== undefined);
    if (failed.size > 0 && !batched) throw new StoreUnavailableError(`${failed.size} upload(s) failed and will be retried`);
    return {
      batchItemFailures: [...failed, ...deferred].map((itemIdentifier) => ({ itemIdentifier })),
      processed: accepted.length,
    };
  }

  /** The objects of the first `batchSize` messages, and the ids of the messages past them. */
  function withinBatchSize(objects: readonly CreatedObject[]): { accepted: CreatedObject[]; deferred: Set<string> } {
    const messages = new Set<string>();
    const deferred = new Set<string>();
    const accepted = objects.filter(({ messageId }) => {
      if (messageId === undefined || messages.has(messageId)) return true;
      if (messages.size < batchSize) {
        messages.add(messageId);
        return true;
      }
      deferred.add(messageId);
      return false;
    });
    return { accepted, deferred };
  }

  async function processOne({ key, size }: CreatedObject): Promise<boolean> {
    const done = observer.begin(key);
    let outcome: UploadOutcome;
    try {
      logger.debug?.(`[Storage] Processing ${printable(key)}${size === undefined ? '' : ` (${size} bytes)`}`, { key: printable(key) });
      const status = await uploads.processUpload({ key, size });
      if (!status) logger.info(`[Storage] Nothing to process for ${printable(key)}`, { key: printable(key) });
      outcome = { status };
    } catch (error) {
      logger.error(`[Storage] Failed to process upload: ${error instanceof Error ? error.message : String(error)}`, {
        key: printable(key),
      });
      outcome = { error };
    }
    done(outcome);
    return !('error' in outcome);
  }

  // The context is Lambda's (unused); the local server passes its own.
  return (event: unknown, _context?: Context): Promise<ThumbnailResult> => processAll(event);
}

/** THUMBNAIL_BATCH_SIZE, set by the deployment to its queues' batch size; unset: DEFAULT_BATCH_SIZE. */
export function batchSizeFromEnv(env: Readonly<Record<string, string | undefined>> = process.env): number {
  const value = env.THUMBNAIL_BATCH_SIZE?.trim();
  if (!value) return DEFAULT_BATCH_SIZE;
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > 100) {
    throw new ConfigError('THUMBNAIL_BATCH_SIZE', `must be a whole number between 1 and 100 (got ${describeValue(value)})`);
  }
  return Number(value);
}

/** Lambda's entry: Powertools' logger, and a store whose traffic the upload metrics count. */
