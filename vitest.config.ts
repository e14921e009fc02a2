import { defineConfig } from 'vitest/config';

// Temporal's native bridge does not like worker threads, and each test file starts its own
// Temporal server: run files in forked processes, at most two at a time (2-core machines).
export default defineConfig({
  test: {
    pool: 'forks',
    maxWorkers: 2,
    fileParallelism: true,
    testTimeout: 60_000,
    hookTimeout: 120_000,
    include: ['test/**/*.test.ts'],
    setupFiles: ['test/setup.ts'],
    // The JSON report lets CI print a one-line "N passed, N failed" summary.
    reporters: ['default', ['json', { outputFile: 'artifacts/vitest-report.json' }]],
  },
});
