/**
 * A bounded workflow cache on a real dev server: a worker that may keep 2 workflows in memory serves 8
 * waiting consents (the others are evicted and replayed from history when they wake), and every one
 * of them still sees its approval and finishes.
 */
import type { WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleWorkflows } from '../../tools/kit/workflow-bundle.js';
import { DEFAULT_WORKER_TUNING, loadWorkerConfig } from '../../src/config/worker-config.js';
import { checkNowSignal, statusQuery, workflowIdForGroup } from '../../src/contract/index.js';
import type { AvatarConsentResult } from '../../src/contract/index.js';
import { createConsentWorker } from '../../src/worker.js';
import { eventually } from '../../tools/kit/eventually.js';
import { FakeHeyGen } from '../../tools/kit/fake-heygen.js';
import { FakeMailer } from '../../tools/kit/fake-mailer.js';
import { createDevServerEnv, uniqueName } from '../../tools/kit/temporal-test-env.js';
import type { DevServerEnv } from '../../tools/kit/temporal-test-env.js';

let env: DevServerEnv;
let bundle: WorkflowBundleWithSourceMap;

beforeAll(async () => {
  [env, bundle] = await Promise.all([createDevServerEnv(), bundleWorkflows()]);
});
afterAll(async () => {
  await env?.teardown();
});

describe('the workflow cache', () => {
  it('is bounded by default and by WORKER_MAX_CACHED_WORKFLOWS', () => {
    const base = { HEYGEN_API_KEY: 'k', SMTP_URL: 'smtp://localhost:1025', EMAIL_FROM: 'c@example.com' };
    expect(loadWorkerConfig(base).WORKER_MAX_CACHED_WORKFLOWS).toBe(DEFAULT_WORKER_TUNING.maxCachedWorkflows);
    expect(DEFAULT_WORKER_TUNING.maxCachedWorkflows).toBeLessThanOrEqual(1_000);
    expect(loadWorkerConfig({ ...base, WORKER_MAX_CACHED_WORKFLOWS: '25' }).WORKER_MAX_CACHED_WORKFLOWS).toBe(
      25,
    );
    expect(() => loadWorkerConfig({ ...base, WORKER_MAX_CACHED_WORKFLOWS: 'many' })).toThrow(
      /WORKER_MAX_CACHED_WORKFLOWS/,
    );
  });

  it('a worker caching 2 workflows serves 8 waiting consents: each evicted one wakes and finishes', async () => {
    const heygen = new FakeHeyGen(() => Promise.resolve(Date.now()));
    const groups = Array.from({ length: 8 }, () => {
      const id = uniqueName('ag').replace(/[^A-Za-z0-9_-]/g, '_');
      heygen.addGroup(id);
      return id;
    });
    const taskQueue = uniqueName('cache');
    const worker = await createConsentWorker({
      connection: env.nativeConnection,
      namespace: 'default',
      taskQueue,
      workflowBundle: bundle,
      dependencies: { heygen, mailer: new FakeMailer(), messageIdDomain: 'test.example' },
      tuning: { maxCachedWorkflows: 2 },
    });
    const [main] = worker.workers;
    let mostCached = 0;
    const results = await worker.runUntil(async () => {
      const handles = await Promise.all(
        groups.map((groupId) =>
          env.client.workflow.start('avatarConsentWorkflow', {
            taskQueue,
            workflowId: workflowIdForGroup(groupId),
            // Hourly polls: the consents wait in their first window, asleep in the server.
            args: [{ groupId, recipient: { email: 'p@example.com' }, policy: { pollInitialInterval: '1h' } }],
          }),
        ),
      );
      for (const handle of handles) {
        await eventually('the consent to wait', async () => {
          mostCached = Math.max(mostCached, main.getStatus().numCachedWorkflows);
          return (await handle.query(statusQuery)).phase === 'awaiting';
        });
      }
      for (const groupId of groups) heygen.approve(groupId);
      // The nudge wakes each one: the evicted ones are replayed from their history first.
      for (const handle of handles) await handle.signal(checkNowSignal);
      return Promise.all(handles.map((handle) => handle.result() as Promise<AvatarConsentResult>));
    });
    expect(mostCached).toBeLessThanOrEqual(2);
    expect(results.map((r) => r.outcome)).toEqual(groups.map(() => 'approved'));
  });
});
