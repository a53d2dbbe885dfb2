/**
 * sst.config.ts without SST: its app() evaluated as SST evaluates it (SST bundles the file with a global
 * `$config` that returns its argument, then calls `app({stage})`; run() is never called here), and the plain
 * parts of infra/ that decide what a stage runs and refuse what it must not.
 */
import { pathToFileURL } from 'node:url';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { chooseTarget, DeployRefused } from '../infra/target.ts';
import { createRequire } from 'node:module';
import { DELIVERIES, dlqRetry, HTTP_TIMEOUT_SECONDS, SHARP_VERSION, thumbnailTiming, WORKER_INVOKE_LIMIT_SECONDS } from '../infra/function-timing.ts';
import { DEFAULT_THUMBNAIL_CONCURRENCY, readSettings } from '../infra/settings.ts';
import { UPLOAD_BUDGET_MS } from '../lib/deadlines.ts';

interface AppConfig {
  name: string;
  home: string;
  providers: Record<string, unknown>;
  removal: string;
  protect: boolean;
}

let app: (input: { stage: string }) => Promise<AppConfig>;

beforeAll(async () => {
  // SST's own banner for this evaluation is `function $config(input) { return input }`.
  vi.stubGlobal('$config', <T>(input: T): T => input);
  // A computed specifier: the project's type-check must not follow it (the file is typed against SST's
  // platform types, by npm run typecheck:sst).
  const file = pathToFileURL(path.resolve(import.meta.dirname, '../sst.config.ts')).href;
  const config = (await import(/* @vite-ignore */ file)) as { default: { app: typeof app; run: unknown } };
  app = config.default.app;
  expect(typeof config.default.run).toBe('function');
});

afterEach(() => {
  vi.unstubAllEnvs();
});

describe('sst.config.ts app()', () => {
  it('stage local: state on this machine, no provider at all (no account, no credentials), removable', async () => {
    expect(await app({ stage: 'local' })).toEqual({ name: 'pose-storage', home: 'local', providers: {}, removal: 'remove', protect: false });
  });

  it('stage local stays providerless even when the environment asks for a cloud target (run() then refuses)', async () => {
    vi.stubEnv('POSE_STORAGE_TARGET', 'r2');
    expect(await app({ stage: 'local' })).toMatchObject({ home: 'local', providers: {} });
  });

  it('a development stage: state in AWS, the AWS and Cloudflare providers, removed with the stage, not protected', async () => {
    vi.stubEnv('POSE_STORAGE_TARGET', '');
    expect(await app({ stage: 'dev' })).toEqual({
      name: 'pose-storage',
      home: 'aws',
      providers: { aws: expect.any(String), cloudflare: expect.any(String) },
      removal: 'remove',
      protect: false,
    });
  });

  it('production: retained on removal and protected', async () => {
    expect(await app({ stage: 'production' })).toMatchObject({ home: 'aws', removal: 'retain', protect: true });
  });

  it('an S3 stage needs no Cloudflare provider (nor its API token)', async () => {
    vi.stubEnv('POSE_STORAGE_TARGET', 's3');
    expect((await app({ stage: 'production' })).providers).toEqual({ aws: expect.any(String) });
  });
});

