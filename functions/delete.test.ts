/**
 * `DELETE /poses/{generationId}/{poseId}` and `DELETE /poses/{generationId}` (functions/delete.ts) with a
 * mocked S3 client: which keys are deleted, 204 also when nothing existed, 503 (logged) when the store fails.
 */
import { DeleteObjectsCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-vitest/extend';
import { beforeEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../lib/config.ts';
import type { HttpResult } from '../lib/lambda/http-handler.ts';
import { createLogger } from '../lib/logger.ts';
import { createServices } from '../lib/services.ts';
import { createS3Client } from '../lib/storage/s3-client.ts';
import { S3Store } from '../lib/storage/s3-store.ts';
import { FULL_DIALECT } from '../lib/storage/store-dialect.ts';
import { fakeBucket, serviceError } from '../test/support/fake-s3-bucket.ts';
import { bearer, captureLogs, httpEvent, lambdaContext, r2TestEnv, TEST_BUCKET, TEST_ORIGIN, TEST_TOKENS } from '../test/support/http-events.ts';
import { expectError, header } from '../test/support/http-results.ts';
import { createHandler } from '../lib/lambda/handlers/delete.ts';

const config = parseConfig(r2TestEnv());
const client = createS3Client(config.r2!);
const s3 = mockClient(client);
const logs = captureLogs();
const handler = createHandler(createServices({ config, store: new S3Store(config.r2!, client, FULL_DIALECT), logger: createLogger(logs.sink) }));
const fake = fakeBucket(s3);

const UUID_A = '0b6c5d0e-2f0a-4c54-9d0e-5b8a8f5f0a11';
const UUID_B = '9f1e2d3c-4b5a-4697-8877-665544332211';

beforeEach(() => {
  s3.reset();
  fake.objects.clear();
  logs.lines.length = 0;
  fake.install();
});

/** Puts these keys in the bucket (a few bytes each). */
function holding(...keys: string[]): void {
  for (const key of keys) fake.objects.set(key, { body: Buffer.from(key) });
}

function del(path: string, options: { headers?: Record<string, string>; method?: string; pathParameters?: Record<string, string> } = {}): APIGatewayProxyEventV2 {
  return httpEvent({
    method: options.method ?? 'DELETE',
    path,
    headers: options.headers ?? bearer(TEST_TOKENS[0]),
    ...(options.pathParameters && { pathParameters: options.pathParameters }),
  });
}

const invoke = (event: APIGatewayProxyEventV2): Promise<HttpResult> => handler(event, lambdaContext());

function expect204(result: HttpResult): void {
  expect(result.statusCode).toBe(204);
  expect(result.body ?? '').toBe('');
  expect(header(result, 'x-content-type-options')).toBe('nosniff');
}

/** Every key sent to DeleteObjects, in order. */
function deletedKeys(): string[] {
  return s3
    .commandCalls(DeleteObjectsCommand)
    .flatMap((call) => call.args[0].input.Delete?.Objects?.map((object) => object.Key ?? '') ?? []);
}

describe('DELETE /poses/{generationId}/{poseId}', () => {
  it.each([
    ['function URL', undefined],
    ['API Gateway', { generationId: 'gen_1', poseId: 'pose-1' }],
  ])('204 via %s: image, thumbnail, record and every staged upload are deleted, under the pose\'s lock', async (_, pathParameters) => {
    holding(
      'poses/gen_1/pose-1.png',
      'poses/gen_1/pose-1_thumb.png',
      'records/gen_1/pose-1.json',
      `staging/gen_1/pose-1/${UUID_A}`,
      `staging/gen_1/pose-1/${UUID_B}`,
      'poses/gen_1/pose-10.png',
      `staging/gen_1/pose-10/${UUID_A}`,
    );
    expect204(await invoke(del('/poses/gen_1/pose-1', pathParameters ? { pathParameters } : {})));
    expect(s3).toHaveReceivedCommandWith(PutObjectCommand, { Bucket: TEST_BUCKET, Key: 'locks/gen_1/pose-1.json', IfNoneMatch: '*' });
    expect(s3).toHaveReceivedCommandWith(ListObjectsV2Command, { Bucket: TEST_BUCKET, Prefix: 'staging/gen_1/pose-1/' });
    expect(fake.keysUnder('')).toEqual(['poses/gen_1/pose-10.png', `staging/gen_1/pose-10/${UUID_A}`]);
    // One request removes the pose and releases the lock.
    expect(s3).toHaveReceivedCommandTimes(DeleteObjectsCommand, 1);
    expect(deletedKeys()).toContain('locks/gen_1/pose-1.json');
  });

  it('204 when nothing existed, and nothing but the lock is written', async () => {
    expect204(await invoke(del('/poses/gen_1/pose-1')));
    expect(fake.keysUnder('')).toEqual([]);
    expect(s3.commandCalls(PutObjectCommand).map((call) => call.args[0].input.Key)).toEqual(['locks/gen_1/pose-1.json']);
  });

  it('204 when the store reports some keys as already gone (NoSuchKey)', async () => {
    holding('poses/gen_1/pose-1.png');
    s3.on(DeleteObjectsCommand).resolves({ Errors: [{ Key: 'poses/gen_1/pose-1.png', Code: 'NoSuchKey' }] });
    expect204(await invoke(del('/poses/gen_1/pose-1')));
  });

  it('503 pose_busy with Retry-After when another writer holds the pose past the wait, deleting nothing', async () => {
    holding('poses/gen_1/pose-1.png');
    const lock = { holder: 'upload staging/gen_1/pose-1/x', expiresAt: new Date(Date.now() + 60_000).toISOString() };
    fake.objects.set('locks/gen_1/pose-1.json', { body: Buffer.from(JSON.stringify(lock)) });
    const result = await invoke(del('/poses/gen_1/pose-1'));
    expectError(result, 503, 'pose_busy');
    expect(header(result, 'retry-after')).toBe('2');
    expect(fake.objects.has('poses/gen_1/pose-1.png')).toBe(true);
    expect(fake.objects.has('locks/gen_1/pose-1.json'), "another writer's lock is left alone").toBe(true);
  }, 20_000);

  it('takes over a lock left by a writer that died (expired), then deletes', async () => {
    holding('poses/gen_1/pose-1.png');
    // Written 10 minutes ago (the store's Last-Modified), whatever its body claims.
    const lock = { holder: 'upload staging/gen_1/pose-1/x', expiresAt: new Date(Date.now() + 3_600_000).toISOString() };
    fake.objects.set('locks/gen_1/pose-1.json', { body: Buffer.from(JSON.stringify(lock)), lastModified: new Date(Date.now() - 600_000) });
    expect204(await invoke(del('/poses/gen_1/pose-1')));
    expect(fake.keysUnder('')).toEqual([]);
    expect(logs.lines).toContainEqual(expect.objectContaining({ level: 'warn', message: expect.stringMatching(/expired lock/) }));
  });

  it.each([
    ['SlowDown (503) on DeleteObjects', () => s3.on(DeleteObjectsCommand).rejects(serviceError('SlowDown', 503))],
    ['ServiceUnavailable (503) on the listing', () => s3.on(ListObjectsV2Command).rejects(serviceError('ServiceUnavailable', 503))],
    ['AccessDenied (403)', () => s3.on(DeleteObjectsCommand).rejects(serviceError('AccessDenied', 403))],
    ['ServiceUnavailable (503) taking the lock', () => s3.on(PutObjectCommand).rejects(serviceError('ServiceUnavailable', 503))],
  ])('503 with Retry-After, logged, when the store fails with %s', async (_, fail) => {
    holding('poses/gen_1/pose-1.png');
    fail();
    const result = await invoke(del('/poses/gen_1/pose-1'));
    expectError(result, 503, 'storage_unavailable');
    expect(header(result, 'retry-after')).toBe('5');
    expect(logs.lines.some((line) => /Failed to delete pose/.test(line.message))).toBe(true);
  });

  it('503 when DeleteObjects answers per-key errors other than NoSuchKey', async () => {
    s3.on(DeleteObjectsCommand).resolves({ Errors: [{ Key: 'poses/gen_1/pose-1.png', Code: 'InternalError' }] });
    expectError(await invoke(del('/poses/gen_1/pose-1')), 503, 'storage_unavailable');
  });
});

describe('DELETE /poses/{generationId}', () => {
  it.each([
    ['function URL', undefined],
    ['API Gateway', { generationId: 'gen_1' }],
  ])('204 via %s: everything of the generation (public, staging, records) and nothing else', async (_, pathParameters) => {
    holding(
      'poses/gen_1/a.png',
      'poses/gen_1/a_thumb.png',
      'poses/gen_1/b.png',
      'poses/gen_1/custom/a_200.png',
      `staging/gen_1/c/${UUID_A}`,
      'records/gen_1/d.json',
      'poses/gen_10/a.png',
      'poses/gen_2/a.png',
      'records/gen_2/a.json',
    );
    expect204(await invoke(del('/poses/gen_1', pathParameters ? { pathParameters } : {})));
    for (const prefix of ['poses/gen_1/', 'staging/gen_1/', 'records/gen_1/', 'locks/gen_1/', 'backups/gen_1/']) {
      expect(s3).toHaveReceivedCommandWith(ListObjectsV2Command, { Bucket: TEST_BUCKET, Prefix: prefix });
    }
    expect(fake.keysUnder('')).toEqual(['poses/gen_10/a.png', 'poses/gen_2/a.png', 'records/gen_2/a.json']);
    // Every pose found (a, b, c, d) was locked before its files went.
    const locked = s3.commandCalls(PutObjectCommand).map((call) => call.args[0].input.Key).sort();
    expect(locked).toEqual(['locks/gen_1/a.json', 'locks/gen_1/b.json', 'locks/gen_1/c.json', 'locks/gen_1/d.json']);
  });

  it('204 when the generation is empty, without a DeleteObjects call', async () => {
    expect204(await invoke(del('/poses/gen_1')));
    expect(s3).not.toHaveReceivedCommand(DeleteObjectsCommand);
  });

  it('deletes in batches of at most 1,000 keys', async () => {
    // Each pose goes in a request of its own, under its lock; the generation's other files in batches.
    holding('poses/gen_1/pose-1.png', ...Array.from({ length: 1500 }, (_, i) => `poses/gen_1/custom/p${i}.png`));
    expect204(await invoke(del('/poses/gen_1')));
    const batches = s3.commandCalls(DeleteObjectsCommand).map((call) => call.args[0].input.Delete?.Objects?.length ?? 0);
    expect(Math.max(...batches)).toBe(1000);
    expect(fake.keysUnder('')).toEqual([]);
  });

  it('503, logged, when the store fails; the locks taken are released', async () => {
    holding('poses/gen_1/a.png');
    s3.on(DeleteObjectsCommand).rejects(serviceError('SlowDown', 503));
    expectError(await invoke(del('/poses/gen_1')), 503, 'storage_unavailable');
    expect(logs.lines.some((line) => /Failed to delete generation/.test(line.message))).toBe(true);
  });
});

describe('DELETE: errors, auth, CORS', () => {
  it.each([
    '/poses/..',
    '/poses/%2e%2e',
    '/poses/gen_1/..',
    '/poses/gen_1/%2E%2E',
    '/poses/gen%2F1',
    '/poses/gen_1/p%00',
    '/poses/g%C3%A9n',
    `/poses/${'g'.repeat(129)}`,
    '/poses/',
    '/poses',
    '/',
  ])('400 invalid_request for %s, and nothing is listed or deleted', async (path) => {
    expectError(await invoke(del(path)), 400, 'invalid_request');
    expect(s3.calls()).toHaveLength(0);
  });

  it('400 for an empty pose id: `/poses/{generationId}/` never deletes the whole generation', async () => {
    holding('poses/gen_1/a.png');
    expectError(await invoke(del('/poses/gen_1/')), 400, 'invalid_request');
    expect(s3.calls()).toHaveLength(0);
  });

  it('400 for bad API Gateway path parameters', async () => {
    expectError(await invoke(del('/poses/x', { pathParameters: { generationId: '../../etc' } })), 400, 'invalid_request');
    expectError(await invoke(del('/poses/x/y', { pathParameters: { generationId: 'ok', poseId: 'a/b' } })), 400, 'invalid_request');
    expect(s3.calls()).toHaveLength(0);
  });

  it.each([
    ['no token', {}],
    ['a wrong token', bearer('wrong-token-0123456789abcdef')],
    ['a lower-case scheme and the right token', { authorization: `bearer-${TEST_TOKENS[0]}` }],
  ])('401 with %s, and nothing is deleted', async (_, headers) => {
    holding('poses/gen_1/pose-1.png');
    expectError(await invoke(del('/poses/gen_1/pose-1', { headers })), 401, 'unauthorized');
    expectError(await invoke(del('/poses/gen_1', { headers })), 401, 'unauthorized');
    expect(s3.calls()).toHaveLength(0);
  });

  it('accepts the second (rotation) token', async () => {
    expect204(await invoke(del('/poses/gen_1/pose-1', { headers: bearer(TEST_TOKENS[1]) })));
  });

  it.each(['GET', 'POST', 'PUT'])('405 for %s on a pose (Allow: GET, DELETE) and on a generation (Allow: DELETE), deleting nothing', async (method) => {
    const onPose = await invoke(del('/poses/gen_1/pose-1', { method }));
    expectError(onPose, 405, 'method_not_allowed');
    expect(header(onPose, 'allow')).toBe('GET, DELETE');
    const onGeneration = await invoke(del('/poses/gen_1', { method }));
    expectError(onGeneration, 405, 'method_not_allowed');
    expect(header(onGeneration, 'allow')).toBe('DELETE');
    expect(s3.calls()).toHaveLength(0);
  });

  it('answers preflight with 204 and CORS headers for the allowed origin only, without deleting', async () => {
    const preflight = await invoke(
      del('/poses/gen_1/pose-1', { method: 'OPTIONS', headers: { origin: TEST_ORIGIN, 'access-control-request-method': 'DELETE' } }),
    );
    expect204(preflight);
    expect(header(preflight, 'access-control-allow-origin')).toBe(TEST_ORIGIN);
    expect(header(preflight, 'access-control-allow-methods')).toContain('DELETE');
    const other = await invoke(del('/poses/gen_1/pose-1', { method: 'OPTIONS', headers: { origin: 'https://evil.example.test' } }));
    expect204(other);
    expect(header(other, 'access-control-allow-origin')).toBeUndefined();
    expect(s3.calls()).toHaveLength(0);
  });
});
