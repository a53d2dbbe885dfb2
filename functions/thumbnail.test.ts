/**
 * The thumbnail handler (functions/thumbnail.ts) with a mocked S3 client backed by an in-memory bucket:
 * every event kind it accepts, what it publishes or rejects, what a transient failure does per delivery kind,
 * and that it has no HTTP entry.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CopyObjectCommand, DeleteObjectsCommand, GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-vitest/extend';
import sharp from 'sharp';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../lib/config.ts';
import { createLogger } from '../lib/logger.ts';
import { createServices } from '../lib/services.ts';
import { createS3Client } from '../lib/storage/s3-client.ts';
import { S3Store } from '../lib/storage/s3-store.ts';
import { FULL_DIALECT } from '../lib/storage/store-dialect.ts';
import { signWebhookBody } from '../lib/webhook.ts';
import { fakeBucket, serviceError } from '../test/support/fake-s3-bucket.ts';
import {
  bearer,
  captureLogs,
  encodeS3EventKey,
  httpEvent,
  lambdaContext,
  localEvent,
  queueBatch,
  r2Notification,
  r2TestEnv,
  s3Event,
  s3Record,
  sqsEvent,
  sqsRecord,
  TEST_BUCKET,
  TEST_PUBLIC_URL,
  TEST_TOKENS,
} from '../test/support/http-events.ts';
import { createHandler, type ThumbnailResult } from '../lib/lambda/handlers/thumbnail.ts';

/** Cache-Control of published files with the default CACHE_MAX_AGE_SECONDS. */
const PUBLISHED_CACHE = 'public, max-age=300';

const config = parseConfig(r2TestEnv({ MAX_INPUT_PIXELS: '1000000' }));
const client = createS3Client(config.r2!);
const s3 = mockClient(client);
const logs = captureLogs();
const services = createServices({ config, store: new S3Store(config.r2!, client, FULL_DIALECT), logger: createLogger(logs.sink) });
const handler = createHandler(services);

/** The in-memory bucket the mocked client answers from. */
const fake = fakeBucket(s3);
const bucket = fake.objects;
const slowDown = () => serviceError('SlowDown', 503);

let png: Buffer;
let rotatedJpeg: Buffer;
let webp: Buffer;
let gif: Buffer;
let tooManyPixels: Buffer;
let uuidCounter = 0;

beforeAll(async () => {
  const create = (width: number, height: number) =>
    sharp({ create: { width, height, channels: 3, background: { r: 200, g: 60, b: 30 } } });
  png = await create(640, 480).png().toBuffer();
  // Stored 60x40 with EXIF orientation 6 (rotate 90°): upright it is 40x60.
  rotatedJpeg = await create(60, 40).jpeg().withMetadata({ orientation: 6 }).toBuffer();
  webp = await create(300, 500).webp().toBuffer();
  gif = await create(10, 10).gif().toBuffer();
  tooManyPixels = await create(1001, 1000).png().toBuffer();
});

beforeEach(() => {
  s3.reset();
  bucket.clear();
  logs.lines.length = 0;
  fake.install();
});

/** A fresh staging key of the pose, holding `bytes`. */
function stage(generationId: string, poseId: string, bytes: Buffer): string {
  uuidCounter += 1;
  const key = `staging/${generationId}/${poseId}/00000000-0000-4000-8000-${String(uuidCounter).padStart(12, '0')}`;
  bucket.set(key, { body: bytes });
  return key;
}

const keysUnder = fake.keysUnder;
const invoke = (event: unknown): Promise<unknown> => handler(event, lambdaContext());

