import * as z from 'zod/mini';
import { parseJson } from '../json.ts';

/**
 * Every object-created event the thumbnail handler accepts, normalised into one list of staging keys.
 *
 * - S3 event notifications delivered to Lambda directly (`Records[].eventSource === 'aws:s3'`), and those of
 *   other S3 implementations in the same shape (Ceph RGW says `ceph:s3`, with `awsRegion: ""`);
 * - the same wrapped in SQS messages (`Records[].eventSource === 'aws:sqs'`, body = S3 event JSON);
 * - R2 event notification messages: one, an array, or a Cloudflare Queues batch `{messages: [{id, body}]}`;
 * - local mode's events `{source: 'pose-storage.local', keys: [...]}`.
 *
 * Anything else, or any part that does not parse, is skipped and reported, never thrown: a malformed
 * message can never succeed, so retrying it would only block the queue.
 */
export type EventKind = 's3' | 'sqs' | 'r2' | 'local' | 'unknown';

export interface CreatedObject {
  key: string;
  /** The object's size, when the event says it (S3 and R2 events do): larger than allowed, it is never downloaded. */
  size?: number;
  /** The message to report in `batchItemFailures` when processing fails (SQS and queue batches). */
  messageId?: string;
}

export interface NormalizedEvent {
  kind: EventKind;
  objects: CreatedObject[];
  /** Why parts of the event were skipped (for the log). */
  skipped: string[];
}

export const LOCAL_EVENT_SOURCE = 'pose-storage.local';

export interface LocalObjectCreatedEvent {
  source: typeof LOCAL_EVENT_SOURCE;
  keys: string[];
}

const objectSize = z.optional(z.number().check(z.int(), z.nonnegative()));

const s3Record = z.object({
  eventSource: z.string().check(z.regex(/^[a-z0-9-]+:s3$/, 'an S3 event source')),
  eventName: z.string(),
  s3: z.object({ object: z.object({ key: z.string(), size: objectSize }) }),
});

const s3Event = z.object({ Records: z.array(z.unknown()) });

const sqsRecord = z.object({ eventSource: z.literal('aws:sqs'), messageId: z.string(), body: z.string() });

/** R2's notification message (https://developers.cloudflare.com/r2/buckets/event-notifications/). */
const r2Notification = z.object({
  action: z.string(),
  bucket: z.string(),
  object: z.object({ key: z.string(), size: objectSize }),
});

const queueBatch = z.object({ messages: z.array(z.object({ id: z.string(), body: z.unknown() })) });

const localEvent = z.object({ source: z.literal(LOCAL_EVENT_SOURCE), keys: z.array(z.string()) });

/** R2 actions that create an object (deletes are not ours to handle). */
const R2_CREATE_ACTIONS = new Set(['PutObject', 'CopyObject', 'CompleteMultipartUpload']);

/** S3 event keys are URL-encoded with `+` for spaces. */
function decodeS3Key(key: string): string | undefined {
  try {
    return decodeURIComponent(key.replace(/\+/g, ' '));
  } catch {
    return undefined;
  }
}

/** The created keys of an S3 event's records (direct or out of an SQS body). */
function fromS3Records(records: readonly unknown[], messageId: string | undefined, into: NormalizedEvent): void {
  for (const record of records) {
    const parsed = s3Record.safeParse(record);
    if (!parsed.success) {
      into.skipped.push('an S3 record of unknown shape');
      continue;
    }
    if (!parsed.data.eventName.startsWith('ObjectCreated:')) continue;
    const key = decodeS3Key(parsed.data.s3.object.key);
    if (key === undefined) into.skipped.push('an S3 key that is not valid URL encoding');
    else into.objects.push(createdObject(key, parsed.data.s3.object.size, messageId));
  }
}

function fromR2Message(body: unknown, messageId: string | undefined, into: NormalizedEvent): void {
  const parsed = r2Notification.safeParse(typeof body === 'string' ? parseJson(body) : body);
  if (!parsed.success) {
    into.skipped.push('an R2 message of unknown shape');
    return;
  }
  if (!R2_CREATE_ACTIONS.has(parsed.data.action)) return;
  const { key, size } = parsed.data.object;
  into.objects.push(createdObject(key, size, messageId));
}

function createdObject(key: string, size: number | undefined, messageId: string | undefined): CreatedObject {
  return { key, ...(size !== undefined && { size }), ...(messageId !== undefined && { messageId }) };
}

export function normalizeObjectEvent(event: unknown): NormalizedEvent {
  const result = (kind: EventKind): NormalizedEvent => ({ kind, objects: [], skipped: [] });

  const local = localEvent.safeParse(event);
  if (local.success) return { ...result('local'), objects: local.data.keys.map((key) => ({ key })) };

  const batch = queueBatch.safeParse(event);
  if (batch.success) {
    const normalized = result('r2');
    for (const message of batch.data.messages) fromR2Message(message.body, message.id, normalized);
    return normalized;
  }

  if (Array.isArray(event) || r2Notification.safeParse(event).success) {
    const normalized = result('r2');
    for (const message of Array.isArray(event) ? event : [event]) fromR2Message(message, undefined, normalized);
    return normalized;
  }

  const records = s3Event.safeParse(event);
  if (records.success) {
    const first = records.data.Records[0] as { eventSource?: unknown } | undefined;
    if (first?.eventSource === 'aws:sqs') {
      const normalized = result('sqs');
      for (const record of records.data.Records) {
        const message = sqsRecord.safeParse(record);
        if (!message.success) {
          normalized.skipped.push('an SQS record of unknown shape');
          continue;
        }
        const body = s3Event.safeParse(parseJson(message.data.body));
        // S3 sends an s3:TestEvent (no Records) when a notification is set up: nothing to do.
        if (body.success) fromS3Records(body.data.Records, message.data.messageId, normalized);
        else if (!message.data.body.includes('s3:TestEvent')) normalized.skipped.push('an SQS message that is not an S3 event');
      }
      return normalized;
    }
    const normalized = result('s3');
    fromS3Records(records.data.Records, undefined, normalized);
    return normalized;
  }

  return { ...result('unknown'), skipped: ['an event of unknown shape'] };
}
