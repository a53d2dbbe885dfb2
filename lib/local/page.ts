import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { build } from 'esbuild';
import { formatBytes } from '../operations/format.ts';

/**
 * The page at `/` (local mode only): plain HTML and one small module, bundled from TypeScript on first
 * request with the same client code apps use (lib/client/upload-pose.ts).
 */
const pageCsp = (serverOrigin: string) =>
  [
    "default-src 'self'",
    "img-src 'self' blob: data:",
    "style-src 'self' 'unsafe-inline'",
    "script-src 'self'",
    // Upload URLs are absolute, on the server's announced origin, which is not 'self' when the page was
    // opened at another name of the server (http://127.0.0.1:3000 for http://localhost:3000).
    `connect-src 'self' ${serverOrigin}`,
    "object-src 'none'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
  ].join('; ');

let bundle: Promise<string> | undefined;

function appBundle(): Promise<string> {
  bundle ??= build({
    entryPoints: [new URL('./page/app.ts', import.meta.url).pathname],
    bundle: true,
    format: 'esm',
    target: 'es2022',
    minify: true,
    write: false,
  }).then((result) => result.outputFiles[0]!.text);
  return bundle;
}

export interface PageSettings {
  /** The origin of the upload URLs. */
  serverOrigin: string;
  /** UPLOAD_MAX_BYTES, said on the page and checked before an upload. */
  uploadMaxBytes: number;
}

/** Serves `/` and `/app.js`; false for any other path. */
export async function servePage(request: IncomingMessage, response: ServerResponse, pathname: string, settings: PageSettings): Promise<boolean> {
  if (request.method !== 'GET' && request.method !== 'HEAD') return false;
  let body: string;
  let type: string;
  if (pathname === '/') {
    body = (await readFile(new URL('./page/index.html', import.meta.url), 'utf8'))
      .replaceAll('{{UPLOAD_MAX_BYTES}}', String(settings.uploadMaxBytes))
      .replaceAll('{{UPLOAD_MAX_SIZE}}', formatBytes(settings.uploadMaxBytes));
    type = 'text/html; charset=utf-8';
  } else if (pathname === '/app.js') {
    body = await appBundle();
    type = 'text/javascript; charset=utf-8';
  } else {
    return false;
  }
  response.writeHead(200, {
    'Content-Type': type,
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-cache',
    'Content-Security-Policy': pageCsp(settings.serverOrigin),
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
    'X-Frame-Options': 'DENY',
  });
  response.end(request.method === 'HEAD' ? undefined : body);
  return true;
}
