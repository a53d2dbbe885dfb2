/** contractErrors on its own: every error becomes the contract's JSON with a fitting status, never a stack trace. */
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidIdError, PoseBusyError, StoreUnavailableError } from '../../errors.ts';
import { createLogger } from '../../logger.ts';
import { HttpError } from '../http-error.ts';
import { contractErrors } from './contract-errors.ts';

async function answer(error: unknown, lines: string[] = []) {
  const handler = middy<unknown, unknown>()
    .use(contractErrors(createLogger((line) => lines.push(line))))
    .handler(async () => {
      throw error;
    });
  const thrown = (await handler({}, {} as Context).catch((caught: unknown) => caught)) as { statusCode: number; expose: boolean; message: string; headers?: Record<string, string> };
  return { ...thrown, body: JSON.parse(thrown.message) as { error: { code: string; message: string } } };
}

describe('contractErrors', () => {
  it("answers a client's mistake with its 4xx and the error's own sentence", async () => {
    const invalid = await answer(new InvalidIdError('poseId', 'a/b'));
    expect(invalid.statusCode).toBe(400);
    expect(invalid.body.error.code).toBe('invalid_id');
    expect(invalid.expose).toBe(true);
    expect(await answer(new HttpError(405, 'method_not_allowed', 'This route accepts GET only', { Allow: 'GET' }))).toMatchObject({ statusCode: 405, headers: { Allow: 'GET' } });
    expect(await answer(Object.assign(new Error('Unprocessable'), { statusCode: 422 }))).toMatchObject({ statusCode: 400, body: { error: { code: 'invalid_json' } } });
  });

  it('answers a busy pose and a store outage 503 with Retry-After, naming no key or endpoint', async () => {
    const lines: string[] = [];
    expect(await answer(new PoseBusyError('g/p'), lines)).toMatchObject({ statusCode: 503, headers: { 'Retry-After': '2' }, body: { error: { code: 'pose_busy' } } });
    const outage = await answer(new StoreUnavailableError('list staging/g/ failed at 10.0.0.7:9000'), lines);
    expect(outage).toMatchObject({ statusCode: 503, headers: { 'Retry-After': '5' }, body: { error: { code: 'storage_unavailable', message: 'Storage is unavailable, please retry later' } } });
    expect(lines.join('\n')).toContain('[Storage] Request failed: ');
  });

  it('answers anything else 500 without detail, and logs it with its stack (fuzzed)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.string(), fc.integer(), fc.constant(null), fc.string().map((message) => new TypeError(message))), async (error) => {
        const lines: string[] = [];
        const result = await answer(error, lines);
        expect(result.statusCode).toBe(500);
        expect(result.body).toEqual({ error: { code: 'internal_error', message: 'Something went wrong on our side' } });
        expect(lines.some((line) => line.includes('[Storage] Request failed'))).toBe(true);
      }),
      { numRuns: 50 },
    );
  });
});
