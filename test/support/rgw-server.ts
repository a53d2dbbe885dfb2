/**
 * The S3 test server backed by a real Ceph RADOS Gateway (RGW) that test/rgw/start-rgw.sh started: selected by
 * S3_TEST_BACKEND=rgw (`npm run test:rgw`). startS3Server() then returns, instead of an s3rver:
 *
 * - a fresh bucket with a unique name (RGW's buckets are shared by every test file of the run), created with
 *   CreateBucket, with the CORS rules given (PutBucketCors); stop() empties and deletes it;
 * - its object events, through an RGW SNS topic that pushes to an HTTP sink in this process (127.0.0.1, a free
 *   port). The topic is not persistent, so RGW pushes each event before it answers the request that caused it
 *   (a persistent topic delivers 10-15 s later): when a PUT has answered, its event is in `events`. The bucket's
 *   notification is ObjectCreated only: radosgw 16.2 aborts on DeleteObjects in a bucket whose ObjectRemoved
 *   events go to a non-persistent HTTP topic. So, unlike s3rver, no ObjectRemoved:Delete records.
 *
 * RGW's records are turned into the S3rverEventRecord shape, except that `eventSource` stays "ceph:s3" and
 * `awsRegion` "" (as RGW sends them). Their keys are raw, as s3rver's are: RGW 16.2 does not URL-encode keys in
 * its records, unlike real S3 (so an S3 event decoder, which turns `+` into a space and `%xx` into its byte,
 * changes a key holding `+` or `%` when it is given RGW's record as it is).
 *
 * RGW itself is never stopped here: test/rgw/stop-rgw.sh does that.
 *
 * Where RGW 16.2.15 differs from S3 (and s3rver) in what the tests meet, as measured:
 * - PutObject `If-Match` is compared unquoted: the quoted ETag that S3 returns and the SDK sends is always 412;
 * - CopyObject ignores `x-amz-copy-source-if-match` (RGW reads a non-standard `x-amz-copy-if-match`);
 * - a PUT refused with 412 still sends an ObjectCreated:Put event;
 * - ListObjectsV2's LastModified has milliseconds, HEAD's and GET's whole seconds;
 * - event records say `eventSource: "ceph:s3"`, `awsRegion: ""`, and carry raw (not URL-encoded) keys.
 */
import { randomBytes, createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectsCommand,
  ListMultipartUploadsCommand,
  AbortMultipartUploadCommand,
  ListObjectsV2Command,
  PutBucketCorsCommand,
  PutBucketNotificationConfigurationCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { AwsClient } from 'aws4fetch';
import { TEST_PUBLIC_URL, type CorsRule, type S3rverEventRecord, type S3TestServer, type S3TestServerOptions } from './s3-server.ts';

export interface RgwEndpoint {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
}

/** Where start-rgw.sh keeps its state (and rgw.env); the same default as test/rgw/common.sh. */
export function rgwStateDir(): string {
  return process.env.POSE_STORAGE_RGW_DIR ?? path.join(process.env.TMPDIR ?? tmpdir(), 'pose-storage-rgw');
}

/** The RGW to use: S3_TEST_RGW_* of the environment, or else the rgw.env that start-rgw.sh wrote. */
export function rgwEndpoint(): RgwEndpoint {
  let variables: Record<string, string | undefined> = process.env;
  if (!process.env.S3_TEST_RGW_ENDPOINT) {
    const file = path.join(rgwStateDir(), 'rgw.env');
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      throw new Error(`S3_TEST_BACKEND=rgw, but neither S3_TEST_RGW_ENDPOINT nor ${file} is there: run test/rgw/start-rgw.sh first`);
    }
    variables = Object.fromEntries(
      text
        .split('\n')
        .map((line) => /^([A-Z0-9_]+)=(.*)$/.exec(line))
        .filter((match) => match !== null)
        .map((match) => [match[1], match[2]]),
    );
  }
  const { S3_TEST_RGW_ENDPOINT: endpoint, S3_TEST_RGW_ACCESS_KEY_ID: accessKeyId, S3_TEST_RGW_SECRET_ACCESS_KEY: secretAccessKey } = variables;
  if (!endpoint || !accessKeyId || !secretAccessKey) {
    throw new Error('S3_TEST_BACKEND=rgw needs S3_TEST_RGW_ENDPOINT, S3_TEST_RGW_ACCESS_KEY_ID and S3_TEST_RGW_SECRET_ACCESS_KEY');
  }
  return { endpoint: endpoint.replace(/\/+$/, ''), accessKeyId, secretAccessKey };
}

