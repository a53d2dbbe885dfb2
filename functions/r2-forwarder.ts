import { WORKER_INVOKE_LIMIT_SECONDS } from '../lib/deadlines.ts';
import { type LinkedAwsCredentials, linkedAwsClient, log, type MessageBatch, retryLater } from './queue-worker.ts';

/**
 * Cloudflare Worker (module syntax), the consumer of the queue that R2 fills with object-created
 * notifications for `staging/` (infra/thumbnails.ts). It does no image work itself: it invokes the thumbnail
 * Lambda function with each batch, as Cloudflare Queues delivers it (`{messages: [{id, body, attempts}]}`),
 * through the Lambda Invoke API signed with SigV4 (aws4fetch), with the credentials SST binds when the Worker
 * is linked to the function (an IAM user allowed `lambda:InvokeFunction` on that one function, nothing else).
 * Then it acknowledges the messages the answer does not list in `batchItemFailures` and retries the ones it
 * does, with backoff. If the call fails as a whole (network, timeout, a refusal such as 403 or 429, a function
 * error, an answer of another shape), the whole batch is retried: processing is idempotent (a repeat, or an
 * object already processed and gone, is a no-op), and after the consumer's retry limit a message goes to
 * the dead letter queue.
 *
 * Only the default export is a runtime export: the Workers runtime treats every named value export as an
 * entrypoint.
 */

/** The Worker's bindings, as infra/thumbnails.ts sets them. */
export interface ForwarderEnv extends LinkedAwsCredentials {
  /** The thumbnail function's ARN (its region and name). */
  THUMBNAIL_FUNCTION_ARN?: string;
  /** How long to wait for the function's answer, in seconds: a little more than the function's own timeout. */
  FORWARD_TIMEOUT_SECONDS?: string;
}

/** The thumbnail handler's answer to a batch (functions/thumbnail.ts). */
interface BatchAnswer {
  batchItemFailures: { itemIdentifier: string }[];
}

/** infra/ always sets FORWARD_TIMEOUT_SECONDS (the function's timeout and a margin); unset, the most a Worker may wait. */
const DEFAULT_TIMEOUT_SECONDS = WORKER_INVOKE_LIMIT_SECONDS;
/** Standard AWS partition only (the Invoke endpoint below is lambda.{region}.amazonaws.com). */
const FUNCTION_ARN = /^arn:aws:lambda:([a-z0-9-]+):\d{12}:function:([A-Za-z0-9_-]{1,64})$/;

function isBatchAnswer(value: unknown): value is BatchAnswer {
  const failures = (value as { batchItemFailures?: unknown } | null)?.batchItemFailures;
  return (
    Array.isArray(failures) &&
    failures.every((failure) => typeof (failure as { itemIdentifier?: unknown } | null)?.itemIdentifier === 'string')
  );
}

/** The Invoke call of the configured function, or why there is none (never a secret). */
function invoker(env: ForwarderEnv): { invoke(body: string, timeoutSeconds: number): Promise<Response> } | string {
  const arn = FUNCTION_ARN.exec(env.THUMBNAIL_FUNCTION_ARN ?? '');
  if (!arn) return 'THUMBNAIL_FUNCTION_ARN is not a Lambda function ARN';
  const [, region, name] = arn;
  // The linked function's credentials: allowed lambda:InvokeFunction on that function only.
  const aws = linkedAwsClient(env, 'lambda', region!);
  if (!aws) return 'the AWS credentials of the linked function are not bound';
  const url = `https://lambda.${region}.amazonaws.com/2015-03-31/functions/${name}/invocations`;
  return {
    invoke: (body, timeoutSeconds) =>
      aws.fetch(url, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'X-Amz-Invocation-Type': 'RequestResponse' },
        body,
        signal: AbortSignal.timeout(timeoutSeconds * 1000),
      }),
  };
}

/** Forwards one batch; never throws (a throw would retry the batch without backoff). */
async function forwardBatch(batch: MessageBatch, env: ForwarderEnv): Promise<void> {
  const lambda = invoker(env);
  if (typeof lambda === 'string') {
    log('error', `[Forwarder] ${lambda}: retrying the batch later`);
    batch.messages.forEach(retryLater);
    return;
  }
  const timeoutSeconds = Number(env.FORWARD_TIMEOUT_SECONDS) || DEFAULT_TIMEOUT_SECONDS;
  const payload = JSON.stringify({ messages: batch.messages.map(({ id, body, attempts }) => ({ id, body, attempts })) });
  let answer: unknown;
  try {
    const response = await lambda.invoke(payload, timeoutSeconds);
    const text = await response.text();
    if (!response.ok) throw new Error(`the Lambda Invoke API answered ${response.status} ${text.slice(0, 300)}`.trim());
    // A function that crashed, timed out or ran out of memory: Invoke answers 200 with this header.
    const functionError = response.headers.get('X-Amz-Function-Error');
    if (functionError) throw new Error(`the thumbnail function failed (${functionError}): ${text.slice(0, 300)}`);
    answer = JSON.parse(text);
  } catch (error) {
    log('error', `[Forwarder] Batch not delivered: ${String(error)}`, { queue: batch.queue, messages: batch.messages.length });
    batch.messages.forEach(retryLater);
    return;
  }
  if (!isBatchAnswer(answer)) {
    log('error', '[Forwarder] The thumbnail function answered without batchItemFailures: retrying the batch', { queue: batch.queue });
    batch.messages.forEach(retryLater);
    return;
  }
  const failed = new Set(answer.batchItemFailures.map((failure) => failure.itemIdentifier));
  for (const message of batch.messages) {
    if (failed.has(message.id)) retryLater(message);
    else message.ack();
  }
  if (failed.size > 0) log('warn', `[Forwarder] ${failed.size} of ${batch.messages.length} message(s) will be retried`, { queue: batch.queue });
}

export default {
  async queue(batch: MessageBatch, env: ForwarderEnv): Promise<void> {
    await forwardBatch(batch, env);
  },
};
