import { STAGING_PREFIX } from '../lib/layout.ts';
import { METRICS_NAMESPACE } from '../lib/lambda/stage-metrics.ts';
import { FUNCTION_DEFAULTS } from './environment.ts';
import { dlqRetry, SHARP_VERSION, thumbnailTiming, type ThumbnailTiming } from './function-timing.ts';
import type { Settings } from './settings.ts';
import type { R2Storage, S3Storage, Storage } from './storage.ts';

/**
 * The thumbnail function and what feeds it: every object created under staging/ becomes a queue message, and
 * the function processes the messages in batches, answering which ones to retry. No event is dropped: a
 * message is retried with backoff, then kept in a dead-letter queue (alarmed on, infra/alarms.ts).
 *
 *   R2: bucket notification -> Cloudflare Queue -> Worker functions/r2-forwarder.ts -> Lambda Invoke API
 *       (SigV4, the Worker's own IAM user may invoke this function and nothing else) -> {batchItemFailures}
 *       dead letters -> Cloudflare Queue -> Worker functions/dead-letters.ts -> log + CloudWatch metric
 *   S3: bucket notification -> SQS queue -> the function (event source mapping, partial batch responses)
 *       dead letters -> SQS queue (alarm on its depth)
 *
 * The function has no URL: nothing else can invoke it.
 */

const DAY_SECONDS = 24 * 3600;

/** Where dead letters are counted, for the alarm. */
export type DeadLetterMetric = { namespace: string; metricName: string; statistic: 'Sum' | 'Maximum'; dimensions: Record<string, $util.Input<string>> };

export interface Thumbnails {
  fn: sst.aws.Function;
  timing: ThumbnailTiming;
  deadLetters: DeadLetterMetric;
}

export function createThumbnails(storage: Storage, environment: $util.Output<Record<string, string>>, settings: Settings): Thumbnails {
  return storage.target === 'r2' ? viaCloudflareQueue(storage, environment, settings) : viaSqs(storage, environment, settings);
}

function thumbnailFunction(
  environment: $util.Output<Record<string, string>>,
  settings: Settings,
  timing: ThumbnailTiming,
  permissions: sst.aws.FunctionArgs['permissions'] = [],
): sst.aws.Function {
  return new sst.aws.Function('Thumbnail', {
    ...FUNCTION_DEFAULTS,
    handler: 'functions/thumbnail.handler',
    environment: environment.apply((variables) => ({ ...variables, THUMBNAIL_BATCH_SIZE: String(timing.batchSize) })),
    // 1,769 MB is one full vCPU; the pipeline runs on one thread, so more memory only costs more
    // (BENCHMARKS.md); a 50 MP image peaks near 220 MB. sharp is installed for linux/arm64.
    memory: '1769 MB',
    nodejs: { install: { sharp: SHARP_VERSION }, splitting: true },
    timeout: `${timing.timeoutSeconds} seconds`,
    // The queues never run more than this many batches at once; reserving it means a burst of uploads
    // waits in the queue instead of taking the concurrency of the account's other functions.
    ...(settings.reserveConcurrency && { concurrency: { reserved: settings.thumbnailConcurrency } }),
    permissions,
  });
}