/** A record as RGW 16.2 pushes it (the S3 format, plus RGW's own fields). */
interface RgwEventRecord {
  eventVersion: string;
  eventSource: string;
  awsRegion: string;
  eventTime: string;
  eventName: string;
  userIdentity: { principalId: string };
  requestParameters: { sourceIPAddress: string };
  responseElements: { 'x-amz-request-id': string; 'x-amz-id-2': string };
  s3: {
    s3SchemaVersion: string;
    configurationId: string;
    bucket: { name: string; ownerIdentity: { principalId: string }; arn: string };
    object: { key: string; size?: number; eTag?: string; versionId?: string; sequencer: string };
  };
}

/**
 * RGW's record in the shape of s3rver's: the same fields, without RGW's own (eventId, opaqueData, the object's
 * versionId, metadata and tags, the bucket's id). The key is passed on as it is: RGW 16.2 sends it raw, as s3rver
 * does (measured: `a b/c+d.png`, `x%20y`, `q?&=#.png` and `ünï/cödé` arrive as written), not URL-encoded as S3 does.
 */
export function fromRgwRecord(record: RgwEventRecord): S3rverEventRecord {
  const { object } = record.s3;
  return {
    eventVersion: record.eventVersion,
    eventSource: record.eventSource,
    awsRegion: record.awsRegion,
    eventTime: record.eventTime,
    eventName: record.eventName,
    userIdentity: record.userIdentity,
    requestParameters: record.requestParameters,
    responseElements: record.responseElements,
    s3: {
      s3SchemaVersion: record.s3.s3SchemaVersion,
      configurationId: record.s3.configurationId,
      bucket: { name: record.s3.bucket.name, ownerIdentity: record.s3.bucket.ownerIdentity, arn: record.s3.bucket.arn },
      object: {
        key: object.key,
        sequencer: object.sequencer,
        ...(object.size !== undefined && { size: object.size }),
        ...(object.eTag !== undefined && object.eTag !== '' && { eTag: object.eTag }),
      },
    },
  };
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/** A bucket name no other call of this run uses: `<base>-<8 hex>` (S3 allows 63 characters). */
function uniqueBucketName(base: string): string {
  return `${base.slice(0, 50).replace(/-+$/, '')}-${randomBytes(4).toString('hex')}`;
}

/**
 * Runs `step` while no other process of the run changes RGW's notification state. RGW 16.2 keeps all of a
 * tenant's topics in one RADOS object, and each bucket's notifications in another, each updated by
 * read-modify-write: test files creating and deleting topics at once (vitest runs them in parallel) made it
 * lose a topic just created (PutBucketNotificationConfiguration then answers NoSuchKey) or answer 500
 * (measured: 4 failures in 240 bucket set-ups by two files at once, 8 concurrent each; none in 720 serialised). The lock is a
 * directory (mkdir is atomic) holding its owner's pid; a lock whose owner died is taken over.
 */
async function withNotificationLock<T>(step: () => Promise<T>): Promise<T> {
  const lock = path.join(rgwStateDir(), 'notifications.lock');
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      await mkdir(lock);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const owner = Number(await readFile(path.join(lock, 'pid'), 'utf8').catch(() => ''));
    if (owner > 0 && !isAlive(owner)) await rm(lock, { recursive: true, force: true });
    else if (Date.now() > deadline) throw new Error(`the RGW notification lock ${lock} has been held for 60 s (by pid ${owner || 'unknown'})`);
    else await sleep(10);
  }
  try {
    await writeFile(path.join(lock, 'pid'), String(process.pid));
    return await step();
  } finally {
    await rm(lock, { recursive: true, force: true });
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Calls RGW's SNS-compatible API (a form POST to the endpoint's root); returns the XML answer. */
async function sns(aws: AwsClient, endpoint: string, parameters: Record<string, string>): Promise<string> {
  const body = new URLSearchParams(parameters).toString();
  // RGW checks the body's real hash on these calls (aws4fetch would send UNSIGNED-PAYLOAD for service s3).
  const response = await aws.fetch(`${endpoint}/`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', 'X-Amz-Content-Sha256': sha256(body) },
    body,
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`RGW ${parameters.Action} answered ${response.status}: ${text}`);
  return text;
}

/** The sink that RGW pushes the bucket's events to: records each, then acknowledges (RGW waits for it). */
async function startEventSink(deliver: (record: S3rverEventRecord) => void): Promise<{ url: string; close(): Promise<void> }> {
  const server = createServer((request: IncomingMessage, response: ServerResponse) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      try {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { Records?: RgwEventRecord[] };
        for (const record of body.Records ?? []) deliver(fromRgwRecord(record));
        response.writeHead(200).end();
      } catch (error) {
        console.error('rgw event sink: a push that is not an event', error);
        response.writeHead(400).end();
      }
    });
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function corsRules(rules: readonly CorsRule[]) {
  return rules.map((rule) => ({
    AllowedOrigins: [...rule.allowedOrigins],
    AllowedMethods: [...rule.allowedMethods],
    ...(rule.allowedHeaders && { AllowedHeaders: [...rule.allowedHeaders] }),
    ...(rule.exposeHeaders && { ExposeHeaders: [...rule.exposeHeaders] }),
    ...(rule.maxAgeSeconds !== undefined && { MaxAgeSeconds: rule.maxAgeSeconds }),
  }));
}

/** startS3Server() on RGW: a fresh bucket, its CORS, and its ObjectCreated events. */
export async function startRgwS3Server(options: S3TestServerOptions = {}): Promise<S3TestServer> {
  if (options.enforceConditions === false) throw new Error('RGW enforces its conditions: a store that enforces none is s3rver with enforceConditions: false');
  const { endpoint, accessKeyId, secretAccessKey } = rgwEndpoint();
  const bucket = uniqueBucketName(options.bucket ?? 'poses-test');
  // us-east-1: the SDK then sends no LocationConstraint, which RGW would check against its zonegroup's name.
  const admin = new S3Client({
    region: 'us-east-1',
    endpoint,
    credentials: { accessKeyId, secretAccessKey },
    forcePathStyle: true,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  const aws = new AwsClient({ accessKeyId, secretAccessKey, service: 's3', region: 'us-east-1' });

  const events: S3rverEventRecord[] = [];
  const listeners = new Set<(record: S3rverEventRecord) => void>();
  const sink = await startEventSink((record) => {
    if (record.s3.bucket.name !== bucket) return;
    events.push(record);
    for (const listener of listeners) listener(record);
  });

  let topicArn: string | undefined;
  let created = false;
  const cleanUp = async () => {
    const failures: unknown[] = [];
    const attempt = async (step: () => Promise<unknown>) => {
      try {
        await step();
      } catch (error) {
        failures.push(error);
      }
    };
    if (created) await attempt(() => deleteBucket(admin, bucket));
    if (topicArn !== undefined) await attempt(() => withNotificationLock(() => sns(aws, endpoint, { Action: 'DeleteTopic', TopicArn: topicArn! })));
    await sink.close();
    admin.destroy();
    if (failures.length > 0) throw new AggregateError(failures, `cleaning up the RGW bucket ${bucket} failed`);
  };

  try {
    await admin.send(new CreateBucketCommand({ Bucket: bucket }));
    created = true;
    if (options.cors !== undefined) {
      if (typeof options.cors === 'string') await putCorsXml(aws, endpoint, bucket, options.cors);
      else await admin.send(new PutBucketCorsCommand({ Bucket: bucket, CORSConfiguration: { CORSRules: corsRules(options.cors) } }));
    }
    // One lock for both steps: the topic must still be there when the bucket's notification names it.
    await withNotificationLock(async () => {
      const answer = await sns(aws, endpoint, {
        Action: 'CreateTopic',
        Name: `${bucket}-events`,
        'Attributes.entry.1.key': 'push-endpoint',
        'Attributes.entry.1.value': sink.url,
        'Attributes.entry.2.key': 'persistent',
        'Attributes.entry.2.value': 'false',
      });
      topicArn = /<TopicArn>([^<]+)<\/TopicArn>/.exec(answer)?.[1];
      if (topicArn === undefined) throw new Error(`RGW CreateTopic answered no TopicArn: ${answer}`);
      await admin.send(
        new PutBucketNotificationConfigurationCommand({
          Bucket: bucket,
          NotificationConfiguration: {
            TopicConfigurations: [{ Id: 'created', TopicArn: topicArn, Events: ['s3:ObjectCreated:*'] }],
          },
        }),
      );
    });
  } catch (error) {
    await cleanUp().catch(() => undefined);
    throw error;
  }

  let stopped: Promise<void> | undefined;
  return {
    kind: 'rgw',
    endpoint,
    bucket,
    accessKeyId,
    secretAccessKey,
    r2Config: {
      accountId: undefined,
      endpoint,
      region: 'auto',
      accessKeyId,
      secretAccessKey,
      bucketName: bucket,
      publicUrl: TEST_PUBLIC_URL,
    },
    r2Env: {
      R2_ENDPOINT: endpoint,
      R2_ACCESS_KEY_ID: accessKeyId,
      R2_SECRET_ACCESS_KEY: secretAccessKey,
      R2_BUCKET_NAME: bucket,
      R2_PUBLIC_URL: TEST_PUBLIC_URL,
    },
    events,
    onEvent(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    stop() {
      stopped ??= cleanUp();
      return stopped;
    },
  };
}

/**
 * Empties the bucket and deletes it. A writer that outlived its test (one that timed out is not stopped) may
 * write again in between: then it is emptied again, a few times.
 */
async function deleteBucket(client: S3Client, bucket: string): Promise<void> {
  for (let round = 1; ; round++) {
    await emptyBucket(client, bucket);
    try {
      // Deleting a bucket removes its notifications: the same read-modify-write as setting them.
      await withNotificationLock(() => client.send(new DeleteBucketCommand({ Bucket: bucket })));
      return;
    } catch (error) {
      if ((error as Error).name !== 'BucketNotEmpty' || round === 10) throw error;
      await sleep(50 * round);
    }
  }
}

/** Deletes every object (and unfinished multipart upload) of the bucket. */
async function emptyBucket(client: S3Client, bucket: string): Promise<void> {
  let token: string | undefined;
  do {
    const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
    const keys = (page.Contents ?? []).map((object) => ({ Key: object.Key! }));
    if (keys.length > 0) {
      const result = await client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys, Quiet: true } }));
      if (result.Errors?.length) throw new Error(`DeleteObjects in ${bucket}: ${result.Errors.map((e) => `${e.Key}: ${e.Code}`).join(', ')}`);
    }
    token = page.NextContinuationToken;
  } while (token !== undefined);
  const uploads = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
  for (const upload of uploads.Uploads ?? []) {
    await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: upload.Key!, UploadId: upload.UploadId! }));
  }
}

/** PutBucketCors with a ready `<CORSConfiguration>` document. */
async function putCorsXml(aws: AwsClient, endpoint: string, bucket: string, xml: string): Promise<void> {
  const response = await aws.fetch(`${endpoint}/${bucket}?cors`, {
    method: 'PUT',
    headers: { 'Content-Type': 'application/xml', 'Content-MD5': createHash('md5').update(xml).digest('base64'), 'X-Amz-Content-Sha256': sha256(xml) },
    body: xml,
  });
  if (!response.ok) throw new Error(`RGW PutBucketCors answered ${response.status}: ${await response.text()}`);
}
