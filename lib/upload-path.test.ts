/**
 * uploadPathProblem on this machine's real file systems: an UPLOAD_PATH on one of the kernel's pseudo file
 * systems (where Node's recursive mkdir would retry for ever) is a problem naming the path and the file system;
 * a directory on a disk, made yet or not, is fine.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uploadPathProblem } from './upload-path.ts';

let work: string;
beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'pose-upload-path-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe.skipIf(process.platform !== 'linux')('uploadPathProblem (Linux: statfs types)', () => {
  it.each([
    ['/proc/pose-storage/uploads', 'proc'],
    ['/proc', 'proc'],
    ['/sys/pose-storage', 'sysfs'],
    ['/dev/pts/uploads', 'devpts'],
  ])('refuses %s, on %s, naming both', (uploadPath, fileSystem) => {
    expect(uploadPathProblem(uploadPath)).toEqual({
      variable: 'UPLOAD_PATH',
      problem: `is ${uploadPath}, on ${fileSystem}, a pseudo file system of the kernel that cannot store files: choose a directory on a disk`,
    });
  });

  it('judges a relative path where it resolves', () => {
    const relative = path.relative(process.cwd(), '/proc/self/uploads');
    expect(uploadPathProblem(relative)?.problem).toMatch(/^is \/proc\/self\/uploads, on proc,/);
  });

  it('accepts a directory on a disk, whether it exists yet or not', async () => {
    expect(uploadPathProblem(work)).toBeUndefined();
    expect(uploadPathProblem(path.join(work, 'not', 'made', 'yet'))).toBeUndefined();
  });

  it('leaves a path under a regular file to the store, which says what is wrong with it', async () => {
    const file = path.join(work, 'a-file');
    await writeFile(file, 'not a directory');
    expect(uploadPathProblem(path.join(file, 'uploads'))).toBeUndefined();
  });
});
