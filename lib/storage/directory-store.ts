import { randomBytes, randomUUID } from 'node:crypto';
import type { BigIntStats } from 'node:fs';
import { type FileHandle, link, mkdir, open, readdir, rename, rm, rmdir, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { uploadPathProblem } from '../upload-path.ts';
import { AREAS } from '../layout.ts';
import {
  ConfigError,
  DiskFullError,
  InvalidIdError,
  ObjectTooLargeError,
  PermissionDeniedError,
  PoseStorageError,
  PreconditionFailedError,
  StoreUnavailableError,
} from '../errors.ts';
import {
  abortedRequestError,
  type CopyOptions,
  type GetOptions,
  type ObjectInfo,
  type ObjectStore,
  type PresignedUpload,
  type PresignUploadOptions,
  type PutOptions,
  type RequestOptions,
  type StoredObject,
  type WriteConditions,
  type Written,
} from './object-store.ts';
import { FULL_DIALECT, type StoreDialect } from './store-dialect.ts';
import { signUploadUrl } from './upload-signature.ts';

/** Where half-written files live until they are renamed into place; never listed, never served. */
const TEMP_DIR = '.tmp';

const KEY_SEGMENT = /^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,254}$/;

export interface DirectoryStoreOptions {
  /** Absolute root directory (UPLOAD_PATH). */
  root: string;
  /**
   * Base URL of the local server that accepts signed uploads (e.g. http://127.0.0.1:3000), or how to get it
   * for the request being answered (the local server answers each client at the address it used).
   */
  uploadBaseUrl: string | (() => string);
  /** HMAC key for upload URLs; a fresh random one by default (URLs then die with the process). */
  uploadSigningKey?: Uint8Array;
}

export interface TemporaryFiles {
  files: number;
  bytes: number;
  /** Last modification of the oldest one. */
  oldest: Date | undefined;
}

/**
 * The local-mode adapter: objects are files under `root`, written atomically (temporary file, then rename).
 *
 * Conditional writes: create-only (`ifNoneMatch: '*'`) is a hard link of the finished temporary file, which
 * the kernel refuses when the name exists, so it is atomic across processes. Replace-if-version (`ifMatch`)
 * compares and renames under a lock held by this process: atomic within one process. It only serves to take
 * over an expired pose lock, so two processes (the server and `pose-storage cleanup` or `verify --repair`)
 * could both take over the same dead writer's lock only if they tried within the same instant, two minutes
 * after that writer died.
 */
export class DirectoryStore implements ObjectStore {
  readonly root: string;
  readonly uploadSigningKey: Uint8Array;
  readonly #uploadBaseUrl: () => string;
  /** Compare-and-rename of one key at a time (ifMatch), by key. */
  readonly #replacing = new Map<string, Promise<void>>();

