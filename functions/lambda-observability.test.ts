/**
 * The functions as Lambda runs them: their exported `handler`, configured from the environment, logging through
 * Powertools and emitting CloudWatch embedded-metric-format lines on stdout. Checked here: the fields of the log
 * lines (request id, function name, cold start, the upload's generationId/poseId/key), the level filter
 * (POWERTOOLS_LOG_LEVEL), and the metrics of a ready, a rejected and a failed upload, parsed from their EMF
 * JSON. The store is s3rver, behind a proxy that can cut the line.
 */
import type { Context } from 'aws-lambda';
import sharp from 'sharp';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { newStagingKey, type PoseRef } from '../lib/layout.ts';
import { thumbnailKey } from '../lib/pose-files.ts';
import { createS3Client } from '../lib/storage/s3-client.ts';
import { S3Store } from '../lib/storage/s3-store.ts';
import { startFlakyProxy, type FlakyProxy } from '../test/support/flaky-proxy.ts';
import { httpEvent, bearer, lambdaContext, s3Event, sqsEvent } from '../test/support/http-events.ts';
import { startS3Server, type S3TestServer } from '../test/support/s3-server.ts';

const TOKEN = 'observability-token-0123456789';
const STAGE = 'test-stage';

let server: S3TestServer;
let proxy: FlakyProxy;
let store: S3Store;
let png: Buffer;

beforeAll(async () => {
  server = await startS3Server();
  proxy = await startFlakyProxy(server.endpoint);
  store = new S3Store(server.r2Config, createS3Client(server.r2Config));
  png = await sharp({ create: { width: 64, height: 48, channels: 3, background: { r: 10, g: 120, b: 200 } } }).png().toBuffer();
});

afterAll(async () => {
  await proxy?.close();
  await server?.stop();
});

afterEach(() => {
  vi.unstubAllEnvs();
  vi.restoreAllMocks();
  proxy.restore();
});

/** The environment Lambda gives a function of the stage: configuration, SST's app resource, Lambda's own. */
function lambdaEnv(overrides: Record<string, string> = {}): Record<string, string> {
  return {
    STORAGE_MODE: 'r2',
    ...server.r2Env,
    R2_ENDPOINT: proxy.endpoint,
    API_TOKEN: TOKEN,
    SST_RESOURCE_App: JSON.stringify({ name: 'pose-storage', stage: STAGE }),
    AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand',
    POWERTOOLS_LOG_LEVEL: 'INFO',
    ...overrides,
  };
}

/** A fresh copy of a function module (its handler not yet built), with `env` as its process environment. */
async function loadFunction<M>(importModule: () => Promise<M>, env: Record<string, string>): Promise<M> {
  vi.resetModules();
  for (const [name, value] of Object.entries(env)) vi.stubEnv(name, value);
  return importModule();
}

const loadThumbnail = (env = lambdaEnv()) => loadFunction(() => import('./thumbnail.ts'), env);

interface LogLine {
  level: string;
  message: string;
  [field: string]: unknown;
}

interface EmfLine {
  _aws: { Timestamp: number; CloudWatchMetrics: { Namespace: string; Dimensions: string[][]; Metrics: { Name: string; Unit: string }[] }[] };
  [field: string]: unknown;
}

