import middy from '@middy/core';
import httpCors from '@middy/http-cors';
import httpErrorHandler from '@middy/http-error-handler';
import httpHeaderNormalizer from '@middy/http-header-normalizer';
import httpJsonBodyParser from '@middy/http-json-body-parser';
import httpSecurityHeaders from '@middy/http-security-headers';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import * as z from 'zod/mini';
import { asSentence, describeValue } from '../errors.ts';
import { printable } from '../logger.ts';
import type { Services } from '../services.ts';
import { HttpError } from './http-error.ts';
import { allowMethods } from './middleware/allow-methods.ts';
import { methodsOf, type HttpFunction } from './routes.ts';
import { bearerAuth } from './middleware/bearer-auth.ts';
import { contractErrors } from './middleware/contract-errors.ts';

/**
 * The one middleware stack of every HTTP handler (API Gateway HTTP API v2 and Lambda function URL events,
 * which share the 2.0 payload). Order matters: middy runs `before` top-down and `onError`/`after` bottom-up,
 * so errors become the contract's JSON first, then get CORS and security headers like any response.
 */
export type HttpEvent = APIGatewayProxyEventV2;
export type HttpResult = APIGatewayProxyStructuredResultV2;
export type HttpHandler = (event: HttpEvent, context: Context) => Promise<HttpResult>;

export interface Route {
  /** Which function of the route table (routes.ts) this is: it serves that function's methods, 405 for others. */
  function: HttpFunction;
  /** Parse the body as JSON (415 if it is not declared JSON, 400 if it does not parse). */
  jsonBody?: boolean;
}

export function httpHandler(
  services: Services,
  route: Route,
  handle: (event: HttpEvent & { body?: unknown }) => Promise<HttpResult>,
): HttpHandler {
  const { config, logger } = services;
  const handler = middy<HttpEvent, HttpResult>()
    .use(httpHeaderNormalizer())
    .use(httpSecurityHeaders())
    .use(
      httpCors({
        origins: [...config.allowedOrigins],
        // Every method of the API: a preflight for DELETE may reach the handler of GET on the same path.
        methods: 'GET,POST,DELETE,OPTIONS',
        headers: 'Authorization,Content-Type',
        maxAge: 600,
      }),
    )
    .use(httpErrorHandler({ logger: false }))
    .use(contractErrors(logger))
    .use(bearerAuth({ tokens: config.apiTokens }))
    .use(allowMethods(methodsOf(route.function)));
  if (route.jsonBody) {
    const parser = httpJsonBodyParser();
    handler.use({ before: (request) => (isPreflight(request.event) ? undefined : parser.before?.(request)) });
  }
  // Preflight reaches the handler (rather than an early answer from http-cors) so that it gets the
  // same after-middlewares, security headers included, as every other response.
  const answer = handler.handler((event) => (isPreflight(event) ? Promise.resolve(noContent()) : handle(event))) as unknown as HttpHandler;
  return async (event, context) => {
    const result = await answer(event, context);
    logger.debug?.(`[Storage] ${printable(`${event.requestContext?.http?.method} ${event.rawPath}`)}: ${result.statusCode}`, {
      status: result.statusCode,
    });
    return result;
  };
}

function isPreflight(event: HttpEvent): boolean {
  return event.requestContext?.http?.method === 'OPTIONS';
}

export function json(statusCode: number, body: unknown): HttpResult {
  return {
    statusCode,
    headers: { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' },
    body: JSON.stringify(body),
  };
}

export const noContent = (): HttpResult => ({ statusCode: 204, headers: { 'Cache-Control': 'no-store' } });

/**
 * Validates input with a schema. The 400 lists every problem of the input at once, one sentence each, naming its
 * field ("generationId is required. contentLength must be a whole number of bytes (got 1.5)."), so that a client
 * fixes them all in one go.
 */
export function parseInput<S extends z.ZodMiniType>(schema: S, value: unknown): z.output<S> {
  // reportInput: each issue carries the value at fault, so that its sentence can say what was sent.
  const result = z.safeParse(schema, value, { reportInput: true, error: predicateOf });
  if (result.success) return result.data;
  const sentences = result.error.issues.map((issue) => {
    const subject = issue.path.length > 0 ? issue.path.join('.') : 'The request body';
    const got = issue.input === undefined || issue.code === 'unrecognized_keys' ? '' : ` (got ${describeValue(issue.input)})`;
    return asSentence(`${subject} ${issue.message}${got}`);
  });
  throw new HttpError(400, 'invalid_request', sentences.join(' '));
}

/** Unknown fields named in a message: enough to find them, never a flood. */
const MAX_NAMED_FIELDS = 5;

/**
 * What zod finds by itself (a missing field, a wrong type, an unknown field), said as the schemas' own checks
 * say what a field must be ("must match ..."): a predicate of the field. zod/mini has no messages of its own, and
 * a schema's message wins over this one.
 */
function predicateOf(issue: z.core.$ZodRawIssue): string {
  if (issue.code === 'invalid_type') {
    if (issue.input === undefined) return 'is required';
    return `must be ${issue.expected === 'object' ? 'a JSON object' : `${/^[aeiou]/.test(issue.expected) ? 'an' : 'a'} ${issue.expected}`}`;
  }
  if (issue.code === 'unrecognized_keys') {
    const named = issue.keys.slice(0, MAX_NAMED_FIELDS).map(describeValue);
    const rest = issue.keys.length - named.length;
    const list = rest > 0 ? `${named.join(', ')} and ${rest} more` : named.join(', ').replace(/, ([^,]*)$/, ' and $1');
    return `has ${issue.keys.length === 1 ? 'a field it does not take' : 'fields it does not take'}: ${list}`;
  }
  return 'is invalid';
}

/**
 * The ids of `/poses/{generationId}[/{poseId}]`, from API Gateway's path parameters or, for function URLs
 * (which have none), from the raw path. Ids are validated by the caller's schema.
 */
export function poseRoute(event: HttpEvent): { generationId: string | undefined; poseId: string | undefined } {
  const params = event.pathParameters;
  if (params?.generationId !== undefined) return { generationId: params.generationId, poseId: params.poseId };
  const match = /\/poses\/([^/]*)(?:\/([^/]*))?\/?$/.exec(event.rawPath ?? '');
  return { generationId: match?.[1] && safeDecode(match[1]), poseId: match?.[2] && safeDecode(match[2]) };
}

function safeDecode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment; // invalid %-escapes stay as they are, and fail id validation
  }
}
