/**
 * Typed builders for the events the Lambda functions receive: API Gateway HTTP API v2 / function URL events
 * (the same 2.0 payload; function URLs have no pathParameters), a Lambda Context stub, and the object-created
 * events of the thumbnail handler (S3 direct, S3 in SQS, R2 notifications one / array / Queues batch, local).
 */
import type { APIGatewayProxyEventV2, Context, S3Event, S3EventRecord, SQSEvent, SQSRecord } from 'aws-lambda';
import { LOCAL_EVENT_SOURCE, type LocalObjectCreatedEvent } from '../../lib/lambda/object-events.ts';

export interface HttpEventOptions {
  method: string;
  /** The raw path, e.g. `/poses/g1/p1` (already URL-encoded as a client would send it). */
  path: string;
  headers?: Record<string, string>;
  /** Serialised as JSON (with `Content-Type: application/json` unless a content-type header is given). */
  json?: unknown;
  /** A raw body, sent as is (no content type added). */
  body?: string;
  isBase64Encoded?: boolean;
  /** API Gateway's path parameters; leave out for the function URL shape (no pathParameters). */
  pathParameters?: Record<string, string>;
  rawQueryString?: string;
}

/** An API Gateway HTTP API v2 (or, without pathParameters, Lambda function URL) event. */
export function httpEvent(options: HttpEventOptions): APIGatewayProxyEventV2 {
  const headers: Record<string, string> = { host: 'api.example.test', 'user-agent': 'vitest', ...options.headers };
  let body = options.body;
  if (options.json !== undefined) {
    body = JSON.stringify(options.json);
    if (!Object.keys(headers).some((name) => name.toLowerCase() === 'content-type')) headers['content-type'] = 'application/json';
  }
  const event: APIGatewayProxyEventV2 = {
    version: '2.0',
    routeKey: options.pathParameters ? `${options.method} ${options.path}` : '$default',
    rawPath: options.path,
    rawQueryString: options.rawQueryString ?? '',
    headers,
    requestContext: {
      accountId: '123456789012',
      apiId: 'api-id',
      domainName: 'api.example.test',
      domainPrefix: 'api',
      http: { method: options.method, path: options.path, protocol: 'HTTP/1.1', sourceIp: '203.0.113.7', userAgent: 'vitest' },
      requestId: 'request-id',
      routeKey: options.pathParameters ? `${options.method} ${options.path}` : '$default',
      stage: '$default',
      time: '01/Jan/2025:00:00:00 +0000',
      timeEpoch: 1735689600000,
    },
    isBase64Encoded: options.isBase64Encoded ?? false,
  };
  if (body !== undefined) event.body = body;
  if (options.pathParameters) event.pathParameters = options.pathParameters;
  return event;
}

/** A bearer Authorization header. */
export const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` });

/** A Lambda Context stub (the handlers only pass it through middy). */
export function lambdaContext(functionName = 'pose-storage-test'): Context {
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:eu-west-1:123456789012:function:${functionName}`,
    memoryLimitInMB: '1024',
    awsRequestId: 'aws-request-id',
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: '2025/01/01/[$LATEST]stream',
    getRemainingTimeInMillis: () => 30_000,
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

/** S3's URL encoding of a key in event notifications: like a form field, `+` for a space. */
export function encodeS3EventKey(key: string): string {
  return encodeURIComponent(key).replace(/%20/g, '+');
}

/**
 * One S3 event notification record. `key` is put into the record as given: pass it through
 * encodeS3EventKey for what real S3 sends.
 */
export function s3Record(key: string, eventName = 'ObjectCreated:Put', bucket = 'poses-test'): S3EventRecord {
  return {
    eventVersion: '2.1',
    eventSource: 'aws:s3',
    awsRegion: 'eu-west-1',
    eventTime: '2025-01-01T00:00:00.000Z',
    eventName,
    userIdentity: { principalId: 'AWS:EXAMPLE' },
    requestParameters: { sourceIPAddress: '203.0.113.7' },
    responseElements: { 'x-amz-request-id': 'REQUEST', 'x-amz-id-2': 'ID2' },
    s3: {
      s3SchemaVersion: '1.0',
      configurationId: 'thumbnail',
      bucket: { name: bucket, ownerIdentity: { principalId: 'EXAMPLE' }, arn: `arn:aws:s3:::${bucket}` },
      object: { key, size: 1, eTag: 'etag', sequencer: '0A1B2C3D4E5F678901' },
    },
  };
}

