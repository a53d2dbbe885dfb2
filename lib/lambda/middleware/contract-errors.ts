import type { MiddlewareObj } from '@middy/core';
import { PoseStorageError, type PoseStorageErrorCode } from '../../errors.ts';
import type { Logger } from '../../logger.ts';
import { HttpError } from '../http-error.ts';

/**
 * Turns any error into the contract's answer, `{"error": {"code", "message"}}` with a fitting status, for
 * @middy/http-error-handler to send. A client's mistake is a 4xx with a message it can act on; anything else
 * is logged here and answered without detail (never a stack trace).
 */
const STATUS_OF: Record<PoseStorageErrorCode, number> = {
  invalid_id: 400,
  invalid_request: 400,
  invalid_image: 400,
  too_large: 413,
  unsupported_type: 415,
  not_found: 404,
  conflict: 409,
  pose_busy: 503,
  precondition_failed: 503,
  disk_full: 503,
  permission_denied: 503,
  storage_unavailable: 503,
  invalid_configuration: 500,
  internal_error: 500,
};

/** Errors middy's own packages throw (statusCode + expose), by status. */
const MIDDY_ERRORS: Record<number, HttpError> = {
  415: new HttpError(415, 'unsupported_media_type', 'The request body must be JSON (Content-Type: application/json)'),
  422: new HttpError(400, 'invalid_json', 'The request body is not valid JSON'),
};

export function toHttpError(error: unknown): HttpError {
  if (error instanceof HttpError) return error;
  if (error instanceof PoseStorageError) {
    const status = STATUS_OF[error.code];
    if (error.code === 'pose_busy') return new HttpError(503, 'pose_busy', error.message, { 'Retry-After': '2' });
    if (status === 503) return new HttpError(503, 'storage_unavailable', 'Storage is unavailable, please retry later', { 'Retry-After': '5' });
    if (status >= 500) return new HttpError(500, 'internal_error', 'Something went wrong on our side');
    return new HttpError(status, error.code, error.message);
  }
  const statusCode = (error as { statusCode?: unknown } | null)?.statusCode;
  if (typeof statusCode === 'number') {
    const known = MIDDY_ERRORS[statusCode];
    if (known) return known;
    if (statusCode >= 400 && statusCode < 500) return new HttpError(400, 'invalid_request', 'The request is invalid');
  }
  return new HttpError(500, 'internal_error', 'Something went wrong on our side');
}

export function contractErrors(logger: Logger): MiddlewareObj {
  return {
    onError: (request) => {
      if (request.response !== undefined) return;
      const answer = toHttpError(request.error);
      if (answer.statusCode >= 500) {
        const error = request.error;
        logger.error(`[Storage] Request failed: ${error instanceof Error ? error.message : String(error)}`, {
          code: error instanceof PoseStorageError ? error.code : 'internal_error',
          error: error instanceof Error ? error.name : typeof error,
          ...(!(error instanceof PoseStorageError) && error instanceof Error && { stack: error.stack }),
        });
      }
      const body = JSON.stringify({ error: { code: answer.code, message: answer.message } });
      request.error = Object.assign(new Error(body), { statusCode: answer.statusCode, expose: true, headers: answer.headers });
    },
  };
}
