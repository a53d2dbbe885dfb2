import { createHash, timingSafeEqual } from 'node:crypto';
import type { MiddlewareObj } from '@middy/core';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { HttpError } from '../http-error.ts';

/**
 * `Authorization: Bearer <token>` against API_TOKEN's list (several for rotation). Every configured token is
 * compared, in constant time over fixed-length digests, so neither a token's length nor which one matched
 * leaks through timing. No tokens configured means no auth (local mode only). CORS preflight is exempt.
 */
export interface BearerAuthOptions {
  tokens: readonly string[];
}

const digest = (value: string): Buffer => createHash('sha256').update(value).digest();

export function isAuthorized(header: string | undefined, tokenDigests: readonly Buffer[]): boolean {
  const match = /^Bearer ([\x21-\x7e]{1,4096})$/.exec(header ?? '');
  const presented = digest(match?.[1] ?? '');
  let authorized = false;
  for (const expected of tokenDigests) authorized = timingSafeEqual(presented, expected) || authorized;
  return authorized && match !== null;
}

export function bearerAuth(options: BearerAuthOptions): MiddlewareObj<APIGatewayProxyEventV2> {
  const tokenDigests = options.tokens.map(digest);
  return {
    before: (request) => {
      if (tokenDigests.length === 0 || request.event.requestContext?.http?.method === 'OPTIONS') return;
      if (!isAuthorized(request.event.headers?.authorization, tokenDigests)) {
        throw new HttpError(401, 'unauthorized', 'A valid "Authorization: Bearer <token>" header is required', {
          'WWW-Authenticate': 'Bearer',
        });
      }
    },
  };
}
