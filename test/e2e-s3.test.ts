/**
 * End to end against a real S3-compatible server (s3rver, signatures checked): presign → client PUT with
 * exactly the returned headers → the server's object-created event → thumbnail handler → status → delete,
 * all through the Lambda handlers, with the real S3 client of r2 mode.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import type { S3Event } from 'aws-lambda';
import sharp from 'sharp';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createHandler as createDeleteHandler } from '../lib/lambda/handlers/delete.ts';
import { createHandler as createPresignHandler } from '../lib/lambda/handlers/presign.ts';
import { createHandler as createStatusHandler } from '../lib/lambda/handlers/status.ts';
import { createHandler as createThumbnailHandler } from '../lib/lambda/handlers/thumbnail.ts';
import { parseConfig } from '../lib/config.ts';
import type { HttpResult } from '../lib/lambda/http-handler.ts';
import { createLogger } from '../lib/logger.ts';
import type { UploadTicket } from '../lib/pose-uploads.ts';
import { createServices } from '../lib/services.ts';
import type { ObjectInfo } from '../lib/storage/object-store.ts';
import { createS3Client } from '../lib/storage/s3-client.ts';
import { S3Store } from '../lib/storage/s3-store.ts';
import { bearer, captureLogs, encodeS3EventKey, httpEvent, lambdaContext } from './support/http-events.ts';
import { testImage } from './support/images.ts';
import { startS3Server, TEST_PUBLIC_URL, type S3rverEventRecord, type S3TestServer } from './support/s3-server.ts';

const TOKEN = 'e2e-api-token-0123456789abcdef';

let server: S3TestServer;
let client: S3Client;
let store: S3Store;
let imageBytes: Buffer;
const logs = captureLogs();
let handlers: {
  presign: ReturnType<typeof createPresignHandler>;
  status: ReturnType<typeof createStatusHandler>;
  remove: ReturnType<typeof createDeleteHandler>;
  thumbnail: ReturnType<typeof createThumbnailHandler>;
};

beforeAll(async () => {
  [server, { bytes: imageBytes }] = await Promise.all([startS3Server(), testImage('photoPng1024')]);
  const config = parseConfig({
    STORAGE_MODE: 'r2',
    ...server.r2Env,
    API_TOKEN: TOKEN,
    UPLOAD_URL_TTL_SECONDS: '120',
  });
  client = createS3Client(config.r2!);
  store = new S3Store(server.r2Config, client);
  const services = createServices({ config, store, logger: createLogger(logs.sink) });
  handlers = {
    presign: createPresignHandler(services),
    status: createStatusHandler(services),
    remove: createDeleteHandler(services),
    thumbnail: createThumbnailHandler(services),
  };
});

afterAll(async () => {
  client?.destroy();
  await server?.stop();
});

beforeEach(() => {
  logs.lines.length = 0;
});

async function presign(generationId: string, poseId: string, contentType: string, contentLength: number): Promise<UploadTicket> {
  const result = await handlers.presign(
    httpEvent({ method: 'POST', path: '/uploads', headers: bearer(TOKEN), json: { generationId, poseId, contentType, contentLength } }),
    lambdaContext(),
  );
  expect(result.statusCode).toBe(200);
  return JSON.parse(String(result.body)) as UploadTicket;
}

/**
 * What a browser does with the ticket: PUT the bytes with its headers. A browser cannot set Content-Length: it
 * sends the body's own, which the signature then checks.
 */
function upload(ticket: UploadTicket, bytes: Uint8Array, headers: Record<string, string> = withoutLength(ticket.headers)): Promise<Response> {
  return fetch(ticket.uploadUrl, { method: ticket.method, headers, body: Uint8Array.from(bytes) });
}

function withoutLength(headers: Record<string, string>): Record<string, string> {
  const { 'Content-Length': _, ...rest } = headers;
  return rest;
}

const stagingKeyOf = (ticket: UploadTicket): string => decodeURIComponent(new URL(ticket.uploadUrl).pathname).replace(`/${server.bucket}/`, '');

