/**
 * Cloudflare Worker (module syntax), the consumer of the queue that R2 fills with object-created
 * notifications for `staging/` (see sst.config.ts). It does no image work itself: it POSTs each batch, as
 * Cloudflare Queues delivers it (`{messages: [{id, body}]}`), to the thumbnail Lambda's function URL with the
 * API token, then acknowledges the messages the answer does not list in `batchItemFailures` and retries the
 * ones it does, with backoff. If the call fails as a whole (network, timeout, a non-2xx, an answer of
 * another shape), the whole batch is retried: processing is idempotent (a repeat, or an object already
 * processed and gone, is a no-op), and after the consumer's retry limit a message goes to the dead letter queue.
 *
 * Only the default export is a runtime export: the Workers runtime treats every named value export as an
 * entrypoint. The types below are the small part of the Workers runtime this uses, so that the file type-checks with the
 * project's tsconfig (Node and DOM libs) without @cloudflare/workers-types and its conflicting globals.
 */

/** A message of a Cloudflare Queues batch (https://developers.cloudflare.com/queues/configuration/javascript-apis/). */
export interface QueueMessage {
  readonly id: string;
  readonly timestamp: Date;
  readonly body: unknown;
  /** How many times this message has been delivered, this delivery included (1 on the first). */
  readonly attempts: number;
  ack(): void;
  retry(options?: { delaySeconds?: number }): void;
}

export interface MessageBatch {
  readonly queue: string;
  readonly messages: readonly QueueMessage[];
  ackAll(): void;
  retryAll(options?: { delaySeconds?: number }): void;
}

/** The Worker's bindings, as sst.config.ts sets them. */
export interface ForwarderEnv {
  /** The thumbnail function's URL (Lambda function URL). */
  THUMBNAIL_URL: string;
  /** How long to wait for the function's answer; a little more than the function's own timeout. */
  FORWARD_TIMEOUT_SECONDS?: string;
  /** The API token(s), comma-separated; the first is sent. Takes precedence over the linked secret. */
  API_TOKEN?: string;
  /** The linked `sst.Secret` ApiToken: a secret_text binding holding `{"value": "<API_TOKEN>"}`. */
  SST_RESOURCE_ApiToken?: string;
}

/** The thumbnail handler's answer to a batch (functions/thumbnail.ts). */
interface BatchAnswer {
  batchItemFailures: { itemIdentifier: string }[];
}

const DEFAULT_TIMEOUT_SECONDS = 130;
const MAX_RETRY_DELAY_SECONDS = 300;

/** 10 s, 20 s, 40 s, ... up to 5 minutes, growing with each delivery. */
function retryDelaySeconds(attempts: number): number {
  return Math.min(MAX_RETRY_DELAY_SECONDS, 10 * 2 ** Math.max(0, attempts - 1));
}

function apiToken(env: ForwarderEnv): string | undefined {
  const fromLink = (): string | undefined => {
    if (!env.SST_RESOURCE_ApiToken) return undefined;
    try {
      const value = (JSON.parse(env.SST_RESOURCE_ApiToken) as { value?: unknown }).value;
      return typeof value === 'string' ? value : undefined;
    } catch {
      return undefined;
    }
  };
  const tokens = env.API_TOKEN || fromLink();
  return tokens
    ?.split(',')
    .map((token) => token.trim())
    .find((token) => token.length > 0);
}

function isBatchAnswer(value: unknown): value is BatchAnswer {
  const failures = (value as { batchItemFailures?: unknown } | null)?.batchItemFailures;
  return (
    Array.isArray(failures) &&
    failures.every((failure) => typeof (failure as { itemIdentifier?: unknown } | null)?.itemIdentifier === 'string')
  );
}

function retryEach(messages: readonly QueueMessage[]): void {
  for (const message of messages) message.retry({ delaySeconds: retryDelaySeconds(message.attempts) });
}

/** Forwards one batch; never throws (a throw would retry the batch without backoff). */
async function forwardBatch(batch: MessageBatch, env: ForwarderEnv): Promise<void> {
  const token = apiToken(env);
  if (!env.THUMBNAIL_URL || !token) {
    console.error('[Forwarder] THUMBNAIL_URL or the API token is not configured: retrying the batch later');
    retryEach(batch.messages);
    return;
  }
  const timeoutSeconds = Number(env.FORWARD_TIMEOUT_SECONDS) || DEFAULT_TIMEOUT_SECONDS;
  let answer: unknown;
  try {
    const response = await fetch(env.THUMBNAIL_URL, {
      method: 'POST',
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ messages: batch.messages.map(({ id, body }) => ({ id, body })) }),
      signal: AbortSignal.timeout(timeoutSeconds * 1000),
    });
    if (!response.ok) {
      const detail = (await response.text().catch(() => '')).slice(0, 300);
      throw new Error(`the thumbnail function answered ${response.status} ${detail}`.trim());
    }
    answer = await response.json();
  } catch (error) {
    console.error(`[Forwarder] Batch of ${batch.messages.length} from ${batch.queue} not delivered: ${String(error)}`);
    retryEach(batch.messages);
    return;
  }
  if (!isBatchAnswer(answer)) {
    console.error('[Forwarder] The thumbnail function answered without batchItemFailures: retrying the batch');
    retryEach(batch.messages);
    return;
  }
  const failed = new Set(answer.batchItemFailures.map((failure) => failure.itemIdentifier));
  for (const message of batch.messages) {
    if (failed.has(message.id)) message.retry({ delaySeconds: retryDelaySeconds(message.attempts) });
    else message.ack();
  }
  if (failed.size > 0) console.warn(`[Forwarder] ${failed.size} of ${batch.messages.length} message(s) will be retried`);
}

export default {
  async queue(batch: MessageBatch, env: ForwarderEnv): Promise<void> {
    await forwardBatch(batch, env);
  },
};