async function expectPublished(generationId: string, poseId: string, source?: Buffer): Promise<void> {
  const image = bucket.get(`poses/${generationId}/${poseId}.png`);
  const thumbnail = bucket.get(`poses/${generationId}/${poseId}_thumb.png`);
  expect(image, 'image published').toBeDefined();
  expect(thumbnail, 'thumbnail published').toBeDefined();
  expect(image?.contentType).toBe('image/png');
  expect(thumbnail?.contentType).toBe('image/png');
  expect(image?.cacheControl).toBe(PUBLISHED_CACHE);
  if (source) expect(image?.body.equals(source)).toBe(true);
  expect((await sharp(image?.body).metadata()).format).toBe('png');
  const thumb = await sharp(thumbnail?.body).metadata();
  expect([thumb.format, thumb.width, thumb.height]).toEqual(['png', 400, 400]);
  expect(keysUnder(`staging/${generationId}/${poseId}/`)).toEqual([]);
  expect(recordOf(generationId, poseId)).toMatchObject({ status: 'ready', width: expect.any(Number), height: expect.any(Number) });
  expect(keysUnder('locks/'), 'the lock is released').toEqual([]);
}

/** The pose's record, parsed. */
function recordOf(generationId: string, poseId: string): Record<string, unknown> | undefined {
  const stored = bucket.get(`records/${generationId}/${poseId}.json`);
  return stored && (JSON.parse(stored.body.toString()) as Record<string, unknown>);
}

/** Nothing of the pose is public. */
function expectNothingPublished(generationId: string, poseId: string): void {
  expect(bucket.has(`poses/${generationId}/${poseId}.png`)).toBe(false);
  expect(bucket.has(`poses/${generationId}/${poseId}_thumb.png`)).toBe(false);
}

