/**
 * Real Temporal servers for tests (one per test file): the dev server, started by the kit's one
 * launcher with the SDK's test environment connected to it, and the time-skipping test server
 * (`createTimeSkipping`) for long waits.
 */
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { resolveTemporalExecutable, withServerStartHint } from './temporal-binaries.js';
import { DEV_SERVER_NAMESPACE, startTemporalServer } from './temporal-server.js';
import type { TemporalServer, TemporalServerOptions } from './temporal-server.js';

/**
 * The SDK's environment on a dev server of its own; `teardown()` also stops the server. (Not
 * `server`: the SDK's environment has a field of that name.)
 */
export type DevServerEnv = TestWorkflowEnvironment & { readonly devServer: TemporalServer };

export async function createDevServerEnv(options: TemporalServerOptions = {}): Promise<DevServerEnv> {
  const server = await startTemporalServer(options);
  try {
    const env = await TestWorkflowEnvironment.createFromExistingServer({
      address: server.address,
      namespace: DEV_SERVER_NAMESPACE,
    });
    const closeConnections = env.teardown.bind(env);
    return Object.assign(env, {
      devServer: server,
      teardown: async () => {
        try {
          await closeConnections();
        } finally {
          await server.stop();
        }
      },
    });
  } catch (error) {
    await server.stop();
    throw error;
  }
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
