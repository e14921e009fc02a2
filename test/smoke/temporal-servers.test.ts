import { fileURLToPath } from 'node:url';
import { Worker, bundleWorkflowCode } from '@temporalio/worker';
import type { WorkflowBundleWithSourceMap } from '@temporalio/worker';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDevServerEnv, createTimeSkippingEnv, uniqueName } from '../../tools/kit/temporal-test-env.js';
import { smokeWorkflow } from './smoke-workflows.js';
import type { SmokeActivities } from './smoke-workflows.js';

const activities: SmokeActivities = {
  greet: (name) => Promise.resolve(`hello ${name}`),
};

let bundle: WorkflowBundleWithSourceMap;

beforeAll(async () => {
  bundle = await bundleWorkflowCode({
    workflowsPath: fileURLToPath(new URL('./smoke-workflows.ts', import.meta.url)),
    logger: { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} },
  });
});

async function runSmoke(env: TestWorkflowEnvironment, sleepFor: string): Promise<string> {
  const taskQueue = uniqueName('smoke');
  const worker = await Worker.create({
    connection: env.nativeConnection,
    namespace: env.namespace ?? 'default',
    taskQueue,
    workflowBundle: bundle,
    activities,
  });
  // Started once the worker polls: a time-skipping server left alone with a pending result() skips ahead.
  return worker.runUntil(() =>
    env.client.workflow.execute(smokeWorkflow, {
      taskQueue,
      workflowId: uniqueName('smoke-wf'),
      args: ['temporal', sleepFor],
    }),
  );
}

describe("dev server (the kit's launcher)", () => {
  let env: TestWorkflowEnvironment;
  beforeAll(async () => {
    env = await createDevServerEnv();
  });
  afterAll(async () => {
    await env?.teardown();
  });

  it('starts and runs a workflow with an activity and a short timer', async () => {
    expect(env.supportsTimeSkipping).toBe(false);
    await expect(runSmoke(env, '10ms')).resolves.toBe('hello temporal');
  });
});

describe('time-skipping test server (createTimeSkipping)', () => {
  let env: TestWorkflowEnvironment;
  beforeAll(async () => {
    env = await createTimeSkippingEnv();
  });
  afterAll(async () => {
    await env?.teardown();
  });

  it('starts and skips a 7-day timer', async () => {
    expect(env.supportsTimeSkipping).toBe(true);
    const before = await env.currentTimeMs();
    await expect(runSmoke(env, '7 days')).resolves.toBe('hello temporal');
    // The server's clock moved a week while the test ran within its own timeout: the timer was skipped.
    expect((await env.currentTimeMs()) - before).toBeGreaterThanOrEqual(7 * 24 * 3_600_000);
  });
});
