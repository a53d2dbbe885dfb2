import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { defineConfig } from 'vitest/config';
import base from './vitest.config.ts';

const ROOT = path.resolve(import.meta.dirname, '..');

/**
 * `npm run test:rgw`: the tests that use startS3Server(), against a real Ceph RADOS Gateway instead of s3rver
 * (test/rgw/run-tests.sh starts it; test/support/rgw-server.ts). The same test files as `npm test` runs.
 */
/** Every test file that starts an S3 server (startS3Server()): a new one runs against RGW too, without a list to keep. */
export const RGW_TEST_FILES = ['lib', 'functions', 'test']
  .flatMap((directory) => readdirSync(path.join(ROOT, directory), { recursive: true, encoding: 'utf8' }).map((file) => path.join(directory, file)))
  .filter((file) => file.endsWith('.test.ts') && readFileSync(path.join(ROOT, file), 'utf8').includes('startS3Server('))
  .sort();
// Not mergeConfig: it would append these files to the default config's include (every test file).
export default defineConfig({
  ...base,
  test: {
    ...base.test,
    include: RGW_TEST_FILES,
    env: { ...base.test?.env, S3_TEST_BACKEND: 'rgw' },
  },
});
