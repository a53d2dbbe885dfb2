import { constants, type Stats } from 'node:fs';
import { lstat, open, type FileHandle } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import { PUBLIC_PREFIX } from '../layout.ts';
import type { Logger } from '../logger.ts';
import type { DirectoryStore } from '../storage/directory-store.ts';
import { setCorsOrigin } from './upload-receiver.ts';

/**
 * `GET /uploads/poses/...`: published files only, as a CDN in front of R2 would serve them (ETag,
 * Last-Modified, Cache-Control, ranges). Nothing outside `poses/`, nothing staged, no traversal, and no
 * symbolic link anywhere below the storage root (a link under `poses/` could point at any readable file):
 * any such path is a plain 404. A file that is there but cannot be read is a 503, logged with its cause.
 */
export const STATIC_ROUTE = '/uploads/';

const TYPES: Record<string, string> = { '.png': 'image/png', '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg', '.webp': 'image/webp', '.avif': 'image/avif' };

/** What is not there, as far as a client may know: missing, not a directory, a symbolic link (ELOOP, EMLINK on BSD). */
const ABSENT = new Set(['ENOENT', 'ENOTDIR', 'ELOOP', 'EMLINK', 'ENAMETOOLONG']);

export interface StaticOptions {
  logger: Logger;
  /** Cache-Control of published files (CACHE_MAX_AGE_SECONDS), as the CDN in front of R2 would send it. */
  cacheControl: string;
  allowedOrigins?: readonly string[];
}

export async function serveStatic(
  store: DirectoryStore,
  request: IncomingMessage,
  response: ServerResponse,
  pathname: string,
  { logger, cacheControl, allowedOrigins = [] }: StaticOptions,
): Promise<void> {
  setCorsOrigin(request, response, allowedOrigins); // as R2's bucket CORS rules allow GET and HEAD
  const key = publishedKey(store, pathname);
  let opened: { handle: FileHandle; info: Stats } | undefined;
  try {
    opened = key === undefined ? undefined : await openPublished(store, key, logger);
  } catch (error) {
    logger.error(`[Storage] Could not read a published file: ${error instanceof Error ? error.message : String(error)}`, { key });
    return sendError(response, 503, 'storage_unavailable', 'The file cannot be read right now, please retry');
  }
  if (key === undefined || !opened) return sendError(response, 404, 'not_found', 'No such file');
  const { handle, info } = opened;
  let streaming = false;
  try {
    const etag = `"${info.size.toString(16)}-${Math.floor(info.mtimeMs).toString(16)}"`;
    response.setHeader('Content-Type', TYPES[path.extname(key).toLowerCase()] ?? 'application/octet-stream');
    response.setHeader('ETag', etag);
    response.setHeader('Last-Modified', info.mtime.toUTCString());
    response.setHeader('Cache-Control', cacheControl);
    response.setHeader('Accept-Ranges', 'bytes');
    response.setHeader('X-Content-Type-Options', 'nosniff');

    if (isFresh(request, etag, info.mtime)) {
      response.writeHead(304);
      return void response.end();
    }
    const range = parseRange(request.headers.range, info.size);
    if (range === 'unsatisfiable') {
      response.setHeader('Content-Range', `bytes */${info.size}`);
      response.writeHead(416);
      return void response.end();
    }
    const { start, end } = range ?? { start: 0, end: info.size - 1 };
    if (range) response.setHeader('Content-Range', `bytes ${start}-${end}/${info.size}`);
    response.setHeader('Content-Length', end - start + 1);
    response.writeHead(range ? 206 : 200);
    if (request.method === 'HEAD' || info.size === 0) return void response.end();
    // The stream owns the handle from here (it closes it at the end, on error and when the client leaves).
    streaming = true;
    handle
      .createReadStream({ start, end })
      .on('error', (error) => {
        logger.error(`[Storage] Reading a published file failed mid-response: ${error.message}`, { key });
        response.destroy();
      })
      .pipe(response);
  } finally {
    if (!streaming) await handle.close();
  }
}

/**
 * The published key a path names, or undefined for anything else (including every malformed path). A key
 * returned has passed the store's segment checks: it names a file below the storage root, and is safe to log.
 */
function publishedKey(store: DirectoryStore, pathname: string): string | undefined {
  try {
    const key = decodeURIComponent(pathname.slice(STATIC_ROUTE.length));
    if (!key.startsWith(PUBLIC_PREFIX)) return undefined;
    store.pathOf(key);
    return key;
  } catch {
    return undefined;
  }
}

/**
 * Opens the regular file of a published key without following a symbolic link anywhere below the storage
 * root: each component is checked with lstat, and the file is opened with O_NOFOLLOW (so a link swapped in
 * after the check is refused too) and O_NONBLOCK (a FIFO never blocks the open). Undefined when there is no
 * such file; an error when it is there but cannot be read.
 */
async function openPublished(store: DirectoryStore, key: string, logger: Logger): Promise<{ handle: FileHandle; info: Stats } | undefined> {
  const refuseLink = () => {
    logger.warn('[Storage] Refused to serve a symbolic link under poses/: published files are regular files', { key });
    return undefined;
  };
  let current = store.root;
  for (const segment of key.split('/')) {
    current = path.join(current, segment);
    const info = await lstat(current).catch(absentAsUndefined);
    if (!info) return undefined;
    if (info.isSymbolicLink()) return refuseLink();
  }
  const handle = await open(current, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ELOOP' || error.code === 'EMLINK') return refuseLink();
    return absentAsUndefined(error);
  });
  if (!handle) return undefined;
  const info = await handle.stat().catch(async (error: unknown) => {
    await handle.close();
    throw error;
  });
  if (info.isFile()) return { handle, info };
  await handle.close();
  return undefined;
}

function absentAsUndefined(error: NodeJS.ErrnoException): undefined {
  if (ABSENT.has(error.code ?? '')) return undefined;
  throw error;
}

function isFresh(request: IncomingMessage, etag: string, modified: Date): boolean {
  const ifNoneMatch = request.headers['if-none-match'];
  if (ifNoneMatch !== undefined) return ifNoneMatch.split(',').some((tag) => tag.trim() === etag || tag.trim() === '*');
  const since = Date.parse(request.headers['if-modified-since'] ?? '');
  return Number.isFinite(since) && Math.floor(modified.getTime() / 1000) * 1000 <= since;
}

/** A single `bytes=` range (multiple ranges are answered with the whole file, which RFC 9110 allows). */
function parseRange(header: string | undefined, size: number): { start: number; end: number } | 'unsatisfiable' | undefined {
  const match = /^bytes=(\d*)-(\d*)$/.exec(header?.trim() ?? '');
  if (!match || (match[1] === '' && match[2] === '')) return undefined;
  let start: number;
  let end: number;
  if (match[1] === '') {
    start = Math.max(0, size - Number(match[2]));
    end = size - 1;
  } else {
    start = Number(match[1]);
    end = match[2] === '' ? size - 1 : Math.min(Number(match[2]), size - 1);
  }
  return start > end || start >= size ? 'unsatisfiable' : { start, end };
}

function sendError(response: ServerResponse, status: number, code: string, message: string): void {
  const body = JSON.stringify({ error: { code, message } });
  response.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
  response.end(body);
}
