import packageJson from '../package.json' with { type: 'json' };
import { HTTP_BUDGET_MS, UPLOAD_BUDGET_MS } from '../lib/deadlines.ts';

export { WORKER_INVOKE_LIMIT_SECONDS } from '../lib/deadlines.ts';

/**
 * The functions' timeouts, batches and retries, derived from lib/deadlines.ts, and the version of sharp they
 * install. Plain values (no SST globals), so that the tests check them as they are.
 */

/**
 * A delete's worst case (lib/deadlines.ts: the lock's wait, then the work under it), within API Gateway's 30 s
 * integration limit, so that a delete of a busy pose answers 503 pose_busy instead of the gateway's 504.
 */
export const HTTP_TIMEOUT_SECONDS = Math.ceil(HTTP_BUDGET_MS / 1000) - 1;

/** One upload's worst case (lib/deadlines.ts: read and render, the lock's wait, the hold), and sharp's first load. */
const SECONDS_PER_UPLOAD = Math.ceil(UPLOAD_BUDGET_MS / 1000) + 5;

export interface ThumbnailTiming {
  /** Messages per invocation; the function is told (THUMBNAIL_BATCH_SIZE) and refuses more. */
  batchSize: number;
  /** The function's timeout: its batch, one upload at a time. */
  timeoutSeconds: number;
  /** R2: how long the Worker waits for the function's answer (a little more than its timeout). */
  forwardTimeoutSeconds: number;
}

/**
 * The thumbnail function's batches and timeout, from one upload's worst case. On R2 the forwarding Worker waits
 * for each invocation, so a batch is one message (a 55 s function, a 65 s wait: under the 90 s a Worker may
 * wait), and a burst runs as that many invocations at once; images in flight are the same either way, as a function
 * processes its batch one upload at a time. On S3 the queue's poller waits as long as it must: batches of 4.
 */
export function thumbnailTiming(target: 'r2' | 's3'): ThumbnailTiming {
  const batchSize = target === 'r2' ? 1 : 4;
  const timeoutSeconds = batchSize * SECONDS_PER_UPLOAD;
  return { batchSize, timeoutSeconds, forwardTimeoutSeconds: timeoutSeconds + 10 };
}

/**
 * Deliveries of a message before it is a dead letter, the same on both paths (its backoff: 10 s, 20 s, 40 s, 80 s).
 * Cloudflare Queues count retries after the first delivery (`max_retries`); SQS counts deliveries
 * (`maxReceiveCount`): SST passes `dlq.retry` through as each.
 */
export const DELIVERIES = 5;
export const dlqRetry = (target: 'r2' | 's3'): number => (target === 'r2' ? DELIVERIES - 1 : DELIVERIES);

/**
 * The deployed sharp is the tested one: `nodejs.install` takes a version (not the lockfile), so it is given the
 * exact version package.json pins.
 */
export const SHARP_VERSION = packageJson.dependencies.sharp;