/** An S3 event delivered to Lambda directly. Keys are given raw and encoded as S3 does. */
export function s3Event(...keys: string[]): S3Event {
  return { Records: keys.map((key) => s3Record(encodeS3EventKey(key))) };
}

/** An SQS record whose body is an S3 event (or any string body). */
export function sqsRecord(messageId: string, body: S3Event | string): SQSRecord {
  return {
    messageId,
    receiptHandle: `receipt-${messageId}`,
    body: typeof body === 'string' ? body : JSON.stringify(body),
    attributes: {
      ApproximateReceiveCount: '1',
      SentTimestamp: '1735689600000',
      SenderId: 'AIDAEXAMPLE',
      ApproximateFirstReceiveTimestamp: '1735689600000',
    },
    messageAttributes: {},
    md5OfBody: 'md5',
    eventSource: 'aws:sqs',
    eventSourceARN: 'arn:aws:sqs:eu-west-1:123456789012:staging-events',
    awsRegion: 'eu-west-1',
  };
}

/** An SQS event: one message per entry, each an S3 event of the given (raw) keys. */
export function sqsEvent(messages: Record<string, string[]>): SQSEvent {
  return { Records: Object.entries(messages).map(([messageId, keys]) => sqsRecord(messageId, s3Event(...keys))) };
}

/** R2's event notification message (https://developers.cloudflare.com/r2/buckets/event-notifications/). */
export interface R2Notification {
  account: string;
  action: string;
  bucket: string;
  object: { key: string; size?: number; eTag?: string };
  eventTime: string;
  copySource?: { bucket: string; object: string };
}

export function r2Notification(key: string, action = 'PutObject', bucket = 'poses-test'): R2Notification {
  return { account: 'account-id', action, bucket, object: { key, size: 1, eTag: 'etag' }, eventTime: '2025-01-01T00:00:00.000Z' };
}

/** A Cloudflare Queues batch as the forwarder POSTs it: `{messages: [{id, body}]}`. */
export interface QueueBatch {
  messages: { id: string; timestamp?: string; attempts?: number; body: unknown }[];
}

export function queueBatch(messages: Record<string, unknown>): QueueBatch {
  return {
    messages: Object.entries(messages).map(([id, body]) => ({ id, timestamp: '2025-01-01T00:00:00.000Z', attempts: 1, body })),
  };
}

export function localEvent(...keys: string[]): LocalObjectCreatedEvent {
  return { source: LOCAL_EVENT_SOURCE, keys };
}

/** Two API tokens (rotation) of the unit-test configuration. */
export const TEST_TOKENS = ['unit-token-current-0123456789', 'unit-token-previous-9876543210'] as const;
export const TEST_ORIGIN = 'https://app.example.test';
export const TEST_BUCKET = 'poses-unit';
export const TEST_PUBLIC_URL = 'https://poses.example.test';

/** The r2-mode environment of the unit tests (the endpoint is never reached: the S3 client is mocked). */
export function r2TestEnv(overrides: Record<string, string> = {}): Record<string, string> {
  return {
    STORAGE_MODE: 'r2',
    R2_ENDPOINT: 'http://127.0.0.1:1',
    R2_ACCESS_KEY_ID: 'AKIAUNITTEST',
    R2_SECRET_ACCESS_KEY: 'unit-SECRET-access-key-0123456789abcdef',
    R2_BUCKET_NAME: TEST_BUCKET,
    R2_PUBLIC_URL: TEST_PUBLIC_URL,
    API_TOKEN: TEST_TOKENS.join(','),
    ALLOWED_ORIGINS: TEST_ORIGIN,
    ...overrides,
  };
}

/** A log sink that keeps every line (parsed), for assertions on what was logged. */
export function captureLogs(): { lines: { level: string; message: string; [field: string]: unknown }[]; sink: (line: string) => void } {
  const lines: { level: string; message: string; [field: string]: unknown }[] = [];
  return { lines, sink: (line) => lines.push(JSON.parse(line) as { level: string; message: string }) };
}
