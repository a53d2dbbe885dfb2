import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { parseStagingKey } from '../layout.ts';
import type { DirectoryStore } from '../storage/directory-store.ts';
import { verifyUploadRequest } from '../storage/upload-signature.ts';

/**
 * `PUT /local-uploads/{stagingKey}?expires&signature`: local mode's stand-in for a presigned PUT to R2.
 * The signature binds key, type, length and expiry; the body is streamed into the staging directory
 * (never buffered whole), cut off at the signed length, and published under its name only when complete.
 * Returns the staging key written, or undefined when the upload was refused.
 */
export async function receiveUpload(
  store: DirectoryStore,
  request: IncomingMessage,
  response: ServerResponse,
  url: URL,
  allowedOrigins: readonly string[] = [],
): Promise<string | undefined> {
  // Browsers PUT to the upload URL themselves, from the app's origin: CORS as R2's bucket rules give it.
  setCorsOrigin(request, response, allowedOrigins);
  if (request.method === 'OPTIONS') {
    response.writeHead(204, {
      'Access-Control-Allow-Methods': 'PUT',
      'Access-Control-Allow-Headers': 'Content-Type',
      'Access-Control-Max-Age': '600',
    });
    response.end();
    return undefined;
  }
  if (request.method !== 'PUT') return refuse(response, 405, 'method_not_allowed', 'Upload URLs accept PUT only', { Allow: 'PUT' });
  const lengthHeader = request.headers['content-length'] ?? '';
  const contentLength = /^\d{1,15}$/.test(lengthHeader) ? Number(lengthHeader) : Number.NaN;
  if (Number.isNaN(contentLength)) return refuse(response, 403, 'malformed', 'The upload request has no valid Content-Length');
  const verdict = verifyUploadRequest(store.uploadSigningKey, {
    pathname: url.pathname,
    searchParams: url.searchParams,
    contentType: request.headers['content-type'] ?? '',
    contentLength,
  });
  if (!verdict.ok) {
    const messages = {
      malformed: 'The upload URL is malformed or the request has no Content-Length',
      expired: 'The upload URL has expired',
      bad_signature: 'The request does not match the upload URL (key, Content-Type or Content-Length)',
    } as const;
    return refuse(response, 403, verdict.refusal === 'bad_signature' ? 'signature_mismatch' : verdict.refusal, messages[verdict.refusal]);
  }
  const { key } = verdict.grant;
  if (!parseStagingKey(key)) return refuse(response, 403, 'signature_mismatch', 'Upload URLs are for the staging area only');

  const md5 = createHash('md5');
  try {
    await store.writeAtomically(store.pathOf(key), async (file) => {
      let received = 0;
      for await (const chunk of request as AsyncIterable<Buffer>) {
        received += chunk.length;
        if (received > contentLength) break; // never more than was signed
        md5.update(chunk);
        await file.write(chunk);
      }
      if (received !== contentLength) throw new Error(`body of ${received} bytes, ${contentLength} signed`);
    });
  } catch (error) {
    const incomplete = error instanceof Error && error.message.startsWith('body of');
    return refuse(
      response,
      incomplete ? 400 : 503,
      incomplete ? 'incomplete_body' : 'storage_unavailable',
      incomplete ? `The body did not have the signed ${contentLength} bytes` : 'The upload could not be stored, please retry',
    );
  }
  response.writeHead(200, { ETag: `"${md5.digest('hex')}"`, 'Content-Length': 0 });
  response.end();
  return key;
}

function refuse(response: ServerResponse, status: number, code: string, message: string, headers: Record<string, string> = {}): undefined {
  if (response.headersSent || response.destroyed) return undefined;
  const body = JSON.stringify({ error: { code, message } });
  // The request body is not read: close the connection rather than drain a possibly huge upload.
  response.writeHead(status, { ...headers, 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), Connection: 'close' });
  response.end(body);
  return undefined;
}

/** `Access-Control-Allow-Origin` for a request from one of `allowedOrigins` (`*` allows any). */
export function setCorsOrigin(request: IncomingMessage, response: ServerResponse, allowedOrigins: readonly string[]): void {
  const origin = request.headers.origin;
  if (allowedOrigins.includes('*')) response.setHeader('Access-Control-Allow-Origin', '*');
  else if (origin !== undefined && allowedOrigins.includes(origin)) {
    response.setHeader('Access-Control-Allow-Origin', origin);
    response.setHeader('Vary', 'Origin');
  }
}
