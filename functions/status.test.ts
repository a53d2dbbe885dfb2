/**
 * `GET /poses/{generationId}/{poseId}` (functions/status.ts) with a mocked S3 client: the status derived from
 * what the store holds (a staged upload, the pose's record), in two store requests at once; both event shapes
 * (API Gateway path parameters and function URL raw paths), and the contract's errors.
 */
import {
  GetObjectCommand,
  type GetObjectCommandOutput,
  ListObjectsV2Command,
  NoSuchKey,
  S3ServiceException,
} from '@aws-sdk/client-s3';
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
import {
  bearer,
  captureLogs,
  httpEvent,
  lambdaContext,
  r2TestEnv,
  TEST_BUCKET,
  TEST_ORIGIN,
  TEST_PUBLIC_URL,
  TEST_TOKENS,
} from '../test/support/http-events.ts';
import { expectError, header } from '../test/support/http-results.ts';
import { createHandler } from '../lib/lambda/handlers/status.ts';

const config = parseConfig(r2TestEnv());
const client = createS3Client(config.r2!);
const s3 = mockClient(client);
const logs = captureLogs();
const handler = createHandler(createServices({ config, store: new S3Store(config.r2!, client), logger: createLogger(logs.sink) }));

const STAGED = 'staging/gen_1/pose-1/0b6c5d0e-2f0a-4c54-9d0e-5b8a8f5f0a11';

beforeEach(() => {
  s3.reset();
  logs.lines.length = 0;
  // An empty store: nothing staged, no record.
  s3.on(ListObjectsV2Command).resolves({ KeyCount: 0 });
  s3.on(GetObjectCommand).rejects(new NoSuchKey({ message: 'NoSuchKey', $metadata: { httpStatusCode: 404 } }));
});

function serviceError(name: string, httpStatusCode: number): S3ServiceException {
  return new S3ServiceException({ name, message: name, $fault: httpStatusCode >= 500 ? 'server' : 'client', $metadata: { httpStatusCode } });
}

function body(text: string): NonNullable<GetObjectCommandOutput['Body']> {
  return { transformToByteArray: () => Promise.resolve(new TextEncoder().encode(text)) } as unknown as NonNullable<
    GetObjectCommandOutput['Body']
  >;
}

/** GET with API Gateway's path parameters (`apiGateway`) or as a function URL (raw path only). */
function get(path: string, options: { headers?: Record<string, string>; method?: string; apiGateway?: boolean } = {}): APIGatewayProxyEventV2 {
  const segments = path.split('/').slice(2);
  return httpEvent({
    method: options.method ?? 'GET',
    path,
    headers: options.headers ?? bearer(TEST_TOKENS[0]),
    ...(options.apiGateway && {
      pathParameters: { generationId: decodeURIComponent(segments[0] ?? ''), poseId: decodeURIComponent(segments[1] ?? '') },
    }),
  });
}

const invoke = (event: APIGatewayProxyEventV2): Promise<HttpResult> => handler(event, lambdaContext());

const UPLOAD = { key: STAGED, etag: 'abc', uploadedAt: '2026-01-01T00:00:00.000Z' };
const READY = { status: 'ready', upload: UPLOAD, width: 832, height: 1216, bytes: 1234567, publishedAt: '2026-01-01T00:00:01.000Z' };

/** The pose's record, as the store returns it. */
function record(value: unknown): void {
  s3.on(GetObjectCommand, { Key: 'records/gen_1/pose-1.json' }).resolves({ Body: body(typeof value === 'string' ? value : JSON.stringify(value)) });
}

const json = (result: HttpResult): unknown => JSON.parse(String(result.body));

