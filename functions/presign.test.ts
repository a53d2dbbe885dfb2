/**
 * `POST /uploads` (functions/presign.ts) on the shared middy stack, with a mocked S3 client: the ticket's
 * shape, the signed URL, and every error status the contract names for this route.
 */
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
import { expectError, expectSecurityHeaders, header } from '../test/support/http-results.ts';
import { createHandler } from '../lib/lambda/handlers/presign.ts';

const TTL = 300;
const MAX_BYTES = 1_000_000;
const config = parseConfig(r2TestEnv({ UPLOAD_URL_TTL_SECONDS: String(TTL), UPLOAD_MAX_BYTES: String(MAX_BYTES) }));
const client = createS3Client(config.r2!);
const s3 = mockClient(client);
const logs = captureLogs();
const handler = createHandler(createServices({ config, store: new S3Store(config.r2!, client), logger: createLogger(logs.sink) }));

beforeEach(() => {
  s3.reset();
  logs.lines.length = 0;
});

const validBody = { generationId: 'gen_1', poseId: 'pose-1', contentType: 'image/png', contentLength: 12_345 };

function post(json: unknown, headers: Record<string, string> = bearer(TEST_TOKENS[0])): APIGatewayProxyEventV2 {
  return httpEvent({ method: 'POST', path: '/uploads', headers, json });
}

const invoke = (event: APIGatewayProxyEventV2): Promise<HttpResult> => handler(event, lambdaContext());

describe('POST /uploads: the ticket', () => {
  it('answers 200 with exactly the contract fields, a presigned PUT into staging/{generationId}/{poseId}/', async () => {
    const before = Date.now();
    const result = await invoke(post(validBody));

    expect(result.statusCode).toBe(200);
    expect(header(result, 'content-type')).toBe('application/json');
    expectSecurityHeaders(result);
    const ticket = JSON.parse(String(result.body)) as Record<string, unknown>;
    expect(Object.keys(ticket).sort()).toEqual(['expiresAt', 'headers', 'imageUrl', 'method', 'thumbnailUrl', 'uploadUrl']);
    expect(ticket.method).toBe('PUT');
    expect(ticket.headers).toEqual({ 'Content-Type': 'image/png', 'Content-Length': '12345', 'If-None-Match': '*' });
    expect(ticket.imageUrl).toBe(`${TEST_PUBLIC_URL}/poses/gen_1/pose-1.png`);
    expect(ticket.thumbnailUrl).toBe(`${TEST_PUBLIC_URL}/poses/gen_1/pose-1_thumb.png`);

    const url = new URL(String(ticket.uploadUrl));
    expect(url.origin).toBe('http://127.0.0.1:1');
    expect(url.pathname).toMatch(new RegExp(`^/${TEST_BUCKET}/staging/gen_1/pose-1/[0-9a-f-]{36}$`));
    expect(url.searchParams.get('X-Amz-Algorithm')).toBe('AWS4-HMAC-SHA256');
    expect(url.searchParams.get('X-Amz-Expires')).toBe(String(TTL));
    const signed = url.searchParams.get('X-Amz-SignedHeaders')?.split(';') ?? [];
    expect(signed).toEqual(expect.arrayContaining(['content-length', 'content-type', 'host']));
    expect(url.searchParams.get('X-Amz-Signature')).toMatch(/^[0-9a-f]{64}$/);
    // The secret never leaves the service.
    expect(String(result.body)).not.toContain(config.r2!.secretAccessKey);

    const expiresAt = Date.parse(String(ticket.expiresAt));
    expect(String(ticket.expiresAt)).toBe(new Date(expiresAt).toISOString());
    expect(expiresAt).toBeGreaterThanOrEqual(before - 1000 + TTL * 1000);
    expect(expiresAt).toBeLessThanOrEqual(Date.now() + TTL * 1000);
    // Presigning is local: nothing was sent to the store.
    expect(s3.calls()).toHaveLength(0);
  });

  it('gives every upload its own unguessable key', async () => {
    const first = JSON.parse(String((await invoke(post(validBody))).body)) as { uploadUrl: string };
    const second = JSON.parse(String((await invoke(post(validBody))).body)) as { uploadUrl: string };
    expect(new URL(first.uploadUrl).pathname).not.toBe(new URL(second.uploadUrl).pathname);
  });

  it.each(['image/jpeg', 'image/webp'])('accepts %s, and poseLibraryId, and the largest allowed length', async (contentType) => {
    const result = await invoke(post({ ...validBody, contentType, contentLength: MAX_BYTES, poseLibraryId: 'lib_9' }));
    expect(result.statusCode).toBe(200);
    expect((JSON.parse(String(result.body)) as { headers: unknown }).headers).toEqual({
      'Content-Type': contentType,
      'Content-Length': String(MAX_BYTES),
      'If-None-Match': '*',
    });
  });

  it('accepts a JSON content type with parameters, and a header name in any case', async () => {
    const result = await invoke(
      post(validBody, { Authorization: `Bearer ${TEST_TOKENS[0]}`, 'Content-Type': 'application/json; charset=utf-8' }),
    );
    expect(result.statusCode).toBe(200);
  });
});

