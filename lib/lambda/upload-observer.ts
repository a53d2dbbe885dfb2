import type { Logger as PowertoolsLogger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { parseStagingKey } from '../layout.ts';
import { printable } from '../logger.ts';
import type { PoseStatus } from '../pose-uploads.ts';
import { serviceName } from './lambda-logger.ts';
import { METRICS_NAMESPACE, stageOf } from './stage-metrics.ts';
import type { StoreTraffic } from './store-traffic.ts';

/** How the processing of one upload ended: its new status (undefined: nothing to do), or a failure. */
export type UploadOutcome = { status: PoseStatus | undefined } | { error: unknown };

/**
 * Told by the thumbnail handler when it begins an upload; the function returned is told how it ended. In
 * Lambda (createUploadObserver below) it tags the log lines in between and emits the upload's metrics; the local
 * server passes none.
 */
export interface UploadObserver {
  begin(key: string): (outcome: UploadOutcome) => void;
}

/**
 * The thumbnail function's metrics, in CloudWatch's embedded metric format: one JSON line per upload on
 * stdout, which CloudWatch turns into metrics (no API call, nothing to wait for). Dimensions `service`
 * (POWERTOOLS_SERVICE_NAME, default pose-storage) and `Stage` (the SST stage); per upload:
 *   UploadsProcessed (Count)      the upload was published or rejected
 *   UploadsRejected (Count)       ... rejected; its own line, with the dimension `reason` added
 *   ProcessingTime (Milliseconds) from reading the upload to its settled status
 *   UploadRetries (Count)         processing failed (the store, mostly): the queue delivers it again
 *   BytesIn, BytesOut (Bytes)     object bodies received from and sent to the store (a server-side copy sends none)
 * and as metadata (searchable in Logs Insights, not dimensions) its `key`, `generationId` and `poseId`.
 * While the upload is processed, every log line carries the same three keys.
 */
export function createUploadObserver(
  powertools: PowertoolsLogger,
  traffic: StoreTraffic,
  env: Readonly<Record<string, string | undefined>> = process.env,
): UploadObserver {
  const metrics = new Metrics({
    namespace: METRICS_NAMESPACE,
    serviceName: serviceName(env),
    defaultDimensions: { Stage: stageOf(env) },
  });
  const rejected = (reason: string) => {
    const single = metrics.singleMetric();
    single.addDimension('reason', reason);
    single.addMetric('UploadsRejected', MetricUnit.Count, 1);
  };
  return {
    begin(key) {
      const pose = parseStagingKey(key);
      const ids = { key: printable(key), ...(pose && { generationId: pose.generationId, poseId: pose.poseId }) };
      powertools.appendKeys(ids);
      const started = performance.now();
      const before = { bytesIn: traffic.bytesIn, bytesOut: traffic.bytesOut };
      return (outcome) => {
        powertools.removeKeys(Object.keys(ids));
        if ('error' in outcome) {
          metrics.addMetric('UploadRetries', MetricUnit.Count, 1);
        } else if (outcome.status) {
          metrics.addMetric('UploadsProcessed', MetricUnit.Count, 1);
          metrics.addMetric('ProcessingTime', MetricUnit.Milliseconds, performance.now() - started);
          if (outcome.status.status === 'rejected') rejected(outcome.status.reason);
        }
        metrics.addMetric('BytesIn', MetricUnit.Bytes, traffic.bytesIn - before.bytesIn);
        metrics.addMetric('BytesOut', MetricUnit.Bytes, traffic.bytesOut - before.bytesOut);
        for (const [name, value] of Object.entries(ids)) metrics.addMetadata(name, value);
        metrics.publishStoredMetrics();
      };
    },
  };
}
