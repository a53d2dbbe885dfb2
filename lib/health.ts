/**
 * The health check: what `pose-storage health`, functions/health.ts and the local server's `GET /health`
 * report.
 *
 * - configuration: the configuration parsed (a ConfigError makes it fail, naming the variable);
 * - store_reachable: the store answers a listing (a missing bucket, refused credentials or an unreachable
 *   endpoint fail here);
 * - store_writable: a probe object `health/probe-<uuid>` is written, read back, compared and removed;
 * - disk_space (local mode): free space of UPLOAD_PATH's file system against a threshold.
 *
 * Each check has a `reason` safe to show anyone (no path, key, endpoint or secret: a short phrase) and, for
 * operators, a `detail` with the full message. toPublicHealth() keeps only the safe part.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { statfs } from 'node:fs/promises';
import type { Config, StorageMode } from './config.ts';
import { ConfigError, PoseStorageError } from './errors.ts';
import type { ObjectStore } from './storage/object-store.ts';
import { describeDialect } from './storage/store-dialect.ts';

export const HEALTH_PREFIX = 'health/';
export const DEFAULT_MIN_FREE_BYTES = 100 * 1024 * 1024;
/** Longest a check may take before it counts as failed. */
export const DEFAULT_CHECK_TIMEOUT_MS = 8_000;

export type HealthCheckName = 'configuration' | 'store_reachable' | 'store_writable' | 'store_dialect' | 'disk_space';

export interface HealthCheck {
  name: HealthCheckName;
  ok: boolean;
  /** Short, safe to show to anyone (set when the check failed, and for disk_space). */
  reason?: string;
  /** For operators only: the full message (may name paths). */
  detail?: string;
  ms: number;
}

export interface HealthReport {
  status: 'healthy' | 'unhealthy';
  mode?: StorageMode;
  checks: HealthCheck[];
  /** Local mode: free bytes of UPLOAD_PATH's file system, and the threshold. */
  freeBytes?: number;
  minFreeBytes?: number;
}

/** What the HTTP answer holds: status and, per check, ok and a short reason. */
export interface PublicHealth {
  status: 'healthy' | 'unhealthy';
  checks: Partial<Record<HealthCheckName, { ok: boolean; reason?: string }>>;
}

export interface HealthOptions {
  config: Config;
  store: ObjectStore;
  /** Local mode: less free space than this is unhealthy. Default 100 MB. */
  minFreeBytes?: number;
  timeoutMs?: number;
  /** Free bytes of a directory's file system (tests); default fs.statfs. */
  freeBytesOf?: (directory: string) => Promise<number>;
}

/** Sizes in whole MB, as --min-free-mb takes them (the HTTP functions import this file: no formatting library). */
const megabytes = (bytes: number): string => `${Math.floor(bytes / (1024 * 1024)).toLocaleString('en-US')} MB`;

async function statfsFreeBytes(directory: string): Promise<number> {
  const stats = await statfs(directory);
  return stats.bavail * stats.bsize;
}

/** A short reason for anyone: the error's code in words, never its message (which may name a key or path). */
function safeReason(error: unknown): string {
  if (error instanceof PoseStorageError) {
    switch (error.code) {
      case 'permission_denied':
        return 'permission denied';
      case 'disk_full':
        return 'disk full';
      case 'storage_unavailable':
        return 'storage unavailable';
      default:
        return error.code.replace(/_/g, ' ');
    }
  }
  if (error instanceof TimeoutError) return 'timed out';
  return 'unexpected error';
}

class TimeoutError extends Error {}