describe('POST /uploads: errors', () => {
  it.each([
    ['no Authorization header', {}],
    ['a wrong token', bearer('not-the-token-0123456789')],
    ['a token prefix', bearer(TEST_TOKENS[0].slice(0, -1))],
    ['the token without "Bearer"', { authorization: TEST_TOKENS[0] }],
    ['Basic auth', { authorization: `Basic ${Buffer.from(`x:${TEST_TOKENS[0]}`).toString('base64')}` }],
    ['an empty bearer', { authorization: 'Bearer ' }],
  ])('401 with %s, and WWW-Authenticate', async (_, headers) => {
    const result = await invoke(post(validBody, headers));
    expectError(result, 401, 'unauthorized');
    expect(header(result, 'www-authenticate')).toBe('Bearer');
  });

  it('accepts the second (rotation) token', async () => {
    expect((await invoke(post(validBody, bearer(TEST_TOKENS[1])))).statusCode).toBe(200);
  });

  it('checks the token before anything else (a bad body without token is a 401)', async () => {
    expectError(await invoke(httpEvent({ method: 'POST', path: '/uploads', body: '{nope' })), 401, 'unauthorized');
  });

  it.each(['GET', 'PUT', 'DELETE', 'PATCH'])('405 for %s, with Allow: POST', async (method) => {
    const result = await invoke(httpEvent({ method, path: '/uploads', headers: bearer(TEST_TOKENS[0]), json: validBody }));
    expectError(result, 405, 'method_not_allowed');
    expect(header(result, 'allow')).toBe('POST');
  });

  it('400 invalid_json for a body that does not parse', async () => {
    const event = httpEvent({
      method: 'POST',
      path: '/uploads',
      headers: { ...bearer(TEST_TOKENS[0]), 'content-type': 'application/json' },
      body: '{"generationId": "g1",',
    });
    expectError(await invoke(event), 400, 'invalid_json');
  });

  it('400 invalid_json for a JSON request without a body', async () => {
    const event = httpEvent({ method: 'POST', path: '/uploads', headers: { ...bearer(TEST_TOKENS[0]), 'content-type': 'application/json' } });
    expectError(await invoke(event), 400, 'invalid_json');
  });

  it('reads a base64-encoded JSON body (as function URLs may deliver it)', async () => {
    const event = httpEvent({
      method: 'POST',
      path: '/uploads',
      headers: { ...bearer(TEST_TOKENS[0]), 'content-type': 'application/json' },
      body: Buffer.from(JSON.stringify(validBody)).toString('base64'),
      isBase64Encoded: true,
    });
    expect((await invoke(event)).statusCode).toBe(200);
  });

  const messageOf = (result: HttpResult) => (JSON.parse(String(result.body)) as { error: { message: string } }).error.message;

  it.each([
    ['an array body', [validBody], 'an array'],
    ['a string body', 'hello', '"hello"'],
    ['null', null, 'null'],
    ['a number', 42, '42'],
  ])('400 invalid_request for %s, saying what was sent', async (_, json, got) => {
    const result = await invoke(post(json));
    expectError(result, 400, 'invalid_request');
    expect(messageOf(result)).toBe(`The request body must be a JSON object (got ${got}).`);
  });

  it('400 lists every problem of the body at once, one sentence each, never more than a few unknown fields', async () => {
    const body = { generationId: 12, poseId: 'p'.repeat(129), contentType: 'x'.repeat(300), contentLength: -5, a: 1, b: 2, c: 3, d: 4, e: 5, f: 6 };
    const result = await invoke(post(body));
    expectError(result, 400, 'invalid_request');
    expect(messageOf(result)).toBe(
      [
        'generationId must be a string (got 12).',
        `poseId must match ^[A-Za-z0-9_-]{1,128}$ and not end in "_thumb" (got "${'p'.repeat(40)}…", 129 characters).`,
        `contentType must be at most 255 characters (got "${'x'.repeat(40)}…", 300 characters).`,
        'contentLength must be at least 1 (got -5).',
        'The request body has fields it does not take: "a", "b", "c", "d", "e" and 1 more.',
      ].join(' '),
    );
  });

  it.each([
    ['generationId with a slash', { generationId: 'a/b' }, 'generationId'],
    ['generationId ..', { generationId: '..' }, 'generationId'],
    ['poseId with %2e', { poseId: '%2e%2e' }, 'poseId'],
    ['poseId too long', { poseId: 'p'.repeat(129) }, 'poseId'],
    ['empty poseId', { poseId: '' }, 'poseId'],
    ['a poseId ending in _thumb (its image would be pose x\'s thumbnail)', { poseId: 'x_thumb' }, 'poseId'],
    ['numeric generationId', { generationId: 12 }, 'generationId'],
    ['poseLibraryId with a space', { poseLibraryId: 'a b' }, 'poseLibraryId'],
    ['contentLength 0', { contentLength: 0 }, 'contentLength'],
    ['negative contentLength', { contentLength: -5 }, 'contentLength'],
    ['fractional contentLength', { contentLength: 1.5 }, 'contentLength'],
    ['contentLength as a string', { contentLength: '100' }, 'contentLength'],
    ['an unknown field', { extra: true }, ''],
  ])('400 invalid_request for %s, naming the field', async (_, change, field) => {
    const result = await invoke(post({ ...validBody, ...change }));
    expectError(result, 400, 'invalid_request');
    expect(messageOf(result)).toMatch(new RegExp(`^${field || 'The request body'} .+\\.$`));
  });

  it.each(['generationId', 'poseId', 'contentType', 'contentLength'])('400 invalid_request when %s is missing, in a sentence', async (field) => {
    const body: Record<string, unknown> = { ...validBody };
    delete body[field];
    const result = await invoke(post(body));
    expectError(result, 400, 'invalid_request');
    expect(messageOf(result)).toBe(`${field} is required.`);
  });

  it('413 too_large for a contentLength over UPLOAD_MAX_BYTES', async () => {
    expectError(await invoke(post({ ...validBody, contentLength: MAX_BYTES + 1 })), 413, 'too_large');
  });

  it.each(['image/gif', 'image/svg+xml', 'text/plain', 'IMAGE/PNG', 'image/png; charset=x'])(
    '415 unsupported_type for contentType %s',
    async (contentType) => {
      expectError(await invoke(post({ ...validBody, contentType })), 415, 'unsupported_type');
    },
  );

  it.each(['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x'])(
    '415 unsupported_media_type for a %s request body',
    async (contentType) => {
      const event = httpEvent({
        method: 'POST',
        path: '/uploads',
        headers: { ...bearer(TEST_TOKENS[0]), 'content-type': contentType },
        body: JSON.stringify(validBody),
      });
      expectError(await invoke(event), 415, 'unsupported_media_type');
    },
  );

  it('415 for a JSON body sent without any content type', async () => {
    const event = httpEvent({ method: 'POST', path: '/uploads', headers: bearer(TEST_TOKENS[0]), body: JSON.stringify(validBody) });
    expectError(await invoke(event), 415, 'unsupported_media_type');
  });

  it('never lets an unexpected failure through as a stack trace', async () => {
    // A store whose signing fails unexpectedly: an internal error, answered without detail.
    const broken = new S3Store(config.r2!, client);
    broken.presignUpload = () => Promise.reject(new Error('credential provider exploded at /secret/path'));
    const brokenHandler = createHandler(createServices({ config, store: broken, logger: createLogger(logs.sink) }));
    const result = await brokenHandler(post(validBody), lambdaContext());
    expectError(result, 500, 'internal_error');
    expect(String(result.body)).not.toContain('/secret/path');
    expect(logs.lines.some((line) => line.level === 'error')).toBe(true);
  });
});

