/**
 * Property tests of the event normaliser (lib/lambda/object-events.ts) and of the thumbnail handler on
 * arbitrary events: nothing ever throws (but the documented transient-failure rethrow), only string keys come
 * out, and well-formed events of every kind round-trip their keys and message ids.
 */
import {
  DeleteObjectsCommand,
  GetObjectCommand,
  type GetObjectCommandOutput,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
} from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import fc from 'fast-check';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { createHandler as createThumbnailHandler } from './handlers/thumbnail.ts';
import {
  encodeS3EventKey,
  lambdaContext,
  localEvent,
  queueBatch,
  r2Notification,
  r2TestEnv,
  s3Record,
  sqsRecord,
} from '../../test/support/http-events.ts';
import { parseConfig } from '../config.ts';
import { createLogger } from '../logger.ts';
import { createServices } from '../services.ts';
import { createS3Client } from '../storage/s3-client.ts';
import { S3Store } from '../storage/s3-store.ts';
import { FULL_DIALECT } from '../storage/store-dialect.ts';
import { normalizeObjectEvent, type EventKind } from './object-events.ts';

const NUM_RUNS = process.env.STRESS === '1' ? 5000 : 200; // npm run test:stress runs many more
const KINDS: EventKind[] = ['s3', 'sqs', 'r2', 'local', 'unknown'];

/** Keys: valid staging keys, other layout keys, and anything (unicode, NUL, traversal, `+`, `%`, huge). */
const key = fc.oneof(
  fc.tuple(fc.stringMatching(/^[A-Za-z0-9_-]{1,12}$/), fc.stringMatching(/^[A-Za-z0-9_-]{1,12}$/), fc.uuid()).map(
    ([generationId, poseId, uuid]) => `staging/${generationId}/${poseId}/${uuid}`,
  ),
  fc.constantFrom('poses/g/p_thumb.png', 'poses/g/p.png', 'rejections/g/p.json', 'staging/../x', 'a+b c', '100%', '%2e%2e/%00', '\0', ''),
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.string({ unit: 'grapheme', minLength: 1, maxLength: 4 }).map((s) => s.repeat(Math.ceil(10_240 / s.length))),
);

const s3Like = fc.record(
  {
    eventSource: fc.oneof(fc.constant('aws:s3'), fc.string()),
    eventName: fc.oneof(fc.constantFrom('ObjectCreated:Put', 'ObjectCreated:Post', 'ObjectRemoved:Delete'), fc.string()),
    s3: fc.oneof(fc.record({ object: fc.record({ key: fc.oneof(key, fc.anything()) }) }), fc.anything()),
  },
  { requiredKeys: [] },
);

const sqsLike = fc.record(
  {
    eventSource: fc.oneof(fc.constant('aws:sqs'), fc.string()),
    messageId: fc.oneof(fc.string(), fc.anything()),
    body: fc.oneof(
      fc.array(s3Like, { maxLength: 3 }).map((Records) => JSON.stringify({ Records })),
      fc.string(),
      fc.constant('{"Event":"s3:TestEvent"}'),
      fc.anything(),
    ),
  },
  { requiredKeys: [] },
);

const r2Like = fc.record(
  {
    action: fc.oneof(fc.constantFrom('PutObject', 'CopyObject', 'CompleteMultipartUpload', 'DeleteObject', 'LifecycleDeletion'), fc.string()),
    bucket: fc.oneof(fc.string(), fc.anything()),
    object: fc.oneof(fc.record({ key: fc.oneof(key, fc.anything()) }), fc.anything()),
  },
  { requiredKeys: [] },
);

/** Arbitrary events: anything at all, and near misses of every shape the normaliser accepts. */
const anyEvent = fc.oneof(
  fc.anything({ withNullPrototype: true, withBoxedValues: true, withSparseArray: true, withTypedArray: true, withMap: true, withSet: true }),
  fc.constantFrom(null, undefined, 0, '', 'x', [], {}, { Records: null }, { messages: null }, { source: 'pose-storage.local' }),
  fc.array(s3Like, { maxLength: 4 }).map((Records) => ({ Records })),
  fc.array(sqsLike, { maxLength: 4 }).map((Records) => ({ Records })),
  fc.array(fc.oneof(sqsLike, s3Like), { maxLength: 4 }).map((Records) => ({ Records })),
  r2Like,
  fc.array(fc.oneof(r2Like, fc.anything()), { maxLength: 4 }),
  fc
    .array(fc.record({ id: fc.oneof(fc.string(), fc.anything()), body: fc.oneof(r2Like, r2Like.map((m) => JSON.stringify(m)), fc.anything()) }), {
      maxLength: 4,
    })
    .map((messages) => ({ messages })),
  fc.record({ source: fc.constantFrom('pose-storage.local', 'other'), keys: fc.oneof(fc.array(key, { maxLength: 4 }), fc.anything()) }),
);

describe('normalizeObjectEvent on arbitrary input', () => {
  it('never throws, and returns a kind, string keys, string message ids and string reasons only', () => {
    fc.assert(
      fc.property(anyEvent, (event) => {
        const normalized = normalizeObjectEvent(event);
        expect(KINDS).toContain(normalized.kind);
        expect(Array.isArray(normalized.objects)).toBe(true);
        for (const object of normalized.objects) {
          expect(typeof object.key).toBe('string');
          if ('messageId' in object) expect(typeof object.messageId).toBe('string');
        }
        for (const reason of normalized.skipped) expect(typeof reason).toBe('string');
      }),
      { numRuns: NUM_RUNS * 2 },
    );
  });
});

