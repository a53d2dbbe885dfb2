import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    root: new URL('..', import.meta.url).pathname,
    include: ['lib/**/*.test.ts', 'functions/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // sharp and the test servers are CPU-heavy; two workers match the 2-core machines this runs on.
    maxWorkers: 2,
    reporters: ['default', new URL('./support/closing-line-reporter.ts', import.meta.url).pathname],
  },
});
