/**
 * Progress of a long operation (migrate, verify) for people.
 *
 * - On a terminal: cli-progress draws the bar (`[#####.....]  42%  168/400 files  1.2 MiB/2.9 MiB  ETA 4s`),
 *   redrawn at most 10 times a second, its ETA from the recent rate; log lines are printed above it.
 * - Elsewhere (logs, pipes, CI): plain lines, one at every 10% step, plus one every 100 items between steps when
 *   10 s passed since the last (a heartbeat for large runs). cli-progress's own non-TTY mode repeats the bar on a
 *   timer instead, which says nothing in a fast run and floods the log of a slow one.
 */
import { MultiBar, type SingleBar } from 'cli-progress';
import { formatBytes, formatDuration } from './format.ts';

export interface Tally {
  files: number;
  bytes: number;
}

/** Where an operation stands. `files` counts its items (files for migrate, poses for verify). */
export interface Progress {
  total: Tally;
  done: Tally;
  elapsedMs: number;
}

export interface ProgressStream {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface ProgressReporterOptions<P extends Progress> {
  stream: ProgressStream;
  /** What the items are called: "files", "poses". */
  noun: string;
  /** The outcome so far, for the plain lines: "160 copied, 8 skipped, 0 failed". */
  describe?: (progress: P) => string;
  /** Clock in ms for the plain lines' heartbeat (tests); default performance.now. */
  now?: () => number;
}

export interface ProgressReporter<P extends Progress> {
  update(progress: P): void;
  /** Prints a whole line (a log line) without tearing the bar. */
  log(line: string): void;
  /** Draws the last state and ends the bar's line (a terminal); call before printing anything else. */
  finish(): void;
}

/** Time left at the average rate so far, by bytes (by items when there are no bytes). */
export function estimateRemainingMs({ done, total, elapsedMs }: Progress): number {
  const [doneUnits, totalUnits] = total.bytes > 0 ? [done.bytes, total.bytes] : [done.files, total.files];
  if (doneUnits >= totalUnits) return 0;
  if (doneUnits === 0 || elapsedMs <= 0) return Number.POSITIVE_INFINITY;
  return ((totalUnits - doneUnits) * elapsedMs) / doneUnits;
}

function percent({ done, total }: Progress): number {
  if (total.files === 0) return 100;
  return Math.min(100, Math.floor((done.files * 100) / total.files));
}

/** `168/400 files (42%), 1.2 MiB/2.9 MiB, 160 copied, 8 skipped, 0 failed, ETA 4s` */
export function formatProgressLine<P extends Progress>(progress: P, noun: string, describe?: (progress: P) => string): string {
  const { done, total } = progress;
  const eta = done.files < total.files ? `, ETA ${formatDuration(estimateRemainingMs(progress))}` : '';
  const outcome = describe ? `, ${describe(progress)}` : '';
  return `${done.files}/${total.files} ${noun} (${percent(progress)}%), ${formatBytes(done.bytes)}/${formatBytes(total.bytes)}${outcome}${eta}`;
}

export function createProgressReporter<P extends Progress>(options: ProgressReporterOptions<P>): ProgressReporter<P> {
  return options.stream.isTTY ? terminalReporter(options) : lineReporter(options);
}

function lineReporter<P extends Progress>({ stream, noun, describe, now = () => performance.now() }: ProgressReporterOptions<P>): ProgressReporter<P> {
  let lastStep = -1;
  let lastLineAt = Number.NEGATIVE_INFINITY;
  let itemsAtLastLine = 0;
  return {
    update(progress) {
      if (progress.total.files === 0) return;
      const step = Math.floor(percent(progress) / 10);
      const heartbeat = progress.done.files - itemsAtLastLine >= 100 && now() - lastLineAt >= 10_000;
      if ((step > lastStep && progress.done.files > 0) || heartbeat) {
        lastStep = step;
        itemsAtLastLine = progress.done.files;
        lastLineAt = now();
        stream.write(`progress: ${formatProgressLine(progress, noun, describe)}\n`);
      }
    },
    log: (line) => stream.write(`${line}\n`),
    finish: () => undefined,
  };
}

function terminalReporter<P extends Progress>({ stream, noun }: ProgressReporterOptions<P>): ProgressReporter<P> {
  const bars = new MultiBar({
    stream: stream as NodeJS.WritableStream,
    format: `[{bar}] {percentage}%  {doneItems}/{totalItems} ${noun}  {doneBytes}/{totalBytes}  ETA {eta_formatted}`,
    formatTime: (seconds: number | string) => (typeof seconds === 'number' ? formatDuration(seconds * 1000) : '?'),
    barCompleteChar: '#',
    barIncompleteChar: '.',
    barsize: 30,
    hideCursor: true,
    // The ETA follows the rate of the last 50 updates: the concurrency makes single updates bursty.
    etaBuffer: 50,
  });
  let bar: SingleBar | undefined;
  const payload = ({ done, total }: Progress) => ({
    doneItems: done.files,
    totalItems: total.files,
    doneBytes: formatBytes(done.bytes),
    totalBytes: formatBytes(total.bytes),
  });
  // Progress by bytes (what takes the time), by items when there are none.
  const units = ({ done, total }: Progress) => (total.bytes > 0 ? [done.bytes, total.bytes] : [done.files, total.files]) as [number, number];
  return {
    update(progress) {
      const [value, total] = units(progress);
      if (!bar) bar = bars.create(total, value, payload(progress)) as SingleBar;
      bar.setTotal(total);
      bar.update(value, payload(progress));
    },
    log: (line) => (bar ? bars.log(`${line}\n`) : stream.write(`${line}\n`)),
    finish() {
      if (!bar) return;
      bars.update(); // prints the lines logged since the last redraw, and the last state
      bars.stop();
      bar = undefined;
    },
  };
}
