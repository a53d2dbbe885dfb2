/** bearerAuth on its own: which Authorization headers pass, and what a refusal says. */
import middy from '@middy/core';
import type { APIGatewayProxyEventV2, Context } from 'aws-lambda';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bearerAuth } from './bearer-auth.ts';

const TOKENS = ['current-token-0123456789', 'previous-token-9876543210'];
const event = (authorization?: string, method = 'GET') =>
  ({ headers: authorization === undefined ? {} : { authorization }, requestContext: { http: { method } } }) as unknown as APIGatewayProxyEventV2;
const run = (tokens: readonly string[], request: APIGatewayProxyEventV2) =>
  middy<APIGatewayProxyEventV2, string>()
    .use(bearerAuth({ tokens }))
    .handler(async () => 'reached')(request, {} as Context)
    .catch((error: unknown) => error);

describe('bearerAuth', () => {
  it('accepts every configured token (rotation), with the Bearer scheme', async () => {
    for (const token of TOKENS) expect(await run(TOKENS, event(`Bearer ${token}`))).toBe('reached');
  });

  it('refuses a missing, wrong, truncated, extended or differently cased header with 401 and WWW-Authenticate', async () => {
    for (const header of [undefined, '', 'Bearer', 'Bearer ', 'Bearer wrong', `Bearer ${TOKENS[0]!.slice(0, -1)}`, `Bearer ${TOKENS[0]}x`, `bearer ${TOKENS[0]}`, `Basic ${TOKENS[0]}`, `Bearer  ${TOKENS[0]}`]) {
      expect(await run(TOKENS, event(header))).toMatchObject({ statusCode: 401, code: 'unauthorized', headers: { 'WWW-Authenticate': 'Bearer' } });
    }
  });

  it('lets CORS preflight through, and everything when no token is configured (local mode)', async () => {
    expect(await run(TOKENS, event(undefined, 'OPTIONS'))).toBe('reached');
    expect(await run([], event(undefined))).toBe('reached');
  });

  it('never lets an arbitrary header through, and never throws anything but the 401 (fuzzed)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.string(), fc.string().map((value) => `Bearer ${value}`)), async (header) => {
        const outcome = await run(TOKENS, event(header));
        if (TOKENS.some((token) => header === `Bearer ${token}`)) expect(outcome).toBe('reached');
        else expect(outcome).toMatchObject({ statusCode: 401 });
      }),
    );
  });
});
