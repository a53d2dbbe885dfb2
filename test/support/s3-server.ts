/**
 * A real S3-compatible server for tests: @20minutes/s3rver, in-process, on 127.0.0.1 and a random port, with a
 * throwaway directory and one bucket. Signatures are checked (SigV4 headers and presigned URLs) exactly as the
 * server implements them; nothing here relaxes that.
 *
 * patches/ (applied by `npm ci`'s postinstall) makes s3rver behave as S3 and R2 do where the tests rely on it:
 * - bucket-level requests of the current AWS SDK (ListObjectsV2, DeleteObjects) are signed as `/bucket/`, not
 *   `/bucket` (without it every such request fails with SignatureDoesNotMatch);
 * - conditional writes are enforced: If-None-Match / If-Match on PUT and x-amz-copy-source-if-match on copies
 *   (412 PreconditionFailed), each condition checked atomically with its write (writes and deletes of one key
 *   run one at a time); a copy with replaced metadata keeps the source's ETag;
 * - deleting an object removes the directories it emptied with a plain rmdir (s3rver's recursive rm, after an
 *   emptiness check, deleted objects written into the directory in between);
 * - an object is replaced whole (written beside it, then renamed over it) and a GET opens one version under the
 *   key's turn: s3rver rewrote the file in place, so a GET racing a PUT was cut off or got two versions mixed
 *   (test/support/s3-server.test.ts);
 * - continuation tokens use 3DES (single DES is off in Node >= 17).
 *
 * Quirks worth knowing: s3rver lets unsigned (anonymous) requests through, and it answers every CORS preflight
 * it accepts with `Access-Control-Allow-Origin: *`.
 *
 * With S3_TEST_BACKEND=rgw (`npm run test:rgw`), startS3Server() returns a bucket of a real Ceph RADOS Gateway
 * instead (test/support/rgw-server.ts: a fresh bucket per call, its events pushed by RGW); `kind` says which.
 * A test that needs what only s3rver has (a server of its own it can stop) skips on RGW: see S3_TEST_BACKEND.
 */
import { mkdtemp, rm, utimes } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { S3EventRecord } from 'aws-lambda';
import type { R2Config } from '../../lib/config.ts';

/** s3rver's hard-coded account (lib/models/account.js). */
export const S3RVER_ACCESS_KEY_ID = 'S3RVER';
export const S3RVER_SECRET_ACCESS_KEY = 'S3RVER';
export const TEST_PUBLIC_URL = 'https://poses.example.test';

/**
 * One record of an s3rver object event: the S3 notification format, except that delete records carry no
 * size or eTag, and that the key is not URL-encoded (real S3 encodes it, with `+` for spaces). s3rver emits
 * ObjectCreated:Put / :Post / :Copy and ObjectRemoved:Delete; a multi-object delete (DeleteObjects) emits none.
 */
export type S3rverEventRecord = Omit<S3EventRecord, 's3'> & {
  s3: Omit<S3EventRecord['s3'], 'object'> & {
    object: { key: string; sequencer: string; size?: number; eTag?: string };
  };
};

export interface CorsRule {
  allowedOrigins: readonly string[];
  allowedMethods: readonly ('GET' | 'PUT' | 'POST' | 'DELETE' | 'HEAD')[];
  allowedHeaders?: readonly string[];
  exposeHeaders?: readonly string[];
  maxAgeSeconds?: number;
}

export interface S3TestServerOptions {
  /** Default `poses-test`. */
  bucket?: string;
  /** The bucket's CORS configuration: a `<CORSConfiguration>` XML document, or rules to build one from. */
  cors?: string | readonly CorsRule[];
  /**
   * False: stock s3rver's behaviour, a store that enforces no condition (If-None-Match, If-Match, the copy
   * source's). s3rver only. Default true (patches/ enforces them as S3 and R2 do).
   */
  enforceConditions?: boolean;
}

export interface S3TestServer {
  /**
   * `s3rver`: in-process, a server of its own (stop() closes it). `rgw`: a bucket of the shared Ceph RADOS
   * Gateway that test/rgw/start-rgw.sh started (stop() deletes the bucket; the endpoint keeps answering).
   */
  kind: 's3rver' | 'rgw';
  /** `http://127.0.0.1:<port>` */
  endpoint: string;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** For createS3Client(): this server's endpoint, bucket and keys, and TEST_PUBLIC_URL. */
  r2Config: R2Config;
  /** The same as R2_* environment variables (r2 mode's configuration, without STORAGE_MODE and API_TOKEN). */
  r2Env: Record<string, string>;
  /**
   * Every object event so far, oldest first (clear it with `events.length = 0`). On RGW, ObjectCreated only,
   * `eventSource` "ceph:s3" and `awsRegion` "".
   */
  events: S3rverEventRecord[];
  /** Calls `listener` for each later object event; returns the function that unsubscribes it. */
  onEvent(listener: (record: S3rverEventRecord) => void): () => void;
  /**
   * Makes an object look `ageMs` old to the store itself (its Last-Modified): what a lock left by a writer that
   * died long ago, or a generation untouched for weeks, looks like. s3rver only: RGW cannot date an object in
   * the past (tests that need it skip on RGW, or wait for the store's clock instead).
   */
  backdate?(key: string, ageMs: number): Promise<void>;
  /**
   * Closes the server (dropping open connections) and removes its directory; on RGW, empties and deletes the
   * bucket and its event topic instead. Safe to call twice.
   */
  stop(): Promise<void>;
}

