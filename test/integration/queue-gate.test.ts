/**
 * The Retry-After gate shared by every host: the HeyGen task queue's server-side rate limit, on a real
 * dev server. Two QueueGates stand for two worker hosts (each with its own process, gate file and
 * connection in production): what one closes, the server holds for every worker.
 */
import { fileURLToPath } from 'node:url';
import proto from '@temporalio/proto';
import { Worker } from '@temporalio/worker';
import type { WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleWorkflows } from '../../tools/kit/workflow-bundle.js';
import { QueueGate } from '../../src/queue-gate.js';
import { eventually } from '../../tools/kit/eventually.js';
import { createDevServerEnv, uniqueName } from '../../tools/kit/temporal-test-env.js';
import type { DevServerEnv } from '../../tools/kit/temporal-test-env.js';

const ACTIVITY_QUEUE = proto.temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY;
let env: DevServerEnv;
let bundle: WorkflowBundleWithSourceMap;

beforeAll(async () => {
  [env, bundle] = await Promise.all([
    createDevServerEnv(),
    bundleWorkflows(fileURLToPath(new URL('./queue-gate-workflows.ts', import.meta.url))),
  ]);
});
afterAll(async () => {
  await env?.teardown();
});

function gateFor(taskQueue: string, log: string[] = []): QueueGate {
  return new QueueGate({
    connection: env.connection,
    namespace: 'default',
    taskQueue,
    log: { info: (message) => log.push(message), warn: (message) => log.push(`warn: ${message}`) },
  });
}

async function queueLimit(taskQueue: string) {
  const described = await env.connection.workflowService.describeTaskQueue({
    namespace: 'default',
    taskQueue: { name: taskQueue },
    taskQueueType: ACTIVITY_QUEUE,
    reportConfig: true,
  });
  return described.config?.queueRateLimit ?? null;
}

/** Runs `hits` activities on `activityQueue` and returns when each started (epoch ms). */
async function runHits(
  activityQueue: string,
  hits: number,
  whileRunning: () => Promise<void>,
): Promise<number[]> {
  const starts: number[] = [];
  const activities = Worker.create({
    connection: env.nativeConnection,
    taskQueue: activityQueue,
    activities: {
      hit: () => {
        starts.push(Date.now());
        return Promise.resolve();
      },
    },
  });
  const workflows = Worker.create({
    connection: env.nativeConnection,
    taskQueue: `${activityQueue}-wf`,
    workflowBundle: bundle,
  });
  const [a, w] = await Promise.all([activities, workflows]);
  await a.runUntil(() =>
    w.runUntil(async () => {
      await whileRunning();
      await env.client.workflow.execute('hitMany', {
        taskQueue: `${activityQueue}-wf`,
        workflowId: uniqueName('hits'),
        args: [activityQueue, hits],
      });
    }),
  );
  return starts;
}

describe('QueueGate: the HeyGen queue closed for every worker after a 429', () => {
  it('while one host holds Retry-After, the server dispatches no HeyGen activity to anyone', async () => {
    const queue = uniqueName('heygen');
    const hostA = gateFor(queue);
    let closedAt = 0;
    const starts = await runHits(queue, 6, async () => {
      closedAt = Date.now();
      await hostA.close(2_000);
    });
    expect(starts).toHaveLength(6);
    // Not one activity started inside the Retry-After window, whichever worker polled.
    for (const at of starts) expect(at).toBeGreaterThanOrEqual(closedAt + 2_000);
    hostA.stop();
    expect(await queueLimit(queue)).toMatchObject({
      metadata: { reason: expect.stringMatching(/passed/) as string },
    });
  });

  it('another host reopens a closure whose worker died, and restores the limit that was set', async () => {
    const queue = uniqueName('heygen');
    // An operator's budget: 50 requests per second.
    await env.connection.workflowService.updateTaskQueueConfig({
      namespace: 'default',
      identity: 'operator',
      taskQueue: queue,
      taskQueueType: ACTIVITY_QUEUE,
      updateQueueRateLimit: { rateLimit: { requestsPerSecond: 50 }, reason: 'budget' },
    });
    const dying = gateFor(queue);
    await dying.close(1_500);
    dying.stop(); // killed before it could reopen
    expect(await queueLimit(queue)).toMatchObject({ rateLimit: {} });

    const log: string[] = [];
    const survivor = gateFor(queue, log);
    survivor.start();
    try {
      const reopened = await eventually(
        'the survivor to reopen the queue',
        async () => {
          const limit = await queueLimit(queue);
          return limit?.rateLimit?.requestsPerSecond === 50 ? limit : undefined;
        },
        { timeoutMs: 20_000, intervalMs: 200 },
      );
      expect(reopened.metadata?.reason).toMatch(/passed/);
      expect(log).toContain('HeyGen task queue reopened');
    } finally {
      survivor.stop();
    }
  });

  it('an earlier closure never reopens a later one', async () => {
    const queue = uniqueName('heygen');
    const early = gateFor(queue);
    const late = gateFor(queue);
    const earlyUntil = Date.now() + 500;
    await early.close(500);
    await late.close(3_000);
    early.stop();
    late.stop();
    await eventually('the early deadline to pass', () => Date.now() > earlyUntil, { timeoutMs: 5_000 });
    await early.sweep(); // what its timer does at its own deadline
    const limit = await queueLimit(queue);
    expect(limit?.rateLimit).toEqual({}); // still closed: 0 requests per second
    expect(limit?.metadata?.reason).toMatch(/until/);
  });
});
