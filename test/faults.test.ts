/**
 * Faults injected into the thumbnail flow. Whatever step fails (the SDK answering 500, 503 SlowDown, a timeout
 * or a reset, or the real test S3 server cut off mid-request), the record is retried, nothing half written is
 * left public (never a thumbnail without its image), the upload is not lost, and once the store is back the pose
 * ends ready with no orphan.
 */
import { randomUUID } from 'node:crypto';
import { mockClient } from 'aws-sdk-client-mock';
import sharp from 'sharp';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createHandler } from '../functions/thumbnail.ts';
import { parseConfig } from '../lib/config.ts';
import { createLogger } from '../lib/logger.ts';
import { createServices } from '../lib/services.ts';
import { createS3Client } from '../lib/storage/s3-client.ts';
import { S3Store } from '../lib/storage/s3-store.ts';
import { fakeBucket, serviceError, type S3CommandName } from './support/fake-s3-bucket.ts';
import { startFlakyProxy, type FlakyProxy } from './support/flaky-proxy.ts';
import { lambdaContext, r2TestEnv, s3Event, sqsEvent } from './support/http-events.ts';
import { startS3Server, type S3TestServer } from './support/s3-server.ts';

let png: Buffer;

beforeAll(async () => {
  png = await sharp({ create: { width: 640, height: 480, channels: 3, background: '#3a6' } }).png().toBuffer();
});

