/**
 * The R2 path's Workers, bundled as SST bundles them and run in workerd (Miniflare), fed Cloudflare Queues
 * batches of R2 event notifications (built in Cloudflare's documented format: Miniflare emits none):
 *   - the forwarder (functions/r2-forwarder.ts): its Lambda Invoke calls leave workerd for real HTTP to a
 *     stand-in for the AWS APIs on 127.0.0.1, which checks the SigV4 signature as AWS does (recomputed with
 *     @smithy/signature-v4 from the known secret; a wrong key is a 403) and runs our real thumbnail handler on a
 *     directory store with real PNGs;
 *   - the dead-letter consumer (functions/dead-letters.ts): its CloudWatch PutMetricData calls reach the same
 *     stand-in.
 * Each case checks what the Worker acknowledged and what it retried, and what was (not) processed or counted.
 */
import { createHash, createHmac, randomUUID, type BinaryLike } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { SignatureV4 } from '@smithy/signature-v4';
import { Miniflare, type MiniflareOptions } from 'miniflare';
import sharp from 'sharp';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { createHandler } from '../lib/lambda/handlers/thumbnail.ts';
import { thumbnailTiming, WORKER_INVOKE_LIMIT_SECONDS } from '../infra/function-timing.ts';
import { parseConfig } from '../lib/config.ts';
import { StoreUnavailableError } from '../lib/errors.ts';
import { createLogger } from '../lib/logger.ts';
import { createServices } from '../lib/services.ts';
import { DirectoryStore } from '../lib/storage/directory-store.ts';
import type { ObjectInfo, StoredObject } from '../lib/storage/object-store.ts';
import { bundleWorker, SST_WORKER_COMPATIBILITY, type WorkerBundle } from './support/worker-bundle.ts';

const REGION = 'eu-west-1';
const FUNCTION_NAME = 'pose-storage-test-ThumbnailFunction-abcdef';
const FUNCTION_ARN = `arn:aws:lambda:${REGION}:123456789012:function:${FUNCTION_NAME}`;
const ACCESS_KEY_ID = 'AKIAFORWARDERTEST01';
const SECRET_ACCESS_KEY = 'forwarder-test-secret-0123456789abcdefghij';
const QUEUE = 'pose-storage-test-thumbnailqueue';
/** What the deploy gives the R2 path (infra/function-timing.ts): the Worker's wait, and batches of one message. */
const R2_TIMING = thumbnailTiming('r2');
/** The function's limit here: the Worker forwards whatever batch the queue gives it, and the function enforces its own. */
const BATCH_SIZE = 4;

/** A directory store whose reads of chosen keys fail as an unavailable store does. */
class FlakyDirectoryStore extends DirectoryStore {
  readonly unavailable = new Set<string>();

  override async get(key: string): Promise<StoredObject | undefined> {
    if (this.unavailable.has(key)) throw new StoreUnavailableError('injected by the test');
    return super.get(key);
  }

  override async head(key: string): Promise<ObjectInfo | undefined> {
    if (this.unavailable.has(key)) throw new StoreUnavailableError('injected by the test');
    return super.head(key);
  }
}

