import type { S3Client } from '@aws-sdk/client-s3';

/**
 * The store's own clock, from the `Date` header of its answers: a pose lock's age is judged by it (with the
 * lock's Last-Modified, set by the same clock), never by the clock of the host that reads it (pose-lock.ts).
 * The SDK keeps no response headers in its outputs; this middleware keeps that one. No SDK import at run
 * time, so that S3Store can read it before the SDK is loaded.
 */
const STORE_DATE = Symbol('storeDate');

export function keepStoreDate(client: S3Client): void {
  client.middlewareStack.add(
    (next) => async (args) => {
      const result = await next(args);
      const date = Date.parse((result.response as { headers?: Record<string, string | undefined> }).headers?.date ?? '');
      if (Number.isFinite(date) && typeof result.output === 'object' && result.output !== null) {
        Object.defineProperty(result.output, STORE_DATE, { value: new Date(date) });
      }
      return result;
    },
    // Around the deserializer and the retries: `output` is the answer of the attempt that succeeded.
    { step: 'initialize', name: 'poseStorageStoreDate' },
  );
}

/**
 * The store's clock when it sent `output`. Every HTTP/1.1 server with a clock sends `Date`; a client made without
 * the middleware (a test's mock) falls back to this host's clock.
 */
export function storeDateOf(output: object): Date {
  return (output as { [STORE_DATE]?: Date })[STORE_DATE] ?? new Date();
}