  constructor(options: DirectoryStoreOptions) {
    this.root = path.resolve(options.root);
    // Node's recursive mkdir retries for ever on a pseudo file system (/proc, /sys): refuse one at once.
    const pseudo = uploadPathProblem(this.root);
    if (pseudo) throw new ConfigError(pseudo.variable, pseudo.problem);
    const { uploadBaseUrl } = options;
    this.#uploadBaseUrl = typeof uploadBaseUrl === 'string' ? () => uploadBaseUrl : uploadBaseUrl;
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

  put(key: string, body: Uint8Array, options: PutOptions): Promise<Written> {
    return this.writeAtomically(
      key,
      async (file) => {
        await file.writeFile(body);
      },
      options,
    );
  }

  /**
   * Writes `key` through `fill` into a temporary file, syncs it, then moves it into place (rename, or a link
   * for create-only): a crash or a full disk leaves no partial file behind the published name, and the
   * temporary file is removed. An aborted `signal` is checked right before the move: the one step that makes
   * the write, which takes microseconds, so an aborted write is not made.
   */
  async writeAtomically(
    key: string,
    fill: (file: FileHandle) => Promise<void>,
    options: WriteConditions & RequestOptions = {},
  ): Promise<Written> {
    const target = this.pathOf(key);
    const temp = await this.#tempFile();
    try {
      let etag: string;
      const file = await open(temp, 'wx', 0o644);
      try {
        await fill(file);
        await file.datasync();
        // The version is the file's: a rename or a link keeps its inode, size and mtime.
        etag = etagOf(await file.stat({ bigint: true }));
      } finally {
        await file.close();
      }
      throwIfAborted(options.signal, `put ${key}`);
      await this.#moveIntoPlace(key, temp, target, options);
      return { etag };
    } catch (error) {
      throw fileSystemError(error, target);
    } finally {
      await rm(temp, { force: true }).catch(() => undefined);
    }
  }

  async get(key: string, options: GetOptions = {}): Promise<StoredObject | undefined> {
    const file = this.pathOf(key);
    throwIfAborted(options.signal, `get ${key}`);
    let handle: FileHandle;
    try {
      handle = await open(file, 'r');
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw fileSystemError(error, file);
    }
    try {
      // The body and its version from one open file: a rename over the name meanwhile cannot mix them.
      const info = await handle.stat({ bigint: true });
      if (!info.isFile()) return undefined; // a directory is a prefix, not an object
      const size = Number(info.size);
      if (options.maxBytes !== undefined && size > options.maxBytes) throw new ObjectTooLargeError(key, size, options.maxBytes);
      const body = await handle.readFile();
      return { ...infoOf(key, info), body, storeDate: new Date() };
    } catch (error) {
      throw fileSystemError(error, file);
    } finally {
      await handle.close();
    }
  }

  async head(key: string, options: RequestOptions = {}): Promise<ObjectInfo | undefined> {
    const file = this.pathOf(key);
    throwIfAborted(options.signal, `head ${key}`);
    try {
      const info = await stat(file, { bigint: true });
      return info.isFile() ? infoOf(key, info) : undefined;
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw fileSystemError(error, file);
    }
  }

  /** A hard link: no byte is copied, and the link holds the very version that was checked. */
  async copy(sourceKey: string, targetKey: string, options: CopyOptions): Promise<Written> {
    const source = this.pathOf(sourceKey);
    const target = this.pathOf(targetKey);
    const temp = await this.#tempFile();
    try {
      try {
        await link(source, temp);
      } catch (error) {
        if (isMissing(error)) throw new PreconditionFailedError(sourceKey, 'the copy source does not exist');
        throw error;
      }
      const etag = etagOf(await stat(temp, { bigint: true }));
      if (options.sourceEtag !== undefined && etag !== options.sourceEtag) {
        throw new PreconditionFailedError(sourceKey, 'the copy source changed since it was read');
      }
      throwIfAborted(options.signal, `copy ${sourceKey}`);
      await renameCreatingParent(temp, target);
      return { etag };
    } catch (error) {
      throw fileSystemError(error, target);
    } finally {
      await rm(temp, { force: true }).catch(() => undefined);
    }
  }

  async delete(keys: readonly string[], options: RequestOptions = {}): Promise<void> {
    const files = keys.map((key) => this.pathOf(key));
    for (const file of files) {
      throwIfAborted(options.signal, `delete ${path.relative(this.root, file)}`);
      try {
        await unlink(file);
      } catch (error) {
        if (!isMissing(error)) throw fileSystemError(error, file);
      }
      await this.#removeEmptyParents(path.dirname(file));
    }
  }

  async *list(prefix: string, options: RequestOptions = {}): AsyncIterable<ObjectInfo> {
    // Walk only the directory the prefix names (its part up to the last "/"), in key order like S3.
    const directoryKey = prefix.slice(0, prefix.lastIndexOf('/') + 1);
    const start = directoryKey === '' ? this.root : this.pathOf(directoryKey.slice(0, -1));
    for await (const info of this.#walk(start, directoryKey)) {
      throwIfAborted(options.signal, `list ${prefix}`);
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
          yield infoOf(`${keyPrefix}${entry.name}`, await stat(file, { bigint: true }));
        } catch (error) {
          if (!isMissing(error)) throw fileSystemError(error, file); // deleted while listing: skip it
        }
      }
    }
  }

  async prepare(): Promise<void> {
    for (const area of AREAS) {
      const directory = path.join(this.root, area.slice(0, -1)); // the area prefix without its slash
      await makeDirectory(directory).catch((error: unknown) => {
        throw fileSystemError(error, directory);
      });
    }
  }

  /** Every condition, enforced here (create-only by a hard link, replace-if-version by compare-and-rename). */
  dialect(): Promise<StoreDialect> {
    return Promise.resolve(FULL_DIALECT);
  }

  async presignUpload(key: string, options: PresignUploadOptions): Promise<PresignedUpload> {
    this.pathOf(key);
    const expires = Math.floor(Date.now() / 1000) + options.expiresInSeconds;
    const url = signUploadUrl(this.#uploadBaseUrl(), this.uploadSigningKey, {
      key,
      contentType: options.contentType,
      contentLength: options.contentLength,
      expires,
    });
    return {
      url,
      method: 'PUT',
      headers: { 'Content-Type': options.contentType, 'Content-Length': String(options.contentLength), 'If-None-Match': '*' },
      expiresAt: new Date(expires * 1000),
    };
  }

  /** The temporary files (`.tmp/`): writes in progress, and what writers killed mid-write left behind. */
  async temporaryFiles(): Promise<TemporaryFiles> {
    return this.#sweepTemporaryFiles(undefined);
  }

  /**
   * Removes the temporary files no write touched for `olderThanMs` (0: every one), which only a writer killed
   * mid-write leaves: a live write renames or removes its file within moments, and a streamed upload touches it
   * with every chunk. Returns what was removed.
   */
  async removeStaleTemporaryFiles(olderThanMs: number): Promise<TemporaryFiles> {
    return this.#sweepTemporaryFiles(olderThanMs > 0 ? Date.now() - olderThanMs : Number.POSITIVE_INFINITY);
  }

  /** Counts the temporary files and, with a cutoff, removes those last modified before it (or at it). */
  async #sweepTemporaryFiles(cutoff: number | undefined): Promise<TemporaryFiles> {
    const directory = path.join(this.root, TEMP_DIR);
    const found: TemporaryFiles = { files: 0, bytes: 0, oldest: undefined };
    let names: string[];
    try {
      names = await readdir(directory);
    } catch (error) {
      if (isMissing(error)) return found;
      throw fileSystemError(error, directory);
    }
    for (const name of names) {
      const file = path.join(directory, name);
      try {
        const info = await stat(file);
        if (!info.isFile() || (cutoff !== undefined && info.mtimeMs > cutoff)) continue;
        if (cutoff !== undefined) await unlink(file);
        found.files++;
        found.bytes += info.size;
        if (!found.oldest || info.mtime < found.oldest) found.oldest = info.mtime;
      } catch (error) {
        if (!isMissing(error)) throw fileSystemError(error, file); // renamed into place or removed meanwhile
      }
    }
    return found;
  }

  /** A fresh temporary file name (its directory created); the caller removes the file. */
  async #tempFile(): Promise<string> {
    const temp = path.join(this.root, TEMP_DIR, randomUUID());
    await makeDirectory(path.dirname(temp)).catch((error: unknown) => {
      throw fileSystemError(error, path.dirname(temp));
    });
    return temp;
  }

  async #moveIntoPlace(key: string, temp: string, target: string, conditions: WriteConditions): Promise<void> {
    if (conditions.ifNoneMatch === '*') {
      await withParent(target, async () => {
        try {
          await link(temp, target);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code === 'EEXIST') throw new PreconditionFailedError(key, 'the object already exists');
          throw error;
        }
      });
      return;
    }
    if (conditions.ifMatch === undefined) return renameCreatingParent(temp, target);
    const expected = conditions.ifMatch;
    await this.#exclusively(key, async () => {
      const current = await stat(target, { bigint: true }).catch((error: unknown) => {
        if (isMissing(error)) return undefined;
        throw error;
      });
      if (!current || etagOf(current) !== expected) throw new PreconditionFailedError(key, 'the object is not the version expected');
      await rename(temp, target);
    });
  }

  async #exclusively(key: string, run: () => Promise<void>): Promise<void> {
    const previous = this.#replacing.get(key) ?? Promise.resolve();
    const current = previous.then(run, run);
    const settled = current.catch(() => undefined);
    this.#replacing.set(key, settled);
    try {
      await current;
    } finally {
      if (this.#replacing.get(key) === settled) this.#replacing.delete(key);
    }
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

function throwIfAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw abortedRequestError(signal, what);
}

