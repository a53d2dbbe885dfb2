import { getConfig } from '../lib/config.ts';
import { batchSizeFromEnv, createHandler } from '../lib/lambda/handlers/thumbnail.ts';
import { lambdaHandler } from '../lib/lambda/lambda-handler.ts';
import { countTraffic } from '../lib/lambda/store-traffic.ts';
import { createUploadObserver } from '../lib/lambda/upload-observer.ts';
import { createServices } from '../lib/services.ts';
import { configuredStore } from '../lib/storage/stores.ts';

export const handler = lambdaHandler(({ logger, powertools }) => {
  const config = getConfig();
  const { store, traffic } = countTraffic(configuredStore(config));
  return createHandler(createServices({ config, store, logger }), {
    batchSize: batchSizeFromEnv(),
    observer: createUploadObserver(powertools, traffic),
  });
});