describe('infra/target.ts: which system a stage runs', () => {
  it('stage local runs the local server under sst dev; other stages deploy R2 by default, or S3', () => {
    expect(chooseTarget('local', {}, true)).toBe('local');
    expect(chooseTarget('dev', {}, false)).toBe('r2');
    expect(chooseTarget('dev', {}, true)).toBe('r2');
    expect(chooseTarget('production', { POSE_STORAGE_TARGET: ' s3 ' }, false)).toBe('s3');
  });

  it.each([
    ['sst deploy of stage local', 'local', {}, false, /Stage "local" is never deployed: it runs the local server through `sst dev` \(npm run dev:sst\)/],
    ['a cloud target on stage local', 'local', { POSE_STORAGE_TARGET: 'r2' }, true, /POSE_STORAGE_TARGET=r2 is a cloud target: stage "local" only runs the local server/],
    ['the local target on another stage', 'production', { POSE_STORAGE_TARGET: 'local' }, false, /The local target runs only on stage "local" \(npm run dev:sst\), not on stage "production"/],
    ['the local target under sst dev on another stage', 'alice', { POSE_STORAGE_TARGET: 'local' }, true, /not on stage "alice"/],
    ['an unknown target', 'dev', { POSE_STORAGE_TARGET: 'gcs' }, false, /POSE_STORAGE_TARGET must be "r2" or "s3" \(got "gcs"\)/],
  ] as const)('refuses %s, in one line that SST prints without a stack', (_, stage, env, dev, message) => {
    let refusal: unknown;
    try {
      chooseTarget(stage, env, dev);
    } catch (error) {
      refusal = error;
    }
    expect(refusal).toBeInstanceOf(DeployRefused);
    const { name, message: text } = refusal as Error;
    expect(name).toBe('VisibleError');
    expect(text).toMatch(message);
    expect(text).not.toContain('\n');
  });
});

describe('infra/settings.ts: the deploy settings, checked before any resource', () => {
  const r2 = { CLOUDFLARE_API_TOKEN: 'cf-token', CLOUDFLARE_DEFAULT_ACCOUNT_ID: '3f4b7e3dcab231cbfdaa90a6a28bd548' };

  it('defaults: a created bucket, no CORS, 10 reserved thumbnail batches at once, no alarm email', () => {
    expect(readSettings('r2', 'dev', r2)).toEqual({
      cloudflareAccountId: r2.CLOUDFLARE_DEFAULT_ACCOUNT_ID,
      bucketName: undefined,
      publicUrl: undefined,
      allowedOrigins: [],
      stagingExpiryDays: 8,
      passedThrough: {},
      thumbnailConcurrency: DEFAULT_THUMBNAIL_CONCURRENCY,
      reserveConcurrency: true,
      alarmEmail: undefined,
    });
    expect(DEFAULT_THUMBNAIL_CONCURRENCY).toBe(10);
  });

  it('reads every setting, normalised as the functions will (origins without trailing slashes)', () => {
    const settings = readSettings('r2', 'production', {
      ...r2,
      R2_BUCKET_NAME: 'lumiku-poses',
      R2_PUBLIC_URL: 'https://poses.example.com',
      ALLOWED_ORIGINS: 'https://app.example.com/, https://admin.example.com',
      UPLOAD_MAX_BYTES: '1048576',
      THUMBNAIL_CONCURRENCY: '25',
      THUMBNAIL_CONCURRENCY_RESERVED: 'false',
      ALARM_EMAIL: 'ops@example.com',
    });
    expect(settings).toMatchObject({
      bucketName: 'lumiku-poses',
      publicUrl: 'https://poses.example.com',
      allowedOrigins: ['https://app.example.com', 'https://admin.example.com'],
      passedThrough: { UPLOAD_MAX_BYTES: '1048576' },
      thumbnailConcurrency: 25,
      reserveConcurrency: false,
      alarmEmail: 'ops@example.com',
    });
  });

  it('keeps a lost upload staged for a week after verify can first find it, whatever the upload URLs\' lifetime', () => {
    // (The lifecycle rule deleted staging/ after a day: with URLs valid 23 h or more, a lost upload expired
    // before verify --repair could see it as lost.)
    for (const [ttl, days] of [['600', 8], ['82800', 8], ['86400', 9], ['604800', 15]] as const) {
      expect(readSettings('s3', 'dev', { UPLOAD_URL_TTL_SECONDS: ttl }).stagingExpiryDays, ttl).toBe(days);
    }
  });

  it('an S3 stage needs no Cloudflare variable', () => {
    expect(readSettings('s3', 'production', {}).cloudflareAccountId).toBeUndefined();
  });

  it.each([
    ['R2 without the Cloudflare token', 'r2', 'dev', { CLOUDFLARE_DEFAULT_ACCOUNT_ID: 'abc' }, /Set CLOUDFLARE_API_TOKEN and CLOUDFLARE_DEFAULT_ACCOUNT_ID/],
    ['production without a public URL', 'r2', 'production', r2, /Set R2_PUBLIC_URL/],
    ['an existing bucket without a public URL', 'r2', 'dev', { ...r2, R2_BUCKET_NAME: 'mine' }, /Set R2_PUBLIC_URL/],
    ['a bad account id', 'r2', 'dev', { ...r2, CLOUDFLARE_DEFAULT_ACCOUNT_ID: 'not/an/id' }, /^R2_ACCOUNT_ID must be a Cloudflare account id/],
    ['a bad plain setting', 's3', 'dev', { UPLOAD_MAX_BYTES: 'lots' }, /^UPLOAD_MAX_BYTES must be a whole number/],
    ['a concurrency of 1', 's3', 'dev', { THUMBNAIL_CONCURRENCY: '1' }, /^THUMBNAIL_CONCURRENCY must be a whole number between 2 and 250 \(got "1"\)/],
    ['a concurrency that is no number', 's3', 'dev', { THUMBNAIL_CONCURRENCY: 'ten' }, /^THUMBNAIL_CONCURRENCY must be/],
    ['a reservation that is no flag', 's3', 'dev', { THUMBNAIL_CONCURRENCY_RESERVED: 'yes' }, /^THUMBNAIL_CONCURRENCY_RESERVED must be "true" or "false"/],
    ['an alarm email that is no address', 's3', 'dev', { ALARM_EMAIL: 'ops' }, /^ALARM_EMAIL must be an email address/],
  ] as const)('refuses %s, naming the variable in one line', (_, target, stage, env, message) => {
    expect(() => readSettings(target, stage, env)).toThrow(expect.objectContaining({ name: 'VisibleError', message: expect.stringMatching(message) }));
  });
});

