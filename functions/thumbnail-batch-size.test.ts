/**
 * The thumbnail handler's batch limit (THUMBNAIL_BATCH_SIZE): the messages past it are never processed and are
 * answered as failures, so the queue delivers them again; events without messages (S3 delivered directly, local
 * events) are not batches and are not limited. On a real directory store, with real PNGs.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../lib/config.ts';
import { ConfigError } from '../lib/errors.ts';
import { createLogger } from '../lib/logger.ts';
import { createServices } from '../lib/services.ts';
import { DirectoryStore } from '../lib/storage/directory-store.ts';
import { captureLogs, lambdaContext, localEvent, s3Event, sqsEvent } from '../test/support/http-events.ts';
import { batchSizeFromEnv, createHandler, DEFAULT_BATCH_SIZE } from '../lib/lambda/handlers/thumbnail.ts';

let root: string;
let store: DirectoryStore;
let png: Buffer;
const logs = captureLogs();

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'thumbnail-batch-'));
  store = new DirectoryStore({ root, uploadBaseUrl: 'http://127.0.0.1:1' });
  png = await sharp({ create: { width: 64, height: 48, channels: 3, background: '#336699' } }).png().toBuffer();
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const handler = (batchSize: number) =>
  createHandler(createServices({ config: parseConfig({ UPLOAD_PATH: root }), store, logger: createLogger(logs.sink) }), { batchSize });

async function stage(generationId: string, poseId: string): Promise<string> {
  const key = `staging/${generationId}/${poseId}/${randomUUID()}`;
  await store.put(key, png, { contentType: 'image/png' });
  return key;
}

const isPublished = async (generationId: string, poseId: string) => (await store.head(`poses/${generationId}/${poseId}.png`)) !== undefined;

describe('THUMBNAIL_BATCH_SIZE', () => {
  it('unset: the default of both queues (10); set: a whole number from 1 to 100', () => {
    expect(batchSizeFromEnv({})).toBe(DEFAULT_BATCH_SIZE);
    expect(DEFAULT_BATCH_SIZE).toBe(10);
    expect(batchSizeFromEnv({ THUMBNAIL_BATCH_SIZE: ' 4 ' })).toBe(4);
    for (const bad of ['0', '101', 'four', '-1', '2.5']) {
      expect(() => batchSizeFromEnv({ THUMBNAIL_BATCH_SIZE: bad })).toThrow(ConfigError);
      expect(() => batchSizeFromEnv({ THUMBNAIL_BATCH_SIZE: bad })).toThrow(/^THUMBNAIL_BATCH_SIZE must be a whole number between 1 and 100/);
    }
  });

  it('an SQS batch over the limit: the first messages are processed, the rest answered as failures, untouched', async () => {
    const keys = await Promise.all(['a', 'b', 'c'].map((poseId) => stage('gen_sqs', poseId)));
    const result = await handler(2)(sqsEvent({ 'msg-a': [keys[0]!], 'msg-b': [keys[1]!], 'msg-c': [keys[2]!] }), lambdaContext());
    expect(result).toEqual({ batchItemFailures: [{ itemIdentifier: 'msg-c' }], processed: 2 });
    expect([await isPublished('gen_sqs', 'a'), await isPublished('gen_sqs', 'b'), await isPublished('gen_sqs', 'c')]).toEqual([true, true, false]);
    expect(await store.head(keys[2]!)).toBeDefined();
    expect(logs.lines).toContainEqual(expect.objectContaining({ level: 'warn', message: expect.stringMatching(/over THUMBNAIL_BATCH_SIZE=2: 1 message/) }));
  });

  it('events that are not batches (S3 delivered directly, local events) are not limited', async () => {
    const direct = await Promise.all(['a', 'b', 'c'].map((poseId) => stage('gen_direct', poseId)));
    expect(await handler(1)(s3Event(...direct), lambdaContext())).toEqual({ batchItemFailures: [], processed: 3 });
    const local = await Promise.all(['a', 'b'].map((poseId) => stage('gen_local', poseId)));
    expect(await handler(1)(localEvent(...local), lambdaContext())).toEqual({ batchItemFailures: [], processed: 2 });
    for (const poseId of ['a', 'b', 'c']) expect(await isPublished('gen_direct', poseId)).toBe(true);
  });
});
