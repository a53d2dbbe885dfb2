/**
 * Property tests of the HTTP handlers (presign, status, delete; the thumbnail function has no HTTP entry):
 * whatever the method, path, headers and body, with a store that always answers, a handler resolves (never
 * rejects), never answers a 5xx, answers errors in the contract's shape, and always sends security headers.
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
import { beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../lib/config.ts';
import type { HttpResult } from '../lib/lambda/http-handler.ts';
import { createLogger } from '../lib/logger.ts';
import { createServices } from '../lib/services.ts';
import { createS3Client } from '../lib/storage/s3-client.ts';
import { S3Store } from '../lib/storage/s3-store.ts';
import { FULL_DIALECT } from '../lib/storage/store-dialect.ts';
import { httpEvent, lambdaContext, r2TestEnv, TEST_ORIGIN, TEST_TOKENS } from '../test/support/http-events.ts';
import { createHandler as createDelete } from '../lib/lambda/handlers/delete.ts';
import { createHandler as createPresign } from '../lib/lambda/handlers/presign.ts';
import { createHandler as createStatus } from '../lib/lambda/handlers/status.ts';

const NUM_RUNS = process.env.STRESS === '1' ? 5000 : 200; // npm run test:stress runs many more

const ROUTE_METHOD = { presign: 'POST', status: 'GET', delete: 'DELETE' } as const;

const config = parseConfig(r2TestEnv());
const client = createS3Client(config.r2!);
const s3 = mockClient(client);
const errors: string[] = [];
const services = createServices({
  config,
  store: new S3Store(config.r2!, client, FULL_DIALECT),
  logger: createLogger((line, level) => {
    if (level === 'error') errors.push(line);
  }),
});

const handlers = {
  presign: createPresign(services),
  status: createStatus(services),
  delete: createDelete(services),
};

beforeAll(() => {
  // A store that always answers: an empty bucket that accepts every write.
  // Every record read is a ready pose's.
  const record = {
    status: 'ready',
    upload: { key: 'save', etag: 'e', uploadedAt: '2026-01-01T00:00:00.000Z' },
    width: 10,
    height: 10,
    bytes: 100,
    publishedAt: '2026-01-01T00:00:00.000Z',
  };
  const body = { transformToByteArray: () => Promise.resolve(new TextEncoder().encode(JSON.stringify(record))) };
  s3.on(ListObjectsV2Command).resolves({ KeyCount: 0 });
  s3.on(HeadObjectCommand).resolves({ ContentLength: 1 });
  s3.on(GetObjectCommand).resolves({ Body: body as unknown as NonNullable<GetObjectCommandOutput['Body']> });
  s3.on(PutObjectCommand).resolves({});
  s3.on(DeleteObjectsCommand).resolves({ Deleted: [] });
});

/** A string repeated to about 10 KB. */
const huge = fc.string({ minLength: 1, maxLength: 6, unit: 'grapheme' }).map((s) => s.repeat(Math.ceil(10_240 / s.length)));

const validId = fc.stringMatching(/^[A-Za-z0-9_-]{1,20}$/);

/** Path segments meant to break things: traversal, encodings, NUL, unicode, huge. */
const segment = fc.oneof(
  validId,
  fc.constantFrom('..', '.', '%2e%2e', '%2E%2E', '%2e', '..%2f..', '%2F', '%00', '\0', 'a\0b', '%', '%zz', '%E0%A4%A', '%C3%A9', '', ' ', '+', 'é', '🙂', '\u202e'),
  fc.string({ unit: 'grapheme', maxLength: 30 }),
  fc.string({ unit: 'binary', maxLength: 30 }),
  huge,
);

const path = fc.oneof(
  { arbitrary: fc.tuple(validId, validId, fc.boolean()).map(([g, p, both]) => (both ? `/poses/${g}/${p}` : `/poses/${g}`)), weight: 3 },
  fc.tuple(fc.constantFrom('poses', 'uploads', 'Poses', '', '..'), fc.array(segment, { maxLength: 4 })).map(
    ([root, segments]) => `/${[root, ...segments].join('/')}`,
  ),
  fc.string({ unit: 'binary', maxLength: 50 }),
  huge,
);

/** The route's own method most of the time, so that inputs get past routing. */
const methodFor = (routeMethod: string) =>
  fc.oneof(
    { arbitrary: fc.constant(routeMethod), weight: 6 },
    { arbitrary: fc.constantFrom('GET', 'POST', 'DELETE', 'OPTIONS', 'PUT', 'HEAD', 'PATCH', 'get', ''), weight: 2 },
    { arbitrary: fc.string({ maxLength: 10 }), weight: 1 },
  );

const headerValue = fc.oneof(fc.string({ maxLength: 40 }), fc.string({ unit: 'binary', maxLength: 40 }), huge);