/** node:crypto as the Checksum @smithy/signature-v4 signs with. */
class Sha256 {
  readonly #secret: BinaryLike | undefined;
  #hash: ReturnType<typeof createHash> | ReturnType<typeof createHmac>;

  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    this.#secret = secret === undefined ? undefined : typeof secret === 'string' ? secret : new Uint8Array(ArrayBuffer.isView(secret) ? secret.buffer : secret);
    this.#hash = this.#fresh();
  }

  #fresh() {
    return this.#secret === undefined ? createHash('sha256') : createHmac('sha256', this.#secret);
  }

  update(data: string | Uint8Array): void {
    this.#hash.update(data);
  }

  digest(): Promise<Uint8Array> {
    return Promise.resolve(new Uint8Array(this.#hash.digest()));
  }

  reset(): void {
    this.#hash = this.#fresh();
  }
}

const signers = new Map(
  ['lambda', 'monitoring'].map((service) => [
    service,
    new SignatureV4({ service, region: REGION, credentials: { accessKeyId: ACCESS_KEY_ID, secretAccessKey: SECRET_ACCESS_KEY }, sha256: Sha256, applyChecksum: false }),
  ]),
);

const AUTHORIZATION = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$/;

/** AWS's refusal of a request to `service`, or undefined when its signature is the one the known secret gives. */
async function checkSignature(request: IncomingMessage, body: string, service: 'lambda' | 'monitoring'): Promise<{ type: string; message: string } | undefined> {
  const auth = AUTHORIZATION.exec(request.headers.authorization ?? '');
  if (!auth) return { type: 'IncompleteSignatureException', message: 'Authorization header requires a SigV4 signature' };
  const [, keyId, day, region, scopeService, signedHeaders, signature] = auth;
  if (keyId !== ACCESS_KEY_ID) return { type: 'UnrecognizedClientException', message: 'The security token included in the request is invalid.' };
  const amzDate = String(request.headers['x-amz-date'] ?? '');
  const signingDate = new Date(amzDate.replace(/^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/, '$1-$2-$3T$4:$5:$6Z'));
  const names = signedHeaders!.split(';');
  const url = new URL(request.url ?? '/', `https://${request.headers.host}`);
  const signed = await signers.get(service)!.sign(
    {
      method: request.method ?? 'POST',
      protocol: 'https:',
      hostname: url.hostname,
      path: url.pathname,
      query: {},
      headers: Object.fromEntries(names.map((name) => [name, String(request.headers[name] ?? '')])),
      body,
    },
    { signingDate },
  );
  const expected = /Signature=([0-9a-f]{64})/.exec(String(signed.headers.authorization))?.[1];
  const scopeOk = region === REGION && scopeService === service && day === amzDate.slice(0, 8) && names.includes('host');
  return scopeOk && signature === expected
    ? undefined
    : { type: 'InvalidSignatureException', message: 'The request signature we calculated does not match the signature you provided.' };
}

let root: string;
let store: FlakyDirectoryStore;
let handler: ReturnType<typeof createHandler>;
let server: Server;
let forwarder: WorkerBundle;
let deadLetters: WorkerBundle;
let png: Buffer;
/** How the stand-in answers: run the function, run it slowly, never answer (a timeout), or report a crashed function. */
let mode: 'run' | 'slow' | 'hang' | 'crash' = 'run';
/** How long a slow function takes before it runs. */
const SLOW_MS = 3000;
/** The payloads the stand-in accepted (Invoke; PutMetricData), and the refusals it answered. */
const invocations: unknown[] = [];
const metrics: Record<string, string>[] = [];
const refusals: string[] = [];
/** What the Worker logged (its console lines, as workerd reports them). */
const workerLogs: { level: string; message: string }[] = [];

/** Resolves once the Worker has logged a line matching `pattern` (workerd reports logs asynchronously). */
async function workerLogged(level: string, pattern: RegExp): Promise<void> {
  await vi.waitFor(() => expect(workerLogs).toContainEqual({ level, message: expect.stringMatching(pattern) }), { timeout: 10_000 });
}

/** The stand-in for the AWS APIs the Workers call: Lambda Invoke and CloudWatch PutMetricData. */
async function awsApis(request: IncomingMessage, response: ServerResponse): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  const body = Buffer.concat(chunks).toString();
  if (request.headers.host === `monitoring.${REGION}.amazonaws.com`) return putMetricData(request, response, body);
  const answer = (status: number, payload: unknown, headers: Record<string, string> = {}): void => {
    response.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(payload));
  };

  if (request.headers.host !== `lambda.${REGION}.amazonaws.com` || request.method !== 'POST' || request.url !== `/2015-03-31/functions/${FUNCTION_NAME}/invocations`) {
    return answer(404, { Type: 'User', message: `Function not found: ${request.url}` }, { 'x-amzn-errortype': 'ResourceNotFoundException' });
  }
  const refused = await checkSignature(request, body, 'lambda');
  if (refused) {
    refusals.push(refused.type);
    return answer(403, { message: refused.message }, { 'x-amzn-errortype': refused.type });
  }
  invocations.push(JSON.parse(body));
  if (mode === 'hang') return; // the connection is closed when the test ends
  if (mode === 'crash') {
    return answer(200, { errorType: 'Runtime.OutOfMemory', errorMessage: 'Runtime exited with error: signal: killed' }, { 'x-amz-function-error': 'Unhandled' });
  }
  if (mode === 'slow') await sleep(SLOW_MS);
  try {
    answer(200, await handler(JSON.parse(body)));
  } catch (error) {
    answer(200, { errorType: 'Error', errorMessage: String(error) }, { 'x-amz-function-error': 'Unhandled' });
  }
}

