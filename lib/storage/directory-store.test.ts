import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { DiskFullError, InvalidIdError, PermissionDeniedError } from '../errors.ts';
import { DirectoryStore } from './directory-store.ts';
import type { ObjectInfo } from './object-store.ts';
import { verifyUploadRequest } from './upload-signature.ts';
import { mountTmpfs, remount, tmpfs, unmount } from '../../test/support/tmpfs.ts';

const PNG = { contentType: 'image/png' };
const UPLOAD_BASE_URL = 'http://127.0.0.1:3999';

async function keysOf(iterable: AsyncIterable<ObjectInfo>): Promise<string[]> {
  const keys: string[] = [];
  for await (const info of iterable) keys.push(info.key);
  return keys;
}

/** Every file and directory under `directory`, as sorted relative paths (directories end with "/"). */
async function tree(directory: string): Promise<string[]> {
  const entries = await readdir(directory, { recursive: true, withFileTypes: true });
  return entries
    .map((entry) => {
      const relative = path.relative(directory, path.join(entry.parentPath, entry.name));
      return entry.isDirectory() ? `${relative}/` : relative;
    })
    .sort();
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}

describe('DirectoryStore on a temporary directory', () => {
  let parent: string;
  let root: string;
  let store: DirectoryStore;

  beforeEach(async () => {
    // The store's root sits inside `parent`, so a write that escapes the root is visible in `parent`.
    parent = await mkdtemp(path.join(os.tmpdir(), 'directory-store-'));
    root = path.join(parent, 'root');
    await mkdir(root);
    store = new DirectoryStore({ root, uploadBaseUrl: UPLOAD_BASE_URL, uploadSigningKey: randomBytes(32) });
  });

  afterEach(async () => {
    await rm(parent, { recursive: true, force: true });
  });

  describe('put, get, head, delete', () => {
    it('round-trips an object and reports its size', async () => {
      const body = randomBytes(5000);
      await store.put('poses/gen_1/pose_1.png', body, PNG);

      const object = await store.get('poses/gen_1/pose_1.png');
      expect(object?.key).toBe('poses/gen_1/pose_1.png');
      expect(object?.size).toBe(5000);
      expect(object?.body.equals(body)).toBe(true);
      expect(object?.lastModified).toBeInstanceOf(Date);

      const info = await store.head('poses/gen_1/pose_1.png');
      expect(info).toMatchObject({ key: 'poses/gen_1/pose_1.png', size: 5000 });

      expect(await readFile(path.join(root, 'poses', 'gen_1', 'pose_1.png'))).toEqual(body);
    });

    it('overwrites an existing object with the new content', async () => {
      await store.put('poses/g/p.png', Buffer.from('old content'), PNG);
      await store.put('poses/g/p.png', Buffer.from('new'), PNG);
      const object = await store.get('poses/g/p.png');
      expect(object?.body.toString()).toBe('new');
      expect(object?.size).toBe(3);
    });

    it('stores an empty object', async () => {
      await store.put('poses/g/empty', new Uint8Array(0), PNG);
      expect((await store.get('poses/g/empty'))?.body.length).toBe(0);
      expect((await store.head('poses/g/empty'))?.size).toBe(0);
    });

    it('returns undefined for missing keys and for keys that are directories', async () => {
      expect(await store.get('poses/g/missing.png')).toBeUndefined();
      expect(await store.head('poses/g/missing.png')).toBeUndefined();
      await store.put('poses/g/p.png', Buffer.from('x'), PNG);
      expect(await store.get('poses/g')).toBeUndefined();
      expect(await store.head('poses/g')).toBeUndefined();
      expect(await store.get('poses')).toBeUndefined();
    });

    it('deletes objects; deleting missing keys is not an error', async () => {
      await store.put('poses/g/p.png', Buffer.from('image'), PNG);
      await store.put('poses/g/p_thumb.png', Buffer.from('thumb'), PNG);

      await store.delete(['poses/g/p.png', 'poses/g/never.png', 'poses/other/none.png', 'staging/x/y/z']);

      expect(await store.get('poses/g/p.png')).toBeUndefined();
      expect((await store.get('poses/g/p_thumb.png'))?.body.toString()).toBe('thumb');
      await expect(store.delete(['poses/g/p.png'])).resolves.toBeUndefined();
      await expect(store.delete([])).resolves.toBeUndefined();
    });

    it('removes directories emptied by a delete but keeps the top-level area directories', async () => {
      await store.put('poses/g/p.png', Buffer.from('image'), PNG);
      await store.put('poses/g/p_thumb.png', Buffer.from('thumb'), PNG);
      await store.put('staging/g/p/0b0c0d0e-0000-4000-8000-000000000000', Buffer.from('upload'), PNG);
      await store.put('staging/g/q/0b0c0d0e-0000-4000-8000-000000000001', Buffer.from('upload'), PNG);

      await store.delete(['poses/g/p.png']);
      expect(await exists(path.join(root, 'poses', 'g'))).toBe(true); // still holds the thumbnail

      await store.delete(['poses/g/p_thumb.png', 'staging/g/p/0b0c0d0e-0000-4000-8000-000000000000']);
      expect(await tree(root)).toEqual([
        '.tmp/',
        'poses/',
        'staging/',
        'staging/g/',
        'staging/g/q/',
        'staging/g/q/0b0c0d0e-0000-4000-8000-000000000001',
      ]);

      await store.delete(['staging/g/q/0b0c0d0e-0000-4000-8000-000000000001']);
      expect(await tree(root)).toEqual(['.tmp/', 'poses/', 'staging/']);
    });

    it('writes atomically: no temporary file is left after writes', async () => {
      for (let i = 0; i < 5; i++) await store.put(`poses/g/p${i}.png`, randomBytes(1000), PNG);
      await store.put('poses/g/p0.png', randomBytes(10), PNG);
      expect(await readdir(path.join(root, '.tmp'))).toEqual([]);
      expect((await tree(root)).filter((entry) => entry.startsWith('.tmp/') && entry !== '.tmp/')).toEqual([]);
    });

    it('keeps every one of many concurrent writes to distinct keys', async () => {
      const bodies = Array.from({ length: 20 }, (_, i) => Buffer.from(`body ${i}`));
      await Promise.all(bodies.map((body, i) => store.put(`poses/g${i % 3}/p${i}.png`, body, PNG)));
      for (const [i, body] of bodies.entries()) {
        expect((await store.get(`poses/g${i % 3}/p${i}.png`))?.body).toEqual(body);
      }
      expect(await readdir(path.join(root, '.tmp'))).toEqual([]);
    });
  });

  describe('list', () => {
    const keys = [
      'poses/g/p.png',
      'poses/g/p_thumb.png',
      'poses/g/p-2.png',
      'poses/g/p-2_thumb.png',
      'poses/g2/a.png',
      'poses/g-1/a.png',
      'rejections/g/p.json',
      'staging/g/p/0b0c0d0e-0000-4000-8000-000000000000',
      'staging/g/p-2/0b0c0d0e-0000-4000-8000-000000000001',
      'staging/g/p.x/0b0c0d0e-0000-4000-8000-000000000002',
      'staging/g/pa/0b0c0d0e-0000-4000-8000-000000000003',
    ];

    beforeEach(async () => {
      for (const key of keys) await store.put(key, Buffer.from(key), PNG);
    });

    it('lists every key in lexicographic order (as S3 does), with sizes', async () => {
      const sorted = [...keys].sort();
      expect(await keysOf(store.list(''))).toEqual(sorted);
      const infos: ObjectInfo[] = [];
      for await (const info of store.list('')) infos.push(info);
      for (const info of infos) expect(info.size).toBe(Buffer.byteLength(info.key));
    });

    it('lists by prefix, in lexicographic order', async () => {
      const byPrefix = (prefix: string) => keys.filter((key) => key.startsWith(prefix)).sort();
      for (const prefix of ['poses/', 'poses/g/', 'poses/g', 'poses/g/p', 'poses/g/p-', 'staging/g/', 'staging/g/p', 'staging/g/p/', 'rejections/']) {
        expect(await keysOf(store.list(prefix)), prefix).toEqual(byPrefix(prefix));
      }
      // The ordering that a per-directory walk gets wrong: "-" and "." sort before "/".
      expect(await keysOf(store.list('staging/g/'))).toEqual([
        'staging/g/p-2/0b0c0d0e-0000-4000-8000-000000000001',
        'staging/g/p.x/0b0c0d0e-0000-4000-8000-000000000002',
        'staging/g/p/0b0c0d0e-0000-4000-8000-000000000000',
        'staging/g/pa/0b0c0d0e-0000-4000-8000-000000000003',
      ]);
    });

    it('returns nothing for a prefix that matches nothing', async () => {
      expect(await keysOf(store.list('poses/none/'))).toEqual([]);
      expect(await keysOf(store.list('poses/g/zzz'))).toEqual([]);
      expect(await keysOf(store.list('poses/g/p.png/'))).toEqual([]); // a file, not a directory
      expect(await keysOf(store.list('nothing/'))).toEqual([]);
    });

    it('skips temporary files and names that are not keys', async () => {
      await writeFile(path.join(root, '.tmp', 'half-written'), 'partial');
      await writeFile(path.join(root, 'poses', 'g', '.hidden'), 'x');
      await writeFile(path.join(root, 'poses', 'g', 'with space.png'), 'x');
      const listed = await keysOf(store.list(''));
      expect(listed).toEqual([...keys].sort());
      expect(listed.some((key) => key.includes('.tmp'))).toBe(false);
    });

    it('refuses a prefix whose directory part leaves the root or names the temporary area', async () => {
      for (const prefix of ['../', '../x', 'poses/../../', '.tmp/', '/etc/', 'poses//x', '%2e%2e/']) {
        await expect(keysOf(store.list(prefix)), prefix).rejects.toBeInstanceOf(InvalidIdError);
      }
    });
  });

  describe('keys that try to leave the root', () => {
    const badKeys = [
      '../x',
      '..',
      '.',
      'poses/../../etc/passwd',
      'poses/../x',
      '/etc/passwd',
      'poses//x',
      'poses/./x',
      'poses/x/',
      '',
      'poses/a\u0000b',
      '.tmp/x',
      '.tmp',
      'poses\\..\\..\\x',
      '..\\x',
      'poses/a\\b',
      '%2e%2e/x',
      'poses/%2e%2e/x',
      'poses/.hidden',
      'poses/a b',
      'poses/\u00e9',
      `poses/${'a'.repeat(256)}`,
    ];

    it.each(badKeys.map((key) => [JSON.stringify(key), key]))('refuses %s everywhere and writes nothing', async (_, key) => {
      const before = await tree(parent);
      await expect(store.put(key, Buffer.from('evil'), PNG)).rejects.toBeInstanceOf(InvalidIdError);
      await expect(store.get(key)).rejects.toBeInstanceOf(InvalidIdError);
      await expect(store.head(key)).rejects.toBeInstanceOf(InvalidIdError);
      await expect(store.delete([key])).rejects.toBeInstanceOf(InvalidIdError);
      await expect(
        store.presignUpload(key, { contentType: 'image/png', contentLength: 4, expiresInSeconds: 60 }),
      ).rejects.toBeInstanceOf(InvalidIdError);
      expect(await tree(parent)).toEqual(before);
    });

    it('refuses a batch delete with one bad key before deleting any key', async () => {
      await store.put('poses/g/p.png', Buffer.from('keep'), PNG);
      await expect(store.delete(['poses/g/p.png', '../x'])).rejects.toBeInstanceOf(InvalidIdError);
      expect((await store.get('poses/g/p.png'))?.body.toString()).toBe('keep');
    });

    it('accepts the key shapes of the layout', async () => {
      const good = [
        'poses/gen_1/pose-1.png',
        'poses/gen_1/pose-1_thumb.png',
        'staging/gen_1/pose-1/0b0c0d0e-0000-4000-8000-000000000000',
        'rejections/gen_1/pose-1.json',
        `poses/${'a'.repeat(128)}/${'b'.repeat(128)}_thumb.png`,
      ];
      for (const key of good) await store.put(key, Buffer.from(key), PNG);
      expect(await keysOf(store.list(''))).toEqual([...good].sort());
    });
  });

  describe('presignUpload', () => {
    const key = 'staging/gen_1/pose_1/0b0c0d0e-0000-4000-8000-000000000000';
    const contentType = 'image/jpeg';
    const contentLength = 12345;

    afterEach(() => {
      vi.useRealTimers();
    });

    async function presign() {
      vi.useFakeTimers({ toFake: ['Date'] });
      vi.setSystemTime(new Date('2030-01-01T00:00:00Z'));
      const upload = await store.presignUpload(key, { contentType, contentLength, expiresInSeconds: 600 });
      vi.useRealTimers();
      return upload;
    }

    const requestOf = (url: string, overrides: Partial<{ pathname: string; contentType: string; contentLength: number }> = {}) => {
      const parsed = new URL(url);
      return { pathname: parsed.pathname, searchParams: parsed.searchParams, contentType, contentLength, ...overrides };
    };

    it('returns a PUT URL on the upload base URL with exactly the headers to send', async () => {
      const upload = await presign();
      expect(upload.method).toBe('PUT');
      expect(upload.url.startsWith(`${UPLOAD_BASE_URL}/local-uploads/${key}?`)).toBe(true);
      expect(upload.headers).toEqual({ 'Content-Type': contentType, 'Content-Length': String(contentLength), 'If-None-Match': '*' });
      expect(upload.expiresAt.toISOString()).toBe('2030-01-01T00:10:00.000Z');
      // Nothing is written by presigning.
      expect(await tree(root)).toEqual([]);
    });

    it('is accepted for the same key, type and length before expiry', async () => {
      const upload = await presign();
      const result = verifyUploadRequest(store.uploadSigningKey, requestOf(upload.url), new Date('2030-01-01T00:09:59Z'));
      expect(result).toEqual({ ok: true, grant: { key, contentType, contentLength, expires: upload.expiresAt.getTime() / 1000 } });
    });

    it('is refused for another length, another type, a tampered key, after expiry, or with another secret', async () => {
      const upload = await presign();
      const now = new Date('2030-01-01T00:05:00Z');
      const verify = (request: ReturnType<typeof requestOf>, at = now, secret = store.uploadSigningKey) =>
        verifyUploadRequest(secret, request, at);

      expect(verify(requestOf(upload.url, { contentLength: contentLength + 1 }))).toEqual({ ok: false, refusal: 'bad_signature' });
      expect(verify(requestOf(upload.url, { contentLength: 0 }))).toEqual({ ok: false, refusal: 'bad_signature' });
      expect(verify(requestOf(upload.url, { contentType: 'image/png' }))).toEqual({ ok: false, refusal: 'bad_signature' });
      expect(verify(requestOf(upload.url, { contentType: 'text/html' }))).toEqual({ ok: false, refusal: 'bad_signature' });
      expect(
        verify(requestOf(upload.url, { pathname: '/local-uploads/staging/gen_1/pose_2/0b0c0d0e-0000-4000-8000-000000000000' })),
      ).toEqual({ ok: false, refusal: 'bad_signature' });
      expect(verify(requestOf(upload.url, { pathname: '/local-uploads/poses/gen_1/pose_1.png' }))).toEqual({
        ok: false,
        refusal: 'bad_signature',
      });
      expect(verify(requestOf(upload.url), new Date('2030-01-01T00:10:01Z'))).toEqual({ ok: false, refusal: 'expired' });
      expect(verify(requestOf(upload.url), now, randomBytes(32))).toEqual({ ok: false, refusal: 'bad_signature' });

      const pushedExpiry = new URL(upload.url);
      pushedExpiry.searchParams.set('expires', String(upload.expiresAt.getTime() / 1000 + 3600));
      expect(verify(requestOf(pushedExpiry.toString()), new Date('2030-01-01T00:30:00Z'))).toEqual({
        ok: false,
        refusal: 'bad_signature',
      });
    });

    it('signs with a fresh random key per store unless one is given', async () => {
      const a = new DirectoryStore({ root, uploadBaseUrl: UPLOAD_BASE_URL });
      const b = new DirectoryStore({ root, uploadBaseUrl: UPLOAD_BASE_URL });
      expect(a.uploadSigningKey.length).toBeGreaterThanOrEqual(32);
      expect(Buffer.from(a.uploadSigningKey).equals(Buffer.from(b.uploadSigningKey))).toBe(false);
      const upload = await a.presignUpload(key, { contentType, contentLength, expiresInSeconds: 60 });
      expect(verifyUploadRequest(b.uploadSigningKey, requestOf(upload.url))).toEqual({ ok: false, refusal: 'bad_signature' });
      expect(verifyUploadRequest(a.uploadSigningKey, requestOf(upload.url)).ok).toBe(true);
    });
  });
});