async function withTimeout<T>(ms: number, run: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(`no answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([run(), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function timed(
  name: HealthCheckName,
  timeoutMs: number,
  run: () => Promise<{ reason?: string; detail?: string; ok?: boolean } | void>,
): Promise<HealthCheck> {
  const started = performance.now();
  const ms = () => Math.round(performance.now() - started);
  try {
    const outcome = (await withTimeout(timeoutMs, run)) ?? {};
    return { name, ok: outcome.ok ?? true, ...(outcome.reason !== undefined && { reason: outcome.reason }), ...(outcome.detail !== undefined && { detail: outcome.detail }), ms: ms() };
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error);
    return { name, ok: false, reason: safeReason(error), detail, ms: ms() };
  }
}

export async function checkHealth(options: HealthOptions): Promise<HealthReport> {
  const { config, store } = options;
  const timeoutMs = options.timeoutMs ?? DEFAULT_CHECK_TIMEOUT_MS;
  const minFreeBytes = options.minFreeBytes ?? DEFAULT_MIN_FREE_BYTES;
  const checks: HealthCheck[] = [{ name: 'configuration', ok: true, ms: 0 }];

  const reachable = await timed('store_reachable', timeoutMs, async () => {
    const iterator = store.list(HEALTH_PREFIX)[Symbol.asyncIterator]();
    try {
      await iterator.next();
    } finally {
      await iterator.return?.();
    }
  });
  checks.push(reachable);

  if (reachable.ok) {
    checks.push(
      await timed('store_writable', timeoutMs, async () => {
        const key = `${HEALTH_PREFIX}probe-${randomUUID()}`;
        const body = randomBytes(32);
        try {
          await store.put(key, body, { contentType: 'application/octet-stream', cacheControl: 'no-store' });
          const back = await store.get(key);
          if (!back || !back.body.equals(body)) return { ok: false, reason: 'read back differs', detail: `${key} read back differs from what was written` };
        } finally {
          await store.delete([key]).catch(() => undefined);
        }
        // A probe that could not be removed still counts: a store that keeps writes but refuses deletes is broken.
        if (await store.head(key)) return { ok: false, reason: 'probe not removed', detail: `${key} could not be removed` };
        return {};
      }),
    );
    checks.push(
      await timed('store_dialect', timeoutMs, async () => {
        // Which conditions the store enforces (measured once per process on S3): a store without those the lock
        // needs is refused by every write, so health says so first.
        const { text, problem } = describeDialect(await store.dialect());
        return problem === undefined ? { reason: text } : { ok: false, reason: 'unsafe store', detail: `${text}: ${problem}` };
      }),
    );
  } else {
    checks.push({ name: 'store_writable', ok: false, reason: 'store unreachable', ms: 0 });
    checks.push({ name: 'store_dialect', ok: false, reason: 'store unreachable', ms: 0 });
  }

  let freeBytes: number | undefined;
  if (config.storageMode === 'local') {
    const freeBytesOf = options.freeBytesOf ?? statfsFreeBytes;
    checks.push(
      await timed('disk_space', timeoutMs, async () => {
        freeBytes = await freeBytesOf(config.uploadPath);
        const summary = `${megabytes(freeBytes)} free, threshold ${megabytes(minFreeBytes)}`;
        return freeBytes >= minFreeBytes ? { reason: summary } : { ok: false, reason: `low disk space: ${summary}` };
      }),
    );
  }

  return {
    status: checks.every((check) => check.ok) ? 'healthy' : 'unhealthy',
    mode: config.storageMode,
    checks,
    ...(freeBytes !== undefined && { freeBytes, minFreeBytes }),
  };
}

/** "PORT is missing or invalid", "R2_BUCKET_NAME, R2_PUBLIC_URL and API_TOKEN are missing or invalid": names, never values. */
function invalidVariables(error: ConfigError): string {
  const names = [...new Set(error.problems.map((problem) => problem.variable))];
  if (names.length <= 1) return `${error.variable} is missing or invalid`;
  return `${names.slice(0, -1).join(', ')} and ${names.at(-1)} are missing or invalid`;
}

/** The report when the configuration itself is invalid: nothing else can be checked. */
export function configurationFailure(error: ConfigError): HealthReport {
  return {
    status: 'unhealthy',
    checks: [{ name: 'configuration', ok: false, reason: invalidVariables(error), detail: error.message, ms: 0 }],
  };
}

/** The report without operator details: status, and per check ok and the short reason. */
export function toPublicHealth(report: HealthReport): PublicHealth {
  const checks: PublicHealth['checks'] = {};
  for (const check of report.checks) checks[check.name] = { ok: check.ok, ...(check.reason !== undefined && { reason: check.reason }) };
  return { status: report.status, checks };
}
