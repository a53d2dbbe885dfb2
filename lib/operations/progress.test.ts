/** The progress output of migrate: plain lines at 10% steps (plus a heartbeat), a throttled bar on a TTY. */
import { describe, expect, it } from 'vitest';
import type { MigrationProgress } from './migrate.ts';
import { createProgressReporter, estimateRemainingMs, formatProgressBar, formatProgressLine } from './progress.ts';

function progress(done: number, total: number, elapsedMs = 1000, bytesPerFile = 1000): MigrationProgress {
  return {
    dryRun: false,
    total: { files: total, bytes: total * bytesPerFile },
    done: { files: done, bytes: done * bytesPerFile },
    copied: { files: done, bytes: done * bytesPerFile },
    skipped: { files: 0, bytes: 0 },
    failed: { files: 0, bytes: 0 },
    elapsedMs,
  };
}

describe('plain lines (not a TTY)', () => {
  it('writes one line per 10% step, and the last one', () => {
    const lines: string[] = [];
    const reporter = createProgressReporter({ tty: false, write: (text) => lines.push(text), now: () => 0 });
    for (let done = 0; done <= 200; done++) reporter.update(progress(done, 200));
    reporter.finish();
    expect(lines.map((line) => /\((\d+)%\)/.exec(line)?.[1])).toEqual(['0', '10', '20', '30', '40', '50', '60', '70', '80', '90', '100']);
    expect(lines.every((line) => line.startsWith('progress: ') && line.endsWith('\n'))).toBe(true);
  });

  it('adds a line every 100 files when 10 s passed since the last one (large, slow migrations)', () => {
    const lines: string[] = [];
    let clock = 0;
    const reporter = createProgressReporter({ tty: false, write: (text) => lines.push(text), now: () => clock });
    reporter.update(progress(1, 100_000)); // 0%
    for (let done = 2; done <= 1000; done++) {
      clock += 1000; // one file a second
      reporter.update(progress(done, 100_000));
    }
    // 1, then every 100 files once 10 s passed: 101, 201, ..., 901
    expect(lines).toHaveLength(10);
    expect(lines[1]).toMatch(/^progress: 101\/100000 files/);
  });
});

describe('bar (TTY)', () => {
  it('redraws at most every 100 ms, always at the end, and ends its line', () => {
    const writes: string[] = [];
    let clock = 0;
    const reporter = createProgressReporter({ tty: true, write: (text) => writes.push(text), now: () => clock });
    for (let done = 0; done <= 100; done++) {
      clock += 10;
      reporter.update(progress(done, 100));
    }
    reporter.finish();
    const bars = writes.filter((text) => text.startsWith('\r['));
    expect(bars.length).toBeGreaterThanOrEqual(10);
    expect(bars.length).toBeLessThanOrEqual(13);
    expect(writes.at(-1)).toBe('\n');
    expect(bars.at(-1)).toContain('100%  100/100 files');
  });

  it('clears the bar to print a line, then draws it again', () => {
    const writes: string[] = [];
    const reporter = createProgressReporter({ tty: true, write: (text) => writes.push(text), now: () => 0 });
    reporter.update(progress(5, 10));
    reporter.interrupt(() => writes.push('log line\n'));
    expect(writes.slice(1)).toEqual(['\r\x1b[K', 'log line\n', expect.stringMatching(/^\r\[/)]);
  });
});

describe('formatting', () => {
  it('estimates the time left from the byte rate', () => {
    expect(estimateRemainingMs(progress(25, 100, 1000))).toBe(3000);
    expect(estimateRemainingMs(progress(0, 100, 1000))).toBe(Number.POSITIVE_INFINITY);
    expect(estimateRemainingMs(progress(100, 100, 1000))).toBe(0);
  });

  it('bar and line show counts, bytes and ETA', () => {
    expect(formatProgressBar(progress(42, 100, 1000, 1024 * 1024), 100)).toBe(
      `[${'#'.repeat(17)}${'.'.repeat(23)}]   42%  42/100 files  42.0 MB/100 MB  ETA 1.4s`,
    );
    expect(formatProgressLine(progress(42, 100, 1000, 1024))).toBe('42/100 files (42%), 42.0 KB/100 KB, 42 copied, 0 skipped, 0 failed, ETA 1.4s');
  });
});
