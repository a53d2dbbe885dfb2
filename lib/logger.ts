/**
 * Structured logs: one JSON object a line (CloudWatch and `sst dev` index them), with the reference's
 * `[Storage] ...` text as `message`. Callers pass ids and keys only, never secrets.
 */
export type LogLevel = 'info' | 'warn' | 'error';

export type LogFields = Record<string, string | number | boolean | undefined>;

export interface Logger {
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
}

export type LogSink = (line: string, level: LogLevel) => void;

const consoleSink: LogSink = (line, level) => (level === 'info' ? console.log(line) : console.error(line));

export function createLogger(sink: LogSink = consoleSink): Logger {
  const write = (level: LogLevel) => (message: string, fields?: LogFields) =>
    sink(JSON.stringify({ level, time: new Date().toISOString(), message, ...fields }), level);
  return { info: write('info'), warn: write('warn'), error: write('error') };
}
