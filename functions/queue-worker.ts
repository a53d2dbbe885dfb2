/**
 * What the Cloudflare queue consumer Workers (r2-forwarder.ts, dead-letters.ts) share: the small part of the
 * Workers runtime they use, typed here so that they type-check with the project's tsconfig (Node and DOM libs)
 * without @cloudflare/workers-types and its conflicting globals; their AWS client; their retry backoff; their
 * log lines.
 */
import { AwsClient } from 'aws4fetch';

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

const MAX_RETRY_DELAY_SECONDS = 300;

/** 10 s, 20 s, 40 s, ... up to 5 minutes, growing with each delivery. */
function retryDelaySeconds(attempts: number): number {
  return Math.min(MAX_RETRY_DELAY_SECONDS, 10 * 2 ** Math.max(0, attempts - 1));
}

export function retryLater(message: QueueMessage): void {
  message.retry({ delaySeconds: retryDelaySeconds(message.attempts) });
}

/** One JSON line (Workers Logs indexes its fields); never a secret. */
export function log(level: 'info' | 'warn' | 'error', message: string, fields: Record<string, unknown> = {}): void {
  const line = JSON.stringify({ level, message, ...fields });
  if (level === 'info') console.log(line);
  else console[level](line);
}

/** Bound by SST on a Worker linked to AWS resources: an IAM user's key, allowed only what the links grant. */
export interface LinkedAwsCredentials {
  AWS_ACCESS_KEY_ID?: string;
  AWS_SECRET_ACCESS_KEY?: string;
}

/** SigV4 signing keys (one per secret, day, region and service) kept across batches, not derived per batch. */
const signingKeys = new Map<string, ArrayBuffer>();

/**
 * A SigV4 client with the linked credentials, or undefined when they are not bound. It never retries by itself:
 * a failed call is retried per message, with the queue's backoff and retry limit.
 */
export function linkedAwsClient(env: LinkedAwsCredentials, service: string, region: string): AwsClient | undefined {
  if (!env.AWS_ACCESS_KEY_ID || !env.AWS_SECRET_ACCESS_KEY) return undefined;
  const { AWS_ACCESS_KEY_ID: accessKeyId, AWS_SECRET_ACCESS_KEY: secretAccessKey } = env;
  return new AwsClient({ accessKeyId, secretAccessKey, service, region, retries: 0, cache: signingKeys });
}
