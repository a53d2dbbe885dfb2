import { defineConfig } from 'vitest/config';
import base from './vitest.config.ts';

/**
 * `npm run test:rgw`: the tests that use startS3Server(), against a real Ceph RADOS Gateway instead of s3rver
 * (test/rgw/run-tests.sh starts it; test/support/rgw-server.ts). The same test files as `npm test` runs.
 */
export const RGW_TEST_FILES = [
  'lib/storage/object-store.contract.test.ts',
  'lib/storage/s3-store.integration.test.ts',
  'lib/pose-lock.test.ts',
  'lib/operations/health.test.ts',
  'lib/operations/migrate.test.ts',
  'lib/operations/usage.test.ts',
  'lib/operations/verify.test.ts',
  'functions/lambda-observability.test.ts',
  'test/e2e-s3.test.ts',
  'test/faults.test.ts',
  'test/operations-cli.test.ts',
  'test/operations-cli.failures.test.ts',
  'test/races.test.ts',
  'test/republish-failures.test.ts',
  'test/smoke.test.ts',
  'test/support/s3-server.test.ts',
  'test/temporary-files.test.ts',
];

// Not mergeConfig: it would append these files to the default config's include (every test file).
export default defineConfig({
  ...base,
  test: {
    ...base.test,
    include: RGW_TEST_FILES,
    env: { ...base.test?.env, S3_TEST_BACKEND: 'rgw' },
  },
});
