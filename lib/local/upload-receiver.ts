import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { asStorageError, PreconditionFailedError } from '../errors.ts';
import { parseStagingKey } from '../layout.ts';
import type { Logger } from '../logger.ts';
import type { DirectoryStore } from '../storage/directory-store.ts';
import { verifyUploadRequest } from '../storage/upload-signature.ts';

/**
 * `PUT /local-uploads/{stagingKey}?expires&signature`: local mode's stand-in for a presigned PUT to R2.
 * The signature binds key, type, length and expiry, and like R2's URLs it needs `If-None-Match: *`: the key
 * is created once, so a second PUT while the first upload waits to be processed is refused (412), never
 * swapped under the processor. The body is streamed into the staging directory (never buffered whole), cut
 * off at the signed length, and published under its name only when complete. Returns the staging key
 * written, or undefined when the upload was refused (a refusal for a server-side cause is logged).
 */
export async function receiveUpload(
  store: DirectoryStore,
  request: IncomingMessage,
  response: ServerResponse,
  url: URL,
  allowedOrigins: readonly string[],
  logger: Logger,
): Promise<string | undefined> {
  // Browsers PUT to the upload URL themselves, from the app's origin: CORS as R2's bucket rules give it.
  setCorsOrigin(request, response, allowedOrigins);
  if (request.method === 'OPTIONS') {
    response.writeHead(204, {
      'Access-Control-Allow-Methods': 'PUT',
      'Access-Control-Allow-Headers': 'Content-Type, If-None-Match',
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
  if (request.headers['if-none-match'] !== '*') {
    return refuse(response, 403, 'signature_mismatch', 'The request must send the If-None-Match: * header of the upload URL');
  }

  const md5 = createHash('md5');
  // Whether the disk failed: leaving the loop on a write error also destroys the request, which must not
  // then pass for a client that left.
  let writeFailed = false;
  try {
    await store.writeAtomically(
      key,
      async (file) => {
        let received = 0;
        for await (const chunk of request as AsyncIterable<Buffer>) {
          received += chunk.length;
          if (received > contentLength) break; // never more than was signed
          md5.update(chunk);
          await file.write(chunk).catch((error: unknown) => {
            writeFailed = true;
            throw error;
          });
        }
        if (received !== contentLength) throw new IncompleteBodyError(received);
      },
      { ifNoneMatch: '*' },
    );
  } catch (error) {
    if (error instanceof IncompleteBodyError) {
      return refuse(response, 400, 'incomplete_body', `The body did not have the signed ${contentLength} bytes`);
    }
    if (error instanceof PreconditionFailedError) {
      return refuse(response, 412, 'precondition_failed', 'An upload is already stored at this URL and waits to be processed; ask for a new upload URL');
    }
    if (!writeFailed && request.destroyed && !request.complete) return undefined; // the client left mid-body: nothing to answer
    const failure = asStorageError(error);
    logger.error(`[Storage] Refused an upload: ${failure.message}`, { code: failure.code, key });
    return refuse(response, 503, 'storage_unavailable', 'The upload could not be stored, please retry', { 'Retry-After': '5' });
  }
  response.writeHead(200, { ETag: `"${md5.digest('hex')}"`, 'Content-Length': 0 });
  response.end();
  return key;
}

/** The client sent fewer bytes than it signed for. */
class IncompleteBodyError extends Error {
  constructor(received: number) {
    super(`body of ${received} bytes`);
  }
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