describe.each([
  ['function URL (raw path)', false],
  ['API Gateway (path parameters)', true],
])('GET /poses/{generationId}/{poseId} via %s', (_, apiGateway) => {
  it('404 not_found when nothing is known of the pose', async () => {
    const result = await invoke(get('/poses/gen_1/pose-1', { apiGateway }));
    expectError(result, 404, 'not_found');
    expect(s3).toHaveReceivedCommandWith(ListObjectsV2Command, { Bucket: TEST_BUCKET, Prefix: 'staging/gen_1/pose-1/' });
  });

  it('pending while an upload is staged (even if an older version is published)', async () => {
    s3.on(ListObjectsV2Command, { Prefix: 'staging/gen_1/pose-1/' }).resolves({ Contents: [{ Key: STAGED, Size: 10 }], KeyCount: 1 });
    record(READY);
    const result = await invoke(get('/poses/gen_1/pose-1', { apiGateway }));
    expect(result.statusCode).toBe(200);
    expect(json(result)).toEqual({ generationId: 'gen_1', poseId: 'pose-1', status: 'pending' });
    expect(header(result, 'cache-control')).toBe('no-store');
    expect(header(result, 'x-content-type-options')).toBe('nosniff');
  });

  it('ready with the public URLs, the size and a version, from the record alone (two store requests)', async () => {
    record(READY);
    const result = await invoke(get('/poses/gen_1/pose-1', { apiGateway }));
    expect(result.statusCode).toBe(200);
    expect(json(result)).toEqual({
      generationId: 'gen_1',
      poseId: 'pose-1',
      status: 'ready',
      imageUrl: `${TEST_PUBLIC_URL}/poses/gen_1/pose-1.png`,
      thumbnailUrl: `${TEST_PUBLIC_URL}/poses/gen_1/pose-1_thumb.png`,
      width: 832,
      height: 1216,
      bytes: 1234567,
      version: Date.parse(READY.publishedAt).toString(36),
    });
    expect(s3.calls().map((call) => (call.args[0] as { constructor: { name: string } }).constructor.name).sort()).toEqual([
      'GetObjectCommand',
      'ListObjectsV2Command',
    ]);
  });

  it.each(['not_an_image', 'unsupported_format', 'too_large', 'corrupt_image'])('rejected with reason %s and the message', async (reason) => {
    record({ status: 'rejected', upload: UPLOAD, reason, message: 'The image says why', rejectedAt: '2025-01-01T00:00:00.000Z' });
    const result = await invoke(get('/poses/gen_1/pose-1', { apiGateway }));
    expect(result.statusCode).toBe(200);
    expect(json(result)).toEqual({ generationId: 'gen_1', poseId: 'pose-1', status: 'rejected', reason, message: 'The image says why' });
  });
});

