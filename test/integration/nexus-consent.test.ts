/**
 * The consent as a Nexus operation, on a real dev server: a caller workflow in another namespace runs
 * `avatarConsent.requestConsent` through a Nexus endpoint that targets the consent worker's task
 * queue, and gets the typed result back when the person approves. Real HeyGen sandbox, real SMTP,
 * the project's worker wiring (createConsentWorker registers the Nexus service).
 */
import { fileURLToPath } from 'node:url';
import { Client } from '@temporalio/client';
import { msToTs } from '@temporalio/common';
import { Worker } from '@temporalio/worker';
import type { WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleWorkflows } from '../../tools/kit/workflow-bundle.js';
import { AvatarGroupIdAttribute, workflowIdForGroup } from '../../src/contract/index.js';
import type { AvatarConsentInput } from '../../src/contract/index.js';
import { loadWorkerConfig } from '../../src/config/worker-config.js';
import { createConsentWorker, dependenciesFromConfig } from '../../src/worker.js';
import { startSandbox } from '../../tools/heygen-sandbox/index.js';
import { eventually } from '../../tools/kit/eventually.js';
import { startSmtpCatcher } from '../../tools/kit/smtp-catcher.js';
import type { SmtpCatcher } from '../../tools/kit/smtp-catcher.js';
import { createDevServerEnv, uniqueName } from '../../tools/kit/temporal-test-env.js';
import type { DevServerEnv } from '../../tools/kit/temporal-test-env.js';
import { nexusConsentCaller } from './nexus-workflows.js';

const API_KEY = 'nexus-it-key';
const CALLER_NAMESPACE = 'consent-callers';
const ENDPOINT = 'avatar-consent-it';

let env: DevServerEnv;
let sandbox: Awaited<ReturnType<typeof startSandbox>>;
let smtp: SmtpCatcher;
let callerBundle: WorkflowBundleWithSourceMap;
let callerClient: Client;
const consentTaskQueue = uniqueName('nexus-consent');

beforeAll(async () => {
  [env, sandbox, smtp, callerBundle] = await Promise.all([
    createDevServerEnv(),
    startSandbox({ apiKeys: [API_KEY] }),
    startSmtpCatcher(),
    bundleWorkflows(fileURLToPath(new URL('./nexus-workflows.ts', import.meta.url))),
  ]);
  // The caller's own namespace, and the endpoint that routes to the consent worker's task queue.
  await env.connection.workflowService.registerNamespace({
    namespace: CALLER_NAMESPACE,
    workflowExecutionRetentionPeriod: msToTs('1 day'),
  });
  await env.connection.operatorService.createNexusEndpoint({
    spec: {
      name: ENDPOINT,
      target: { worker: { namespace: env.namespace ?? 'default', taskQueue: consentTaskQueue } },
    },
  });
  await eventually(
    `namespace ${CALLER_NAMESPACE}`,
    async () => {
      await env.connection.workflowService.describeNamespace({ namespace: CALLER_NAMESPACE });
      return true;
    },
    { timeoutMs: 30_000, intervalMs: 200 },
  );
  callerClient = new Client({ connection: env.connection, namespace: CALLER_NAMESPACE });
});

afterAll(async () => {
  await Promise.allSettled([env?.teardown(), sandbox?.close(), smtp?.close()]);
});