/** CloudWatch's query API, PutMetricData only. */
async function putMetricData(request: IncomingMessage, response: ServerResponse, body: string): Promise<void> {
  const refused = await checkSignature(request, body, 'monitoring');
  const form = Object.fromEntries(new URLSearchParams(body));
  if (refused || request.method !== 'POST' || form.Action !== 'PutMetricData' || form.Version !== '2010-08-01') {
    refusals.push(refused?.type ?? 'InvalidAction');
    response.writeHead(refused ? 403 : 400, { 'content-type': 'text/xml' }).end(`<ErrorResponse><Error><Code>${refused?.type ?? 'InvalidAction'}</Code></Error></ErrorResponse>`);
    return;
  }
  metrics.push(form);
  response.writeHead(200, { 'content-type': 'text/xml' }).end('<PutMetricDataResponse xmlns="http://monitoring.amazonaws.com/doc/2010-08-01/"><ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></PutMetricDataResponse>');
}

/** Requests leaving workerd reach the stand-in unchanged (Host header included), over real HTTP. */
function toStandIn(request: IncomingMessage, response: ServerResponse): void {
  const headers = Object.fromEntries(Object.entries(request.headers).filter(([name]) => !name.startsWith('mf-')));
  const { port } = server.address() as AddressInfo;
  const forwarded = httpRequest({ host: '127.0.0.1', port, method: request.method, path: request.url, headers }, (answer) => {
    response.writeHead(answer.statusCode ?? 502, answer.headers);
    answer.pipe(response);
  });
  forwarded.on('error', () => response.destroy());
  response.on('close', () => forwarded.destroy());
  request.pipe(forwarded);
}

/** The forwarder (or another of the R2 path's Workers) with the bindings SST gives it (infra/thumbnails.ts). */
async function startWorker(bindings: Record<string, string> = {}, worker = forwarder): Promise<Miniflare> {
  const options: MiniflareOptions = {
    modules: true,
    scriptPath: worker.path,
    modulesRoot: path.dirname(worker.path),
    ...SST_WORKER_COMPATIBILITY,
    bindings: {
      SST_RESOURCE_App: JSON.stringify({ name: 'pose-storage', stage: 'test' }),
      AWS_ACCESS_KEY_ID: ACCESS_KEY_ID,
      AWS_SECRET_ACCESS_KEY: SECRET_ACCESS_KEY,
      ...(worker === forwarder
        ? {
            SST_RESOURCE_Thumbnail: JSON.stringify({ name: FUNCTION_NAME }),
            THUMBNAIL_FUNCTION_ARN: FUNCTION_ARN,
            FORWARD_TIMEOUT_SECONDS: String(R2_TIMING.forwardTimeoutSeconds),
          }
        : {
            SST_RESOURCE_DeadLetterMetric: JSON.stringify({ namespace: 'pose-storage', metricName: 'DeadLetters' }),
            METRIC_REGION: REGION,
            METRIC_NAMESPACE: 'pose-storage',
            METRIC_NAME: 'DeadLetters',
          }),
      ...bindings,
    },
    outboundService: { node: toStandIn },
    structuredWorkerdLogs: true,
    handleStructuredLogs: ({ level, message }: { level: string; message: string }): void => {
      workerLogs.push({ level, message });
    },
  };
  return new Miniflare(options);
}

/** An R2 event notification (https://developers.cloudflare.com/r2/buckets/event-notifications/#message-format). */
function r2Notification(key: string, action = 'PutObject', size = png.length) {
  const object = action === 'DeleteObject' ? { key } : { key, size, eTag: createHash('md5').update(png).digest('hex') };
  return { account: '3f4b7e3dcab231cbfdaa90a6a28bd548', action, bucket: 'pose-storage-test-poses', object, eventTime: new Date().toISOString() };
}

