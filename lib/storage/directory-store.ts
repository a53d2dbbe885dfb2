import { randomBytes, randomUUID } from 'node:crypto';
import { type FileHandle, mkdir, open, readdir, readFile, rename, rm, rmdir, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { DiskFullError, InvalidIdError, PermissionDeniedError, PoseStorageError, StoreUnavailableError } from '../errors.ts';
import type { ObjectInfo, ObjectStore, PresignedUpload, PresignUploadOptions, PutOptions, StoredObject } from './object-store.ts';
import { signUploadUrl } from './upload-signature.ts';

/** Where half-written files live until they are renamed into place; never listed, never served. */
const TEMP_DIR = '.tmp';

const KEY_SEGMENT = /^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,254}$/;

export interface DirectoryStoreOptions {
  /** Absolute root directory (UPLOAD_PATH). */
  root: string;
  /** Base URL of the local server that accepts signed uploads (e.g. http://127.0.0.1:3000). */
  uploadBaseUrl: string;
  /** HMAC key for upload URLs; a fresh random one by default (URLs then die with the process). */
  uploadSigningKey?: Uint8Array;
}

/** The local-mode adapter: objects are files under `root`, written atomically (temporary file, then rename). */
export class DirectoryStore implements ObjectStore {
  readonly root: string;
  readonly uploadSigningKey: Uint8Array;
  readonly #uploadBaseUrl: string;

  constructor(options: DirectoryStoreOptions) {
    this.root = path.resolve(options.root);
    this.#uploadBaseUrl = options.uploadBaseUrl;
    this.uploadSigningKey = options.uploadSigningKey ?? randomBytes(32);
  }

  /** The file of a key. Keys are checked segment by segment, so none can name anything outside `root`. */
  pathOf(key: string): string {
    const segments = key.split('/');
    if (!segments.every((segment) => KEY_SEGMENT.test(segment) && segment !== TEMP_DIR)) {
      throw new InvalidIdError('key', key);
    }
    return path.join(this.root, ...segments);
  }

  async put(key: string, body: Uint8Array, _options: PutOptions): Promise<void> {
    const target = this.pathOf(key);
    await this.writeAtomically(target, async (file) => {
      await file.writeFile(body);
    });
  }

  /**
   * Writes through `fill` into a temporary file, syncs it, then renames it to `target`: a crash or a full disk
   * leaves no partial file behind the published name (and the temporary file is removed).
   */
  async writeAtomically(target: string, fill: (file: FileHandle) => Promise<void>): Promise<void> {
    const temp = path.join(this.root, TEMP_DIR, randomUUID());
    try {
      await makeDirectory(path.dirname(temp));
      const file = await open(temp, 'wx', 0o644);
      try {
        await fill(file);
        await file.datasync();
      } finally {
        await file.close();
      }
      await renameCreatingParent(temp, target);
    } catch (error) {
      await rm(temp, { force: true }).catch(() => undefined);
      throw fileSystemError(error, target);
    }
  }

  async get(key: string): Promise<StoredObject | undefined> {
    const file = this.pathOf(key);
    try {
      const [body, info] = await Promise.all([readFile(file), stat(file)]);
      return { key, body, size: body.length, lastModified: info.mtime };
    } catch (error) {
      // A directory is no object (as in head): `poses/{generationId}` is a prefix, not a key.
      if (isMissing(error) || (error as NodeJS.ErrnoException).code === 'EISDIR') return undefined;
      throw fileSystemError(error, file);
    }
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    const file = this.pathOf(key);
    try {
      const info = await stat(file);
      return info.isFile() ? { key, size: info.size, lastModified: info.mtime } : undefined;
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw fileSystemError(error, file);
    }
  }

