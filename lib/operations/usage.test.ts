/**
 * measureUsage() in both modes: a directory and a real S3-compatible server hold the same files, and the
 * figures equal what was written.
 */
import { mkdir, mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startS3Server, type S3TestServer } from '../../test/support/s3-server.ts';
import { DirectoryStore } from '../storage/directory-store.ts';
import type { ObjectStore } from '../storage/object-store.ts';
import { S3Store } from '../storage/s3-store.ts';
import { measureUsage, publishedKind } from './usage.ts';

let server: S3TestServer;
let root: string;
const stores: Record<'local' | 'r2', ObjectStore> = {} as Record<'local' | 'r2', ObjectStore>;

const bytes = (length: number) => Buffer.alloc(length, 7);
const PNG = { contentType: 'image/png' };

/** What is written, with the sizes the figures must add up to. */
const FILES: readonly [string, number][] = [
  ['poses/gen_a/p1.png', 1000],
  ['poses/gen_a/p1_thumb.png', 100],
  ['poses/gen_a/p2.png', 2000], // an image without thumbnail: still a pose
  ['poses/gen_b/p3.png', 3000],
  ['poses/gen_b/p3_thumb.png', 300],
  ['poses/gen_b/p9_thumb.png', 90], // an orphan thumbnail: no pose
  ['staging/gen_b/p4/0b6c5d0e-2f0a-4c54-9d0e-5b8a8f5f0a11', 4000],
  ['staging/gen_c/p5/1b6c5d0e-2f0a-4c54-9d0e-5b8a8f5f0a11', 5000],
  ['records/gen_c/p6.json', 60],
  ['locks/gen_c/p6.json', 50],
  ['backups/gen_a/p1.png', 500],
  ['health/leftover', 7],
];

beforeAll(async () => {
  server = await startS3Server();
  root = await mkdtemp(path.join(os.tmpdir(), 'usage-'));
  stores.local = new DirectoryStore({ root, uploadBaseUrl: 'http://127.0.0.1:1' });
  stores.r2 = new S3Store(server.r2Config);
  for (const store of Object.values(stores)) {
    for (const [key, size] of FILES) await store.put(key, bytes(size), PNG);
  }
  // Local mtimes can be set: gen_a's newest file is from 2024-05-01.
  const when = new Date('2024-05-01T12:00:00Z');
  for (const key of ['poses/gen_a/p1.png', 'poses/gen_a/p1_thumb.png', 'poses/gen_a/p2.png', 'backups/gen_a/p1.png']) await utimes(path.join(root, key), when, when);
});

afterAll(async () => {
  await server?.stop();
  if (root) await rm(root, { recursive: true, force: true });
});

describe.each(['local', 'r2'] as const)('measureUsage in %s mode', (mode) => {
  it('counts files, bytes and poses, by area', async () => {
    const report = await measureUsage(stores[mode]);
    expect(report).toEqual({
      files: 12,
      bytes: 16107,
      poses: 3,
      thumbnails: 3,
      areas: {
        poses: { files: 6, bytes: 6490 },
        staging: { files: 2, bytes: 9000 },
        records: { files: 1, bytes: 60 },
        locks: { files: 1, bytes: 50 },
        backups: { files: 1, bytes: 500 },
        other: { files: 1, bytes: 7 },
      },
    });
  });

  it('counts per generation, across every area', async () => {
    const report = await measureUsage(stores[mode], { byGeneration: true });
    expect(report.generations?.map(({ newest: _, ...counts }) => counts)).toEqual([
      { generationId: 'gen_a', poses: 2, files: 4, bytes: 3600 },
      { generationId: 'gen_b', poses: 1, files: 4, bytes: 7390 },
      { generationId: 'gen_c', poses: 0, files: 3, bytes: 5110 },
    ]);
    const sum = report.generations!.reduce((total, g) => total + g.bytes, 0);
    expect(sum).toBe(report.bytes - report.areas.other.bytes);
    if (mode === 'local') expect(report.generations![0]!.newest).toBe('2024-05-01T12:00:00.000Z');
    else expect(Date.now() - Date.parse(report.generations![0]!.newest)).toBeLessThan(10 * 60_000);
  });
});

it('local mode: the temporary files of .tmp/ are listed apart (files, bytes, oldest), and are no object', async () => {
  const directory = await mkdtemp(path.join(os.tmpdir(), 'usage-tmp-'));
  try {
    const store = new DirectoryStore({ root: directory, uploadBaseUrl: 'http://127.0.0.1:1' });
    await store.put('poses/g/p.png', bytes(10), PNG);
    await mkdir(path.join(directory, '.tmp'), { recursive: true }); // the put made it already
    const old = new Date('2025-01-02T03:04:05Z');
    for (const [name, size] of [['a', 300], ['b', 40]] as const) await writeFile(path.join(directory, '.tmp', name), bytes(size));
    await utimes(path.join(directory, '.tmp', 'a'), old, old);
    const report = await measureUsage(store, { temporaryFiles: () => store.temporaryFiles() });
    expect(report).toMatchObject({ files: 1, bytes: 10, temporary: { files: 2, bytes: 340, oldest: '2025-01-02T03:04:05.000Z' } });
    expect((await measureUsage(store)).temporary).toBeUndefined();
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
});

it('an empty store is all zeros', async () => {
  const empty = await mkdtemp(path.join(os.tmpdir(), 'usage-empty-'));
  try {
    const report = await measureUsage(new DirectoryStore({ root: empty, uploadBaseUrl: 'http://127.0.0.1:1' }), { byGeneration: true });
    expect(report).toMatchObject({ files: 0, bytes: 0, poses: 0, thumbnails: 0, generations: [] });
  } finally {
    await rm(empty, { recursive: true, force: true });
  }
});

it('publishedKind tells images from thumbnails and other files', () => {
  expect(publishedKind('poses/g/p.png')).toBe('image');
  expect(publishedKind('poses/g/p_thumb.png')).toBe('thumbnail');
  expect(publishedKind('poses/g/sub/p.png')).toBeUndefined();
  expect(publishedKind('poses/g/p.json')).toBeUndefined();
  expect(publishedKind('staging/g/p.png')).toBeUndefined();
});
