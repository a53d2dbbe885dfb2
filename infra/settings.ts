import { type Config, parseConfig } from '../lib/config.ts';
import { stagingExpiryDays } from '../lib/deadlines.ts';
import { ConfigError, describeValue } from '../lib/errors.ts';
import { type CloudTarget, DeployRefused, type Env, setting } from './target.ts';

/**
 * The deploy's plain (non-secret) settings, read from its environment (a shell export, or `.env` /
 * `.env.<stage>`, which sst loads) because some of them shape the infrastructure (which bucket, CORS rules,
 * concurrency), and checked before any resource is declared: a bad value stops `sst deploy` with one line
 * naming the variable. Plain functions of the environment (no SST globals), so the tests call them as they are.
 */
export interface Settings {
  /** The Cloudflare account of the bucket, its queues and Workers (CLOUDFLARE_DEFAULT_ACCOUNT_ID; r2 only). */
  cloudflareAccountId: string | undefined;
  /** An existing bucket (R2_BUCKET_NAME); unset, the deploy creates one. */
  bucketName: string | undefined;
  /** The bucket's public base URL (R2_PUBLIC_URL); unset, see infra/storage.ts. */
  publicUrl: string | undefined;
  allowedOrigins: readonly string[];
  /**
   * The age in days at which the bucket's lifecycle rule deletes staged objects: derived from the upload URLs'
   * lifetime, so that `verify --repair` always finds a lost upload first (lib/deadlines.ts).
   */
  stagingExpiryDays: number;
  /** The functions' optional settings (lib/config.ts names), passed through when set. */
  passedThrough: Readonly<Record<string, string>>;
  /** How many thumbnail batches run at once (THUMBNAIL_CONCURRENCY). */
  thumbnailConcurrency: number;
  /** Whether the thumbnail function reserves that concurrency (THUMBNAIL_CONCURRENCY_RESERVED). */
  reserveConcurrency: boolean;
  /** Subscribed to the alarm topic when set (ALARM_EMAIL). */
  alarmEmail: string | undefined;
}

const PASSED_THROUGH = [
  'UPLOAD_MAX_BYTES',
  'PUBLISHED_MAX_BYTES',
  'UPLOAD_URL_TTL_SECONDS',
  'MAX_INPUT_PIXELS',
  'CACHE_MAX_AGE_SECONDS',
  'KEEP_IMAGE_METADATA',
  'POSE_VARIANTS',
  'READY_WEBHOOK_URL',
  'POWERTOOLS_LOG_LEVEL',
] as const;

/**
 * 10 batches of 4 images at once is 40 images in flight, about 40 full vCPUs for up to 4 minutes: far more
 * than a burst of uploads needs to be ready within seconds, and a tenth of a default account's 1,000
 * concurrent executions, so the other functions keep theirs. The lower bound is SQS's (an event source
 * mapping's maximumConcurrency is at least 2); the upper one Cloudflare Queues' (250 concurrent consumers).
 */
export const DEFAULT_THUMBNAIL_CONCURRENCY = 10;
const CONCURRENCY_RANGE = [2, 250] as const;

/** lib/config.ts's parser, its error (which names the variable, never a secret's value) as a one-line refusal. */
export function checkConfig(env: Env): Config {
  try {
    return parseConfig(env);
  } catch (error) {
    throw error instanceof ConfigError ? new DeployRefused(error.message) : error;
  }
}

function concurrency(env: Env): number {
  const value = setting(env, 'THUMBNAIL_CONCURRENCY');
  if (value === undefined) return DEFAULT_THUMBNAIL_CONCURRENCY;
  const [min, max] = CONCURRENCY_RANGE;
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
    throw new DeployRefused(`THUMBNAIL_CONCURRENCY must be a whole number between ${min} and ${max} (got ${describeValue(value)})`);
  }
  return Number(value);
}

function flag(env: Env, name: string, fallback: boolean): boolean {
  const value = setting(env, name);
  if (value === undefined) return fallback;
  if (value === 'true' || value === 'false') return value === 'true';
  throw new DeployRefused(`${name} must be "true" or "false" (got ${describeValue(value)})`);
}

function email(env: Env): string | undefined {
  const value = setting(env, 'ALARM_EMAIL');
  if (value !== undefined && !/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(value)) {
    throw new DeployRefused(`ALARM_EMAIL must be an email address (got ${describeValue(value)})`);
  }
  return value;
}

/** The settings of a cloud stage, or a DeployRefused naming the variable at fault. */
export function readSettings(target: CloudTarget, stage: string, env: Env): Settings {
  const cloudflareAccountId = setting(env, 'CLOUDFLARE_DEFAULT_ACCOUNT_ID');
  if (target === 'r2' && (cloudflareAccountId === undefined || setting(env, 'CLOUDFLARE_API_TOKEN') === undefined)) {
    throw new DeployRefused('Set CLOUDFLARE_API_TOKEN and CLOUDFLARE_DEFAULT_ACCOUNT_ID to deploy to R2 (README: Deployment)');
  }
  const bucketName = setting(env, 'R2_BUCKET_NAME');
  const publicUrl = setting(env, 'R2_PUBLIC_URL');
  if (target === 'r2' && publicUrl === undefined && (stage === 'production' || bucketName !== undefined)) {
    throw new DeployRefused(
      'Set R2_PUBLIC_URL to the public (custom domain) URL of the bucket: the r2.dev domain is only used for a bucket the deploy creates, outside production',
    );
  }
  const passedThrough = Object.fromEntries(
    PASSED_THROUGH.flatMap((name) => {
      const value = setting(env, name);
      return value === undefined ? [] : [[name, value]];
    }),
  );

  // The functions' own parser, with stand-ins for what is not known yet (the secrets, a bucket the deploy
  // creates): a bad plain value fails here, before any resource. infra/environment.ts checks the real values again.
  const { allowedOrigins, uploadUrlTtlSeconds } = checkConfig({
    STORAGE_MODE: 'r2',
    R2_ENDPOINT: 'https://stand-in.invalid',
    R2_ACCOUNT_ID: cloudflareAccountId,
    R2_ACCESS_KEY_ID: 'stand-in',
    R2_SECRET_ACCESS_KEY: 'stand-in',
    API_TOKEN: 'stand-in-api-token',
    WEBHOOK_SECRET: 'stand-in-webhook-secret',
    R2_BUCKET_NAME: bucketName ?? 'stand-in',
    R2_PUBLIC_URL: publicUrl ?? 'https://stand-in.invalid',
    ALLOWED_ORIGINS: setting(env, 'ALLOWED_ORIGINS'),
    ...passedThrough,
  });

  return {
    cloudflareAccountId,
    bucketName,
    publicUrl,
    allowedOrigins,
    stagingExpiryDays: stagingExpiryDays(uploadUrlTtlSeconds),
    passedThrough,
    thumbnailConcurrency: concurrency(env),
    reserveConcurrency: flag(env, 'THUMBNAIL_CONCURRENCY_RESERVED', true),
    alarmEmail: email(env),
  };
}