/** The consent worker (the worker's own wiring, from a worker environment) and a caller worker, both running. */
async function withWorkers<T>(fn: (callerTaskQueue: string) => Promise<T>): Promise<T> {
  const config = loadWorkerConfig({
    TEMPORAL_ADDRESS: env.address,
    HEYGEN_API_KEY: API_KEY,
    HEYGEN_BASE_URL: sandbox.url,
    SMTP_URL: smtp.url,
    EMAIL_FROM: 'Avatar consent <consent@avatar-consent.test>',
  });
  const dependencies = dependenciesFromConfig(config);
  const consentWorker = await createConsentWorker({
    connection: env.nativeConnection,
    namespace: env.namespace ?? 'default',
    taskQueue: consentTaskQueue,
    dependencies,
  });
  const callerTaskQueue = uniqueName('nexus-caller');
  // A namespace just registered may take a moment to reach every server component.
  const callerWorker = await eventually('a worker in the caller namespace', () =>
    Worker.create({
      connection: env.nativeConnection,
      namespace: CALLER_NAMESPACE,
      taskQueue: callerTaskQueue,
      workflowBundle: callerBundle,
    }),
  );
  try {
    return await consentWorker.runUntil(() => callerWorker.runUntil(() => fn(callerTaskQueue)));
  } finally {
    dependencies.mailer.close();
  }
}

function inputFor(groupId: string, email: string): AvatarConsentInput {
  return {
    groupId,
    recipient: { email, name: null },
    notify: null,
    policy: { pollInitialInterval: 'PT1S', pollMaxInterval: 'PT2S' },
  };
}

describe('avatarConsent.requestConsent over Nexus', () => {
  it('a caller in another namespace gets the typed result once the person approves', async () => {
    const group = sandbox.createGroup({ name: 'Nexus Ada' });
    const email = `${uniqueName('nexus')}@example.com`;
    const outcome = await withWorkers(async (taskQueue) => {
      const caller = await callerClient.workflow.start(nexusConsentCaller, {
        taskQueue,
        workflowId: uniqueName('nexus-caller'),
        args: [ENDPOINT, inputFor(group.id, email)],
      });
      // A second caller for the same group attaches to the running consent: one consent, one email.
      const second = await callerClient.workflow.start(nexusConsentCaller, {
        taskQueue,
        workflowId: uniqueName('nexus-caller-2'),
        args: [ENDPOINT, inputFor(group.id, email)],
      });
      await smtp.waitForMessages(1, { to: email, timeoutMs: 30_000 });
      sandbox.approve(group.id);
      return Promise.all([caller.result(), second.result()]);
    });
    for (const each of outcome) {
      expect(each.kind).toBe('result');
      if (each.kind !== 'result') continue;
      expect(each.result).toMatchObject({
        outcome: 'approved',
        groupId: group.id,
        consentStatus: 'approved',
        emailsSent: 1,
        linkGeneration: 1,
      });
      expect(each.result.approvedAt).toMatch(/^\d{4}-\d\d-\d\dT/);
    }
    expect(smtp.messages.filter((m) => m.to.includes(email))).toHaveLength(1);

    // The consent runs in the handler's namespace under the group's ID, found by its search attribute.
    const consent = await env.client.workflow.getHandle(workflowIdForGroup(group.id)).describe();
    expect(consent.typedSearchAttributes.get(AvatarGroupIdAttribute)).toBe(group.id);
    expect(await consent.staticSummary()).toContain('through Nexus');
  });

  it('bad input fails the operation at once with BAD_REQUEST naming every field, and starts nothing', async () => {
    const groupId = `ag_nexus_bad_${Date.now()}`;
    const outcome = await withWorkers(async (taskQueue) =>
      callerClient.workflow.execute(nexusConsentCaller, {
        taskQueue,
        workflowId: uniqueName('nexus-bad'),
        args: [
          ENDPOINT,
          {
            groupId,
            recipient: { email: 'not-an-address' },
            policy: { deadline: 'P1M' },
          },
        ],
      }),
    );
    expect(outcome.kind).toBe('failed');
    if (outcome.kind !== 'failed') return;
    expect(outcome.cause?.type).toBe('BAD_REQUEST');
    expect(outcome.cause?.message).toMatch(/recipient\.email: must be a plain email address/);
    expect(outcome.cause?.message).toMatch(/policy\.deadline: "P1M" is not a duration/);
    expect(outcome.cause?.message).not.toContain('not-an-address');
    await expect(env.client.workflow.getHandle(workflowIdForGroup(groupId)).describe()).rejects.toThrow(
      /not found/i,
    );
  });
});