describe('GET /poses/{generationId}/{poseId}: details', () => {
  it.each([
    ['not JSON', '{not json'],
    ['JSON of another shape', { status: 'ready', width: -1 }],
    ['an unknown status', { ...READY, status: 'published' }],
  ])('an unreadable record (%s) is logged and read as nothing known: 404, never a 500', async (_, value) => {
    record(value);
    const result = await invoke(get('/poses/gen_1/pose-1'));
    expectError(result, 404, 'not_found');
    expect(logs.lines).toContainEqual(expect.objectContaining({ level: 'warn', message: expect.stringMatching(/unreadable pose record/) }));
  });

  it('decodes %-escaped ids of a function URL path, and accepts a trailing slash', async () => {
    record(READY);
    expect(json(await invoke(get('/poses/gen%5F1/pose%2D1')))).toMatchObject({ generationId: 'gen_1', status: 'ready' });
    expect(json(await invoke(get('/poses/gen_1/pose-1/')))).toMatchObject({ poseId: 'pose-1', status: 'ready' });
  });

  it.each([
    ['/poses/gen_1/..', 'a dot-dot pose id'],
    ['/poses/../pose-1', 'a dot-dot generation id'],
    ['/poses/gen_1/%2e%2e', 'an encoded dot-dot'],
    ['/poses/gen_1/a%2Fb', 'an encoded slash'],
    ['/poses/gen_1/p%00', 'a NUL'],
    ['/poses/gen_1/%E0%A4%A', 'invalid %-escapes'],
    ['/poses/gen_1/%C3%A9t%C3%A9', 'unicode'],
    [`/poses/gen_1/${'p'.repeat(129)}`, 'a 129-character id'],
    ['/poses/gen_1/pose%201', 'a space'],
    ['/poses/gen_1', 'no pose id'],
    ['/poses//pose-1', 'an empty generation id'],
    ['/something/else', 'another path'],
  ])('400 invalid_request for %s (%s), and the store is never asked', async (path) => {
    const result = await invoke(get(path));
    expectError(result, 400, 'invalid_request');
    expect(s3.calls()).toHaveLength(0);
  });

  it('400 for bad ids in API Gateway path parameters too', async () => {
    const event = httpEvent({
      method: 'GET',
      path: '/poses/x/y',
      headers: bearer(TEST_TOKENS[0]),
      pathParameters: { generationId: '../etc', poseId: 'passwd' },
    });
    expectError(await invoke(event), 400, 'invalid_request');
    expect(s3.calls()).toHaveLength(0);
  });

  it('400 names every bad id of the path, each in a sentence', async () => {
    const result = await invoke(get('/poses/gen%201/..'));
    expectError(result, 400, 'invalid_request');
    expect((JSON.parse(String(result.body)) as { error: { message: string } }).error.message).toBe(
      'generationId must match ^[A-Za-z0-9_-]{1,128}$ (got "gen 1"). poseId must match ^[A-Za-z0-9_-]{1,128}$ and not end in "_thumb" (got "..").',
    );
  });

  it.each([
    ['no token', {}],
    ['a wrong token', bearer('wrong-token-0123456789abcdef')],
  ])('401 with %s, before the store is asked', async (_, headers) => {
    const result = await invoke(get('/poses/gen_1/pose-1', { headers }));
    expectError(result, 401, 'unauthorized');
    expect(s3.calls()).toHaveLength(0);
  });

  it('accepts the second (rotation) token', async () => {
    expect((await invoke(get('/poses/gen_1/pose-1', { headers: bearer(TEST_TOKENS[1]) }))).statusCode).toBe(404);
  });

  // Allow lists what the path serves across the API: GET here, DELETE in functions/delete.ts.
  it.each(['POST', 'PUT', 'DELETE', 'HEAD'])('405 for %s with Allow: GET, DELETE', async (method) => {
    const result = await invoke(get('/poses/gen_1/pose-1', { method }));
    expectError(result, 405, 'method_not_allowed');
    expect(header(result, 'allow')).toBe('GET, DELETE');
  });

  it('answers a preflight for DELETE (served by another handler on this path) with DELETE allowed', async () => {
    const preflight = await invoke(
      get('/poses/gen_1/pose-1', { method: 'OPTIONS', headers: { origin: TEST_ORIGIN, 'access-control-request-method': 'DELETE' } }),
    );
    expect(preflight.statusCode).toBe(204);
    expect(header(preflight, 'access-control-allow-methods')?.split(',')).toEqual(expect.arrayContaining(['GET', 'DELETE']));
  });

  it.each([
    ['SlowDown (503) listing', () => s3.on(ListObjectsV2Command).rejects(serviceError('SlowDown', 503))],
    ['ServiceUnavailable (503) on GET', () => s3.on(GetObjectCommand).rejects(serviceError('ServiceUnavailable', 503))],
    ['InternalError (500) on GET', () => s3.on(GetObjectCommand).rejects(serviceError('InternalError', 500))],
    [
      'a network failure',
      () => s3.on(ListObjectsV2Command).rejects(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' })),
    ],
  ])('503 storage_unavailable with Retry-After when the store fails with %s', async (_, fail) => {
    fail();
    const result = await invoke(get('/poses/gen_1/pose-1'));
    expectError(result, 503, 'storage_unavailable');
    expect(header(result, 'retry-after')).toBe('5');
    expect(String(result.body)).not.toContain('127.0.0.1');
    expect(logs.lines).toContainEqual(expect.objectContaining({ level: 'error', code: 'storage_unavailable' }));
  });

  it('503 (not 404) when the store refuses the credentials, and logs it', async () => {
    s3.on(ListObjectsV2Command).rejects(serviceError('AccessDenied', 403));
    const result = await invoke(get('/poses/gen_1/pose-1'));
    expectError(result, 503, 'storage_unavailable');
    expect(logs.lines).toContainEqual(expect.objectContaining({ level: 'error', code: 'permission_denied' }));
  });

  it('answers preflight with 204 and CORS headers for the allowed origin only, without a token', async () => {
    const preflight = await invoke(
      get('/poses/gen_1/pose-1', { method: 'OPTIONS', headers: { origin: TEST_ORIGIN, 'access-control-request-method': 'GET' } }),
    );
    expect(preflight.statusCode).toBe(204);
    expect(header(preflight, 'access-control-allow-origin')).toBe(TEST_ORIGIN);
    expect(header(preflight, 'access-control-allow-methods')).toContain('GET');
    expect(header(preflight, 'x-content-type-options')).toBe('nosniff');
    expect(s3.calls()).toHaveLength(0);

    const other = await invoke(get('/poses/gen_1/pose-1', { method: 'OPTIONS', headers: { origin: 'https://other.example.test' } }));
    expect(other.statusCode).toBe(204);
    expect(header(other, 'access-control-allow-origin')).toBeUndefined();
  });

  it('CORS and security headers on a 404 too', async () => {
    const result = await invoke(get('/poses/gen_1/pose-1', { headers: { ...bearer(TEST_TOKENS[0]), origin: TEST_ORIGIN } }));
    expectError(result, 404, 'not_found');
    expect(header(result, 'access-control-allow-origin')).toBe(TEST_ORIGIN);
    expect(header(result, 'strict-transport-security')).toMatch(/max-age/);
  });
});