describe('thumbnail handler: S3 events delivered directly', () => {
  it('publishes a PNG byte for byte with a server-side copy and a 400x400 thumbnail, then removes the staging object', async () => {
    const key = stage('gen_1', 'pose-1', png);
    expect(await invoke(s3Event(key))).toEqual({ batchItemFailures: [], processed: 1 });
    await expectPublished('gen_1', 'pose-1', png);
    expect(s3).toHaveReceivedCommandWith(GetObjectCommand, { Bucket: TEST_BUCKET, Key: key });
    // The image's bytes are never sent again: the store copies the very version that was validated.
    expect(s3).toHaveReceivedCommandExactlyOnceWith(CopyObjectCommand, {
      Bucket: TEST_BUCKET,
      Key: 'poses/gen_1/pose-1.png',
      CopySource: `${TEST_BUCKET}/${key}`,
      CopySourceIfMatch: bucket.get('poses/gen_1/pose-1.png')?.etag,
      MetadataDirective: 'REPLACE',
      ContentType: 'image/png',
      CacheControl: PUBLISHED_CACHE,
    });
    expect(s3).not.toHaveReceivedCommandWith(PutObjectCommand, { Key: 'poses/gen_1/pose-1.png' });
    const deleted = s3.commandCalls(DeleteObjectsCommand).flatMap((call) => call.args[0].input.Delete?.Objects?.map((o) => o.Key));
    expect(deleted).toContain(key);
  });

  it('refuses an upload larger than UPLOAD_MAX_BYTES by the event\'s size, without downloading it', async () => {
    const key = stage('gen_1', 'pose-1', png);
    const event = s3Event(key);
    event.Records[0]!.s3.object.size = config.uploadMaxBytes + 1;
    expect(await invoke(event)).toEqual({ batchItemFailures: [], processed: 1 });
    expect(s3).not.toHaveReceivedCommandWith(GetObjectCommand, { Key: key });
    // UPLOAD_MAX_BYTES defaults to 25 MiB.
    expect(recordOf('gen_1', 'pose-1')).toMatchObject({
      status: 'rejected',
      reason: 'too_large',
      message: 'The upload has 26,214,401 bytes, more than the 26,214,400 allowed.',
    });
    expect(bucket.has(key)).toBe(false);
    expectNothingPublished('gen_1', 'pose-1');
  });

  it('refuses an upload the store says is larger than UPLOAD_MAX_BYTES before reading its body', async () => {
    const key = stage('gen_1', 'pose-1', Buffer.alloc(config.uploadMaxBytes + 1));
    let bodyRead = false;
    s3.on(GetObjectCommand, { Key: key }).resolves({
      ContentLength: config.uploadMaxBytes + 1,
      Body: {
        transformToByteArray: () => {
          bodyRead = true;
          return Promise.resolve(new Uint8Array());
        },
        destroy: () => undefined,
      } as never,
    });
    expect(await invoke(s3Event(key))).toEqual({ batchItemFailures: [], processed: 1 });
    expect(bodyRead).toBe(false);
    expect(recordOf('gen_1', 'pose-1')).toMatchObject({ status: 'rejected', reason: 'too_large' });
    expect(bucket.has(key)).toBe(false);
  });

  it('converts a JPEG to PNG with its EXIF orientation applied, and a WebP', async () => {
    const jpegKey = stage('gen_1', 'jpeg', rotatedJpeg);
    const webpKey = stage('gen_1', 'webp', webp);
    expect(await invoke(s3Event(jpegKey, webpKey))).toEqual({ batchItemFailures: [], processed: 2 });
    await expectPublished('gen_1', 'jpeg');
    await expectPublished('gen_1', 'webp');
    const upright = await sharp(bucket.get('poses/gen_1/jpeg.png')?.body).metadata();
    expect([upright.width, upright.height, upright.orientation ?? 1]).toEqual([40, 60, 1]);
    const converted = await sharp(bucket.get('poses/gen_1/webp.png')?.body).metadata();
    expect([converted.format, converted.width, converted.height]).toEqual(['png', 300, 500]);
  });

  it('decodes URL-encoded keys (%xx, and + for a space)', async () => {
    const key = stage('gen_1', 'pose-1', png);
    // Every character encoded, slashes included.
    const encoded = [...key].map((ch) => `%${ch.charCodeAt(0).toString(16).padStart(2, '0').toUpperCase()}`).join('');
    expect(await invoke({ Records: [s3Record(encoded)] })).toEqual({ batchItemFailures: [], processed: 1 });
    await expectPublished('gen_1', 'pose-1', png);

    // `+` is a space: "pose+2" names "pose 2", which is no staging key (an id has no spaces) and is ignored,
    // even though an object "pose+2" exists.
    const plusKey = stage('gen_1', 'pose+2', png);
    const result = await invoke({ Records: [s3Record(plusKey)] });
    expect(result).toEqual({ batchItemFailures: [], processed: 1 });
    expect(s3).not.toHaveReceivedCommandWith(GetObjectCommand, { Key: plusKey });
    expect(logs.lines).toContainEqual(expect.objectContaining({ key: plusKey.replace('+', ' ') }));
    expect(bucket.has(plusKey)).toBe(true);
  });

  it('skips a record whose key is not valid URL encoding, and still processes the others', async () => {
    const key = stage('gen_1', 'pose-1', png);
    const result = await invoke({ Records: [s3Record('staging/%E0%A4%A'), s3Record(encodeS3EventKey(key))] });
    expect(result).toEqual({ batchItemFailures: [], processed: 1 });
    await expectPublished('gen_1', 'pose-1');
    expect(logs.lines.some((line) => line.level === 'warn' && /Skipped/.test(line.message))).toBe(true);
  });

  it.each([
    'poses/gen_1/pose-1_thumb.png',
    'poses/gen_1/pose-1.png',
    'records/gen_1/pose-1.json',
    'locks/gen_1/pose-1.json',
    'staging/gen_1/pose-1',
    'staging/gen_1/pose-1/not-a-uuid',
    'staging/../poses/gen_1/00000000-0000-4000-8000-000000000001',
    'staging/gen_1/pose-1/00000000-0000-4000-8000-000000000001/extra',
    'other/file.png',
  ])('ignores %s (outside the staging layout): nothing is read or written', async (key) => {
    bucket.set(key, { body: png });
    expect(await invoke(s3Event(key))).toEqual({ batchItemFailures: [], processed: 1 });
    expect(s3).not.toHaveReceivedCommand(GetObjectCommand);
    expect(s3).not.toHaveReceivedCommand(PutObjectCommand);
    expect(s3).not.toHaveReceivedCommand(DeleteObjectsCommand);
  });

  it('ignores removal events and S3 test events', async () => {
    const key = stage('gen_1', 'pose-1', png);
    expect(await invoke({ Records: [s3Record(key, 'ObjectRemoved:Delete')] })).toEqual({ batchItemFailures: [], processed: 0 });
    expect(await invoke({ Service: 'Amazon S3', Event: 's3:TestEvent', Bucket: TEST_BUCKET })).toEqual({ batchItemFailures: [], processed: 0 });
    expect(s3.calls()).toHaveLength(0);
  });

  it('rejects a non-image upload: rejection record, nothing published, staging deleted, not retried', async () => {
    const key = stage('gen_1', 'pose-1', Buffer.from('this is not an image, just some text'));
    expect(await invoke(s3Event(key))).toEqual({ batchItemFailures: [], processed: 1 });
    expectNothingPublished('gen_1', 'pose-1');
    expect(keysUnder('poses/')).toEqual([]);
    expect(bucket.has(key)).toBe(false);
    expect(recordOf('gen_1', 'pose-1')).toMatchObject({ status: 'rejected', reason: 'not_an_image', message: expect.any(String), rejectedAt: expect.any(String) });
    expect(bucket.get('records/gen_1/pose-1.json')?.contentType).toBe('application/json');
    expect(s3).not.toHaveReceivedCommandWith(PutObjectCommand, { Key: 'poses/gen_1/pose-1.png' });
    expect(logs.lines).toContainEqual(expect.objectContaining({ level: 'warn', reason: 'not_an_image', generationId: 'gen_1' }));
  });

  it.each([
    ['a GIF', () => gif, 'unsupported_format'],
    ['a truncated PNG', () => png.subarray(0, 100), 'corrupt_image'],
    ['an image over MAX_INPUT_PIXELS', () => tooManyPixels, 'too_large'],
  ])('rejects %s with reason %s', async (_, bytes, reason) => {
    const key = stage('gen_1', 'pose-1', bytes());
    expect(await invoke(s3Event(key))).toEqual({ batchItemFailures: [], processed: 1 });
    expect(keysUnder('poses/')).toEqual([]);
    expect(bucket.has(key)).toBe(false);
    expect(recordOf('gen_1', 'pose-1')).toMatchObject({ status: 'rejected', reason });
  });

  it('a later valid upload replaces the rejection', async () => {
    await invoke(s3Event(stage('gen_1', 'pose-1', Buffer.from('nope'))));
    expect(recordOf('gen_1', 'pose-1')).toMatchObject({ status: 'rejected' });
    await invoke(s3Event(stage('gen_1', 'pose-1', png)));
    await expectPublished('gen_1', 'pose-1', png);
  });

  it('a repeat of the event, or an event whose object is gone, is a harmless no-op', async () => {
    const key = stage('gen_1', 'pose-1', png);
    await invoke(s3Event(key));
    const before = new Map(bucket);
    s3.resetHistory();
    expect(await invoke(s3Event(key))).toEqual({ batchItemFailures: [], processed: 1 });
    expect(bucket).toEqual(before);
    expect(s3).not.toHaveReceivedCommand(PutObjectCommand);
    expect(s3).not.toHaveReceivedCommand(DeleteObjectsCommand);
  });

  it.each([
    ['reading the upload', GetObjectCommand],
    ['publishing', PutObjectCommand],
  ] as const)('throws on a transient failure while %s, so that Lambda retries, and publishes nothing', async (_, command) => {
    const key = stage('gen_1', 'pose-1', png);
    s3.on(command).rejects(slowDown());
    await expect(invoke(s3Event(key))).rejects.toThrow(/retried/);
    expect(bucket.has(key)).toBe(true);
    expect(keysUnder('poses/')).toEqual([]);
    expect(keysUnder('records/')).toEqual([]);
    expect(keysUnder('locks/')).toEqual([]);
    expect(logs.lines).toContainEqual(expect.objectContaining({ level: 'error', key }));
    // Once the store is back, the retry publishes.
    s3.reset();
    fake.install();
    expect(await invoke(s3Event(key))).toEqual({ batchItemFailures: [], processed: 1 });
    await expectPublished('gen_1', 'pose-1', png);
  });

  it('removes the image again when the thumbnail cannot be written (nothing half published)', async () => {
    const key = stage('gen_1', 'pose-1', png);
    s3.on(PutObjectCommand, { Key: 'poses/gen_1/pose-1_thumb.png' }).rejects(slowDown());
    await expect(invoke(s3Event(key))).rejects.toThrow();
    expect(keysUnder('poses/')).toEqual([]);
    expect(keysUnder('records/')).toEqual([]);
    expect(bucket.has(key)).toBe(true);
  });

  it('a transient failure while writing the rejection record is retried too', async () => {
    const key = stage('gen_1', 'pose-1', Buffer.from('text'));
    s3.on(PutObjectCommand).rejects(slowDown());
    await expect(invoke(s3Event(key))).rejects.toThrow();
    expect(bucket.has(key)).toBe(true);
  });
});