/** The server's object-created records of `key` (emitted around the PUT's answer: waited for briefly). */
async function createdRecords(key: string): Promise<S3rverEventRecord[]> {
  const matching = () => server.events.filter((record) => record.eventName.startsWith('ObjectCreated:') && record.s3.object.key === key);
  for (let i = 0; i < 100 && matching().length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
  return matching();
}

/** As S3 delivers them: s3rver's keys are raw, real S3's are URL-encoded (`+` for a space). */
function asS3Event(records: S3rverEventRecord[]): S3Event {
  return {
    Records: records.map((record) => ({
      ...record,
      s3: { ...record.s3, object: { size: 0, eTag: '', ...record.s3.object, key: encodeS3EventKey(record.s3.object.key) } },
    })),
  };
}

async function status(generationId: string, poseId: string): Promise<HttpResult> {
  return handlers.status(httpEvent({ method: 'GET', path: `/poses/${generationId}/${poseId}`, headers: bearer(TOKEN) }), lambdaContext());
}

async function statusBody(generationId: string, poseId: string): Promise<unknown> {
  const result = await status(generationId, poseId);
  expect(result.statusCode).toBe(200);
  return JSON.parse(String(result.body));
}

async function listing(prefix = ''): Promise<ObjectInfo[]> {
  const all: ObjectInfo[] = [];
  for await (const object of store.list(prefix)) all.push(object);
  return all;
}

const keys = async (prefix: string): Promise<string[]> => (await listing(prefix)).map((object) => object.key).sort();

/** Presign, upload, and hand the server's event to the thumbnail handler; returns the event fed. */
async function uploadAndProcess(generationId: string, poseId: string, bytes: Buffer, contentType = 'image/png'): Promise<S3Event> {
  const ticket = await presign(generationId, poseId, contentType, bytes.length);
  const response = await upload(ticket, bytes);
  expect(response.status).toBe(200);
  const records = await createdRecords(stagingKeyOf(ticket));
  expect(records).toHaveLength(1);
  expect(await statusBody(generationId, poseId)).toEqual({ generationId, poseId, status: 'pending' });
  const event = asS3Event(records);
  expect(await handlers.thumbnail(event, lambdaContext())).toEqual({ batchItemFailures: [], processed: 1 });
  return event;
}

describe('end to end against s3rver', () => {
  it('presign → PUT → event → thumbnail → ready → replay is a no-op → delete → 404', async () => {
    const ticket = await presign('gen_e2e', 'pose-1', 'image/png', imageBytes.length);
    expect(ticket.imageUrl).toBe(`${TEST_PUBLIC_URL}/poses/gen_e2e/pose-1.png`);
    const stagingKey = stagingKeyOf(ticket);
    expect(stagingKey).toMatch(/^staging\/gen_e2e\/pose-1\/[0-9a-f-]{36}$/);

    // Nothing is known before the upload; the upload URL's constraints are enforced by the store.
    expect((await status('gen_e2e', 'pose-1')).statusCode).toBe(404);
    expect((await upload(ticket, imageBytes, { ...withoutLength(ticket.headers), 'Content-Type': 'image/jpeg' })).status).toBe(403);
    expect((await upload(ticket, imageBytes.subarray(1))).status).toBe(403);
    expect(await keys('staging/')).toEqual([]);

    const response = await upload(ticket, imageBytes);
    expect(response.status).toBe(200);
    expect(await keys('staging/')).toEqual([stagingKey]);
    // A second PUT to the URL while the upload waits to be processed is refused: it is never swapped.
    expect((await upload(ticket, imageBytes.subarray(0, 0x100))).status).toBe(403);
    expect((await upload(ticket, imageBytes)).status).toBe(412);
    expect(await statusBody('gen_e2e', 'pose-1')).toEqual({ generationId: 'gen_e2e', poseId: 'pose-1', status: 'pending' });

    const records = await createdRecords(stagingKey);
    // RGW also sends one for the PUT it refused (412): the handler meets the same key twice, a no-op the second time.
    expect(records.map((record) => record.eventName)).toEqual(server.kind === 'rgw' ? ['ObjectCreated:Put', 'ObjectCreated:Put'] : ['ObjectCreated:Put']);
    const event = asS3Event(records);
    expect(await handlers.thumbnail(event, lambdaContext())).toEqual({ batchItemFailures: [], processed: records.length });

    expect(await statusBody('gen_e2e', 'pose-1')).toEqual({
      generationId: 'gen_e2e',
      poseId: 'pose-1',
      status: 'ready',
      imageUrl: `${TEST_PUBLIC_URL}/poses/gen_e2e/pose-1.png`,
      thumbnailUrl: `${TEST_PUBLIC_URL}/poses/gen_e2e/pose-1_thumb.png`,
      width: 1024,
      height: 1024,
      bytes: imageBytes.length,
      version: expect.stringMatching(/^[0-9a-z]+$/),
    });
    const image = await store.get('poses/gen_e2e/pose-1.png');
    expect(image?.body.equals(imageBytes)).toBe(true);
    const thumbnail = await store.get('poses/gen_e2e/pose-1_thumb.png');
    const thumb = await sharp(thumbnail?.body).metadata();
    expect([thumb.format, thumb.width, thumb.height]).toEqual(['png', 400, 400]);
    expect(await keys('staging/gen_e2e/')).toEqual([]);
    expect(await keys('locks/gen_e2e/')).toEqual([]);

    // The thumbnail handler's own writes are events too: none of them triggers thumbnailing, and replaying
    // the original event changes nothing.
    const before = await listing();
    const published = server.events.filter((record) => record.s3.object.key.startsWith('poses/gen_e2e/'));
    expect(published.map((record) => record.s3.object.key).sort()).toEqual(['poses/gen_e2e/pose-1.png', 'poses/gen_e2e/pose-1_thumb.png']);
    expect(await handlers.thumbnail(asS3Event(published), lambdaContext())).toEqual({ batchItemFailures: [], processed: 2 });
    expect(await handlers.thumbnail(event, lambdaContext())).toEqual({ batchItemFailures: [], processed: records.length });
    expect(await listing()).toEqual(before);
    expect(server.events.filter((record) => record.s3.object.key.startsWith('poses/gen_e2e/'))).toHaveLength(2);

    const removed = await handlers.remove(
      httpEvent({ method: 'DELETE', path: '/poses/gen_e2e/pose-1', headers: bearer(TOKEN) }),
      lambdaContext(),
    );
    expect(removed.statusCode).toBe(204);
    expect((await status('gen_e2e', 'pose-1')).statusCode).toBe(404);
    expect(await store.head('poses/gen_e2e/pose-1.png')).toBeUndefined();
    expect(await listing()).toEqual(before.filter((object) => !object.key.includes('/gen_e2e/pose-1')));
  });

  it('a non-image upload ends rejected (not_an_image), with nothing under poses/', async () => {
    const text = Buffer.from('definitely not a PNG, only text pretending to be one\n'.repeat(20));
    const event = await uploadAndProcess('gen_text', 'pose-1', text, 'image/png');
    expect(await statusBody('gen_text', 'pose-1')).toEqual({
      generationId: 'gen_text',
      poseId: 'pose-1',
      status: 'rejected',
      reason: 'not_an_image',
      message: expect.stringMatching(/not a PNG, JPEG or WebP image/),
    });
    expect(await keys('poses/gen_text/')).toEqual([]);
    expect(await keys('staging/gen_text/')).toEqual([]);
    expect(await keys('records/gen_text/')).toEqual(['records/gen_text/pose-1.json']);

    // A replay changes nothing.
    const before = await listing();
    expect(await handlers.thumbnail(event, lambdaContext())).toEqual({ batchItemFailures: [], processed: 1 });
    expect(await listing()).toEqual(before);
  });

  it('the newest upload decides: a re-upload replaces the pose, a rejected one withdraws it, a valid one publishes again', async () => {
    const small = await sharp(imageBytes).resize(200, 300).png().toBuffer();
    await uploadAndProcess('gen_again', 'pose-1', small);
    const first = (await statusBody('gen_again', 'pose-1')) as { status: string; version: string; width: number };
    expect(first).toMatchObject({ status: 'ready', width: 200 });

    await uploadAndProcess('gen_again', 'pose-1', Buffer.from('oops, text'));
    expect(await statusBody('gen_again', 'pose-1')).toMatchObject({ status: 'rejected', reason: 'not_an_image' });
    // Never rejected and public at once: the earlier publication is withdrawn.
    expect(await keys('poses/gen_again/')).toEqual([]);

    await uploadAndProcess('gen_again', 'pose-1', imageBytes);
    const again = (await statusBody('gen_again', 'pose-1')) as { status: string; version: string; width: number };
    expect(again).toMatchObject({ status: 'ready', width: 1024 });
    expect(again.version).not.toBe(first.version);
    expect((await store.get('poses/gen_again/pose-1.png'))?.body.equals(imageBytes)).toBe(true);
    expect(await keys('backups/gen_again/')).toEqual([]);
  });

  it('DELETE /poses/{generationId} removes every pose of the generation, public and private', async () => {
    const small = await sharp(imageBytes).resize(64, 64).png().toBuffer();
    await uploadAndProcess('gen_del', 'a', small);
    await uploadAndProcess('gen_del', 'b', Buffer.from('text'));
    const pending = await presign('gen_del', 'c', 'image/png', small.length);
    expect((await upload(pending, small)).status).toBe(200);
    await uploadAndProcess('gen_keep', 'a', small);
    // a: image, thumbnail, record; b: its rejection record; c: the staged upload.
    expect((await keys('')).filter((key) => key.includes('gen_del/')).length).toBe(5);

    const removed = await handlers.remove(httpEvent({ method: 'DELETE', path: '/poses/gen_del', headers: bearer(TOKEN) }), lambdaContext());
    expect(removed.statusCode).toBe(204);
    expect((await keys('')).filter((key) => key.includes('gen_del/'))).toEqual([]);
    for (const poseId of ['a', 'b', 'c']) expect((await status('gen_del', poseId)).statusCode).toBe(404);
    expect(await statusBody('gen_keep', 'a')).toMatchObject({ status: 'ready' });

    // Deleting again: still 204.
    const again = await handlers.remove(httpEvent({ method: 'DELETE', path: '/poses/gen_del', headers: bearer(TOKEN) }), lambdaContext());
    expect(again.statusCode).toBe(204);
  });
});