function viaCloudflareQueue(storage: R2Storage, environment: $util.Output<Record<string, string>>, settings: Settings): Thumbnails {
  const timing = thumbnailTiming('r2');
  const fn = thumbnailFunction(environment, settings, timing);
  const region = aws.getRegionOutput().region;

  const deadLetters = new sst.cloudflare.Queue('ThumbnailDeadLetters');
  const queue = new sst.cloudflare.Queue('ThumbnailQueue', {
    dlq: { queue: deadLetters.nodes.queue.queueName, retry: dlqRetry('r2') },
    maxConcurrency: settings.thumbnailConcurrency,
  });
  const forwarder = queue.subscribe(
    {
      handler: 'functions/r2-forwarder.ts',
      // Linking an AWS function to a Worker makes SST create an IAM user allowed lambda:InvokeFunction on that
      // function only, and bind its key to the Worker (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY).
      link: [fn],
      environment: { THUMBNAIL_FUNCTION_ARN: fn.arn, FORWARD_TIMEOUT_SECONDS: String(timing.forwardTimeoutSeconds) },
    },
    { batch: { size: timing.batchSize, window: '2 seconds' } },
  );
  // Cloudflare lists a queue consumer as a prerequisite of a bucket notification: the consumer comes first.
  new cloudflare.R2BucketEventNotification(
    'StagingUploads',
    {
      accountId: storage.accountId,
      bucketName: storage.bucketName,
      queueId: queue.id,
      rules: [
        {
          // The object-created actions (those lib/lambda/object-events.ts acts on).
          actions: ['PutObject', 'CopyObject', 'CompleteMultipartUpload'],
          prefix: STAGING_PREFIX,
          description: 'pose-storage: staged uploads to the thumbnail function',
        },
      ],
    },
    { dependsOn: [forwarder] },
  );

  const metric = { namespace: METRICS_NAMESPACE, metricName: 'DeadLetters' };
  const putMetric = new sst.Linkable('DeadLetterMetric', {
    properties: metric,
    include: [
      sst.aws.permission({
        actions: ['cloudwatch:PutMetricData'],
        resources: ['*'],
        conditions: [{ test: 'StringEquals', variable: 'cloudwatch:namespace', values: [metric.namespace] }],
      }),
    ],
  });
  deadLetters.subscribe(
    {
      handler: 'functions/dead-letters.ts',
      link: [putMetric],
      environment: { METRIC_REGION: region, METRIC_NAMESPACE: metric.namespace, METRIC_NAME: metric.metricName },
    },
    {
      // Batches of up to 100 within a minute. A dead letter is only acknowledged once counted; while CloudWatch
      // cannot be reached it is retried (for about 8 hours at the 5-minute backoff), never dropped after
      // Cloudflare's default 3 tries. (These settings replace the subscription's, so `batch` is given here.)
      transform: { consumer: { settings: { batchSize: 100, maxWaitTimeMs: 60_000, maxRetries: 100 } } },
    },
  );

  return { fn, timing, deadLetters: { ...metric, statistic: 'Sum', dimensions: { Stage: $app.stage } } };
}

function viaSqs(storage: S3Storage, environment: $util.Output<Record<string, string>>, settings: Settings): Thumbnails {
  const timing = thumbnailTiming('s3');
  const deadLetters = new sst.aws.Queue('ThumbnailDeadLetters', {
    transform: { queue: { messageRetentionSeconds: 14 * DAY_SECONDS } },
  });
  const queue = new sst.aws.Queue('ThumbnailQueue', {
    dlq: { queue: deadLetters.arn, retry: dlqRetry('s3') },
    // At least the function's timeout (AWS refuses less), plus the batching window and a margin. AWS suggests
    // six times the timeout to absorb throttled retries; maximumConcurrency below keeps the poller within the
    // reserved concurrency, so it is not throttled, and a failed message comes back in about 4.5 minutes.
    visibilityTimeout: `${timing.timeoutSeconds + 30} seconds`,
  });
  const fn = thumbnailFunction(environment, settings, timing, [
    {
      actions: ['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:ChangeMessageVisibility', 'sqs:GetQueueAttributes', 'sqs:GetQueueUrl'],
      resources: [queue.arn],
    },
  ]);
  queue.subscribe(fn.arn, {
    batch: { size: timing.batchSize, window: '2 seconds', partialResponses: true },
    transform: { eventSourceMapping: { scalingConfig: { maximumConcurrency: settings.thumbnailConcurrency } } },
  });
  // S3 sends to the queue, which keeps what arrives before the subscription exists.
  storage.bucket.notify({
    notifications: [{ name: 'StagingUploads', queue, events: ['s3:ObjectCreated:*'], filterPrefix: STAGING_PREFIX }],
  });

  return {
    fn,
    timing,
    deadLetters: {
      namespace: 'AWS/SQS',
      metricName: 'ApproximateNumberOfMessagesVisible',
      statistic: 'Maximum',
      dimensions: { QueueName: deadLetters.nodes.queue.name },
    },
  };
}