describe('infra/: timeouts derived from lib/deadlines.ts, and what is deployed is what was tested', () => {
  it('R2: the Worker waits for one message\'s invocation at most 65 s, under the 90 s a Worker may hold a subrequest', () => {
    const r2 = thumbnailTiming('r2');
    expect(r2).toEqual({ batchSize: 1, timeoutSeconds: 55, forwardTimeoutSeconds: 65 });
    expect(r2.forwardTimeoutSeconds).toBeLessThanOrEqual(WORKER_INVOKE_LIMIT_SECONDS);
    // (It held a batch of 4 at 60 s an image for up to 250 s, past Cloudflare's 120 s proxy read timeout.)
  });

  it('every timeout covers the work it starts: an upload\'s worst case per message, a delete\'s under the gateway\'s 30 s', () => {
    for (const target of ['r2', 's3'] as const) {
      const { batchSize, timeoutSeconds } = thumbnailTiming(target);
      expect(timeoutSeconds * 1000, target).toBeGreaterThanOrEqual(batchSize * UPLOAD_BUDGET_MS);
    }
    expect(thumbnailTiming('s3')).toMatchObject({ batchSize: 4, timeoutSeconds: 220 });
    expect(HTTP_TIMEOUT_SECONDS).toBeLessThan(30);
  });

  it('a message is a dead letter after the same 5 deliveries on both paths (Cloudflare counts retries, SQS deliveries)', () => {
    expect(DELIVERIES).toBe(5);
    expect(dlqRetry('r2') + 1).toBe(DELIVERIES);
    expect(dlqRetry('s3')).toBe(DELIVERIES);
  });

  it('installs the exact sharp the tests ran with (nodejs.install takes a version, not the lockfile)', () => {
    const installed = (createRequire(import.meta.url)('../node_modules/sharp/package.json') as { version: string }).version;
    expect(SHARP_VERSION).toMatch(/^\d+\.\d+\.\d+$/);
    expect(SHARP_VERSION).toBe(installed);
  });
});