/** The part of s3rver's (untyped, CommonJS) API used here. */
interface S3rverInstance {
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
  on(event: 'event', listener: (event: { Records: S3rverEventRecord[] }) => void): unknown;
  httpServer?: Server;
  /** Read by the patch's condition checks (patches/@20minutes+s3rver+*.patch). */
  ignoreConditions?: boolean;
}
type S3rverConstructor = new (options: {
  address: string;
  port: number;
  directory: string;
  silent: boolean;
  resetOnClose: boolean;
  configureBuckets: { name: string; configs?: string[] }[];
}) => S3rverInstance;

/**
 * Which server startS3Server() starts: `s3rver` (the default), or `rgw` when S3_TEST_BACKEND=rgw. Read when
 * this module loads, so that a test can skip before any server starts (`it.skipIf(S3_TEST_BACKEND === 'rgw')`).
 */
export const S3_TEST_BACKEND: S3TestServer['kind'] = selectBackend(process.env.S3_TEST_BACKEND);

function selectBackend(value: string | undefined): S3TestServer['kind'] {
  if (value === undefined || value === '' || value === 's3rver') return 's3rver';
  if (value === 'rgw') return 'rgw';
  throw new Error(`S3_TEST_BACKEND is ${JSON.stringify(value)}: it is s3rver (the default) or rgw`);
}

const S3rver = createRequire(import.meta.url)('@20minutes/s3rver') as S3rverConstructor;

/** Starts a server with one bucket. Call `stop()` when done (e.g. in afterAll). */
export async function startS3Server(options: S3TestServerOptions = {}): Promise<S3TestServer> {
  if (S3_TEST_BACKEND === 'rgw') {
    const { startRgwS3Server } = await import('./rgw-server.ts');
    return startRgwS3Server(options);
  }
  const bucket = options.bucket ?? 'poses-test';
  const directory = await mkdtemp(path.join(tmpdir(), 's3rver-'));
  const configs = options.cors === undefined ? [] : [typeof options.cors === 'string' ? options.cors : corsConfigXml(options.cors)];
  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    directory,
    // S3RVER_LOG=1 prints every request and server-side error (e.g. the cause of an InternalError).
    silent: process.env.S3RVER_LOG !== '1',
    resetOnClose: false,
    configureBuckets: [{ name: bucket, configs }],
  });
  server.ignoreConditions = options.enforceConditions === false;

  const events: S3rverEventRecord[] = [];
  const listeners = new Set<(record: S3rverEventRecord) => void>();
  server.on('event', (event) => {
    for (const record of event.Records) {
      events.push(record);
      for (const listener of listeners) listener(record);
    }
  });

  let address: AddressInfo;
  try {
    address = await server.run();
  } catch (error) {
    await rm(directory, { recursive: true, force: true });
    throw error;
  }
  const endpoint = `http://127.0.0.1:${address.port}`;

  let stopped: Promise<void> | undefined;
  const stop = () => {
    stopped ??= (async () => {
      const closing = server.close();
      // Keep-alive sockets of SDK clients would otherwise hold close() open until they time out.
      server.httpServer?.closeAllConnections();
      await closing;
      await rm(directory, { recursive: true, force: true });
    })();
    return stopped;
  };

  return {
    kind: 's3rver',
    endpoint,
    bucket,
    accessKeyId: S3RVER_ACCESS_KEY_ID,
    secretAccessKey: S3RVER_SECRET_ACCESS_KEY,
    r2Config: {
      accountId: undefined,
      endpoint,
      region: 'auto',
      accessKeyId: S3RVER_ACCESS_KEY_ID,
      secretAccessKey: S3RVER_SECRET_ACCESS_KEY,
      bucketName: bucket,
      publicUrl: TEST_PUBLIC_URL,
    },
    r2Env: {
      R2_ENDPOINT: endpoint,
      R2_ACCESS_KEY_ID: S3RVER_ACCESS_KEY_ID,
      R2_SECRET_ACCESS_KEY: S3RVER_SECRET_ACCESS_KEY,
      R2_BUCKET_NAME: bucket,
      R2_PUBLIC_URL: TEST_PUBLIC_URL,
    },
    events,
    onEvent(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async backdate(key, ageMs) {
      // s3rver's Last-Modified is its object file's mtime (lib/stores/filesystem.js).
      const parts = key.split('/');
      const file = path.join(directory, bucket, ...parts.slice(0, -1), `${parts.at(-1)!}._S3rver_object`);
      const then = new Date(Date.now() - ageMs);
      await utimes(file, then, then);
    },
    stop,
  };
}

/** A `<CORSConfiguration>` document for s3rver's (or S3's) bucket CORS. */
export function corsConfigXml(rules: readonly CorsRule[]): string {
  const element = (name: string, values: readonly (string | number)[] = []) =>
    values.map((value) => `<${name}>${escapeXml(String(value))}</${name}>`).join('');
  const body = rules
    .map(
      (rule) =>
        '<CORSRule>' +
        element('AllowedOrigin', rule.allowedOrigins) +
        element('AllowedMethod', rule.allowedMethods) +
        element('AllowedHeader', rule.allowedHeaders) +
        element('ExposeHeader', rule.exposeHeaders) +
        element('MaxAgeSeconds', rule.maxAgeSeconds === undefined ? [] : [rule.maxAgeSeconds]) +
        '</CORSRule>',
    )
    .join('');
  return `<CORSConfiguration>${body}</CORSConfiguration>`;
}

function escapeXml(value: string): string {
  return value.replace(/[<>&'"]/g, (ch) => `&#${ch.charCodeAt(0)};`);
}