function infoOf(key: string, info: BigIntStats): ObjectInfo {
  return { key, size: Number(info.size), lastModified: new Date(Number(info.mtimeMs)), etag: etagOf(info) };
}

/**
 * A file's version: every write makes a new file (temporary file, then rename or link), so a new inode; the
 * size and the nanosecond mtime tell apart the rare inode number reused after a delete.
 */
function etagOf(info: BigIntStats): string {
  return `${info.ino.toString(16)}-${info.size.toString(16)}-${info.mtimeNs.toString(16)}`;
}

/**
 * Runs `move` (a rename or link into `target`), recreating the target's directory when it is missing: the
 * first write of a generation, or a concurrent delete that removed it as empty between our mkdir and our
 * move. A delete sweeps the emptied directories once per key it removes, so a dozen attempts outlast it.
 */
const MOVE_ATTEMPTS = 12;

async function withParent(target: string, move: () => Promise<void>): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await move();
    } catch (error) {
      if (!isMissing(error) || attempt === MOVE_ATTEMPTS) throw error;
      await makeDirectory(path.dirname(target));
    }
  }
}

const renameCreatingParent = (from: string, to: string): Promise<void> => withParent(to, () => rename(from, to));

/** mkdir -p. Node's recursive mkdir says ENOENT on a read-only file system; a plain mkdir then tells the real cause. */
export async function makeDirectory(directory: string): Promise<void> {
  try {
    await mkdir(directory, { recursive: true });
  } catch (error) {
    if (!isMissing(error)) throw error;
    // Create the missing ancestors one by one: the first one that cannot be made says why (EROFS, EACCES).
    const parent = path.dirname(directory);
    if (parent !== directory) await makeDirectory(parent);
    await mkdir(directory).catch((retry: unknown) => {
      if ((retry as NodeJS.ErrnoException).code !== 'EEXIST') throw retry;
    });
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
  if (code === 'EROFS') return new PermissionDeniedError(`writing or reading ${target} (read-only file system)`, { cause: error });
  if (code === 'EACCES' || code === 'EPERM') return new PermissionDeniedError(`writing or reading ${target}`, { cause: error });
  if (code === 'ENOTDIR') return new StoreUnavailableError(`local disk error on ${target}: a part of that path is a file, not a directory (ENOTDIR)`, { cause: error });
  return new StoreUnavailableError(`local disk error ${code ?? 'unknown'} on ${target}`, { cause: error });
}
