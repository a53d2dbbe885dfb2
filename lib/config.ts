import { isIP } from 'node:net';
import path from 'node:path';
import * as z from 'zod/mini';
import { ConfigError, describeValue, type ConfigProblem } from './errors.ts';
import { parsePoseVariants, REFERENCE_FILES, type PoseFiles } from './pose-files.ts';

/**
 * The service's configuration, parsed once from the environment (see .env.example for every variable).
 * Each variable has its own schema so that an error names exactly the variable at fault, every variable at
 * fault is reported at once, and secret values are never echoed back.
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
  /**
   * Where clients reach the local server, when not at the address they used (a proxy, another name): its
   * upload URLs point there. Unset: the Host of each request.
   */
  localServerOrigin: string | undefined;
  uploadMaxBytes: number;
  /** The largest image published (a JPEG or WebP converted to PNG grows): larger ones are rejected `too_large`. */
  publishedMaxBytes: number;
  uploadUrlTtlSeconds: number;
  maxInputPixels: number;
  /** How long browsers and CDNs may keep a published file before revalidating it. */
  cacheMaxAgeSeconds: number;
  /** Publish images with their metadata (prompts, EXIF, XMP); by default it is stripped. */
  keepImageMetadata: boolean;
  /** What a pose publishes: the reference's image and thumbnail, and the variants of POSE_VARIANTS (pose-files.ts). */
  poseFiles: PoseFiles;
  /**
   * CORS origins; `['*']` allows any. Without API tokens (local mode) only the server's own origins may be
   * listed: without a token, a page another site serves could otherwise delete and overwrite poses.
   */
  allowedOrigins: readonly string[];
  webhook: WebhookConfig | undefined;
}

type Env = Readonly<Record<string, string | undefined>>;

const SECRET_VARIABLES = new Set(['R2_ACCESS_KEY_ID', 'R2_SECRET_ACCESS_KEY', 'API_TOKEN', 'WEBHOOK_SECRET']);

const MIN_TOKEN_LENGTH = 16;

const integer = (min: number, max: number, whyMax = '') =>
  z.pipe(
    z.pipe(z.string().check(z.regex(/^\d+$/, `must be a whole number between ${min} and ${max}`)), z.transform(Number)),
    z.number().check(z.gte(min, `must be at least ${min}`), z.lte(max, `must be at most ${max}${whyMax}`)),
  );

/**
 * The largest upload, and the largest published image, any path can process: the thumbnail function holds an
 * upload whole in memory with its decode and its published PNG (1,769 MB in all, infra/thumbnails.ts), and
 * Node reads no file above 2 GiB at once. Larger limits are refused at start-up, never met as an upload retried
 * for ever.
 */
export const MAX_OBJECT_BYTES = 512 * 1024 ** 2;
const WHY_MAX_OBJECT_BYTES = ' (512 MiB): an upload is read whole into memory to be validated, with its decode and the PNG it is published as';

const withoutTrailingSlashes = (url: string) => url.replace(/\/+$/, '');

const httpUrl = z.pipe(z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }), z.transform(withoutTrailingSlashes));

const list = z.pipe(
  z.string(),
  z.transform((value) =>
    value
      .split(',')
      .map((item) => item.trim())
      .filter((item) => item.length > 0),
  ),
);

/** A host name (RFC 1123 labels) or an IPv4/IPv6 address, as the local server can listen on it. */
const isHost = (host: string) => isIP(host) !== 0 || /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/.test(host);

