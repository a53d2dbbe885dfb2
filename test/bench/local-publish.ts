/**
 * A pose published the way the local thumbnail handler does it, for the benchmarks: the very services and
 * DirectoryStore (atomic writes with fsync) on a temporary directory, with the configuration given.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseConfig } from '../../lib/config.ts';
import { createLogger } from '../../lib/logger.ts';
import { createServices, type Services } from '../../lib/services.ts';

export interface LocalPublisher {
  services: Services;
  stagingKey: string;
  /** Puts the upload back in the staging area (what each timed processUpload consumes). */
  stage(): Promise<void>;
  /** The thumbnail handler's whole work for the staged upload; throws unless the pose ends ready. */
  processUpload(): Promise<void>;
  close(): Promise<void>;
}

export async function localPublisher(bytes: Buffer, env: Record<string, string> = {}): Promise<LocalPublisher> {
  const root = await mkdtemp(path.join(tmpdir(), 'bench-publish-'));
  const config = parseConfig({ STORAGE_MODE: 'local', UPLOAD_PATH: root, PORT: '0', ...env });
  const services = createServices({ config, logger: createLogger(() => undefined) });
  await services.storage.initializeLocalStorage();
  const stagingKey = 'staging/bench/profile/00000000-0000-4000-8000-000000000000';
  return {
    services,
    stagingKey,
    async stage() {
      await mkdir(path.join(root, path.dirname(stagingKey)), { recursive: true });
      await writeFile(path.join(root, stagingKey), bytes);
    },
    async processUpload() {
      const status = await services.uploads.processUpload({ key: stagingKey });
      if (status?.status !== 'ready') throw new Error(`processUpload answered ${JSON.stringify(status)}`);
    },
    close: () => rm(root, { recursive: true, force: true }),
  };
}