/** A pose's staged upload, as a presigned PUT leaves it. */
async function stage(generationId: string, poseId: string): Promise<string> {
  const key = `staging/${generationId}/${poseId}/${randomUUID()}`;
  await store.put(key, png, { contentType: 'image/png' });
  return key;
}

async function published(generationId: string, poseId: string): Promise<boolean> {
  const [image, thumbnail] = await Promise.all([store.head(`poses/${generationId}/${poseId}.png`), store.head(`poses/${generationId}/${poseId}_thumb.png`)]);
  return image !== undefined && thumbnail !== undefined;
}

/** What workerd reports of a queue handler's run: which messages it acknowledged and which it retried. */
interface QueueOutcome {
  outcome: string;
  ackAll: boolean;
  retryBatch: { retry: boolean; delaySeconds?: number };
  explicitAcks: string[];
  retryMessages: { msgId: string; delaySeconds?: number }[];
}

/** Miniflare types its Fetcher with @cloudflare/workers-types, which this project does not install. */
interface QueueFetcher {
  queue(queueName: string, messages: { id: string; timestamp: Date; body: unknown; attempts: number }[]): Promise<QueueOutcome>;
}

/** Delivers a batch to the Worker's queue handler as Cloudflare Queues does. */
async function deliver(mf: Miniflare, messages: { id: string; body: unknown; attempts?: number }[]): Promise<QueueOutcome> {
  const fetcher = (await mf.getWorker()) as unknown as QueueFetcher;
  return fetcher.queue(QUEUE, messages.map(({ id, body, attempts = 1 }) => ({ id, body, attempts, timestamp: new Date() })));
}

let mf: Miniflare;

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'r2-forwarder-'));
  store = new FlakyDirectoryStore({ root, uploadBaseUrl: 'http://127.0.0.1:1' });
  const config = parseConfig({ UPLOAD_PATH: root });
  handler = createHandler(createServices({ config, store, logger: createLogger(() => undefined) }), { batchSize: BATCH_SIZE });
  png = await sharp({ create: { width: 640, height: 480, channels: 3, background: { r: 30, g: 120, b: 200 } } }).png().toBuffer();
  server = createServer((request, response) => void awsApis(request, response));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  [forwarder, deadLetters] = await Promise.all([bundleWorker('functions/r2-forwarder.ts'), bundleWorker('functions/dead-letters.ts')]);
  mf = await startWorker();
});

afterAll(async () => {
  await mf?.dispose();
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
  await rm(root, { recursive: true, force: true });
});

beforeEach(() => {
  mode = 'run';
  invocations.length = 0;
  refusals.length = 0;
  metrics.length = 0;
  workerLogs.length = 0;
  store.unavailable.clear();
});

