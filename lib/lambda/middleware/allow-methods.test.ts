/** allowMethods on its own, in a middy stack around a handler that answers 200: 405 with `Allow` from the route table. */
import middy from '@middy/core';
import type { APIGatewayProxyEventV2, Context } from 'aws-lambda';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { HttpError } from '../http-error.ts';
import { API_ROUTES, functionFor, methodsOf, methodsOnPath } from '../routes.ts';
import { allowMethods } from './allow-methods.ts';

const event = (method: string, rawPath: string) => ({ rawPath, requestContext: { http: { method } } }) as unknown as APIGatewayProxyEventV2;
const reached = (methods: readonly string[]) => middy<APIGatewayProxyEventV2, string>().use(allowMethods(methods)).handler(async () => 'reached');
const run = (methods: readonly string[], method: string, rawPath: string) => reached(methods)(event(method, rawPath), {} as Context).catch((error: unknown) => error);

describe('allowMethods', () => {
  it('lets the methods it serves and CORS preflight through', async () => {
    expect(await run(['GET'], 'GET', '/poses/g/p')).toBe('reached');
    expect(await run(['GET'], 'OPTIONS', '/poses/g/p')).toBe('reached');
  });

  it("answers another method 405, with Allow listing what the path serves across the API (GET and DELETE of a pose, two functions)", async () => {
    const error = await run(['GET'], 'PUT', '/poses/g/p');
    expect(error).toBeInstanceOf(HttpError);
    expect(error).toMatchObject({ statusCode: 405, code: 'method_not_allowed', message: 'This route accepts GET, DELETE only', headers: { Allow: 'GET, DELETE' } });
    expect(await run(['DELETE'], 'GET', '/poses/g')).toMatchObject({ statusCode: 405, headers: { Allow: 'DELETE' } });
    expect(await run(['POST'], 'GET', '/uploads/')).toMatchObject({ statusCode: 405, headers: { Allow: 'POST' } });
  });

  it('on a path the table does not know, Allow is what the handler serves', async () => {
    expect(await run(['POST'], 'GET', '/elsewhere')).toMatchObject({ statusCode: 405, headers: { Allow: 'POST' } });
  });
});

describe('the route table', () => {
  it('gives each route its function, and every other method on its path a function that answers 405', () => {
    for (const route of API_ROUTES) {
      const concrete = route.path.replace(/\{[^}]+\}/g, 'x');
      expect(functionFor(concrete, route.method)).toBe(route.function);
      expect(methodsOf(route.function)).toContain(route.method);
      expect(methodsOnPath(concrete)).toContain(route.method);
      expect(functionFor(concrete, 'PATCH')).toBeDefined();
    }
    expect(functionFor('/poses/g/p', 'GET')).toBe('status');
    expect(functionFor('/poses/g/p', 'DELETE')).toBe('delete');
    expect(functionFor('/poses//p', 'GET')).toBe('status'); // an empty id is the handler's 400, not a 404
    expect(functionFor('/poses/g/p/extra', 'GET')).toBeUndefined();
    expect(functionFor('/', 'GET')).toBeUndefined();
  });

  it('any value of a path parameter reaches its route; a segment more or less reaches none (fuzzed)', () => {
    // Not empty: `/poses/g/` is `/poses/g` with its trailing slash, as API Gateway and the local router both take it.
    const segment = fc.string({ minLength: 1 }).filter((value) => !value.includes('/'));
    fc.assert(
      fc.property(fc.constantFrom(...API_ROUTES), fc.array(segment, { minLength: 2, maxLength: 2 }), segment, (route, [first, second], extra) => {
        const values = [first!, second!];
        const concrete = route.path.replace(/\{[^}]+\}/g, () => values.shift()!);
        expect(functionFor(concrete, route.method)).toBe(route.function);
        expect(methodsOnPath(`${concrete}/${extra}/x`)).toBeUndefined();
        expect(methodsOnPath(`/x${concrete}`)).toBeUndefined();
      }),
    );
  });
});
