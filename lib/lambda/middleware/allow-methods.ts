import type { MiddlewareObj } from '@middy/core';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { HttpError } from '../http-error.ts';
import { methodsOnPath } from '../routes.ts';

/**
 * 405 for any method this handler does not serve; CORS preflight passes through. `Allow` lists what the
 * path accepts across the API (one path can be served by two handlers: GET and DELETE of a pose).
 */
export function allowMethods(methods: readonly string[]): MiddlewareObj<APIGatewayProxyEventV2> {
  return {
    before: (request) => {
      const method = request.event.requestContext?.http?.method;
      if (method === 'OPTIONS' || (method !== undefined && methods.includes(method))) return;
      const allow = (methodsOnPath(request.event.rawPath ?? '') ?? methods).join(', ');
      throw new HttpError(405, 'method_not_allowed', `This route accepts ${allow} only`, { Allow: allow });
    },
  };
}