const faults: [string, () => Error][] = [
  ['HTTP 500 InternalError', () => serviceError('InternalError', 500)],
  ['HTTP 503 SlowDown', () => serviceError('SlowDown', 503)],
  ['a timeout', () => Object.assign(new Error('Request timed out'), { name: 'TimeoutError' })],
  ['a connection reset', () => Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' })],
];

/** Each step of the flow, as the command (and key) that carries it. */
const steps: [string, S3CommandName, (key: string) => boolean][] = [
  ['reading the upload', 'GetObject', (key) => key.startsWith('staging/')],
  ['taking the pose\'s lock', 'PutObject', (key) => key.startsWith('locks/')],
  ['checking the upload under the lock', 'HeadObject', (key) => key.startsWith('staging/')],
  ['reading the pose\'s record', 'GetObject', (key) => key.startsWith('records/')],
  ['copying the image', 'CopyObject', (key) => key === 'poses/gen_f/pose_f.png'],
  ['writing the thumbnail', 'PutObject', (key) => key.endsWith('_thumb.png')],
  ['writing the record', 'PutObject', (key) => key.startsWith('records/')],
  ['removing the staging object', 'DeleteObjects', (key) => key.startsWith('staging/')],
];

describe('store faults on each step (aws-sdk-client-mock), through SQS deliveries', () => {
  const config = parseConfig(r2TestEnv());
  const client = createS3Client(config.r2!);
  const s3 = mockClient(client);
  const bucket = fakeBucket(s3);
  const handler = createHandler(createServices({ config, store: new S3Store(config.r2!, client), logger: createLogger(() => undefined) }));

  beforeEach(() => {
    s3.reset();
    bucket.objects.clear();
    bucket.fail = undefined;
    bucket.install();
  });

  const cases = steps.flatMap(([step, command, matches]) => faults.map(([fault, error]) => [step, fault, command, matches, error] as const));

  it.each(cases)('%s fails with %s: retried, nothing half public, then ready', async (_step, _fault, command, matches, error) => {
    const stagingKey = `staging/gen_f/pose_f/${randomUUID()}`;
    bucket.objects.set(stagingKey, { body: png });
    bucket.fail = (name, key) => (name === command && matches(key) ? error() : undefined);
    const event = sqsEvent({ 'm-1': [stagingKey] });

    const failed = (await handler(event, lambdaContext())) as { batchItemFailures: { itemIdentifier: string }[] };

    expect(failed.batchItemFailures).toEqual([{ itemIdentifier: 'm-1' }]);
    const image = bucket.objects.has('poses/gen_f/pose_f.png');
    const thumbnail = bucket.objects.has('poses/gen_f/pose_f_thumb.png');
    expect(thumbnail && !image, 'a thumbnail without its image').toBe(false);
    expect(bucket.keysUnder('records/').map((key) => JSON.parse(bucket.objects.get(key)!.body.toString()).status)).not.toContain('rejected');
    expect(bucket.keysUnder('locks/'), 'the lock is released').toEqual([]);
    if (!(command === 'DeleteObjects' && matches('staging/'))) {
      // Until the staging object is removed the pose is not done, so the upload must still be there.
      expect(bucket.objects.has(stagingKey), 'the upload was lost').toBe(true);
    }

    bucket.fail = undefined; // the store is back: the queue redelivers
    expect(await handler(event, lambdaContext())).toEqual({ batchItemFailures: [], processed: 1 });
    expect(bucket.keysUnder('')).toEqual(['poses/gen_f/pose_f.png', 'poses/gen_f/pose_f_thumb.png', 'records/gen_f/pose_f.json']);
    expect(bucket.objects.get('poses/gen_f/pose_f.png')?.body.equals(png)).toBe(true);
  });
});

describe('the real S3 server cut off mid-request', () => {
  let server: S3TestServer;
  let proxy: FlakyProxy;

  beforeAll(async () => {
    server = await startS3Server();
    proxy = await startFlakyProxy(server.endpoint);
  });

  afterAll(async () => {
    await proxy.close();
    await server.stop();
  });

  /**
   * The request line of each step for the pose `poseId` in the server's bucket (poseId: letters, digits and `_`
   * only; a bucket name: lower-case letters, digits and `-`; so no regex escaping is needed).
   */
  const cutPoints: [string, (poseId: string) => RegExp][] = [
    ['reading the upload', () => new RegExp(`^GET /${server.bucket}/staging/`, 'm')],
    // The image's key exactly (`?` starts the SDK's query, a space ends the path): never the thumbnail's.
    ['copying the image', (poseId) => new RegExp(`^PUT /${server.bucket}/poses/gen_cut/${poseId}\\.png[? ]`, 'm')],
    ['writing the thumbnail', (poseId) => new RegExp(`^PUT /${server.bucket}/poses/gen_cut/${poseId}_thumb\\.png[? ]`, 'm')],
    ['removing the staging object', () => new RegExp(`^POST /${server.bucket}/?\\?delete`, 'm')],
  ];

  it.each(cutPoints)('cut while %s: the event fails, then succeeds once the server is back', async (_, cutPoint) => {
    const poseId = `pose_${randomUUID().slice(0, 8)}`;
    const direct = new S3Store(server.r2Config);
    const config = parseConfig({
      ...r2TestEnv(),
      ...server.r2Env,
      R2_ENDPOINT: proxy.endpoint,
    });
    const client = createS3Client(config.r2!);
    const handler = createHandler(createServices({ config, store: new S3Store(config.r2!, client), logger: createLogger(() => undefined) }));
    const stagingKey = `staging/gen_cut/${poseId}/${randomUUID()}`;
    await direct.put(stagingKey, png, { contentType: 'image/png' });

    proxy.cutAt(cutPoint(poseId));
    await expect(handler(s3Event(stagingKey), lambdaContext())).rejects.toThrow(/retried/);
    expect(proxy.isDown).toBe(true);

    const image = await direct.head(`poses/gen_cut/${poseId}.png`);
    const thumbnail = await direct.head(`poses/gen_cut/${poseId}_thumb.png`);
    expect(thumbnail !== undefined && image === undefined, 'a thumbnail without its image').toBe(false);

    proxy.restore();
    const lock = `locks/gen_cut/${poseId}.json`;
    if (await direct.head(lock)) {
      // Cut before the lock could be released: the lock holds the pose until it expires (LOCK_TTL_MS), then
      // the next attempt takes it over. Time passes: the lock is now one that expired.
      const expired = { holder: 'a dead attempt', expiresAt: new Date(Date.now() - 1000).toISOString() };
      await direct.put(lock, Buffer.from(JSON.stringify(expired)), { contentType: 'application/json' });
    }
    expect(await handler(s3Event(stagingKey), lambdaContext())).toEqual({ batchItemFailures: [], processed: 1 });
    const left: string[] = [];
    for (const area of ['poses', 'locks', 'backups']) for await (const object of direct.list(`${area}/gen_cut/${poseId}`)) left.push(object.key);
    expect(left).toEqual([`poses/gen_cut/${poseId}.png`, `poses/gen_cut/${poseId}_thumb.png`]);
    await expect(direct.head(stagingKey)).resolves.toBeUndefined();
    expect((await direct.get(`poses/gen_cut/${poseId}.png`))?.body.equals(png)).toBe(true);
    client.destroy();
  });
});