/** Every JSON line the process writes (stdout and stderr) while `run` runs: log lines and EMF lines apart. */
async function captureOutput<T>(run: () => Promise<T>): Promise<{ result: T; logs: LogLine[]; metrics: EmfLine[] }> {
  const lines: unknown[] = [];
  const keep = (chunk: unknown) => {
    for (const line of String(chunk).split('\n')) {
      if (line.startsWith('{')) lines.push(JSON.parse(line));
    }
    return true;
  };
  const out = vi.spyOn(process.stdout, 'write').mockImplementation(keep);
  const err = vi.spyOn(process.stderr, 'write').mockImplementation(keep);
  try {
    const result = await run();
    return {
      result,
      logs: lines.filter((line): line is LogLine => typeof line === 'object' && line !== null && 'message' in line),
      metrics: lines.filter((line): line is EmfLine => typeof line === 'object' && line !== null && '_aws' in line),
    };
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
}

function context(functionName: string, awsRequestId: string): Context {
  return { ...lambdaContext(functionName), awsRequestId };
}

async function stage(pose: PoseRef, bytes: Buffer, contentType = 'image/png'): Promise<string> {
  const key = newStagingKey(pose);
  await store.put(key, bytes, { contentType });
  return key;
}

/** The one EMF line carrying `metric`, with its definitions, dimensions and values. */
function emfWith(metrics: readonly EmfLine[], metric: string): EmfLine {
  const found = metrics.filter((line) => line._aws.CloudWatchMetrics[0]?.Metrics.some((m) => m.Name === metric));
  expect(found, `one EMF line with ${metric}`).toHaveLength(1);
  return found[0]!;
}

const units = (line: EmfLine) => Object.fromEntries(line._aws.CloudWatchMetrics[0]!.Metrics.map((m) => [m.Name, m.Unit]));

describe('thumbnail function in Lambda: log lines', () => {
  it('every line carries the request id, the function name and the cold start flag; upload lines carry its ids', async () => {
    const { handler } = await loadThumbnail();
    const pose = { generationId: 'gen_logs', poseId: 'ready-1' };
    const key = await stage(pose, png);

    const first = await captureOutput(() => handler(s3Event(key), context('pose-storage-test-Thumbnail', 'request-one')));
    expect(first.result).toEqual({ batchItemFailures: [], processed: 1 });
    expect(first.logs.length).toBeGreaterThan(0);
    for (const line of first.logs) {
      expect(line).toMatchObject({
        function_request_id: 'request-one',
        function_name: 'pose-storage-test-Thumbnail',
        cold_start: true,
        service: 'pose-storage',
      });
      expect(typeof line.timestamp).toBe('string');
    }
    const saved = first.logs.find((line) => line.message.startsWith('[Storage] Saved R2 objects'));
    expect(saved).toMatchObject({ level: 'INFO', generationId: 'gen_logs', poseId: 'ready-1', key });

    // The next invocation of the same container: a warm start, its own request id, no ids of the last upload.
    const again = await captureOutput(() => handler(s3Event('staging/not/a-staged-key'), context('pose-storage-test-Thumbnail', 'request-two')));
    expect(again.logs.length).toBeGreaterThan(0);
    for (const line of again.logs) {
      expect(line).toMatchObject({ function_request_id: 'request-two', cold_start: false });
      expect(line.poseId).toBeUndefined();
    }
  });

  it('POWERTOOLS_LOG_LEVEL=WARN keeps warnings and errors only; the metrics are written all the same', async () => {
    const { handler } = await loadThumbnail(lambdaEnv({ POWERTOOLS_LOG_LEVEL: 'WARN' }));
    const ready = await stage({ generationId: 'gen_level', poseId: 'ready' }, png);
    const rejected = await stage({ generationId: 'gen_level', poseId: 'rejected' }, Buffer.from('not an image at all'));

    const { logs, metrics } = await captureOutput(() => handler(s3Event(ready, rejected), context('fn', 'request-warn')));
    expect(logs.map((line) => line.level)).not.toContain('INFO');
    expect(logs).toContainEqual(expect.objectContaining({ level: 'WARN', message: expect.stringMatching(/^\[Storage\] Rejected upload/), poseId: 'rejected' }));
    expect(metrics.filter((line) => line.UploadsProcessed === 1)).toHaveLength(2);
  });

  it('POWERTOOLS_LOG_LEVEL=DEBUG adds what the handler received and each upload it starts', async () => {
    const { handler } = await loadThumbnail(lambdaEnv({ POWERTOOLS_LOG_LEVEL: 'DEBUG' }));
    const key = await stage({ generationId: 'gen_debug', poseId: 'p' }, png);

    const { logs } = await captureOutput(() => handler(s3Event(key), context('fn', 'request-debug')));
    expect(logs).toContainEqual(expect.objectContaining({ level: 'DEBUG', message: '[Storage] Received 1 object(s) in a s3 event' }));
    expect(logs).toContainEqual(
      expect.objectContaining({ level: 'DEBUG', message: expect.stringMatching(/^\[Storage\] Processing staging\//), generationId: 'gen_debug', poseId: 'p' }),
    );
  });

  it('a POWERTOOLS_LOG_LEVEL that is no level is named in a warning', async () => {
    const { handler } = await loadThumbnail(lambdaEnv({ POWERTOOLS_LOG_LEVEL: 'verbose' }));
    const { logs } = await captureOutput(() => handler(s3Event(), context('fn', 'request-typo')));
    expect(logs).toContainEqual(
      expect.objectContaining({ level: 'WARN', message: expect.stringMatching(/^\[Storage\] POWERTOOLS_LOG_LEVEL must be one of .* \(got "verbose"\): logging at INFO$/) }),
    );
  });
});

describe('thumbnail function in Lambda: metrics (embedded metric format)', () => {
  it('a ready upload: processed, its time, the bytes in (the upload) and out (the thumbnail, the image copied in the store)', async () => {
    const { handler } = await loadThumbnail();
    const pose = { generationId: 'gen_metrics', poseId: 'ready' };
    const key = await stage(pose, png);

    const { metrics } = await captureOutput(() => handler(s3Event(key), context('fn', 'request-ready')));
    const line = emfWith(metrics, 'UploadsProcessed');
    const [directive] = line._aws.CloudWatchMetrics;
    expect(directive!.Namespace).toBe('pose-storage');
    expect(directive!.Dimensions).toEqual([['service', 'Stage']]);
    expect(units(line)).toEqual({ UploadsProcessed: 'Count', ProcessingTime: 'Milliseconds', BytesIn: 'Bytes', BytesOut: 'Bytes' });
    expect(line).toMatchObject({ service: 'pose-storage', Stage: STAGE, UploadsProcessed: 1, generationId: 'gen_metrics', poseId: 'ready', key });
    expect(line.ProcessingTime).toBeGreaterThan(0);
    // In: the staged upload, and nothing else to read on a new pose. Out: the thumbnail plus the small
    // lock and record objects; the PNG itself is copied inside the store, never sent.
    expect(line.BytesIn).toBe(png.length);
    const thumbnail = (await store.head(thumbnailKey(pose)))!;
    expect(line.BytesOut).toBeGreaterThan(thumbnail.size);
    expect(line.BytesOut).toBeLessThan(thumbnail.size + 2048);
    expect(metrics.some((m) => 'UploadsRejected' in m || 'UploadRetries' in m)).toBe(false);
  });

  it('a rejected upload: processed, and rejected with its reason as a dimension', async () => {
    const { handler } = await loadThumbnail();
    const garbage = Buffer.from('this is not an image');
    const key = await stage({ generationId: 'gen_metrics', poseId: 'rejected' }, garbage);

    const { metrics } = await captureOutput(() => handler(s3Event(key), context('fn', 'request-rejected')));
    expect(emfWith(metrics, 'UploadsProcessed')).toMatchObject({ UploadsProcessed: 1, BytesIn: garbage.length, poseId: 'rejected' });
    const rejected = emfWith(metrics, 'UploadsRejected');
    expect(rejected._aws.CloudWatchMetrics[0]!.Dimensions).toEqual([['service', 'Stage', 'reason']]);
    expect(units(rejected)).toEqual({ UploadsRejected: 'Count' });
    expect(rejected).toMatchObject({ service: 'pose-storage', Stage: STAGE, reason: 'not_an_image', UploadsRejected: 1 });
  });

  it('a failed upload (the store goes away while the thumbnail is written): a retry, its error line tagged, nothing processed', async () => {
    const { handler } = await loadThumbnail();
    const pose = { generationId: 'gen_metrics', poseId: 'failed' };
    const key = await stage(pose, png);
    proxy.cutAt(/^PUT \S+_thumb\.png/m);

    const { result, logs, metrics } = await captureOutput(() => handler(sqsEvent({ 'message-1': [key] }), context('fn', 'request-failed')));
    expect(result).toEqual({ batchItemFailures: [{ itemIdentifier: 'message-1' }], processed: 1 });
    const retry = emfWith(metrics, 'UploadRetries');
    expect(units(retry)).toEqual({ UploadRetries: 'Count', BytesIn: 'Bytes', BytesOut: 'Bytes' });
    expect(retry).toMatchObject({ Stage: STAGE, UploadRetries: 1, BytesIn: png.length, generationId: 'gen_metrics', poseId: 'failed' });
    expect(metrics.some((m) => 'UploadsProcessed' in m)).toBe(false);
    expect(logs).toContainEqual(
      expect.objectContaining({
        level: 'ERROR',
        message: expect.stringMatching(/^\[Storage\] Failed to process upload/),
        function_request_id: 'request-failed',
        generationId: 'gen_metrics',
        poseId: 'failed',
        key,
      }),
    );
  });
});

describe('HTTP functions in Lambda: log lines', () => {
  it("the status function's error line carries the request id and the function name", async () => {
    const { handler } = await loadFunction(() => import('./status.ts'), lambdaEnv());
    proxy.cutAt(/./);
    const event = httpEvent({ method: 'GET', path: '/poses/gen_http/p', headers: bearer(TOKEN), pathParameters: { generationId: 'gen_http', poseId: 'p' } });

    const { result, logs } = await captureOutput(() => handler(event, context('pose-storage-test-Status', 'request-http')));
    expect(result.statusCode).toBe(503);
    expect(logs).toContainEqual(
      expect.objectContaining({
        level: 'ERROR',
        message: expect.stringMatching(/^\[Storage\] Request failed/),
        function_request_id: 'request-http',
        function_name: 'pose-storage-test-Status',
        cold_start: true,
      }),
    );
  });

  it('at DEBUG, every answer is logged with its status, never the event (it holds the token); a configuration error names the variable', async () => {
    const { handler } = await loadFunction(() => import('./presign.ts'), lambdaEnv({ POWERTOOLS_LOG_LEVEL: 'DEBUG', POWERTOOLS_LOGGER_LOG_EVENT: 'true' }));
    const post = httpEvent({ method: 'POST', path: '/uploads', headers: bearer(TOKEN), json: { generationId: 'g', poseId: 'p', contentType: 'image/png', contentLength: 10 } });
    const answered = await captureOutput(() => handler(post, context('fn', 'request-presign')));
    expect(answered.result.statusCode).toBe(200);
    expect(answered.logs).toContainEqual(
      expect.objectContaining({ level: 'DEBUG', message: '[Storage] POST /uploads: 200', status: 200, function_request_id: 'request-presign' }),
    );
    expect(JSON.stringify(answered.logs)).not.toContain(TOKEN);

    const broken = await loadFunction(() => import('./presign.ts'), lambdaEnv({ R2_BUCKET_NAME: 'No_Such_Bucket!' }));
    const failed = await captureOutput(() => broken.handler(post, context('fn', 'request-misconfigured')).catch((error: unknown) => error));
    expect(failed.result).toMatchObject({ variable: 'R2_BUCKET_NAME' });
    expect(failed.logs).toContainEqual(
      expect.objectContaining({
        level: 'ERROR',
        message: expect.stringMatching(/^\[Storage\] Invalid configuration: R2_BUCKET_NAME /),
        variable: 'R2_BUCKET_NAME',
        function_request_id: 'request-misconfigured',
      }),
    );
  });
});