const schemas = {
  STORAGE_MODE: z.enum(['local', 'r2'], { error: 'must be "local" or "r2"' }),
  UPLOAD_PATH: z.string().check(z.minLength(1, 'must not be empty')),
  R2_ACCOUNT_ID: z.string().check(z.regex(/^[A-Za-z0-9]{1,64}$/, 'must be a Cloudflare account id (letters and digits)')),
  R2_ACCESS_KEY_ID: z.string().check(z.minLength(1, 'must not be empty')),
  R2_SECRET_ACCESS_KEY: z.string().check(z.minLength(1, 'must not be empty')),
  R2_BUCKET_NAME: z.string().check(z.regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'must be a valid bucket name (3-63 of a-z, 0-9, ".", "-")')),
  R2_PUBLIC_URL: httpUrl,
  R2_ENDPOINT: httpUrl,
  R2_REGION: z.string().check(z.regex(/^[a-z0-9-]{1,32}$/, 'must be a region name such as "auto" or "eu-west-1"')),
  API_TOKEN: z.pipe(
    list,
    z
      .array(z.string().check(z.minLength(MIN_TOKEN_LENGTH, `must hold tokens of at least ${MIN_TOKEN_LENGTH} characters each`)))
      .check(z.minLength(1, 'must hold at least one token')),
  ),
  PORT: integer(0, 65535),
  HOST: z.string().check(z.refine(isHost, 'must be a host name or an IPv4/IPv6 address (such as 127.0.0.1, 0.0.0.0 or ::)')),
  PUBLIC_BASE_URL: z.pipe(
    httpUrl,
    z.string().check(
      z.refine((url) => /^https?:\/\/[^/?#]+$/.test(url), 'must be an origin such as http://192.168.1.20:3000 (scheme, host and optional port, no path)'),
    ),
  ),
  UPLOAD_MAX_BYTES: integer(1, MAX_OBJECT_BYTES, WHY_MAX_OBJECT_BYTES),
  PUBLISHED_MAX_BYTES: integer(1, MAX_OBJECT_BYTES, WHY_MAX_OBJECT_BYTES),
  UPLOAD_URL_TTL_SECONDS: integer(1, 7 * 24 * 3600),
  MAX_INPUT_PIXELS: integer(1, 2 ** 32 - 1),
  CACHE_MAX_AGE_SECONDS: integer(0, 365 * 24 * 3600),
  KEEP_IMAGE_METADATA: z.pipe(z.enum(['true', 'false'], { error: 'must be "true" or "false"' }), z.transform((value) => value === 'true')),
  ALLOWED_ORIGINS: z.pipe(
    list,
    z.array(
      // Browsers send an Origin without a trailing slash, so "https://app.example.com/" must match it too.
      z.pipe(z.string(), z.transform(withoutTrailingSlashes)).check(
        z.refine(
          (origin) => origin === '*' || /^https?:\/\/[^/?#\s]+$/.test(origin),
          'must list "*" or origins such as https://app.example.com (scheme, host and optional port)',
        ),
      ),
    ),
  ),
  POSE_VARIANTS: z.string(),
  READY_WEBHOOK_URL: httpUrl,
  WEBHOOK_SECRET: z.string().check(z.minLength(MIN_TOKEN_LENGTH, `must be at least ${MIN_TOKEN_LENGTH} characters`)),
} as const;

type Variable = keyof typeof schemas;
type Parsed<V extends Variable> = z.output<(typeof schemas)[V]>;

/**
 * Reads variables, collecting every problem instead of stopping at the first: one run tells everything that
 * is missing or wrong. An empty string counts as unset.
 */
class EnvReader {
  readonly problems: ConfigProblem[] = [];
  readonly #env: Env;

  constructor(env: Env) {
    this.#env = env;
  }

  /** The variable's value, or undefined when it is unset or invalid (then the problem is recorded). */
  read<V extends Variable>(name: V): Parsed<V> | undefined {
    const raw = this.#env[name];
    if (raw === undefined || raw.trim() === '') return undefined;
    const result = z.safeParse(schemas[name], raw.trim());
    if (result.success) return result.data as Parsed<V>;
    const problem = result.error.issues[0]?.message ?? 'is invalid';
    const shown = SECRET_VARIABLES.has(name) ? '' : ` (got ${describeValue(raw)})`;
    this.problem(name, `${problem}${shown}`);
    return undefined;
  }

  /** Like read, and a missing variable is a problem too. */
  required<V extends Variable>(name: V, why: string): Parsed<V> | undefined {
    const value = this.read(name);
    if (value === undefined && !this.#hasProblem(name)) this.problem(name, `is required ${why}`);
    return value;
  }

  problem(variable: string, problem: string): void {
    this.problems.push({ variable, problem });
  }

  #hasProblem(variable: string): boolean {
    return this.problems.some((problem) => problem.variable === variable);
  }
}

export const DEFAULTS = {
  STORAGE_MODE: 'local',
  UPLOAD_PATH: './uploads',
  PORT: 3000,
  HOST: '127.0.0.1',
  UPLOAD_MAX_BYTES: 25 * 1024 * 1024,
  /** At least UPLOAD_MAX_BYTES: a PNG upload is published as its own bytes. */
  PUBLISHED_MAX_BYTES: 64 * 1024 * 1024,
  UPLOAD_URL_TTL_SECONDS: 600,
  MAX_INPUT_PIXELS: 50_000_000,
  CACHE_MAX_AGE_SECONDS: 300,
  KEEP_IMAGE_METADATA: false,
} as const;

function readR2(env: EnvReader): R2Config | undefined {
  const why = 'when STORAGE_MODE=r2';
  const accountId = env.read('R2_ACCOUNT_ID');
  const endpoint = env.read('R2_ENDPOINT') ?? (accountId && `https://${accountId}.r2.cloudflarestorage.com`);
  if (!endpoint && env.problems.every((problem) => problem.variable !== 'R2_ACCOUNT_ID' && problem.variable !== 'R2_ENDPOINT')) {
    env.problem('R2_ACCOUNT_ID', `is required ${why} unless R2_ENDPOINT is set`);
  }
  const accessKeyId = env.required('R2_ACCESS_KEY_ID', why);
  const secretAccessKey = env.required('R2_SECRET_ACCESS_KEY', why);
  const bucketName = env.required('R2_BUCKET_NAME', why);
  const publicUrl = env.required('R2_PUBLIC_URL', why);
  const region = env.read('R2_REGION') ?? 'auto';
  if (!endpoint || !accessKeyId || !secretAccessKey || !bucketName || !publicUrl) return undefined;
  return { accountId, endpoint, region, accessKeyId, secretAccessKey, bucketName, publicUrl };
}

/** Loopback addresses: no one else can reach a server listening there. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127(\.\d{1,3}){3}$/.test(host);
}

/**
 * Without API tokens the local server has no auth, so only pages it serves itself may call it: CORS grants for
 * other origins are refused (its own, at localhost, 127.0.0.1 or [::1] on PORT, or PUBLIC_BASE_URL, may be listed).
 */
function readAllowedOrigins(env: EnvReader, storageMode: StorageMode, apiTokens: readonly string[] | undefined, port: number, localServerOrigin: string | undefined): readonly string[] {
  const origins = env.read('ALLOWED_ORIGINS');
  // Behind a token, the local API may be called from any page that has the token, as the reference's was.
  if (origins === undefined) return storageMode === 'local' && apiTokens !== undefined && apiTokens.length > 0 ? ['*'] : [];
  if (apiTokens?.length === 0 && storageMode === 'local') {
    const own = (origin: string) => {
      const url = new URL(origin);
      return origin === localServerOrigin || (url.protocol === 'http:' && isLoopback(url.hostname.replace(/^\[(.*)\]$/, '$1')) && Number(url.port || 80) === port);
    };
    const foreign = origins.filter((origin) => origin === '*' || !own(origin));
    if (foreign.length > 0) {
      env.problem(
        'ALLOWED_ORIGINS',
        `may not allow ${foreign.map((origin) => describeValue(origin)).join(', ')} while API_TOKEN is unset: without a token any page of those sites could delete and overwrite poses; set API_TOKEN too, or list only this server's own origin`,
      );
    }
  }
  return origins;
}

/** Without API tokens the local server has no auth, so it may only listen where no one else can reach it. */
function readHost(env: EnvReader, apiTokens: readonly string[] | undefined): string {
  const host = env.read('HOST') ?? DEFAULTS.HOST;
  if (apiTokens?.length === 0 && !isLoopback(host)) {
    env.problem('HOST', `must be a loopback address (127.0.0.1, ::1, localhost) while API_TOKEN is unset (got ${describeValue(host)})`);
  }
  return host;
}

/**
 * Parses the configuration from `env`. Throws a ConfigError listing every variable at fault, each with what
 * is wrong (never a secret's value).
 */
export function parseConfig(env: Env = process.env): Config {
  const reader = new EnvReader(env);
  const storageMode = reader.read('STORAGE_MODE') ?? DEFAULTS.STORAGE_MODE;
  const r2 = storageMode === 'r2' ? readR2(reader) : undefined;
  // Undefined when API_TOKEN is invalid (its problem is recorded), so that HOST is not judged as if it were unset.
  const apiTokens = storageMode === 'r2' ? reader.required('API_TOKEN', 'when STORAGE_MODE=r2') : (reader.read('API_TOKEN') ?? (env.API_TOKEN?.trim() ? undefined : []));
  const port = reader.read('PORT') ?? DEFAULTS.PORT;
  const localServerOrigin = reader.read('PUBLIC_BASE_URL');
  const uploadMaxBytes = reader.read('UPLOAD_MAX_BYTES') ?? DEFAULTS.UPLOAD_MAX_BYTES;
  const publishedMaxBytes = reader.read('PUBLISHED_MAX_BYTES') ?? Math.max(DEFAULTS.PUBLISHED_MAX_BYTES, uploadMaxBytes);
  if (publishedMaxBytes < uploadMaxBytes) {
    reader.problem('PUBLISHED_MAX_BYTES', `must be at least UPLOAD_MAX_BYTES (${uploadMaxBytes}): a PNG upload is published as its own bytes`);
  }
  const variants = parsePoseVariants(reader.read('POSE_VARIANTS') ?? '');
  if ('problems' in variants) for (const problem of variants.problems) reader.problem('POSE_VARIANTS', `has ${problem}`);
  const webhookUrl = reader.read('READY_WEBHOOK_URL');
  const webhookSecret = webhookUrl === undefined ? undefined : reader.required('WEBHOOK_SECRET', 'when READY_WEBHOOK_URL is set');
  const config: Config = {
    storageMode,
    uploadPath: path.resolve(reader.read('UPLOAD_PATH') ?? DEFAULTS.UPLOAD_PATH),
    r2,
    apiTokens: apiTokens ?? [],
    port,
    host: readHost(reader, apiTokens),
    localServerOrigin,
    uploadMaxBytes,
    publishedMaxBytes,
    uploadUrlTtlSeconds: reader.read('UPLOAD_URL_TTL_SECONDS') ?? DEFAULTS.UPLOAD_URL_TTL_SECONDS,
    maxInputPixels: reader.read('MAX_INPUT_PIXELS') ?? DEFAULTS.MAX_INPUT_PIXELS,
    cacheMaxAgeSeconds: reader.read('CACHE_MAX_AGE_SECONDS') ?? DEFAULTS.CACHE_MAX_AGE_SECONDS,
    keepImageMetadata: reader.read('KEEP_IMAGE_METADATA') ?? DEFAULTS.KEEP_IMAGE_METADATA,
    poseFiles: 'files' in variants ? variants.files : REFERENCE_FILES,
    allowedOrigins: readAllowedOrigins(reader, storageMode, apiTokens, port, localServerOrigin),
    webhook: webhookUrl && webhookSecret ? { url: webhookUrl, secret: webhookSecret } : undefined,
  };
  if (reader.problems.length > 0) throw new ConfigError(reader.problems);
  return config;
}

let cached: Config | undefined;

/** The process's configuration, parsed on first use and kept (Lambda reuses it across invocations). */
export function getConfig(): Config {
  cached ??= parseConfig(process.env);
  return cached;
}
