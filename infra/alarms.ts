import type { Settings } from './settings.ts';
import type { Thumbnails } from './thumbnails.ts';

/**
 * The alarms of a stage, all notifying one SNS topic (and, when they recover, again):
 *   - dead letters: an upload's notification failed every retry (R2: counted by functions/dead-letters.ts;
 *     S3: the SQS dead-letter queue is not empty);
 *   - thumbnail errors: the function itself failed (a crash, out of memory, a timeout, a configuration error).
 *     Failed uploads are answered as batchItemFailures, not errors, so any error is worth a look;
 *   - thumbnail duration near its timeout: a batch took over 80% of it.
 * Subscribe with ALARM_EMAIL at deploy time (confirm the email AWS sends), or any time with
 * `aws sns subscribe --topic-arn <alarms> --protocol email|https --notification-endpoint <address>`.
 */
const PERIOD_SECONDS = 300;
const ERRORS_THRESHOLD = 1;
const NEAR_TIMEOUT = 0.8;

export function createAlarms(thumbnails: Thumbnails, settings: Settings): sst.aws.SnsTopic {
  const topic = new sst.aws.SnsTopic('Alarms');
  if (settings.alarmEmail) {
    new aws.sns.TopicSubscription('AlarmsEmail', { topic: topic.arn, protocol: 'email', endpoint: settings.alarmEmail });
  }
  const alarm = (name: string, args: Omit<aws.cloudwatch.MetricAlarmArgs, 'alarmActions' | 'okActions' | 'evaluationPeriods' | 'period' | 'treatMissingData'>) =>
    new aws.cloudwatch.MetricAlarm(name, {
      ...args,
      period: PERIOD_SECONDS,
      evaluationPeriods: 1,
      // No data is no failure (an idle stage, a queue CloudWatch stopped reporting while empty).
      treatMissingData: 'notBreaching',
      alarmActions: [topic.arn],
      okActions: [topic.arn],
    });

  const { deadLetters } = thumbnails;
  const { timeoutSeconds } = thumbnails.timing;
  alarm('DeadLetters', {
    alarmDescription: `pose-storage ${$app.stage}: uploads whose notification failed every retry. Their staged objects stay a week longer than verify needs to see them as lost: npx pose-storage verify --repair processes them`,
    namespace: deadLetters.namespace,
    metricName: deadLetters.metricName,
    dimensions: deadLetters.dimensions,
    statistic: deadLetters.statistic,
    comparisonOperator: 'GreaterThanThreshold',
    threshold: 0,
  });
  alarm('ThumbnailErrors', {
    alarmDescription: `pose-storage ${$app.stage}: the thumbnail function failed (crash, out of memory, timeout or configuration); see its logs`,
    namespace: 'AWS/Lambda',
    metricName: 'Errors',
    dimensions: { FunctionName: thumbnails.fn.name },
    statistic: 'Sum',
    comparisonOperator: 'GreaterThanOrEqualToThreshold',
    threshold: ERRORS_THRESHOLD,
  });
  alarm('ThumbnailNearTimeout', {
    alarmDescription: `pose-storage ${$app.stage}: a thumbnail batch took over ${NEAR_TIMEOUT * 100}% of the function's ${timeoutSeconds} s timeout`,
    namespace: 'AWS/Lambda',
    metricName: 'Duration',
    dimensions: { FunctionName: thumbnails.fn.name },
    statistic: 'Maximum',
    comparisonOperator: 'GreaterThanThreshold',
    threshold: NEAR_TIMEOUT * timeoutSeconds * 1000,
  });
  return topic;
}
