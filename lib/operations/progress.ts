/**
 * Migration progress for people: a redrawn bar on a terminal, plain lines in logs and pipes.
 *
 * - TTY: `[########............]  42%  168/400 files  1.2 MB/2.9 MB  ETA 4s`, redrawn at most every 100 ms
 *   (and always at the end), on one line.
 * - Otherwise: one line at every 10% step, plus a line every 100 files between steps when at least 10 s
 *   passed since the last line (a heartbeat for large migrations).
 */
import { formatBytes, formatDuration } from './format.ts';
import type { MigrationProgress } from './migrate.ts';

export interface ProgressReporterOptions {
  tty: boolean;
  /** Writes text as is (no newline added). */
  write: (text: string) => void;
  /** Terminal width for the bar; default 80. */
  columns?: number;
  /** Clock in ms (tests); default performance.now. */
  now?: () => number;
}

export interface ProgressReporter {
  update(progress: MigrationProgress): void;
  /** Ends the bar's line (TTY); call before printing anything else. */
  finish(): void;
  /** Clears the bar so another line can be printed, and redraws it after `print`. */
  interrupt(print: () => void): void;
}

/** Seconds left, from the byte rate so far (files when there are no bytes). */
export function estimateRemainingMs(progress: MigrationProgress): number {
  const { done, total, elapsedMs } = progress;
  const [doneUnits, totalUnits] = total.bytes > 0 ? [done.bytes, total.bytes] : [done.files, total.files];
  if (doneUnits >= totalUnits) return 0;
  if (doneUnits === 0 || elapsedMs <= 0) return Number.POSITIVE_INFINITY;
  return ((totalUnits - doneUnits) * elapsedMs) / doneUnits;
}

function percent(progress: MigrationProgress): number {
  const { done, total } = progress;
  if (total.files === 0) return 100;
  return Math.min(100, Math.floor((done.files * 100) / total.files));
}

/** `168/400 files (42%), 1.2 MB/2.9 MB, 160 copied, 8 skipped, 0 failed, ETA 4s` ("to copy" in a dry run) */
export function formatProgressLine(progress: MigrationProgress): string {
  const { done, total, copied, skipped, failed } = progress;
  const eta = done.files < total.files ? `, ETA ${formatDuration(estimateRemainingMs(progress))}` : '';
  return (
    `${done.files}/${total.files} files (${percent(progress)}%), ${formatBytes(done.bytes)}/${formatBytes(total.bytes)}, ` +
    `${copied.files} ${progress.dryRun ? 'to copy' : 'copied'}, ${skipped.files} skipped, ${failed.files} failed${eta}`
  );
}

/** The bar itself, fitted to `columns`. */
export function formatProgressBar(progress: MigrationProgress, columns = 80): string {
  const { done, total, failed } = progress;
  const eta = done.files < total.files ? `ETA ${formatDuration(estimateRemainingMs(progress))}` : 'done';
  const failures = failed.files > 0 ? `  ${failed.files} failed` : '';
  const text = `${String(percent(progress)).padStart(3)}%  ${done.files}/${total.files} files  ${formatBytes(done.bytes)}/${formatBytes(total.bytes)}  ${eta}${failures}`;
  const width = Math.max(10, Math.min(40, columns - text.length - 4));
  const filled = Math.round((width * percent(progress)) / 100);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]  ${text}`;
}

export function createProgressReporter(options: ProgressReporterOptions): ProgressReporter {
  const now = options.now ?? (() => performance.now());
  const { write, tty } = options;
  let last: MigrationProgress | undefined;
  let drawnAt = Number.NEGATIVE_INFINITY;
  let drawn = false;
  let lastStep = -1;
  let filesAtLastLine = 0;

  const draw = () => {
    if (!last) return;
    write(`\r${formatProgressBar(last, options.columns ?? 80)}\x1b[K`);
    drawn = true;
    drawnAt = now();
  };

  return {
    update(progress) {
      last = progress;
      const complete = progress.done.files >= progress.total.files;
      if (tty) {
        if (complete || now() - drawnAt >= 100) draw();
        return;
      }
      if (progress.total.files === 0) return;
      const step = Math.floor(percent(progress) / 10);
      const heartbeat = progress.done.files - filesAtLastLine >= 100 && now() - drawnAt >= 10_000;
      if ((step > lastStep && progress.done.files > 0) || heartbeat) {
        lastStep = step;
        filesAtLastLine = progress.done.files;
        drawnAt = now();
        write(`progress: ${formatProgressLine(progress)}\n`);
      }
    },
    finish() {
      if (tty && drawn) {
        draw();
        write('\n');
        drawn = false;
      }
    },
    interrupt(print) {
      if (!tty || !drawn) return print();
      write('\r\x1b[K');
      print();
      draw();
    },
  };
}