const headers = fc
  .tuple(
    fc.dictionary(fc.string({ minLength: 1, maxLength: 20 }), headerValue, { maxKeys: 6 }),
    fc.option(
      fc.oneof(
        { arbitrary: fc.constantFrom(...TEST_TOKENS.map((token) => `Bearer ${token}`)), weight: 6 },
        fc.constantFrom('Bearer', 'Bearer ', `bearer ${TEST_TOKENS[0]}`, `Bearer  ${TEST_TOKENS[0]}`, `Bearer ${TEST_TOKENS[0]}\0`),
        headerValue,
      ),
      { nil: undefined },
    ),
    fc.option(
      fc.oneof(
        { arbitrary: fc.constant('application/json'), weight: 4 },
        fc.constantFrom('application/json; charset=utf-8', 'APPLICATION/JSON', 'text/plain', 'application/vnd.api+json', ''),
        headerValue,
      ),
      { nil: undefined },
    ),
    fc.option(fc.oneof(fc.constant(TEST_ORIGIN), headerValue), { nil: undefined }),
    fc.constantFrom('authorization', 'Authorization', 'AUTHORIZATION'),
    fc.constantFrom('content-type', 'Content-Type'),
  )
  .map(([random, authorization, contentType, origin, authName, typeName]) => ({
    ...random,
    ...(authorization !== undefined && { [authName]: authorization }),
    ...(contentType !== undefined && { [typeName]: contentType }),
    ...(origin !== undefined && { origin }),
  }));

/** Mostly valid, so that validation is passed as often as it fails. */
const likely = <T, U>(valid: fc.Arbitrary<T>, ...others: fc.Arbitrary<U>[]) =>
  fc.oneof({ arbitrary: valid as fc.Arbitrary<T | U>, weight: 8 }, ...others.map((arbitrary) => ({ arbitrary: arbitrary as fc.Arbitrary<T | U>, weight: 1 })));

const uploadBody = fc
  .record(
    {
      generationId: likely(validId, segment, fc.jsonValue()),
      poseId: likely(validId, segment, fc.jsonValue()),
      contentType: likely(fc.constantFrom('image/png', 'image/jpeg', 'image/webp'), fc.string(), fc.jsonValue()),
      contentLength: likely(fc.integer({ min: 1, max: 25 * 1024 * 1024 }), fc.integer(), fc.double(), fc.constantFrom(2 ** 53, -0, 1e308), fc.jsonValue()),
      poseLibraryId: fc.option(likely(validId, segment), { nil: undefined }),
      extra: fc.option(fc.jsonValue(), { freq: 8, nil: undefined }),
    },
    { requiredKeys: ['generationId', 'poseId', 'contentType', 'contentLength'] },
  )
  .map((value) => Object.fromEntries(Object.entries(value).filter(([, field]) => field !== undefined)));

const queueBody = fc.record({
  messages: fc.array(
    fc.record({
      id: fc.string(),
      body: fc.oneof(fc.jsonValue(), fc.record({ action: fc.string(), bucket: fc.string(), object: fc.record({ key: segment }) })),
    }),
    { maxLength: 4 },
  ),
});

const body = fc.oneof(
  { arbitrary: uploadBody.map((value) => JSON.stringify(value)), weight: 4 },
  { arbitrary: queueBody.map((value) => JSON.stringify(value)), weight: 2 },
  fc.constant(undefined),
  fc.jsonValue().map((value) => JSON.stringify(value)),
  uploadBody.map((value) => JSON.stringify(value)),
  queueBody.map((value) => JSON.stringify(value)),
  fc.string({ unit: 'binary', maxLength: 100 }),
  fc.constantFrom('{', '[', 'null', '""', '{"__proto__": {"polluted": true}}', '{"constructor": {"prototype": {"x": 1}}}', '\u0000'),
  huge,
);

const pathParameters = fc.option(
  fc.record({ generationId: likely(validId, segment), poseId: likely(validId, segment) }, { requiredKeys: [] }).map((params) =>
    Object.fromEntries(Object.entries(params).filter(([, value]) => value !== undefined)),
  ),
  { nil: undefined },
);

/**
 * Events for a route: half are plausible requests (the route's method, a valid token, a JSON content type)
 * whose path, body and parameters vary, so that inputs reach validation and the store; the other half are wild.
 */
