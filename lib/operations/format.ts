/**
 * Units for people: sizes (pretty-bytes), durations (pretty-ms), and what stays ours:
 * - parseDuration: a strict `12h`/`30d`/`2w` whose error says what is accepted (`ms` takes "1.5 weeks" but
 *   only answers `undefined` to a typo), in ten lines;
 * - renderTable: plain `df`-style columns that scripts and tests read (cli-table3 draws boxes and brings
 *   string-width for what is a padStart here).
 *
 * The local page (a browser bundle) shows sizes with formatBytes too; the Lambda functions never import this file.
 */
import prettyBytes from 'pretty-bytes';
import prettyMs from 'pretty-ms';

/** 1536 -> "1.5 KiB" (powers of 1024, three significant digits). */
export function formatBytes(bytes: number): string {
  return prettyBytes(bytes, { binary: true });
}

/** 93_000 -> "1m 33s", 12_300 -> "12.3s", 450 -> "450ms"; "?" when unknown (infinite). */
export function formatDuration(ms: number): string {
  return Number.isFinite(ms) ? prettyMs(Math.max(0, ms), { unitCount: 2 }) : '?';
}

const DURATION_UNITS: Readonly<Record<string, number>> = {
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

/**
 * "12h", "30d", "2w" (also "90m", "45s") -> milliseconds. Throws a RangeError saying what is accepted.
 */
export function parseDuration(text: string): number {
  const match = /^(\d{1,6})([smhdw])$/.exec(text.trim());
  const amount = match ? Number(match[1]) : 0;
  if (!match || amount <= 0) {
    throw new RangeError(`"${text}" is not a duration: use a positive whole number and a unit, e.g. 12h, 30d or 2w (units s, m, h, d, w)`);
  }
  return amount * DURATION_UNITS[match[2]!]!;
}

export type Align = 'left' | 'right';

/** A plain-text table: a header row, then the rows; columns padded to their widest cell. */
export function renderTable(header: readonly string[], rows: readonly (readonly string[])[], align: readonly Align[] = []): string {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => (row[column] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, column) => (align[column] === 'right' ? cell.padStart(widths[column]!) : cell.padEnd(widths[column]!)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}
