import { stageOf } from '../lib/lambda/stage-metrics.ts';
import { printable } from '../lib/logger.ts';
import { type LinkedAwsCredentials, linkedAwsClient, log, type MessageBatch, retryLater } from './queue-worker.ts';

/**
 * Cloudflare Worker (module syntax), the consumer of the R2 path's dead-letter queue (infra/thumbnails.ts): the
 * object-created notifications the thumbnail function failed on every try. Cloudflare has no alarm on a
 * queue's backlog, so this Worker makes each batch of dead letters visible where the other alarms are: it logs
 * every one (its staged key) and adds their count to a CloudWatch metric (METRIC_NAMESPACE / METRIC_NAME, with
 * the dimension `Stage`), which infra/alarms.ts alarms on. It then acknowledges them: the staged
 * uploads themselves stay in the bucket for a day (the staging lifecycle rule), where
 * `npx pose-storage verify` finds them. If CloudWatch cannot be told, the batch is retried with backoff.
 * Only the default export is a runtime export (the Workers runtime treats named value exports as entrypoints).
 *
 * The PutMetricData call is signed with the credentials SST binds when the Worker is linked to the metric
 * (an IAM user allowed `cloudwatch:PutMetricData` in that namespace only).
 */
export interface DeadLettersEnv extends LinkedAwsCredentials {
  /** Where the count goes (infra/thumbnails.ts): the AWS region of the stage's alarms, and the metric. */
  METRIC_REGION?: string;
  METRIC_NAMESPACE?: string;
  METRIC_NAME?: string;
  /** Bound by SST: `{"name": app, "stage": stage}`. */
  SST_RESOURCE_App?: string;
}

/** The staged key a dead letter was about, for the log (bounded, printable), when it has one. */
function stagedKey(body: unknown): string | undefined {
  const key = (body as { object?: { key?: unknown } } | null)?.object?.key;
  return typeof key === 'string' ? printable(key) : undefined;
}

async function countDeadLetters(batch: MessageBatch, env: DeadLettersEnv): Promise<void> {
  for (const message of batch.messages) {
    log('error', '[DeadLetters] Upload never processed: its notification was retried to the limit', {
      key: stagedKey(message.body),
      messageId: message.id,
      attempts: message.attempts,
    });
  }
  const { METRIC_REGION: region = '', METRIC_NAMESPACE: namespace, METRIC_NAME: metricName } = env;
  const aws = /^[a-z0-9-]+$/.test(region) ? linkedAwsClient(env, 'monitoring', region) : undefined;
  if (!aws || !namespace || !metricName) {
    log('error', '[DeadLetters] The metric (METRIC_REGION, METRIC_NAMESPACE, METRIC_NAME) or the linked AWS credentials are not configured: retrying the batch later');
    batch.messages.forEach(retryLater);
    return;
  }
  // The CloudWatch query API (https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricData.html).
  const form = new URLSearchParams({
    Action: 'PutMetricData',
    Version: '2010-08-01',
    Namespace: namespace,
    'MetricData.member.1.MetricName': metricName,
    'MetricData.member.1.Unit': 'Count',
    'MetricData.member.1.Value': String(batch.messages.length),
    'MetricData.member.1.Dimensions.member.1.Name': 'Stage',
    'MetricData.member.1.Dimensions.member.1.Value': stageOf(env),
  });
  try {
    const response = await aws.fetch(`https://monitoring.${region}.amazonaws.com/`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded; charset=utf-8' },
      body: form.toString(),
      signal: AbortSignal.timeout(30_000),
    });
    if (!response.ok) throw new Error(`CloudWatch answered ${response.status} ${(await response.text()).slice(0, 300)}`);
  } catch (error) {
    log('error', `[DeadLetters] Not counted in CloudWatch: ${String(error)}`, { messages: batch.messages.length });
    batch.messages.forEach(retryLater);
    return;
  }
  batch.ackAll();
}

export default {
  async queue(batch: MessageBatch, env: DeadLettersEnv): Promise<void> {
    await countDeadLetters(batch, env);
  },
};
