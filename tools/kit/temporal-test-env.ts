/**
 * Real Temporal servers for tests: the dev server (`createLocal`) for integration tests and the
 * time-skipping test server (`createTimeSkipping`) for long waits. One server per test file.
 */
import { TestWorkflowEnvironment } from '@temporalio/testing';
import type { LocalTestWorkflowEnvironmentOptions } from '@temporalio/testing';
import { CONSENT_SEARCH_ATTRIBUTES } from '../../src/contract.js';
import { resolveTemporalExecutable, withServerStartHint } from './temporal-binaries.js';

export async function createDevServerEnv(
  server: LocalTestWorkflowEnvironmentOptions['server'] = {},
): Promise<TestWorkflowEnvironment> {
  const executable = resolveTemporalExecutable('dev-server');
  return withServerStartHint('dev-server', executable, () =>
    TestWorkflowEnvironment.createLocal({
      server: { executable, ip: '127.0.0.1', searchAttributes: [...CONSENT_SEARCH_ATTRIBUTES], ...server },
    }),
  );
}

export async function createTimeSkippingEnv(): Promise<TestWorkflowEnvironment> {
  const executable = resolveTemporalExecutable('time-skipping');
  return withServerStartHint('time-skipping', executable, () =>
    TestWorkflowEnvironment.createTimeSkipping({ server: { executable } }),
  );
}

let taskQueueCounter = 0;
/** A task queue (or workflow ID prefix) unique to one test, so tests sharing a server never see each other's tasks. */
export function uniqueName(prefix: string): string {
  taskQueueCounter += 1;
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${taskQueueCounter}`;
}