describe('thumbnail handler: the events of another S3 implementation (Ceph RGW)', () => {
  /** A record as RGW 16.2 pushes it to an HTTP topic: its own event source, an empty region, the key URL-encoded. */
  const cephRecord = (key: string, eventName = 'ObjectCreated:Put') => {
    const record = s3Record(encodeS3EventKey(key), eventName);
    return { ...record, eventSource: 'ceph:s3', awsRegion: '', eventVersion: '2.2' };
  };

  it('processes an RGW record as an S3 one', async () => {
    const key = stage('gen_ceph', 'pose-1', png);
    expect(await invoke({ Records: [cephRecord(key)] })).toEqual({ batchItemFailures: [], processed: 1 });
    await expectPublished('gen_ceph', 'pose-1', png);
  });

  it('the event RGW sends for a PUT it refused (412: the key existed) is a harmless no-op, before or after the upload settled', async () => {
    const key = stage('gen_ceph', 'twice', png);
    // The refused PUT's event arrives first: it processes the upload the key holds, the one the client sent first.
    await invoke({ Records: [cephRecord(key)] });
    await expectPublished('gen_ceph', 'twice', png);
    const published = [...bucket.entries()].map(([name, object]) => [name, object.etag]);
    // Then the upload's own event: its object is gone, nothing changes.
    expect(await invoke({ Records: [cephRecord(key)] })).toEqual({ batchItemFailures: [], processed: 1 });
    expect([...bucket.entries()].map(([name, object]) => [name, object.etag])).toEqual(published);
  });

  it('still skips records whose source is no S3 at all', async () => {
    const key = stage('gen_ceph', 'other', png);
    const { Records } = s3Event(key);
    expect(await invoke({ Records: [{ ...Records[0], eventSource: 'aws:sns' }] })).toEqual({ batchItemFailures: [], processed: 0 });
    expectNothingPublished('gen_ceph', 'other');
  });
});