describe('the R2 forwarding Worker in workerd, invoking the real thumbnail handler through a SigV4-checking Invoke API', () => {
  it('is bundled as SST bundles it, with no Node built-in left for unenv to replace', () => {
    expect(forwarder.externalImports.filter((name) => name !== 'cloudflare:workers')).toEqual([]);
  });

  it('success: one signed invocation with the batch as delivered, every message acknowledged, both poses published', async () => {
    const a = await stage('gen_ok', 'pose-a');
    const b = await stage('gen_ok', 'pose-b');
    const bodies = [r2Notification(a), r2Notification(b, 'CompleteMultipartUpload')];
    const result = await deliver(mf, [
      { id: 'm-a', body: bodies[0] },
      { id: 'm-b', body: bodies[1], attempts: 2 },
    ]);
    expect(result).toMatchObject({ outcome: 'ok', ackAll: false, retryBatch: { retry: false }, retryMessages: [] });
    expect(result.explicitAcks.sort()).toEqual(['m-a', 'm-b']);
    expect(refusals).toEqual([]);
    expect(invocations).toEqual([
      {
        messages: [
          { id: 'm-a', body: bodies[0], attempts: 1 },
          { id: 'm-b', body: bodies[1], attempts: 2 },
        ],
      },
    ]);
    expect(await published('gen_ok', 'pose-a')).toBe(true);
    expect(await published('gen_ok', 'pose-b')).toBe(true);
    expect(await store.head(a)).toBeUndefined();
  });

  it('one message failed: the others are acknowledged, that one retried with a backoff that grows with its attempts', async () => {
    const good = await stage('gen_partial', 'good');
    const bad = await stage('gen_partial', 'bad');
    store.unavailable.add(bad);
    const result = await deliver(mf, [
      { id: 'm-good', body: r2Notification(good) },
      { id: 'm-bad', body: r2Notification(bad), attempts: 3 },
    ]);
    expect(result.explicitAcks).toEqual(['m-good']);
    expect(result.retryMessages).toEqual([{ msgId: 'm-bad', delaySeconds: 40 }]);
    expect(await published('gen_partial', 'good')).toBe(true);
    store.unavailable.clear();
    expect(await published('gen_partial', 'bad')).toBe(false);
    expect(await store.head(bad)).toBeDefined();
    await workerLogged('warn', /\[Forwarder\] 1 of 2 message\(s\) will be retried/);
  });

  it.each([
    ['a wrong secret key', { AWS_SECRET_ACCESS_KEY: 'not-the-secret-0123456789abcdefghijklmn' }, 'InvalidSignatureException'],
    ['an unknown access key id', { AWS_ACCESS_KEY_ID: 'AKIANOTTHEKEY000000' }, 'UnrecognizedClientException'],
  ])('unauthorised (%s): Lambda answers 403, nothing is processed, the whole batch is retried', async (_, bindings, refusal) => {
    const key = await stage('gen_denied', 'pose');
    const denied = await startWorker(bindings);
    try {
      const result = await deliver(denied, [
        { id: 'm-1', body: r2Notification(key) },
        { id: 'm-2', body: r2Notification(key), attempts: 6 },
      ]);
      expect(result.explicitAcks).toEqual([]);
      expect(result.retryMessages).toEqual([
        { msgId: 'm-1', delaySeconds: 10 },
        { msgId: 'm-2', delaySeconds: 300 },
      ]);
    } finally {
      await denied.dispose();
    }
    expect(refusals).toEqual([refusal]);
    expect(invocations).toEqual([]);
    expect(await store.head(key)).toBeDefined();
    await workerLogged('error', /\[Forwarder\] Batch not delivered: .*answered 403/);
    expect(JSON.stringify(workerLogs)).not.toContain(SECRET_ACCESS_KEY.slice(0, 16));
  });

  it('a slow function (3 s): the Worker, with the deploy\'s wait, holds the invocation until it answers, then acknowledges', async () => {
    const key = await stage('gen_slowly', 'pose');
    mode = 'slow';
    const started = performance.now();
    const result = await deliver(mf, [{ id: 'm-1', body: r2Notification(key) }]);
    const waited = performance.now() - started;
    expect(result.explicitAcks).toEqual(['m-1']);
    expect(result.retryMessages).toEqual([]);
    expect(await published('gen_slowly', 'pose')).toBe(true);
    // It waited for the function (never giving up early); the deploy's wait is its timeout and 10 s, under 90 s.
    expect(waited).toBeGreaterThanOrEqual(SLOW_MS);
    expect(R2_TIMING.forwardTimeoutSeconds).toBeLessThanOrEqual(WORKER_INVOKE_LIMIT_SECONDS);
  });

  it('a timeout: the function never answers within FORWARD_TIMEOUT_SECONDS, the whole batch is retried', async () => {
    const key = await stage('gen_slow', 'pose');
    mode = 'hang';
    const impatient = await startWorker({ FORWARD_TIMEOUT_SECONDS: '1' });
    try {
      const result = await deliver(impatient, [{ id: 'm-1', body: r2Notification(key) }]);
      expect(result.explicitAcks).toEqual([]);
      expect(result.retryMessages).toEqual([{ msgId: 'm-1', delaySeconds: 10 }]);
    } finally {
      await impatient.dispose();
    }
    expect(invocations).toHaveLength(1);
    expect(await published('gen_slow', 'pose')).toBe(false);
    await workerLogged('error', /\[Forwarder\] Batch not delivered: TimeoutError/);
  });

  it('a function error (X-Amz-Function-Error, e.g. out of memory): the whole batch is retried', async () => {
    const key = await stage('gen_crash', 'pose');
    mode = 'crash';
    const result = await deliver(mf, [{ id: 'm-1', body: r2Notification(key) }]);
    expect(result.explicitAcks).toEqual([]);
    expect(result.retryMessages).toEqual([{ msgId: 'm-1', delaySeconds: 10 }]);
    await workerLogged('error', /the thumbnail function failed \(Unhandled\)/);
  });

  it('a DeleteObject message is acknowledged and nothing is processed', async () => {
    const key = await stage('gen_delete', 'pose');
    const result = await deliver(mf, [{ id: 'm-delete', body: r2Notification(key, 'DeleteObject') }]);
    expect(result.explicitAcks).toEqual(['m-delete']);
    expect(result.retryMessages).toEqual([]);
    expect(await store.head(key)).toBeDefined();
    expect(await published('gen_delete', 'pose')).toBe(false);
  });

  it(`a batch over the limit (${BATCH_SIZE}): the first ${BATCH_SIZE} are processed and acknowledged, the rest retried untouched`, async () => {
    const keys = await Promise.all([0, 1, 2, 3, 4, 5].map((n) => stage('gen_over', `pose-${n}`)));
    const result = await deliver(mf, keys.map((key, n) => ({ id: `m-${n}`, body: r2Notification(key) })));
    expect(result.explicitAcks.sort()).toEqual(['m-0', 'm-1', 'm-2', 'm-3']);
    expect(result.retryMessages).toEqual([
      { msgId: 'm-4', delaySeconds: 10 },
      { msgId: 'm-5', delaySeconds: 10 },
    ]);
    for (const n of [0, 1, 2, 3]) expect(await published('gen_over', `pose-${n}`)).toBe(true);
    for (const n of [4, 5]) {
      expect(await published('gen_over', `pose-${n}`)).toBe(false);
      expect(await store.head(keys[n]!)).toBeDefined();
    }
  });
});

