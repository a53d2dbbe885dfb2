/** Progress for people: plain lines at 10% steps (plus a heartbeat) in logs, cli-progress's bar on a terminal. */
import { stripVTControlCharacters } from 'node:util';
import { describe, expect, it } from 'vitest';
import type { MigrationProgress } from './migrate.ts';
import { createProgressReporter, estimateRemainingMs, formatProgressLine } from './progress.ts';

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

const describeCopies = ({ copied, skipped, failed }: MigrationProgress) => `${copied.files} copied, ${skipped.files} skipped, ${failed.files} failed`;

/** A stream that keeps what is written to it. */
function collector(isTTY: boolean) {
  const writes: string[] = [];
  return { writes, stream: { isTTY, columns: 100, write: (text: string) => writes.push(text) } };
}

describe('plain lines (not a TTY)', () => {
  it('writes one line per 10% step, and the last one', () => {
    const { writes, stream } = collector(false);
    const reporter = createProgressReporter({ stream, noun: 'files', describe: describeCopies, now: () => 0 });
    for (let done = 0; done <= 200; done++) reporter.update(progress(done, 200));
    reporter.finish();
    expect(writes.map((line) => /\((\d+)%\)/.exec(line)?.[1])).toEqual(['0', '10', '20', '30', '40', '50', '60', '70', '80', '90', '100']);
    expect(writes.every((line) => line.startsWith('progress: ') && line.endsWith('\n'))).toBe(true);
    expect(writes.at(-1)).toBe('progress: 200/200 files (100%), 195 KiB/195 KiB, 200 copied, 0 skipped, 0 failed\n');
  });

  it('adds a line every 100 items when 10 s passed since the last one (large, slow runs)', () => {
    const { writes, stream } = collector(false);
    let clock = 0;
    const reporter = createProgressReporter({ stream, noun: 'poses', now: () => clock });
    reporter.update(progress(1, 100_000)); // 0%
    for (let done = 2; done <= 1000; done++) {
      clock += 1000; // one item a second
      reporter.update(progress(done, 100_000));
    }
    // 1, then every 100 items once 10 s passed: 101, 201, ..., 901
    expect(writes).toHaveLength(10);
    expect(writes[1]).toMatch(/^progress: 101\/100000 poses \(0%\), 98.6 KiB\/95.4 MiB, ETA /);
  });

  it('prints nothing for an empty run, and log lines as they are', () => {
    const { writes, stream } = collector(false);
    const reporter = createProgressReporter({ stream, noun: 'files' });
    reporter.update(progress(0, 0));
    reporter.log('a log line');
    reporter.finish();
    expect(writes).toEqual(['a log line\n']);
  });
});

describe('bar (a terminal)', () => {
  it('draws counts, bytes and ETA; prints log lines whole above it; ends on the final state', () => {
    const { writes, stream } = collector(true);
    const reporter = createProgressReporter({ stream, noun: 'files' });
    for (let done = 0; done <= 40; done++) reporter.update(progress(done, 100, done * 10, 1024 * 1024));
    reporter.log('{"level":"warn","message":"[Storage] something"}');
    for (let done = 41; done <= 100; done++) reporter.update(progress(done, 100, done * 10, 1024 * 1024));
    reporter.finish();
    const screen = stripVTControlCharacters(writes.join(''));
    expect(screen).toContain('{"level":"warn","message":"[Storage] something"}\n');
    const lines = screen.split('\n').map((line) => line.trim());
    expect(lines.at(-2)).toBe(`[${'#'.repeat(30)}] 100%  100/100 files  100 MiB/100 MiB  ETA 0ms`);
    expect(screen.endsWith('\n')).toBe(true);
  });
});

describe('estimates', () => {
  it('the time left from the byte rate so far', () => {
    expect(estimateRemainingMs(progress(25, 100, 1000))).toBe(3000);
    expect(estimateRemainingMs(progress(0, 100, 1000))).toBe(Number.POSITIVE_INFINITY);
    expect(estimateRemainingMs(progress(100, 100, 1000))).toBe(0);
  });

  it('the plain line shows counts, bytes, the outcome and the ETA', () => {
    expect(formatProgressLine(progress(42, 100, 1000, 1024), 'files', describeCopies)).toBe(
      '42/100 files (42%), 42 KiB/100 KiB, 42 copied, 0 skipped, 0 failed, ETA 1.3s',
    );
    expect(formatProgressLine(progress(0, 100, 1000), 'poses')).toBe('0/100 poses (0%), 0 B/97.7 KiB, ETA ?');
  });
});
