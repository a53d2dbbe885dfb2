/**
 * checkHealth() against a real directory, a real S3-compatible server, a bucket that does not exist, a
 * read-only file system (a tmpfs remounted read-only; needs root) and a free-space threshold; and the HTTP
 * handler (functions/health.ts) that answers with the safe part only.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { APIGatewayProxyEventV2, Context } from 'aws-lambda';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startS3Server, type S3TestServer } from '../test/support/s3-server.ts';
import { createHandler, createUnconfiguredHandler } from './lambda/handlers/health.ts';
import { parseConfig, type Config } from './config.ts';
import { ConfigError } from './errors.ts';
import { createLogger } from './logger.ts';
import { createServices } from './services.ts';
import { DirectoryStore } from './storage/directory-store.ts';
import type { ObjectStore } from './storage/object-store.ts';
import { S3Store } from './storage/s3-store.ts';
import { checkHealth, configurationFailure, toPublicHealth, type HealthReport } from './health.ts';
import { mountTmpfs, remount, tmpfs, unmount } from '../test/support/tmpfs.ts';

let server: S3TestServer;
let root: string;
let localConfig: Config;
let local: DirectoryStore;
const TOKEN = 'health-test-token-0123456789';

beforeAll(async () => {
  server = await startS3Server();
});

afterAll(async () => {
  await server?.stop();
});

beforeEach(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'health-'));
  localConfig = parseConfig({ UPLOAD_PATH: root });
  local = new DirectoryStore({ root, uploadBaseUrl: 'http://127.0.0.1:1' });
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

function r2Config(bucket = server.bucket): Config {
  const { endpoint, accessKeyId, secretAccessKey, r2Config: r2 } = server;
  return parseConfig({
    STORAGE_MODE: 'r2',
    R2_ENDPOINT: endpoint,
    R2_ACCESS_KEY_ID: accessKeyId,
    R2_SECRET_ACCESS_KEY: secretAccessKey,
    R2_BUCKET_NAME: bucket,
    R2_PUBLIC_URL: r2.publicUrl,
    API_TOKEN: TOKEN,
  });
}

const storeOf = (config: Config): ObjectStore => new S3Store(config.r2!);

const byName = (report: HealthReport) => Object.fromEntries(report.checks.map((check) => [check.name, check]));

async function keysOf(store: ObjectStore, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const object of store.list(prefix)) keys.push(object.key);
  return keys;
}

describe('checkHealth', () => {
  it('local mode, writable, enough space: healthy, and the probe is gone', async () => {
    const report = await checkHealth({ config: localConfig, store: local, minFreeBytes: 1 });
    expect(report.status).toBe('healthy');
    expect(report.checks.map((check) => [check.name, check.ok])).toEqual([
      ['configuration', true],
      ['store_reachable', true],
      ['store_writable', true],
      ['store_dialect', true],
      ['disk_space', true],
    ]);
    expect(report.freeBytes).toBeGreaterThan(0);
    expect(await keysOf(local, '')).toEqual([]);
  });

  it('local mode, less free space than the threshold: unhealthy (disk_space)', async () => {
    const report = await checkHealth({ config: localConfig, store: local, minFreeBytes: Number.MAX_SAFE_INTEGER });
    expect(report.status).toBe('unhealthy');
    expect(byName(report).disk_space).toMatchObject({ ok: false, reason: expect.stringMatching(/^low disk space: .* free, threshold /) });
    expect(byName(report).store_writable?.ok).toBe(true);
  });

  it('r2 mode: healthy against the bucket (no disk check), and the probe is gone', async () => {
    const config = r2Config();
    const store = storeOf(config);
    const report = await checkHealth({ config, store });
    expect(report.status).toBe('healthy');
    expect(report.checks.map((check) => check.name)).toEqual(['configuration', 'store_reachable', 'store_writable', 'store_dialect']);
    expect(await keysOf(store, 'health/')).toEqual([]);
  });

  it('a bucket that does not exist: unhealthy, the store is unreachable', async () => {
    const config = r2Config('no-such-bucket');
    const report = await checkHealth({ config, store: storeOf(config) });
    expect(report.status).toBe('unhealthy');
    expect(byName(report).store_reachable).toMatchObject({ ok: false, reason: 'storage unavailable', detail: expect.stringMatching(/NoSuchBucket/) });
    expect(byName(report).store_writable).toMatchObject({ ok: false, reason: 'store unreachable' });
  });

  it('a store that does not answer in time fails with "timed out"', async () => {
    const never = () => new Promise<never>(() => undefined);
    const hanging: ObjectStore = {
      put: never,
      get: never,
      head: never,
      delete: never,
      copy: never,
      presignUpload: never,
      dialect: never,
      prepare: never,
      list: () => ({ [Symbol.asyncIterator]: () => ({ next: never }) }),
    };
    const report = await checkHealth({ config: localConfig, store: hanging, timeoutMs: 50, minFreeBytes: 1 });
    expect(byName(report).store_reachable).toMatchObject({ ok: false, reason: 'timed out' });
  });

  it('the public view keeps status, ok and reason: no path, key or detail', async () => {
    const report = await checkHealth({ config: localConfig, store: local, minFreeBytes: Number.MAX_SAFE_INTEGER });
    const view = toPublicHealth(report);
    expect(view).toEqual({
      status: 'unhealthy',
      checks: {
        configuration: { ok: true },
        store_reachable: { ok: true },
        store_writable: { ok: true },
        store_dialect: { ok: true, reason: expect.stringMatching(/^create-only writes enforced; If-Match compared quoted/) },
        disk_space: { ok: false, reason: expect.stringMatching(/^low disk space/) },
      },
    });
    expect(JSON.stringify(view)).not.toContain(root);
  });

  it('an invalid configuration names the variable, not its value', () => {
    const report = configurationFailure(new ConfigError('R2_SECRET_ACCESS_KEY', 'is required when STORAGE_MODE=r2'));
    expect(toPublicHealth(report)).toEqual({
      status: 'unhealthy',
      checks: { configuration: { ok: false, reason: 'R2_SECRET_ACCESS_KEY is missing or invalid' } },
    });
    const several = configurationFailure(
      new ConfigError([
        { variable: 'PORT', problem: 'must be a whole number between 0 and 65535 (got "abc")' },
        { variable: 'R2_BUCKET_NAME', problem: 'is required when STORAGE_MODE=r2' },
        { variable: 'API_TOKEN', problem: 'is required when STORAGE_MODE=r2' },
      ]),
    );
    expect(toPublicHealth(several).checks).toEqual({ configuration: { ok: false, reason: 'PORT, R2_BUCKET_NAME and API_TOKEN are missing or invalid' } });
  });
});

// A real read-only file system, on a tmpfs. Needs root.

describe(`checkHealth on a read-only file system${tmpfs.note}`, () => {
  it.skipIf(!tmpfs.ok)('is unhealthy: the store cannot be written (permission denied)', async () => {
    const mountPoint = await mkdtemp(path.join(os.tmpdir(), 'health-ro-'));
    mountTmpfs(mountPoint, '256k');
    try {
      const config = parseConfig({ UPLOAD_PATH: mountPoint });
      const store = new DirectoryStore({ root: mountPoint, uploadBaseUrl: 'http://127.0.0.1:1' });
      expect((await checkHealth({ config, store, minFreeBytes: 1 })).status).toBe('healthy');
      await store.put('poses/gen_1/p1.png', Buffer.from('a pose'), { contentType: 'image/png' });

      remount(mountPoint, 'ro');
      const report = await checkHealth({ config, store, minFreeBytes: 1 });
      expect(report.status).toBe('unhealthy');
      expect(byName(report).store_reachable?.ok).toBe(true);
      expect(byName(report).store_writable).toMatchObject({ ok: false, reason: 'permission denied' });
      expect(byName(report).disk_space?.ok).toBe(true);
      expect(JSON.stringify(toPublicHealth(report))).not.toContain(mountPoint);
    } finally {
      unmount(mountPoint);
      await rm(mountPoint, { recursive: true, force: true });
    }
  });

  it.skipIf(!tmpfs.ok)('is unhealthy on a read-only file system that was never written to', async () => {
    const mountPoint = await mkdtemp(path.join(os.tmpdir(), 'health-ro-'));
    mountTmpfs(mountPoint, '64k,ro');
    try {
      const config = parseConfig({ UPLOAD_PATH: mountPoint });
      const report = await checkHealth({ config, store: new DirectoryStore({ root: mountPoint, uploadBaseUrl: 'http://127.0.0.1:1' }), minFreeBytes: 1 });
      expect(report.status).toBe('unhealthy');
      expect(byName(report).store_writable?.ok).toBe(false);
    } finally {
      unmount(mountPoint);
      await rm(mountPoint, { recursive: true, force: true });
    }
  });
});

describe('functions/health.ts', () => {
  const context = { functionName: 'health', callbackWaitsForEmptyEventLoop: false, getRemainingTimeInMillis: () => 10_000 } as unknown as Context;
  const get = (headers: Record<string, string> = {}): APIGatewayProxyEventV2 =>
    ({
      version: '2.0',
      routeKey: 'GET /health',
      rawPath: '/health',
      rawQueryString: '',
      headers: { host: 'api.example.test', ...headers },
      requestContext: { http: { method: 'GET', path: '/health', protocol: 'HTTP/1.1', sourceIp: '203.0.113.7', userAgent: 'vitest' } },
      isBase64Encoded: false,
    }) as unknown as APIGatewayProxyEventV2;
  const silent = createLogger(() => undefined);

  it('200 with the checks when healthy', async () => {
    const handler = createHandler(createServices({ config: localConfig, store: local, logger: silent }), { minFreeBytes: 1 });
    const response = await handler(get(), context);
    expect(response.statusCode).toBe(200);
    expect(response.headers?.['Cache-Control']).toBe('no-store');
    expect(JSON.parse(response.body!)).toEqual({
      status: 'healthy',
      checks: {
        configuration: { ok: true },
        store_reachable: { ok: true },
        store_writable: { ok: true },
        store_dialect: { ok: true, reason: expect.stringMatching(/^create-only writes enforced; If-Match compared quoted/) },
        disk_space: { ok: true, reason: expect.stringMatching(/free, threshold/) },
      },
    });
  });

  it('503 on a missing bucket, naming neither the bucket nor the endpoint; the token is required', async () => {
    const config = r2Config('no-such-bucket');
    const lines: string[] = [];
    const handler = createHandler(createServices({ config, store: storeOf(config), logger: createLogger((line) => lines.push(line)) }));
    expect((await handler(get(), context)).statusCode).toBe(401);

    const response = await handler(get({ authorization: `Bearer ${TOKEN}` }), context);
    expect(response.statusCode).toBe(503);
    expect(JSON.parse(response.body!)).toEqual({
      status: 'unhealthy',
      checks: {
        configuration: { ok: true },
        store_reachable: { ok: false, reason: 'storage unavailable' },
        store_writable: { ok: false, reason: 'store unreachable' },
        store_dialect: { ok: false, reason: 'store unreachable' },
      },
    });
    expect(response.body).not.toContain('no-such-bucket');
    expect(response.body).not.toContain('127.0.0.1');
    expect(lines.some((line) => line.includes('[Storage] Health check failed: store_reachable'))).toBe(true);
  });

  it('503 naming the variable when the configuration is invalid', async () => {
    const lines: string[] = [];
    const handler = createUnconfiguredHandler(new ConfigError('R2_BUCKET_NAME', 'is required when STORAGE_MODE=r2'), createLogger((line) => lines.push(line)));
    expect(lines).toEqual([expect.stringContaining('[Storage] Invalid configuration: R2_BUCKET_NAME is required')]);
    const response = await handler(get(), context);
    expect(response.statusCode).toBe(503);
    expect(JSON.parse(response.body!)).toEqual({
      status: 'unhealthy',
      checks: { configuration: { ok: false, reason: 'R2_BUCKET_NAME is missing or invalid' } },
    });
  });
});