// ---------------------------------------------------------------------------------------------------------
// A real full disk and a real read-only file system, on a tiny tmpfs. Needs root (CI runs as root).

const canMount = tmpfs.ok;

describe(`DirectoryStore on a 256 KiB tmpfs${tmpfs.note}`, () => {
  let mountPoint: string;
  let mounted = false;
  let store: DirectoryStore;
  const key = 'poses/gen_full/pose_1.png';
  const oldContent = randomBytes(16 * 1024);

  beforeAll(async () => {
    if (!canMount) return;
    mountPoint = await mkdtemp(path.join(os.tmpdir(), 'directory-store-tmpfs-'));
    mountTmpfs(mountPoint, '256k');
    mounted = true;
    store = new DirectoryStore({ root: mountPoint, uploadBaseUrl: UPLOAD_BASE_URL });
  });

  afterAll(async () => {
    if (!mountPoint) return;
    if (mounted) unmount(mountPoint);
    await rm(mountPoint, { recursive: true, force: true });
  });

  it.skipIf(!canMount)('a put larger than the free space fails with DiskFullError and leaves the old object intact', async () => {
    await store.put(key, oldContent, PNG);

    const error = await store.put(key, randomBytes(1024 * 1024), PNG).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(DiskFullError);
    expect((error as DiskFullError).code).toBe('disk_full');

    expect((await store.get(key))?.body.equals(oldContent)).toBe(true);
    expect(await readdir(path.join(mountPoint, '.tmp'))).toEqual([]);
  });

  it.skipIf(!canMount)('a new key that does not fit is not created, and the space is given back', async () => {
    const newKey = 'poses/gen_full/pose_2.png';
    await expect(store.put(newKey, randomBytes(1024 * 1024), PNG)).rejects.toBeInstanceOf(DiskFullError);
    expect(await store.head(newKey)).toBeUndefined();
    expect(await exists(path.join(mountPoint, 'poses', 'gen_full', 'pose_2.png'))).toBe(false);
    expect(await readdir(path.join(mountPoint, '.tmp'))).toEqual([]);
    expect(await keysOf(store.list(''))).toEqual([key]);

    // The temporary file of the failed write was removed: 200 KiB fit again next to the 16 KiB object.
    const fits = randomBytes(200 * 1024);
    await store.put(newKey, fits, PNG);
    expect((await store.get(newKey))?.body.equals(fits)).toBe(true);
    await store.delete([newKey]);
  });

  it.skipIf(!canMount)('a read-only file system gives PermissionDeniedError on writes and deletes; reads still work', async () => {
    remount(mountPoint, 'ro');
    try {
      await expect(store.put('poses/gen_full/pose_3.png', Buffer.from('x'), PNG)).rejects.toBeInstanceOf(PermissionDeniedError);
      await expect(store.put(key, Buffer.from('x'), PNG)).rejects.toBeInstanceOf(PermissionDeniedError);
      await expect(store.delete([key])).rejects.toBeInstanceOf(PermissionDeniedError);
      expect((await store.get(key))?.body.equals(oldContent)).toBe(true);
      expect(await store.head('poses/gen_full/pose_3.png')).toBeUndefined();
    } finally {
      remount(mountPoint, 'rw');
    }
  });

  it.skipIf(!canMount)('a read-only file system never written to (no .tmp yet) also gives PermissionDeniedError', async () => {
    // Node's recursive mkdir reports ENOENT there; the store must still tell the real cause.
    const fresh = path.join(mountPoint, 'fresh');
    await mkdir(fresh);
    remount(mountPoint, 'ro');
    try {
      const untouched = new DirectoryStore({ root: fresh, uploadBaseUrl: UPLOAD_BASE_URL });
      await expect(untouched.put('poses/g/p.png', Buffer.from('x'), PNG)).rejects.toBeInstanceOf(PermissionDeniedError);
    } finally {
      remount(mountPoint, 'rw');
    }
  });
});

describe.skipIf(process.platform !== 'linux')('DirectoryStore on a pseudo file system', () => {
  it('is refused at once, naming the path (Node\'s recursive mkdir would retry for ever under /proc)', async () => {
    expect(() => new DirectoryStore({ root: '/proc/pose-storage/uploads', uploadBaseUrl: 'http://127.0.0.1:1' })).toThrow(
      expect.objectContaining({ code: 'invalid_configuration', message: expect.stringMatching(/^UPLOAD_PATH is \/proc\/pose-storage\/uploads, on proc, a pseudo file system/) }),
    );
    // And so through the library: its first call says why instead of hanging.
    const { createPoseStorage } = await import('../index.ts');
    const { parseConfig } = await import('../config.ts');
    expect(() => createPoseStorage({ config: parseConfig({ UPLOAD_PATH: '/sys/pose-storage' }) })).toThrow(/on sysfs, a pseudo file system/);
  });
});
