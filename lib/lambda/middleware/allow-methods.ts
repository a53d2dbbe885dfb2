import type { MiddlewareObj } from '@middy/core';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { HttpError } from '../http-error.ts';

/** 405 (with `Allow`) for any method a route does not serve; CORS preflight passes through. */
export function allowMethods(methods: readonly string[]): MiddlewareObj<APIGatewayProxyEventV2> {
  const allow = methods.join(', ');
  return {
    before: (request) => {
      const method = request.event.requestContext?.http?.method;
      if (method === 'OPTIONS' || (method !== undefined && methods.includes(method))) return;
      throw new HttpError(405, 'method_not_allowed', `This route accepts ${allow} only`, { Allow: allow });
    },
  };
}