  async delete(keys: readonly string[]): Promise<void> {
    const files = keys.map((key) => this.pathOf(key));
    for (const file of files) {
      try {
        await unlink(file);
      } catch (error) {
        if (!isMissing(error)) throw fileSystemError(error, file);
      }
      await this.#removeEmptyParents(path.dirname(file));
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    // Walk only the directory the prefix names (its part up to the last "/"), in key order like S3.
    const directoryKey = prefix.slice(0, prefix.lastIndexOf('/') + 1);
    const start = directoryKey === '' ? this.root : this.pathOf(directoryKey.slice(0, -1));
    for await (const info of this.#walk(start, directoryKey)) {
      if (info.key.startsWith(prefix)) yield info;
    }
  }

  async *#walk(directory: string, keyPrefix: string): AsyncGenerator<ObjectInfo> {
    let entries;
    try {
      entries = await readdir(directory, { withFileTypes: true });
    } catch (error) {
      if (isMissing(error) || (error as NodeJS.ErrnoException).code === 'ENOTDIR') return;
      throw fileSystemError(error, directory);
    }
    // Sort by what each entry contributes to the keys (a directory's keys continue with "/"), so the walk
    // yields keys in the same lexicographic order as S3 ("p-2/x" and "p.x/y" come before "p/z").
    const sortName = (entry: { name: string; isDirectory(): boolean }) => (entry.isDirectory() ? `${entry.name}/` : entry.name);
    entries.sort((a, b) => {
      const [x, y] = [sortName(a), sortName(b)];
      return x < y ? -1 : x > y ? 1 : 0;
    });
    for (const entry of entries) {
      if (!KEY_SEGMENT.test(entry.name) || (keyPrefix === '' && entry.name === TEMP_DIR)) continue;
      const file = path.join(directory, entry.name);
      if (entry.isDirectory()) {
        yield* this.#walk(file, `${keyPrefix}${entry.name}/`);
      } else if (entry.isFile()) {
        try {
          const info = await stat(file);
          yield { key: `${keyPrefix}${entry.name}`, size: info.size, lastModified: info.mtime };
        } catch (error) {
          if (!isMissing(error)) throw fileSystemError(error, file); // deleted while listing: skip it
        }
      }
    }
  }

  async presignUpload(key: string, options: PresignUploadOptions): Promise<PresignedUpload> {
    this.pathOf(key);
    const expires = Math.floor(Date.now() / 1000) + options.expiresInSeconds;
    const url = signUploadUrl(this.#uploadBaseUrl, this.uploadSigningKey, {
      key,
      contentType: options.contentType,
      contentLength: options.contentLength,
      expires,
    });
    return {
      url,
      method: 'PUT',
      headers: { 'Content-Type': options.contentType, 'Content-Length': String(options.contentLength) },
      expiresAt: new Date(expires * 1000),
    };
  }

  /** Removes directories emptied by a delete, up to (not including) the top-level area directories. */
  async #removeEmptyParents(directory: string): Promise<void> {
    for (let current = directory; path.relative(this.root, current).includes(path.sep); current = path.dirname(current)) {
      try {
        await rmdir(current);
      } catch {
        return; // not empty, or already gone
      }
    }
  }
}

/**
 * Renames, recreating the target's directory when it is missing: the first write of a generation, or a
 * concurrent delete that removed it as empty between our mkdir and our rename. A delete sweeps the emptied
 * directories once per key it removes (at most four for a pose), so a dozen attempts outlast a few of them.
 */
const RENAME_ATTEMPTS = 12;

async function renameCreatingParent(from: string, to: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await rename(from, to);
    } catch (error) {
      if (!isMissing(error) || attempt === RENAME_ATTEMPTS) throw error;
      await makeDirectory(path.dirname(to));
    }
  }
}

/** mkdir -p. Node's recursive mkdir says ENOENT on a read-only file system; a plain mkdir then tells the real cause. */
async function makeDirectory(directory: string): Promise<void> {
  try {
    await mkdir(directory, { recursive: true });
  } catch (error) {
    if (!isMissing(error)) throw error;
    await mkdir(directory);
  }
}

function isMissing(error: unknown): boolean {
  return (error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}

/** Maps a file-system failure to the typed error a caller can act on. */
export function fileSystemError(error: unknown, target: string): PoseStorageError {
  if (error instanceof PoseStorageError) return error;
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOSPC' || code === 'EDQUOT') return new DiskFullError(target, { cause: error });
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') return new PermissionDeniedError(target, { cause: error });
  return new StoreUnavailableError(`local disk error ${code ?? 'unknown'} on ${target}`, { cause: error });
}
