import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { build } from 'esbuild';
import { formatBytes } from '../operations/format.ts';
import type { PoseFile } from '../pose-files.ts';

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
  /** The configured variants (POSE_VARIANTS): the page shows them in `<picture>` sources. */
  variants: readonly PoseFile[];
}

/**
 * What the page needs of each variant to offer it as a `<picture>` source: its role (the key of a status's
 * `variants` map), content type and size. A box is shown in the thumbnail's place, a width in the image's.
 */
export interface PageVariant {
  role: string;
  type: string;
  width: number;
  height?: number;
}

function pageVariants(variants: readonly PoseFile[]): PageVariant[] {
  return variants.flatMap(({ role, contentType, rendering }) =>
    rendering.kind === 'variant' ? [{ role, type: contentType, width: rendering.width, ...(rendering.height !== undefined && { height: rendering.height }) }] : [],
  );
}

const escapeAttribute = (text: string) => text.replaceAll('&', '&amp;').replaceAll('"', '&quot;').replaceAll('<', '&lt;');

/** Serves `/` and `/app.js`; false for any other path. */
export async function servePage(request: IncomingMessage, response: ServerResponse, pathname: string, settings: PageSettings): Promise<boolean> {
  if (request.method !== 'GET' && request.method !== 'HEAD') return false;
  let body: string;
  let type: string;
  if (pathname === '/') {
    body = (await readFile(new URL('./page/index.html', import.meta.url), 'utf8'))
      .replaceAll('{{UPLOAD_MAX_BYTES}}', String(settings.uploadMaxBytes))
      .replaceAll('{{UPLOAD_MAX_SIZE}}', formatBytes(settings.uploadMaxBytes))
      .replaceAll('{{VARIANTS}}', escapeAttribute(JSON.stringify(pageVariants(settings.variants))));
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
