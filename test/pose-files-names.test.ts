/**
 * lib/pose-files.ts is the only place that knows the name of a pose's file: no other source file builds one
 * (a `{poseId}.png` template, a `_thumb.` suffix). A file that named one would miss a variant, or publish, delete or
 * verify a file the table does not.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '..');
const SOURCES = ['lib', 'functions', 'infra'];
const THE_TABLE = path.join('lib', 'pose-files.ts');
/** A file name built from a value (`${poseId}.png`), or the thumbnail's suffix. */
const FILE_NAME = /\$\{[^}]+\}(?:_[a-z]+)?\.(?:png|webp|avif|jpg)\b|_thumb\.(?:png|webp|avif|jpg)\b/;

async function sources(directory: string): Promise<string[]> {
  const entries = await readdir(path.join(ROOT, directory), { withFileTypes: true, recursive: true });
  return entries
    .filter((entry) => entry.isFile() && /\.(ts|js|html)$/.test(entry.name) && !/\.(test|bench)\.ts$/.test(entry.name))
    .map((entry) => path.relative(ROOT, path.join(entry.parentPath, entry.name)));
}

describe('the names of a pose\'s files', () => {
  it('are known to lib/pose-files.ts alone', async () => {
    const files = (await Promise.all(SOURCES.map(sources))).flat();
    expect(files).toContain(THE_TABLE);
    const naming: string[] = [];
    for (const file of files) {
      const lines = (await readFile(path.join(ROOT, file), 'utf8')).split('\n');
      lines.forEach((line, i) => {
        if (FILE_NAME.test(line)) naming.push(`${file}:${i + 1}: ${line.trim()}`);
      });
    }
    expect(naming.filter((line) => !line.startsWith(`${THE_TABLE}:`))).toEqual([]);
    // The check sees a name where there is one: the table itself builds them.
    expect(naming.some((line) => line.startsWith(`${THE_TABLE}:`))).toBe(true);
  });
});