describe('thumbnail handler: S3 events in SQS', () => {
  it('processes every message and reports only the failed messageIds', async () => {
    const good = stage('gen_1', 'good', png);
    const bad = stage('gen_1', 'bad', png);
    const invalid = stage('gen_1', 'text', Buffer.from('hello'));
    s3.on(GetObjectCommand, { Key: bad }).rejects(slowDown());

    const result = (await invoke(sqsEvent({ 'msg-1': [good], 'msg-2': [bad], 'msg-3': [invalid] }))) as ThumbnailResult;

    expect(result).toEqual({ batchItemFailures: [{ itemIdentifier: 'msg-2' }], processed: 3 });
    await expectPublished('gen_1', 'good', png);
    expect(bucket.has(bad)).toBe(true);
    expectNothingPublished('gen_1', 'bad');
    expect(bucket.has('records/gen_1/bad.json')).toBe(false);
    expect(recordOf('gen_1', 'text')).toMatchObject({ status: 'rejected' });
  });

  it('reports a message once even when several of its records fail', async () => {
    const a = stage('gen_1', 'a', png);
    const b = stage('gen_1', 'b', png);
    s3.on(GetObjectCommand).rejects(slowDown());
    expect(await invoke(sqsEvent({ 'msg-1': [a, b] }))).toEqual({ batchItemFailures: [{ itemIdentifier: 'msg-1' }], processed: 2 });
  });

  it('all succeed: no failures; S3 test events and malformed bodies are skipped, not retried', async () => {
    const key = stage('gen_1', 'pose-1', png);
    const event = {
      Records: [
        sqsRecord('test', JSON.stringify({ Service: 'Amazon S3', Event: 's3:TestEvent' })),
        sqsRecord('garbage', '{not json'),
        sqsRecord('msg-1', s3Event(key)),
      ],
    };
    expect(await invoke(event)).toEqual({ batchItemFailures: [], processed: 1 });
    await expectPublished('gen_1', 'pose-1', png);
  });

  it('never throws for SQS, even when every message fails', async () => {
    s3.on(GetObjectCommand).rejects(slowDown());
    const result = await invoke(sqsEvent({ m1: [stage('g', 'p1', png)], m2: [stage('g', 'p2', png)] }));
    expect(result).toEqual({ batchItemFailures: [{ itemIdentifier: 'm1' }, { itemIdentifier: 'm2' }], processed: 2 });
  });
});

