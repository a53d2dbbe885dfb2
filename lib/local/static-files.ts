import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import { PUBLIC_PREFIX } from '../layout.ts';
import type { DirectoryStore } from '../storage/directory-store.ts';
import { setCorsOrigin } from './upload-receiver.ts';

/**
 * `GET /uploads/poses/...`: published files only, as a CDN in front of R2 would serve them (ETag,
 * Last-Modified, Cache-Control, ranges). Nothing outside `poses/`, nothing staged, no traversal: any such
 * path is a plain 404.
 */
export const STATIC_ROUTE = '/uploads/';

const TYPES: Record<string, string> = { '.png': 'image/png', '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg', '.webp': 'image/webp' };

export async function serveStatic(
  store: DirectoryStore,
  request: IncomingMessage,
  response: ServerResponse,
  pathname: string,
  allowedOrigins: readonly string[],
  cacheControl: string,
): Promise<void> {
  setCorsOrigin(request, response, allowedOrigins); // as R2's bucket CORS rules allow GET and HEAD
  const file = publishedFile(store, pathname);
  const info = file === undefined ? undefined : await stat(file).catch(() => undefined);
  if (file === undefined || !info?.isFile()) return notFound(response);

  const etag = `"${info.size.toString(16)}-${Math.floor(info.mtimeMs).toString(16)}"`;
  response.setHeader('Content-Type', TYPES[path.extname(file).toLowerCase()] ?? 'application/octet-stream');
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
  createReadStream(file, { start, end })
    .on('error', () => response.destroy())
    .pipe(response);
}

/** The file of a published key, or undefined for anything else (including every malformed path). */
function publishedFile(store: DirectoryStore, pathname: string): string | undefined {
  let key: string;
  try {
    key = decodeURIComponent(pathname.slice(STATIC_ROUTE.length));
  } catch {
    return undefined;
  }
  if (!key.startsWith(PUBLIC_PREFIX)) return undefined;
  try {
    return store.pathOf(key);
  } catch {
    return undefined;
  }
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

function notFound(response: ServerResponse): void {
  const body = JSON.stringify({ error: { code: 'not_found', message: 'No such file' } });
  response.writeHead(404, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
  response.end(body);
}
