import { describe, expect, it } from 'vitest';
import { createLogger, printable, type LogLevel } from './logger.ts';

function capture(level?: LogLevel) {
  const lines: { level: LogLevel; parsed: Record<string, unknown> }[] = [];
  const logger = createLogger((line, lineLevel) => lines.push({ level: lineLevel, parsed: JSON.parse(line) as Record<string, unknown> }), level && { level });
  return { lines, logger };
}

describe('createLogger (local mode, the CLI, the library)', () => {
  it('writes one JSON object a line: level, time, the message, the fields', () => {
    const { lines, logger } = capture();
    logger.warn('[Storage] Something', { poseId: 'p1', count: 2, unset: undefined });
    expect(lines).toHaveLength(1);
    expect(lines[0]!.level).toBe('warn');
    expect(lines[0]!.parsed).toEqual({ level: 'warn', time: expect.stringMatching(/^\d{4}-\d\d-\d\dT/), message: '[Storage] Something', poseId: 'p1', count: 2 });
  });

  it('drops debug lines by default, and writes them at level debug', () => {
    const quiet = capture();
    quiet.logger.debug?.('[Storage] detail');
    quiet.logger.info('[Storage] info');
    expect(quiet.lines.map((line) => line.level)).toEqual(['info']);

    const verbose = capture('debug');
    verbose.logger.debug?.('[Storage] detail');
    expect(verbose.lines.map((line) => line.parsed.message)).toEqual(['[Storage] detail']);
  });

  it('at level error, only errors are written', () => {
    const { lines, logger } = capture('error');
    logger.info('a');
    logger.warn('b');
    logger.error('c');
    expect(lines.map((line) => line.parsed.message)).toEqual(['c']);
  });
});

describe('printable', () => {
  it('bounds text from outside to 300 printable ASCII characters', () => {
    expect(printable('staging/g/p/\u0000\n\u00e9x')).toBe('staging/g/p/???x');
    expect(printable('k'.repeat(1000))).toHaveLength(300);
  });
});
