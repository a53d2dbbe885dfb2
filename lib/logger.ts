/**
 * The library's logger contract: any object with `info`, `warn` and `error` (a backend passes its own, pino
 * for example); `debug` is optional and used for detail worth having when something is investigated.
 * Messages are the reference's `[Storage] ...` texts; fields are ids and keys only, never secrets.
 *
 * createLogger is the default: one JSON object a line (what `npm run dev`, the CLI and the library print).
 * In Lambda the functions pass an adapter over Powertools' logger instead (lib/lambda/lambda-logger.ts).
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export type LogFields = Record<string, string | number | boolean | undefined>;

export interface Logger {
  debug?(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
}

export type LogSink = (line: string, level: LogLevel) => void;

export interface LoggerOptions {
  /** The least severe level written. Default `info`: debug lines are dropped. */
  level?: LogLevel;
}

const SEVERITY: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

const consoleSink: LogSink = (line, level) => (level === 'debug' || level === 'info' ? console.log(line) : console.error(line));

export function createLogger(sink: LogSink = consoleSink, options: LoggerOptions = {}): Logger {
  const least = SEVERITY[options.level ?? 'info'];
  const write = (level: LogLevel) => (message: string, fields?: LogFields) => {
    if (SEVERITY[level] >= least) sink(JSON.stringify({ level, time: new Date().toISOString(), message, ...fields }), level);
  };
  return { debug: write('debug'), info: write('info'), warn: write('warn'), error: write('error') };
}

/** Text from outside (a key, a path) as a log line may hold it: at most 300 characters, printable ASCII only. */
export function printable(text: string): string {
  return text.slice(0, 300).replace(/[^\x20-\x7e]/g, '?');
}
