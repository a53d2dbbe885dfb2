import type { SQSBatchResponse } from 'aws-lambda';
import { StoreUnavailableError } from '../lib/errors.ts';
import { httpHandler, json, type HttpEvent } from '../lib/lambda/http-handler.ts';
import { normalizeObjectEvent, type CreatedObject } from '../lib/lambda/object-events.ts';
import { lazyHandler } from '../lib/lambda/lazy-handler.ts';
import { getServices, type Services } from '../lib/services.ts';

/**
 * Object-created events: validate each staged upload, publish image and thumbnail (or reject it), remove
 * the staging object. Batches (SQS, Cloudflare Queues) answer with `batchItemFailures` so only failed
 * messages are retried; single events throw so Lambda retries them. R2's queue messages may also arrive
 * over HTTP (POST to the function URL by the forwarding Worker, with the API token).
 */
export type ThumbnailResult = SQSBatchResponse & { processed: number };

export function createHandler(services: Services) {
  const { logger, uploads } = services;

  async function processAll(event: unknown): Promise<ThumbnailResult> {
    const { kind, objects, skipped } = normalizeObjectEvent(event);
    for (const reason of skipped) logger.warn(`[Storage] Skipped ${reason}`, { kind });
    const failed = new Set<string>();
    // One at a time: a 50 MP image needs hundreds of MB while it is decoded.
    for (const object of objects) {
      if (!(await processOne(object))) failed.add(object.messageId ?? object.key);
    }
    const batched = kind === 'sqs' || objects.some((object) => object.messageId !== undefined);
    if (failed.size > 0 && !batched) throw new StoreUnavailableError(`${failed.size} upload(s) failed and will be retried`);
    return { batchItemFailures: [...failed].map((itemIdentifier) => ({ itemIdentifier })), processed: objects.length };
  }

  async function processOne({ key }: CreatedObject): Promise<boolean> {
    try {
      const status = await uploads.processUpload(key);
      if (!status) logger.info(`[Storage] Nothing to process for ${describeKey(key)}`, { key: describeKey(key) });
      return true;
    } catch (error) {
      logger.error(`[Storage] Failed to process upload: ${error instanceof Error ? error.message : String(error)}`, {
        key: describeKey(key),
      });
      return false;
    }
  }

  const overHttp = httpHandler(services, { methods: ['POST'], jsonBody: true }, async (event) =>
    json(200, await processAll(event.body)),
  );

  return async (event: unknown, context: Parameters<typeof overHttp>[1]): Promise<unknown> =>
    isHttpEvent(event) ? overHttp(event, context) : processAll(event);
}

function isHttpEvent(event: unknown): event is HttpEvent {
  return typeof (event as { requestContext?: { http?: unknown } } | null)?.requestContext?.http === 'object';
}

/** Keys come from outside: logged bounded and printable only. */
function describeKey(key: string): string {
  return key.slice(0, 300).replace(/[^\x20-\x7e]/g, '?');
}

export const handler = lazyHandler(() => createHandler(getServices()));