describe('thumbnail handler: R2 notifications and local events', () => {
  it('one R2 message (raw key, not URL-encoded)', async () => {
    const key = stage('gen_1', 'pose-1', png);
    expect(await invoke(r2Notification(key))).toEqual({ batchItemFailures: [], processed: 1 });
    await expectPublished('gen_1', 'pose-1', png);
  });

  it('an array of R2 messages; delete actions are ignored', async () => {
    const a = stage('gen_1', 'a', png);
    const b = stage('gen_1', 'b', webp);
    const c = stage('gen_1', 'c', png);
    const result = await invoke([r2Notification(a), r2Notification(b, 'CompleteMultipartUpload'), r2Notification(c, 'DeleteObject')]);
    expect(result).toEqual({ batchItemFailures: [], processed: 2 });
    await expectPublished('gen_1', 'a');
    await expectPublished('gen_1', 'b');
    expect(bucket.has(c)).toBe(true);
  });

  it('an R2 single message or array throws on a transient failure', async () => {
    s3.on(GetObjectCommand).rejects(slowDown());
    await expect(invoke(r2Notification(stage('g', 'p', png)))).rejects.toThrow();
    await expect(invoke([r2Notification(stage('g', 'p', png))])).rejects.toThrow();
  });

  it('a Cloudflare Queues batch reports failures by message id (bodies as objects or JSON strings)', async () => {
    const good = stage('gen_1', 'good', png);
    const bad = stage('gen_1', 'bad', png);
    const thumb = 'poses/gen_1/good_thumb.png';
    s3.on(GetObjectCommand, { Key: bad }).rejects(slowDown());
    const result = await invoke(
      queueBatch({ 'q-1': r2Notification(good), 'q-2': JSON.stringify(r2Notification(bad)), 'q-3': r2Notification(thumb), 'q-4': 'junk' }),
    );
    expect(result).toEqual({ batchItemFailures: [{ itemIdentifier: 'q-2' }], processed: 3 });
    await expectPublished('gen_1', 'good', png);
    expect(bucket.has(bad)).toBe(true);
  });

  it('local events', async () => {
    const a = stage('gen_1', 'a', png);
    const b = stage('gen_1', 'b', Buffer.from('text'));
    expect(await invoke(localEvent(a, b, 'poses/gen_1/a_thumb.png'))).toEqual({ batchItemFailures: [], processed: 3 });
    await expectPublished('gen_1', 'a', png);
    expect(recordOf('gen_1', 'b')).toMatchObject({ status: 'rejected' });
  });

  it.each([null, undefined, 42, 'text', {}, { Records: 'x' }, { messages: [{ body: 1 }] }, []])(
    'an event of unknown shape (%j) is skipped without throwing',
    async (event) => {
      expect(await invoke(event)).toEqual({ batchItemFailures: [], processed: 0 });
      expect(s3.calls()).toHaveLength(0);
    },
  );
});