describe('the dead-letter Worker in workerd, counting into a SigV4-checking CloudWatch stand-in', () => {
  it('is bundled as SST bundles it, with no Node built-in left for unenv to replace', () => {
    expect(deadLetters.externalImports.filter((name) => name !== 'cloudflare:workers')).toEqual([]);
  });

  it('logs every dead letter with its staged key, adds their count to the metric, and acknowledges them', async () => {
    const keys = ['staging/gen_dead/a/1', 'staging/gen_dead/b/2', 'staging/gen_dead/c/3'];
    const worker = await startWorker({}, deadLetters);
    try {
      const result = await deliver(worker, keys.map((key, n) => ({ id: `d-${n}`, body: r2Notification(key), attempts: 6 })));
      expect(result).toMatchObject({ outcome: 'ok', ackAll: true, retryMessages: [] });
    } finally {
      await worker.dispose();
    }
    expect(metrics).toEqual([
      expect.objectContaining({
        Namespace: 'pose-storage',
        'MetricData.member.1.MetricName': 'DeadLetters',
        'MetricData.member.1.Value': '3',
        'MetricData.member.1.Unit': 'Count',
        'MetricData.member.1.Dimensions.member.1.Name': 'Stage',
        'MetricData.member.1.Dimensions.member.1.Value': 'test',
      }),
    ]);
    for (const key of keys) await workerLogged('error', new RegExp(`\\[DeadLetters\\] Upload never processed.*"key":"${key}"`));
  });

  it('when CloudWatch refuses the call (a wrong key), nothing is acknowledged: the batch is retried with backoff', async () => {
    const worker = await startWorker({ AWS_SECRET_ACCESS_KEY: 'not-the-secret-0123456789abcdefghijklmn' }, deadLetters);
    try {
      const result = await deliver(worker, [{ id: 'd-1', body: r2Notification('staging/gen_dead/x/1'), attempts: 2 }]);
      expect(result).toMatchObject({ ackAll: false, explicitAcks: [], retryMessages: [{ msgId: 'd-1', delaySeconds: 20 }] });
    } finally {
      await worker.dispose();
    }
    expect(refusals).toEqual(['InvalidSignatureException']);
    expect(metrics).toEqual([]);
    await workerLogged('error', /\[DeadLetters\] Not counted in CloudWatch: Error: CloudWatch answered 403/);
  });
});

afterEach(() => {
  // A hanging invocation must not outlive its test.
  if (mode === 'hang') server.closeAllConnections();
});
