import { getConfig, type Config } from './config.ts';
import type { LockTiming } from './deadlines.ts';
import { createLogger, type Logger } from './logger.ts';
import { PoseStorage } from './pose-storage.ts';
import { PoseUploads } from './pose-uploads.ts';
import type { ObjectStore } from './storage/object-store.ts';
import { configuredStore, publicBaseUrl } from './storage/stores.ts';
import { createWebhookNotifier } from './webhook.ts';

/** Everything the handlers and the local server work with, wired once per process. */
export interface Services {
  config: Config;
  logger: Logger;
  storage: PoseStorage;
  uploads: PoseUploads;
}

export interface ServiceOptions {
  /** Defaults to the configuration parsed from process.env. */
  config?: Config;
  /** Defaults to the adapter of the configured mode. */
  store?: ObjectStore;
  logger?: Logger;
  /** The pose locks' deadlines (lib/deadlines.ts); tests shorten them. */
  lockTiming?: LockTiming;
}

export function createServices(options: ServiceOptions = {}): Services {
  const config = options.config ?? getConfig();
  const logger = options.logger ?? createLogger();
  const storage = new PoseStorage({ config, store: options.store ?? configuredStore(config), logger, lockTiming: options.lockTiming }, publicBaseUrl(config));
  const webhook = config.webhook && createWebhookNotifier(config.webhook, logger);
  return { config, logger, storage, uploads: new PoseUploads(storage, webhook) };
}

let shared: Services | undefined;

/** The process-wide services, configured from the environment on first use. */
export function getServices(): Services {
  shared ??= createServices();
  return shared;
}
