import path from 'node:path';
import { z } from 'zod';
import { ConfigError, describeValue } from './errors.ts';

/**
 * The service's configuration, parsed once from the environment (see .env.example for every variable).
 * Each variable has its own schema so that an error names exactly the variable at fault; secret values are
 * never echoed back.
 */
export type StorageMode = 'local' | 'r2';

export interface R2Config {
  accountId: string | undefined;
  accessKeyId: string;
  secretAccessKey: string;
  bucketName: string;
  publicUrl: string;
  endpoint: string;
  /** Signing region: `auto` for R2; the bucket's region for AWS S3. */
  region: string;
}

export interface WebhookConfig {
  url: string;
  secret: string;
}

export interface Config {
  storageMode: StorageMode;
  /** Absolute path of the local storage root (local mode). */
  uploadPath: string;
  r2: R2Config | undefined;
  /** Bearer tokens accepted by the HTTP handlers; empty means no auth (local mode only). */
  apiTokens: readonly string[];
  port: number;
  /** Interface the local server listens on. */
  host: string;
  uploadMaxBytes: number;
  uploadUrlTtlSeconds: number;
  maxInputPixels: number;
  /** Publish images with their metadata (prompts, EXIF, XMP); by default it is stripped. */
  keepImageMetadata: boolean;
  /** CORS origins; `['*']` allows any. */
  allowedOrigins: readonly string[];
  webhook: WebhookConfig | undefined;
}

type Env = Readonly<Record<string, string | undefined>>;

const SECRET_VARIABLES = new Set(['R2_ACCESS_KEY_ID', 'R2_SECRET_ACCESS_KEY', 'API_TOKEN', 'WEBHOOK_SECRET']);

const MIN_TOKEN_LENGTH = 16;

const integer = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, `must be a whole number between ${min} and ${max}`)
    .transform(Number)
    .pipe(z.number().int().min(min, `must be at least ${min}`).max(max, `must be at most ${max}`));

const withoutTrailingSlashes = (url: string) => url.replace(/\/+$/, '');

const httpUrl = z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).transform(withoutTrailingSlashes);

const list = z.string().transform((value) =>
  value
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item.length > 0),
);

const schemas = {
  STORAGE_MODE: z.enum(['local', 'r2'], { error: 'must be "local" or "r2"' }),
  UPLOAD_PATH: z.string().min(1, 'must not be empty'),
  R2_ACCOUNT_ID: z.string().regex(/^[A-Za-z0-9]{1,64}$/, 'must be a Cloudflare account id (letters and digits)'),
  R2_ACCESS_KEY_ID: z.string().min(1, 'must not be empty'),
  R2_SECRET_ACCESS_KEY: z.string().min(1, 'must not be empty'),
  R2_BUCKET_NAME: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'must be a valid bucket name (3-63 of a-z, 0-9, ".", "-")'),
  R2_PUBLIC_URL: httpUrl,
  R2_ENDPOINT: httpUrl,
  R2_REGION: z.string().regex(/^[a-z0-9-]{1,32}$/, 'must be a region name such as "auto" or "eu-west-1"'),
  API_TOKEN: list.pipe(
    z
      .array(z.string().min(MIN_TOKEN_LENGTH, `must hold tokens of at least ${MIN_TOKEN_LENGTH} characters each`))
      .min(1, 'must hold at least one token'),
  ),
  PORT: integer(0, 65535),
  HOST: z.string().regex(/^[A-Za-z0-9.:-]{1,253}$/, 'must be a host name or IP address'),
  UPLOAD_MAX_BYTES: integer(1, 5 * 1024 ** 3),
  UPLOAD_URL_TTL_SECONDS: integer(1, 7 * 24 * 3600),
  MAX_INPUT_PIXELS: integer(1, 2 ** 32 - 1),
  KEEP_IMAGE_METADATA: z.enum(['true', 'false'], { error: 'must be "true" or "false"' }).transform((value) => value === 'true'),
  ALLOWED_ORIGINS: list.pipe(
    z.array(
      z
        .string()
        // Browsers send an Origin without a trailing slash, so "https://app.example.com/" must match it too.
        .transform(withoutTrailingSlashes)
        .refine(
          (origin) => origin === '*' || /^https?:\/\/[^/?#\s]+$/.test(origin),
          'must list "*" or origins such as https://app.example.com (scheme, host and optional port)',
        ),
    ),
  ),
  READY_WEBHOOK_URL: httpUrl,
  WEBHOOK_SECRET: z.string().min(MIN_TOKEN_LENGTH, `must be at least ${MIN_TOKEN_LENGTH} characters`),
} as const;

type Variable = keyof typeof schemas;
type Parsed<V extends Variable> = z.output<(typeof schemas)[V]>;

