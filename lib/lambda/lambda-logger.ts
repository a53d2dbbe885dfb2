import { Logger as PowertoolsLogger } from '@aws-lambda-powertools/logger';
import { describeValue } from '../errors.ts';
import type { LogFields, Logger, LogLevel } from '../logger.ts';

/**
 * Logs in Lambda: Powertools for AWS Lambda's Logger, behind the library's Logger contract. Every line is one
 * JSON object with `level`, `message` (the `[Storage] ...` text), `timestamp`, `service` and, inside an
 * invocation (injectLambdaContext, lib/lambda/lambda-handler.ts), `function_request_id`, `function_name`,
 * `function_arn`, `function_memory_size` and `cold_start`; plus the fields of the call, and `generationId`,
 * `poseId`, `key` while an upload is processed (lib/lambda/upload-metrics.ts).
 *
 * The level is Powertools': POWERTOOLS_LOG_LEVEL (or LOG_LEVEL), and Lambda's own log level
 * (AWS_LAMBDA_LOG_LEVEL, set by the function's logging configuration) wins when it is stricter. Default INFO.
 */

/** The `service` of every line and metric when POWERTOOLS_SERVICE_NAME is unset. */
const SERVICE_NAME = 'pose-storage';

/** The `service` of the logs and metrics: POWERTOOLS_SERVICE_NAME, else SERVICE_NAME. */
export function serviceName(env: Readonly<Record<string, string | undefined>>): string {
  return env.POWERTOOLS_SERVICE_NAME || SERVICE_NAME;
}

const LEVELS = ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR', 'CRITICAL', 'SILENT'];

export function createPowertoolsLogger(env: Readonly<Record<string, string | undefined>> = process.env): PowertoolsLogger {
  const powertools = new PowertoolsLogger({ serviceName: serviceName(env) });
  const level = env.POWERTOOLS_LOG_LEVEL;
  // Powertools falls back to INFO silently; a typo should not hide every debug line without a word.
  if (level && !LEVELS.includes(level.toUpperCase())) {
    powertools.warn(`[Storage] POWERTOOLS_LOG_LEVEL must be one of ${LEVELS.join(', ')} (got ${describeValue(level)}): logging at ${powertools.getLevelName()}`);
  }
  return powertools;
}

/** The library's Logger writing through Powertools' (its level, its fields). */
export function toLogger(powertools: PowertoolsLogger): Logger {
  const write = (level: LogLevel) => (message: string, fields?: LogFields) =>
    fields === undefined ? powertools[level](message) : powertools[level](message, fields);
  return { debug: write('debug'), info: write('info'), warn: write('warn'), error: write('error') };
}
