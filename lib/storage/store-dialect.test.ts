/**
 * The store-dialect probe against real S3 servers: s3rver as patches/ makes it (every condition, as S3 and R2
 * enforce them), stock s3rver (no condition at all), and under `npm run test:rgw` Ceph RGW 16 (unquoted If-Match,
 * no copy-source condition). The service takes the portable path where one exists, and refuses to write to a
 * store that lacks a condition its lock needs, with a sentence naming it, leaving nothing written.
 */
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3_TEST_BACKEND, startS3Server, type S3TestServer } from '../../test/support/s3-server.ts';
import { parseConfig } from '../config.ts';
import { UnsafeStoreError } from '../errors.ts';
import { newStagingKey } from '../layout.ts';
import { createLogger } from '../logger.ts';
import { createServices } from '../services.ts';
import { checkHealth } from '../health.ts';
import { S3Store } from './s3-store.ts';
import { FULL_DIALECT, type StoreDialect } from './store-dialect.ts';

/** What RGW 16.2 enforces, as measured (by this probe; README: stores). */
const RGW_DIALECT: StoreDialect = { createOnly: true, ifMatch: 'unquoted', copySourceCondition: false };

let server: S3TestServer;
let png: Buffer;

beforeAll(async () => {
  server = await startS3Server();
  png = await sharp({ create: { width: 120, height: 80, channels: 3, background: '#a35' } }).png().toBuffer();
});

afterAll(async () => {
  await server?.stop();
});

const services = (store: S3Store) =>
  createServices({ config: parseConfig({ STORAGE_MODE: 'r2', API_TOKEN: 'dialect-test-token-0123', ...server.r2Env }), store, logger: createLogger(() => undefined) });

async function keysOf(store: S3Store): Promise<string[]> {
  const keys: string[] = [];
  for await (const object of store.list('')) keys.push(object.key);
  return keys;
}

describe(`the store's dialect (${S3_TEST_BACKEND})`, () => {
  it('is measured on the store, once, with objects of its own that it removes', async () => {
    const store = new S3Store(server.r2Config);
    const dialect = await store.dialect();
    expect(dialect).toEqual(server.kind === 'rgw' ? RGW_DIALECT : FULL_DIALECT);
    expect(await store.dialect()).toBe(dialect);
    expect((await keysOf(store)).filter((key) => key.includes('.store-dialect'))).toEqual([]);
  });

  it('publishes and re-publishes by the path the dialect allows, and replaces a version in the form the store compares', async () => {
    const store = new S3Store(server.r2Config);
    const app = services(store);
    const pose = { generationId: 'gen_dialect', poseId: 'p' };
    await app.storage.savePoseWithThumbnail({ ...pose, imageBuffer: png });
    const key = newStagingKey(pose);
    await store.put(key, png, { contentType: 'image/png' });
    expect(await app.uploads.processUpload({ key })).toMatchObject({ status: 'ready', width: 120, height: 80 });
    // Replace-if-version, in the form the store compares: a version that is not current is refused.
    const record = (await store.head('records/gen_dialect/p.json'))!;
    await expect(store.put('records/gen_dialect/p.json', Buffer.from('{}'), { contentType: 'application/json', ifMatch: '0'.repeat(32) })).rejects.toMatchObject({ code: 'precondition_failed' });
    await store.put('records/gen_dialect/p.json', (await store.get(record.key))!.body, { contentType: 'application/json', ifMatch: record.etag });
  });
});

describe.skipIf(S3_TEST_BACKEND === 'rgw')('a store that enforces no condition (stock s3rver)', () => {
  let stock: S3TestServer;

  beforeAll(async () => {
    stock = await startS3Server({ bucket: 'poses-stock', enforceConditions: false });
  });

  afterAll(async () => {
    await stock?.stop();
  });

  it('is measured as such', async () => {
    expect(await new S3Store(stock.r2Config).dialect()).toEqual({ createOnly: false, ifMatch: 'none', copySourceCondition: false });
  });

  it('is refused: nothing is saved, published or deleted on it, and the error names the missing condition', async () => {
    const store = new S3Store(stock.r2Config);
    const app = createServices({
      config: parseConfig({ STORAGE_MODE: 'r2', API_TOKEN: 'dialect-test-token-0123', ...stock.r2Env }),
      store,
      logger: createLogger(() => undefined),
    });
    const pose = { generationId: 'gen_unsafe', poseId: 'p' };
    const error = await app.storage.savePoseWithThumbnail({ ...pose, imageBuffer: png }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnsafeStoreError);
    expect((error as Error).message).toMatch(/does not enforce If-None-Match: \* on PutObject, which the pose lock and create-once upload URLs are built on .*: pose-storage refuses to write to it/);
    const key = newStagingKey(pose);
    await store.put(key, png, { contentType: 'image/png' });
    await expect(app.uploads.processUpload({ key })).rejects.toBeInstanceOf(UnsafeStoreError);
    expect(await app.storage.deletePose(pose)).toMatchObject({ ok: false, error: expect.any(UnsafeStoreError) });
    // Only the client's upload is there: no pose file, record or lock was written.
    expect(await keysOf(store)).toEqual([key]);
  });

  it('fails health, saying what the store lacks', async () => {
    const config = parseConfig({ STORAGE_MODE: 'r2', API_TOKEN: 'dialect-test-token-0123', ...stock.r2Env });
    const report = await checkHealth({ config, store: new S3Store(stock.r2Config) });
    expect(report.status).toBe('unhealthy');
    expect(report.checks.find((check) => check.name === 'store_dialect')).toMatchObject({
      ok: false,
      reason: 'unsafe store',
      detail: expect.stringContaining('the store lacks create-only writes (If-None-Match: * on PutObject) and replace-if-version writes (If-Match on PutObject), which the pose lock needs'),
    });
  });
});
