import { ConfigError } from '../../errors.ts';
import { httpHandler, json, type HttpHandler } from '../http-handler.ts';
import { createLogger, type Logger } from '../../logger.ts';
import { checkHealth, configurationFailure, DEFAULT_MIN_FREE_BYTES, toPublicHealth } from '../../health.ts';
import type { Services } from '../../services.ts';

/**
 * `GET /health`: 200 `{"status": "healthy", "checks": {...}}` or 503 `{"status": "unhealthy", ...}`, each
 * check with `ok` and a short reason (lib/health.ts): configuration, store reachable, store
 * writable (a probe object written, read back and removed), and free disk space in local mode. Nothing in the
 * answer names a path, a key, an endpoint or a secret. Like every route, it needs the bearer token when
 * tokens are configured.
 */
export interface HealthHandlerOptions {
  /** Local mode: less free space than this is unhealthy. Default 100 MB. */
  minFreeBytes?: number;
}

export function createHandler(services: Services, options: HealthHandlerOptions = {}): HttpHandler {
  const { config, logger, storage } = services;
  return httpHandler(services, { function: 'health' }, async () => {
    const report = await checkHealth({ config, store: storage.store, minFreeBytes: options.minFreeBytes ?? DEFAULT_MIN_FREE_BYTES });
    if (report.status !== 'healthy') {
      const failed = report.checks.filter((check) => !check.ok);
      logger.warn(`[Storage] Health check failed: ${failed.map((check) => `${check.name} (${check.detail ?? check.reason})`).join(', ')}`, {
        failed: failed.map((check) => check.name).join(','),
      });
    }
    return json(report.status === 'healthy' ? 200 : 503, toPublicHealth(report));
  });
}

/**
 * With an invalid configuration no service can be built (nor tokens checked): every request gets the 503
 * that names the variable at fault (never its value), instead of a failed cold start.
 */
export function createUnconfiguredHandler(error: ConfigError, logger: Logger = createLogger()): HttpHandler {
  logger.error(`[Storage] Invalid configuration: ${error.message}`, { variable: error.variable });
  const body = toPublicHealth(configurationFailure(error));
  return () => Promise.resolve(json(503, body));
}