describe('thumbnail handler: no HTTP entry', () => {
  it('an API Gateway request, even with a valid token and a queue batch for body, is an event of unknown shape: nothing is processed', async () => {
    const key = stage('gen_1', 'pose-1', png);
    const request = httpEvent({ method: 'POST', path: '/', headers: bearer(TEST_TOKENS[0]), json: queueBatch({ 'q-1': r2Notification(key) }) });
    expect(await invoke(request)).toEqual({ batchItemFailures: [], processed: 0 });
    expect(s3.calls()).toHaveLength(0);
    expect(bucket.has(key)).toBe(true);
  });
});

describe('thumbnail handler: the optional webhook', () => {
  let server: Server;
  const received: { headers: IncomingMessage['headers']; body: string }[] = [];
  let answer = 204;
  let webhookHandler: ReturnType<typeof createHandler>;
  const SECRET = 'webhook-secret-0123456789';

  beforeAll(async () => {
    server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        received.push({ headers: request.headers, body: Buffer.concat(chunks).toString() });
        response.writeHead(answer).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
    const webhookConfig = parseConfig(r2TestEnv({ READY_WEBHOOK_URL: url, WEBHOOK_SECRET: SECRET }));
    webhookHandler = createHandler(createServices({ config: webhookConfig, store: new S3Store(config.r2!, client, FULL_DIALECT), logger: createLogger(logs.sink) }));
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  beforeEach(() => {
    received.length = 0;
    answer = 204;
  });

  it('POSTs a signed notice for ready and for rejected poses', async () => {
    await webhookHandler(s3Event(stage('gen_1', 'ok', png), stage('gen_1', 'text', Buffer.from('hi'))), lambdaContext());
    expect(received.map((request) => JSON.parse(request.body) as unknown)).toEqual([
      {
        generationId: 'gen_1',
        poseId: 'ok',
        status: 'ready',
        imageUrl: `${TEST_PUBLIC_URL}/poses/gen_1/ok.png`,
        thumbnailUrl: `${TEST_PUBLIC_URL}/poses/gen_1/ok_thumb.png`,
        width: 640,
        height: 480,
        bytes: png.length,
        version: expect.stringMatching(/^[0-9a-z]+$/),
        sentAt: expect.any(String),
      },
      {
        generationId: 'gen_1',
        poseId: 'text',
        status: 'rejected',
        reason: 'not_an_image',
        message: expect.stringMatching(/not a PNG, JPEG or WebP/),
        sentAt: expect.any(String),
      },
    ]);
    for (const request of received) expect(request.headers['x-pose-signature']).toBe(signWebhookBody(SECRET, request.body));
  });

  it('a refused webhook is logged and never undoes the published pose nor fails the record', async () => {
    answer = 400;
    expect(await webhookHandler(s3Event(stage('gen_1', 'ok', png)), lambdaContext())).toEqual({ batchItemFailures: [], processed: 1 });
    await expectPublished('gen_1', 'ok', png);
    expect(logs.lines).toContainEqual(expect.objectContaining({ level: 'warn', message: expect.stringMatching(/Webhook failed/) }));
  });
});
