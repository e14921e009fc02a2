import { defineConfig } from 'vitest/config';

/**
 * Two projects, both run by `npm test`:
 * - fast: pure and unit tests (no Temporal server): `npm test -- --project fast` while editing;
 * - slow: everything that starts a Temporal server, a browser or a chaos run.
 * Temporal's native bridge does not like worker threads, and each slow file starts its own server:
 * files run in forked processes, at most two at a time (2-core machines).
 */
const shared = {
  pool: 'forks' as const,
  setupFiles: ['test/setup.ts'],
};

export default defineConfig({
  test: {
    maxWorkers: 2,
    fileParallelism: true,
    // The JSON report lets CI print a one-line "N passed, N failed" summary.
    reporters: ['default', ['json', { outputFile: 'artifacts/vitest-report.json' }]],
    projects: [
      {
        test: {
          ...shared,
          name: 'fast',
          include: ['test/unit/**/*.test.ts', 'test/contract/**/*.test.ts'],
          testTimeout: 30_000,
        },
      },
      {
        test: {
          ...shared,
          name: 'slow',
          include: ['test/**/*.test.ts'],
          exclude: ['test/unit/**', 'test/contract/**'],
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