describe('POST /uploads: CORS', () => {
  it('answers preflight from the allowed origin with 204, CORS and security headers, without a token', async () => {
    const result = await invoke(
      httpEvent({
        method: 'OPTIONS',
        path: '/uploads',
        headers: { origin: TEST_ORIGIN, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' },
      }),
    );
    expect(result.statusCode).toBe(204);
    expect(header(result, 'access-control-allow-origin')).toBe(TEST_ORIGIN);
    expect(header(result, 'access-control-allow-methods')).toContain('POST');
    expect(header(result, 'access-control-allow-headers')?.toLowerCase()).toContain('authorization');
    expectSecurityHeaders(result);
    expect(result.body ?? '').toBe('');
  });

  it('gives no Access-Control-Allow-Origin to another origin', async () => {
    const preflight = await invoke(
      httpEvent({ method: 'OPTIONS', path: '/uploads', headers: { origin: 'https://evil.example.test', 'access-control-request-method': 'POST' } }),
    );
    expect(preflight.statusCode).toBe(204);
    expect(header(preflight, 'access-control-allow-origin')).toBeUndefined();
    const actual = await invoke(post(validBody, { ...bearer(TEST_TOKENS[0]), origin: 'https://evil.example.test' }));
    expect(header(actual, 'access-control-allow-origin')).toBeUndefined();
  });

  it('sets Access-Control-Allow-Origin on answers and on errors for the allowed origin', async () => {
    const ok = await invoke(post(validBody, { ...bearer(TEST_TOKENS[0]), origin: TEST_ORIGIN }));
    expect(ok.statusCode).toBe(200);
    expect(header(ok, 'access-control-allow-origin')).toBe(TEST_ORIGIN);
    const denied = await invoke(post(validBody, { origin: TEST_ORIGIN }));
    expectError(denied, 401, 'unauthorized');
    expect(header(denied, 'access-control-allow-origin')).toBe(TEST_ORIGIN);
  });
});