describe('normalizeObjectEvent round-trips well-formed events', () => {
  it('S3 direct: URL-encoded keys (+ for a space) come out decoded, removals are dropped', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(key, fc.boolean()), { maxLength: 5 }), (entries) => {
        const event = { Records: entries.map(([k, created]) => s3Record(encodeS3EventKey(k), created ? 'ObjectCreated:Put' : 'ObjectRemoved:Delete')) };
        const normalized = normalizeObjectEvent(event);
        expect(normalized.kind).toBe('s3');
        expect(normalized.objects).toEqual(entries.filter(([, created]) => created).map(([k]) => ({ key: k, size: 1 })));
        expect(normalized.skipped).toEqual([]);
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('SQS: every record of every message, with its messageId', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.string({ minLength: 1 }), fc.array(key, { minLength: 1, maxLength: 3 })), { minLength: 1, maxLength: 4 }), (messages) => {
        const event = {
          Records: messages.map(([messageId, keys]) => sqsRecord(messageId, { Records: keys.map((k) => s3Record(encodeS3EventKey(k))) })),
        };
        const normalized = normalizeObjectEvent(event);
        expect(normalized.kind).toBe('sqs');
        expect(normalized.objects).toEqual(messages.flatMap(([messageId, keys]) => keys.map((k) => ({ key: k, size: 1, messageId }))));
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('R2: one message, an array, and a Queues batch (bodies as objects or JSON); keys are raw', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.string(), key, fc.boolean()), { minLength: 1, maxLength: 4 }), ([...messages]) => {
        const [, firstKey] = messages[0]!;
        expect(normalizeObjectEvent(r2Notification(firstKey))).toEqual({ kind: 'r2', objects: [{ key: firstKey, size: 1 }], skipped: [] });
        expect(normalizeObjectEvent(messages.map(([, k]) => r2Notification(k))).objects).toEqual(messages.map(([, k]) => ({ key: k, size: 1 })));
        const batch = { messages: messages.map(([id, k, asString]) => ({ id, body: asString ? JSON.stringify(r2Notification(k)) : r2Notification(k) })) };
        expect(normalizeObjectEvent(batch)).toEqual({ kind: 'r2', objects: messages.map(([id, k]) => ({ key: k, size: 1, messageId: id })), skipped: [] });
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('local events', () => {
    fc.assert(
      fc.property(fc.array(key, { maxLength: 5 }), (keys) => {
        expect(normalizeObjectEvent(localEvent(...keys))).toEqual({ kind: 'local', objects: keys.map((k) => ({ key: k })), skipped: [] });
      }),
      { numRuns: NUM_RUNS },
    );
  });
});

describe('the thumbnail handler on arbitrary events, with a store that always answers', () => {
  const config = parseConfig(r2TestEnv());
  const client = createS3Client(config.r2!);
  const s3 = mockClient(client);
  const handler = createThumbnailHandler(
    createServices({ config, store: new S3Store(config.r2!, client, FULL_DIALECT), logger: createLogger(() => undefined) }),
  );
  /** What GetObject answers: bytes of an image, of text, or of nothing. */
  let bodies: Uint8Array[] = [];

  beforeAll(async () => {
    const png = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#123456' } }).png().toBuffer();
    bodies = [new Uint8Array(png), new TextEncoder().encode('not an image'), new Uint8Array(png.subarray(0, 30)), new Uint8Array()];
    let n = 0;
    s3.on(GetObjectCommand).callsFake(() => {
      const bytes = bodies[n++ % bodies.length]!;
      return { Body: { transformToByteArray: () => Promise.resolve(bytes) } as unknown as GetObjectCommandOutput['Body'] };
    });
    s3.on(HeadObjectCommand).resolves({ ContentLength: 1 });
    s3.on(ListObjectsV2Command).resolves({ KeyCount: 0 });
    s3.on(PutObjectCommand).resolves({});
    s3.on(DeleteObjectsCommand).resolves({});
  });

  it('never throws, and answers {batchItemFailures: [], processed}', async () => {
    const withStaging = fc.oneof(
      anyEvent,
      fc.array(key, { maxLength: 3 }).map((keys) => ({ Records: keys.map((k) => s3Record(encodeS3EventKey(k))) })),
      fc.array(key, { maxLength: 3 }).map((keys) => queueBatch(Object.fromEntries(keys.map((k, i) => [`m${i}`, r2Notification(k)])))),
    );
    await fc.assert(
      fc.asyncProperty(withStaging, async (event) => {
        const result = (await handler(event, lambdaContext())) as { batchItemFailures: unknown[]; processed: number };
        expect(result.batchItemFailures).toEqual([]);
        expect(Number.isInteger(result.processed) && result.processed >= 0).toBe(true);
      }),
      { numRuns: NUM_RUNS },
    );
    // Staging keys were generated, read and processed (the property reached the image code).
    expect(s3.commandCalls(GetObjectCommand).length).toBeGreaterThan(0);
    expect(s3.commandCalls(PutObjectCommand).length).toBeGreaterThan(0);
  });
});
