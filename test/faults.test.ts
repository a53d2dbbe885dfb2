/**
 * Faults injected into the thumbnail flow. Whatever step fails (the SDK answering 500, 503 SlowDown, a timeout
 * or a reset, or the real test S3 server cut off mid-request), the record is retried, nothing half written is
 * left public (never a thumbnail without its image), the upload is not lost, and once the store is back the pose
 * ends ready with no orphan.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { mockClient } from 'aws-sdk-client-mock';
import sharp from 'sharp';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createHandler } from '../lib/lambda/handlers/thumbnail.ts';
import { parseConfig } from '../lib/config.ts';
import type { LockTiming } from '../lib/deadlines.ts';
import { lockKey, newStagingKey, recordKey } from '../lib/layout.ts';
import { fileKey, imageKey, thumbnailKey } from '../lib/pose-files.ts';
import { bodyOf } from '../lib/pose-image.ts';
import { testLockTiming, untilLockExpired } from './support/lock-expiry.ts';
import { VARIANTS_ENV } from './support/two-uploads.ts';
import { createLogger } from '../lib/logger.ts';
import { createServices } from '../lib/services.ts';
import { createS3Client } from '../lib/storage/s3-client.ts';
import { S3Store } from '../lib/storage/s3-store.ts';
import { fakeBucket, serviceError, type S3CommandName } from './support/fake-s3-bucket.ts';
import { startFlakyProxy, type FlakyProxy } from './support/flaky-proxy.ts';
import { lambdaContext, r2TestEnv, s3Event, sqsEvent } from './support/http-events.ts';
import { startS3Server, type S3TestServer } from './support/s3-server.ts';

let png: Buffer;

/** Shortened lock deadlines: a lock a cut left behind expires in seconds (the store dates objects to the second). */
const SHORT: LockTiming = testLockTiming({ holdMs: 500, marginMs: 1500 });

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
  ['listing the pose\'s uploads under the lock', 'ListObjectsV2', (key) => key.startsWith('staging/')],
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
    const handler = createHandler(createServices({ config, store: new S3Store(config.r2!, client), logger: createLogger(() => undefined), lockTiming: SHORT }));
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
    // Cut before the lock could be released: the lock holds the pose until it expires, then the next attempt
    // takes it over (shortened lock deadlines here).
    await untilLockExpired(direct, lock, SHORT);
    expect(await handler(s3Event(stagingKey), lambdaContext())).toEqual({ batchItemFailures: [], processed: 1 });
    const left: string[] = [];
    for (const area of ['poses', 'locks', 'backups']) for await (const object of direct.list(`${area}/gen_cut/${poseId}`)) left.push(object.key);
    expect(left).toEqual([`poses/gen_cut/${poseId}.png`, `poses/gen_cut/${poseId}_thumb.png`]);
    await expect(direct.head(stagingKey)).resolves.toBeUndefined();
    expect((await direct.get(`poses/gen_cut/${poseId}.png`))?.body.equals(png)).toBe(true);
    client.destroy();
  });

  it.each(['thumb.webp', 'preview.avif'])('with variants, cut while writing the %s: nothing public is left half written, then the retry publishes every file', async (role) => {
    const poseId = `pose_${randomUUID().slice(0, 8)}`;
    const pose = { generationId: 'gen_cutv', poseId };
    const direct = new S3Store(server.r2Config);
    const config = parseConfig({ ...r2TestEnv(), ...server.r2Env, R2_ENDPOINT: proxy.endpoint, POSE_VARIANTS: VARIANTS_ENV });
    const client = createS3Client(config.r2!);
    const services = createServices({ config, store: new S3Store(config.r2!, client), logger: createLogger(() => undefined), lockTiming: SHORT });
    const handler = createHandler(services);
    const stagingKey = newStagingKey(pose);
    await direct.put(stagingKey, png, { contentType: 'image/png' });
    const [name, ext] = role.split('.');
    proxy.cutAt(new RegExp(`^PUT /${server.bucket}/poses/gen_cutv/${poseId}_${name}\\.${ext}[? ]`, 'm'));
    await expect(handler(s3Event(stagingKey), lambdaContext())).rejects.toThrow(/retried/);
    proxy.restore();
    // The line is still down when the undo runs: the image may be left, but never a file made from it without
    // it, and the pose is pending (its upload is still staged) until the retry.
    const [image, ...derived] = await Promise.all(services.storage.files.all.map((file) => direct.head(fileKey(pose, file))));
    expect(derived.some((info) => info !== undefined) && image === undefined, 'a variant or thumbnail without its image').toBe(false);
    expect(await services.uploads.getStatus(pose)).toMatchObject({ status: 'pending' });
    await untilLockExpired(direct, lockKey(pose), SHORT);
    expect(await handler(s3Event(stagingKey), lambdaContext())).toEqual({ batchItemFailures: [], processed: 1 });
    const rendered = await services.storage.render(png);
    for (const file of services.storage.files.all) {
      expect((await direct.get(fileKey(pose, file)))?.body.equals(bodyOf(rendered, file)), file.role).toBe(true);
    }
    client.destroy();
  });

  /** Each write under the lock, held on the wire past the lock's deadline (a slow network, the SDK's retries). */
  const stallPoints: [string, (poseId: string) => RegExp][] = [
    ['publishing the image', (poseId) => new RegExp(`^PUT /${server.bucket}/poses/gen_stall/${poseId}\\.png[? ]`, 'm')],
    ['writing the thumbnail', (poseId) => new RegExp(`^PUT /${server.bucket}/poses/gen_stall/${poseId}_thumb\\.png[? ]`, 'm')],
    ['writing the record', (poseId) => new RegExp(`^PUT /${server.bucket}/records/gen_stall/${poseId}\\.json[? ]`, 'm')],
    ['removing the staging object', () => new RegExp(`^POST /${server.bucket}/?\\?delete`, 'm')],
  ];

  it.each(stallPoints)('stalled past the lock\'s deadline while %s: the event fails, nothing lands late, the retry publishes whole', async (_, stallPoint) => {
    const poseId = `pose_${randomUUID().slice(0, 8)}`;
    const pose = { generationId: 'gen_stall', poseId };
    const direct = new S3Store(server.r2Config);
    const config = parseConfig({ ...r2TestEnv(), ...server.r2Env, R2_ENDPOINT: proxy.endpoint });
    const client = createS3Client(config.r2!);
    const lockTiming = SHORT;
    const services = createServices({ config, store: new S3Store(config.r2!, client), logger: createLogger(() => undefined), lockTiming });
    const handler = createHandler(services);
    const stagingKey = newStagingKey(pose);
    await direct.put(stagingKey, png, { contentType: 'image/png' });
    const published = async () => Promise.all([direct.get(imageKey(pose)), direct.get(thumbnailKey(pose)), direct.get(recordKey(pose))]);

    const stallMs = lockTiming.holdMs + 2000; // past the deadline, by more than a slow request takes
    const stalled = proxy.stallAt(stallPoint(poseId), stallMs);
    await expect(handler(s3Event(stagingKey), lambdaContext())).rejects.toThrow(/retried/);
    await stalled;
    const atDeadline = (await published()).map((object) => object?.etag);
    await sleep(stallMs + 500);
    // What the attempt had written by its deadline is all it ever wrote: the held request was dropped.
    expect((await published()).map((object) => object?.etag)).toEqual(atDeadline);
    const [image, thumbnail] = await published();
    expect(thumbnail !== undefined && image === undefined, 'a thumbnail without its image').toBe(false);

    await untilLockExpired(direct, lockKey(pose), lockTiming); // its lock, left behind, expires
    expect(await handler(s3Event(stagingKey), lambdaContext())).toEqual({ batchItemFailures: [], processed: 1 });
    const [imageAfter, thumbnailAfter, record] = await published();
    expect(imageAfter?.body.equals(png)).toBe(true);
    expect(thumbnailAfter?.body.equals((await services.storage.render(png)).thumbnail)).toBe(true);
    expect(JSON.parse(record!.body.toString())).toMatchObject({ status: 'ready', files: { image: imageAfter!.etag, thumbnail: thumbnailAfter!.etag } });
    await expect(direct.head(stagingKey)).resolves.toBeUndefined();
    client.destroy();
  }, 20_000 + 2 * SHORT.holdMs);
});