/** Parses one variable; an empty string counts as unset. Throws a ConfigError naming the variable. */
function read<V extends Variable>(env: Env, name: V): Parsed<V> | undefined {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return undefined;
  const result = schemas[name].safeParse(raw.trim());
  if (result.success) return result.data as Parsed<V>;
  const problem = result.error.issues[0]?.message ?? 'is invalid';
  const shown = SECRET_VARIABLES.has(name) ? '' : ` (got ${describeValue(raw)})`;
  throw new ConfigError(name, `${problem}${shown}`);
}

function required<V extends Variable>(env: Env, name: V, why: string): Parsed<V> {
  const value = read(env, name);
  if (value === undefined) throw new ConfigError(name, `is required ${why}`);
  return value;
}

export const DEFAULTS = {
  STORAGE_MODE: 'local',
  UPLOAD_PATH: './uploads',
  PORT: 3000,
  HOST: '127.0.0.1',
  UPLOAD_MAX_BYTES: 25 * 1024 * 1024,
  UPLOAD_URL_TTL_SECONDS: 600,
  MAX_INPUT_PIXELS: 50_000_000,
  KEEP_IMAGE_METADATA: false,
} as const;

function readR2(env: Env): R2Config {
  const why = 'when STORAGE_MODE=r2';
  const accountId = read(env, 'R2_ACCOUNT_ID');
  const endpoint = read(env, 'R2_ENDPOINT') ?? (accountId && `https://${accountId}.r2.cloudflarestorage.com`);
  if (!endpoint) throw new ConfigError('R2_ACCOUNT_ID', `is required ${why} unless R2_ENDPOINT is set`);
  return {
    accountId,
    endpoint,
    region: read(env, 'R2_REGION') ?? 'auto',
    accessKeyId: required(env, 'R2_ACCESS_KEY_ID', why),
    secretAccessKey: required(env, 'R2_SECRET_ACCESS_KEY', why),
    bucketName: required(env, 'R2_BUCKET_NAME', why),
    publicUrl: required(env, 'R2_PUBLIC_URL', why),
  };
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

/** Without API tokens the local server has no auth, so it may only listen where no one else can reach it. */
function readHost(env: Env, apiTokens: readonly string[]): string {
  const host = read(env, 'HOST') ?? DEFAULTS.HOST;
  if (apiTokens.length === 0 && !LOOPBACK.has(host)) {
    throw new ConfigError('HOST', `must be a loopback address (127.0.0.1, ::1, localhost) while API_TOKEN is unset (got ${describeValue(host)})`);
  }
  return host;
}

/** Parses the configuration from `env`. Throws a ConfigError naming the first variable at fault. */
export function parseConfig(env: Env = process.env): Config {
  const storageMode = read(env, 'STORAGE_MODE') ?? DEFAULTS.STORAGE_MODE;
  const r2 = storageMode === 'r2' ? readR2(env) : undefined;
  const apiTokens = storageMode === 'r2' ? required(env, 'API_TOKEN', 'when STORAGE_MODE=r2') : (read(env, 'API_TOKEN') ?? []);
  const webhookUrl = read(env, 'READY_WEBHOOK_URL');
  const webhook = webhookUrl
    ? { url: webhookUrl, secret: required(env, 'WEBHOOK_SECRET', 'when READY_WEBHOOK_URL is set') }
    : undefined;
  return {
    storageMode,
    uploadPath: path.resolve(read(env, 'UPLOAD_PATH') ?? DEFAULTS.UPLOAD_PATH),
    r2,
    apiTokens,
    port: read(env, 'PORT') ?? DEFAULTS.PORT,
    host: readHost(env, apiTokens),
    uploadMaxBytes: read(env, 'UPLOAD_MAX_BYTES') ?? DEFAULTS.UPLOAD_MAX_BYTES,
    uploadUrlTtlSeconds: read(env, 'UPLOAD_URL_TTL_SECONDS') ?? DEFAULTS.UPLOAD_URL_TTL_SECONDS,
    maxInputPixels: read(env, 'MAX_INPUT_PIXELS') ?? DEFAULTS.MAX_INPUT_PIXELS,
    keepImageMetadata: read(env, 'KEEP_IMAGE_METADATA') ?? DEFAULTS.KEEP_IMAGE_METADATA,
    allowedOrigins: read(env, 'ALLOWED_ORIGINS') ?? (storageMode === 'local' ? ['*'] : []),
    webhook,
  };
}

let cached: Config | undefined;

/** The process's configuration, parsed on first use and kept (Lambda reuses it across invocations). */
export function getConfig(): Config {
  cached ??= parseConfig(process.env);
  return cached;
}