const eventFor = (routeMethod: string) =>
  fc
    .record({
      plausible: fc.boolean(),
      method: methodFor(routeMethod),
      path,
      headers,
      body,
      isBase64Encoded: fc.oneof({ arbitrary: fc.constant(false), weight: 3 }, fc.constant(true)),
      pathParameters,
      base64: fc.boolean(),
      token: fc.constantFrom(...TEST_TOKENS),
    })
    .map(({ plausible, method, path, headers, body, isBase64Encoded, pathParameters, base64, token }) => {
      const encoded = body !== undefined && base64 && isBase64Encoded ? Buffer.from(body).toString('base64') : body;
      const otherHeaders = Object.fromEntries(Object.entries(headers).filter(([name]) => !/^(authorization|content-type)$/i.test(name)));
      return httpEvent({
        method: plausible ? routeMethod : method,
        path,
        headers: plausible ? { ...otherHeaders, authorization: `Bearer ${token}`, 'content-type': 'application/json' } : headers,
        ...(encoded !== undefined && { body: encoded }),
        isBase64Encoded: plausible ? base64 && isBase64Encoded : isBase64Encoded,
        ...(pathParameters && { pathParameters }),
      });
    });

function header(result: HttpResult, name: string): string | undefined {
  const entry = Object.entries(result.headers ?? {}).find(([key]) => key.toLowerCase() === name.toLowerCase());
  return entry === undefined ? undefined : String(entry[1]);
}

function checkAnswer(result: HttpResult): void {
  expect(typeof result.statusCode).toBe('number');
  expect(result.statusCode).toBeGreaterThanOrEqual(200);
  expect(result.statusCode).toBeLessThan(500);
  expect(header(result, 'x-content-type-options')).toBe('nosniff');
  if ((result.statusCode ?? 0) >= 400) {
    expect(header(result, 'content-type')).toBe('application/json');
    const parsed = JSON.parse(String(result.body)) as unknown;
    expect(parsed).toEqual({ error: { code: expect.stringMatching(/^[a-z_]+$/), message: expect.any(String) } });
  }
  if ((result.statusCode ?? 0) === 204) expect(result.body ?? '').toBe('');
}

describe.each(Object.keys(handlers) as (keyof typeof handlers)[])('%s handler on arbitrary HTTP events', (name) => {
  it('never rejects, never answers 5xx, answers errors in the contract shape', async () => {
    errors.length = 0;
    const statuses = new Set<number>();
    await fc.assert(
      fc.asyncProperty(eventFor(ROUTE_METHOD[name]), async (input) => {
        const result = (await handlers[name](input, lambdaContext())) as HttpResult;
        checkAnswer(result);
        statuses.add(result.statusCode ?? 0);
      }),
      { numRuns: NUM_RUNS },
    );
    expect(errors).toEqual([]);
    // The inputs reach past auth and routing: successes and validation errors both happen.
    expect([...statuses].filter((status) => status < 300).length).toBeGreaterThan(0);
    expect(statuses).toContain(400);
  });
});

describe('properties that hold for every input', () => {
  it('without a valid token, no request but preflight gets further than 401 (or 405), and the store is never asked', async () => {
    await fc.assert(
      fc.asyncProperty(
        eventFor('GET').filter((input) => {
          const auth = Object.entries(input.headers).find(([key]) => key.toLowerCase() === 'authorization')?.[1];
          return !TEST_TOKENS.some((token) => auth === `Bearer ${token}`);
        }),
        fc.constantFrom(...(Object.keys(handlers) as (keyof typeof handlers)[])),
        async (input, name) => {
          s3.resetHistory();
          const result = (await handlers[name](input, lambdaContext())) as HttpResult;
          checkAnswer(result);
          if (input.requestContext.http.method === 'OPTIONS') expect(result.statusCode).toBe(204);
          else expect(result.statusCode).toBe(401);
          expect(s3.calls()).toHaveLength(0);
        },
      ),
      { numRuns: NUM_RUNS },
    );
  });

  it('status and delete never touch a key built from an invalid id', async () => {
    await fc.assert(
      fc.asyncProperty(fc.tuple(segment, segment), fc.boolean(), async ([generationId, poseId], viaParameters) => {
        s3.resetHistory();
        const input = httpEvent({
          method: 'DELETE',
          path: `/poses/${generationId}/${poseId}`,
          headers: { authorization: `Bearer ${TEST_TOKENS[0]}` },
          ...(viaParameters && { pathParameters: { generationId, poseId } }),
        });
        const result = await handlers.delete(input, lambdaContext());
        checkAnswer(result);
        const keys = s3
          .calls()
          .flatMap((call) => {
            const command = call.args[0].input as { Key?: string; Prefix?: string; Delete?: { Objects?: { Key?: string }[] } };
            return [command.Key, command.Prefix, ...(command.Delete?.Objects?.map((object) => object.Key) ?? [])];
          })
          .filter((key): key is string => key !== undefined);
        for (const key of keys) expect(key).toMatch(/^(poses|staging|records|locks|backups)\/[A-Za-z0-9_-]{1,128}\/([A-Za-z0-9_-]{1,128}(_thumb\.png|\.png|\.json|\/)?)?$/);
        if (result.statusCode === 204) expect(keys.length).toBeGreaterThan(0);
      }),
      { numRuns: NUM_RUNS },
    );
  });
});
