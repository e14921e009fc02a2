/**
 * Records the histories of representative consent runs (happy path, 429s, link refresh, expiry,
 * cancel, checkNow, resend, a blocked key) into test/fixtures/histories/, for the replay test.
 *
 * Run it (`npm run record-histories`) only when adding a scenario: the committed histories are the
 * point. They stand for workflows already running in production; the replay test proves that every
 * change of the workflow code can still continue them.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import { bundleWorkflowCode } from '@temporalio/worker';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { createConsentWorker } from '../src/worker.js';
import { cancelSignal, checkNowSignal, resendEmailUpdate, statusQuery } from '../src/contract/index.js';
import type { AvatarConsentInput } from '../src/contract/index.js';
import { eventually } from './kit/eventually.js';
import { FakeHeyGen } from './kit/fake-heygen.js';
import { FakeMailer } from './kit/fake-mailer.js';
import { createTimeSkippingEnv } from './kit/temporal-test-env.js';
import { avatarConsentWorkflow } from '../src/workflows/index.js';

const outDir = fileURLToPath(new URL('../test/fixtures/histories/', import.meta.url));

interface Scenario {
  name: string;
  input: (groupId: string) => AvatarConsentInput;
  setup?: (heygen: FakeHeyGen, groupId: string) => void;
  /** Drives the running workflow; the default just waits for its result. */
  drive?: (ctx: {
    env: TestWorkflowEnvironment;
    heygen: FakeHeyGen;
    groupId: string;
    handle: ReturnType<TestWorkflowEnvironment['client']['workflow']['getHandle']>;
  }) => Promise<void>;
}

const recipient = { email: 'person@example.com', name: 'Ada Person' };

async function untilPhase(
  handle: ReturnType<TestWorkflowEnvironment['client']['workflow']['getHandle']>,
  phase: string,
): Promise<void> {
  await eventually(
    `the workflow to reach phase ${phase}`,
    async () => (await handle.query(statusQuery)).phase === phase,
    { timeoutMs: 20_000, intervalMs: 50 },
  );
}

const scenarios: Scenario[] = [
  {
    name: 'happy-path',
    input: (groupId) => ({ groupId, recipient, notify: { workflowId: 'gone-caller' } }),
    setup: (heygen, groupId) => heygen.approveOnGet.set(groupId, 5),
  },
  {
    name: 'rate-limited',
    input: (groupId) => ({ groupId, recipient, policy: { pollInitialInterval: '5s' } }),
    setup: (heygen, groupId) => {
      heygen.failNext(
        groupId,
        'GET',
        { kind: 'rate_limited', status: 429, code: 'rate_limit_exceeded', retryAfterMs: 120_000 },
        2,
      );
      heygen.failNext(groupId, 'POST', { kind: 'in_progress', status: 409, code: 'request_in_progress' }, 1);
      heygen.approveOnGet.set(groupId, 6);
    },
  },
  {
    name: 'link-refresh-then-expiry',
    input: (groupId) => ({
      groupId,
      recipient,
      policy: { linkTtl: '2h', maxLinkRefreshes: 2, deadline: '7h' },
    }),
  },
  {
    name: 'default-policy-expiry',
    input: (groupId) => ({ groupId, recipient }),
  },
  {
    name: 'cancel',
    input: (groupId) => ({ groupId, recipient }),
    drive: async ({ handle }) => {
      await untilPhase(handle, 'awaiting');
      await handle.signal(cancelSignal, { reason: 'customer withdrew' });
      await handle.result();
    },
  },
  {
    name: 'check-now-and-resend',
    input: (groupId) => ({
      groupId,
      recipient,
      policy: { pollInitialInterval: '6h', pollMaxInterval: '6h' },
    }),
    drive: async ({ handle, heygen, groupId }) => {
      await untilPhase(handle, 'awaiting');
      await handle.executeUpdate(resendEmailUpdate, { args: [{ reason: 'asked by support' }] });
      heygen.approve(groupId);
      await handle.signal(checkNowSignal);
      await handle.result();
    },
  },
  {
    name: 'blocked-credentials',
    input: (groupId) => ({ groupId, recipient }),
    setup: (heygen, groupId) => {
      heygen.failNext(
        groupId,
        'POST',
        { kind: 'needs_operator', status: 401, code: 'authentication_failed' },
        5,
      );
      heygen.approveOnGet.set(groupId, 3);
    },
  },
  {
    name: 'group-failed',
    input: (groupId) => ({ groupId, recipient }),
    setup: (heygen, groupId) => {
      heygen.patchOnGet.set(groupId, {
        at: 4,
        patch: {
          status: 'failed',
          error: {
            code: 'consent_mismatch',
            message: 'The person on the consent video is not the person in the footage',
          },
        },
      });
    },
  },
];

async function main(): Promise<void> {
  mkdirSync(outDir, { recursive: true });
  const env = await createTimeSkippingEnv();
  const heygen = new FakeHeyGen(() => env.currentTimeMs());
  const mailer = new FakeMailer();
  try {
    const workflowBundle = await bundleWorkflowCode({
      workflowsPath: fileURLToPath(new URL('../src/workflows/index.ts', import.meta.url)),
    });
    for (const scenario of scenarios) {
      const groupId = `ag_${scenario.name.replace(/-/g, '_')}`;
      heygen.addGroup(groupId);
      scenario.setup?.(heygen, groupId);
      const taskQueue = `record-${scenario.name}`;
      const worker = await createConsentWorker({
        connection: env.nativeConnection,
        namespace: 'default',
        taskQueue,
        workflowBundle,
        dependencies: { heygen, mailer, messageIdDomain: 'example.com' },
      });
      const workflowId = `avatar-consent-${groupId}`;
      await worker.runUntil(async () => {
        const handle = await env.client.workflow.start(avatarConsentWorkflow, {
          taskQueue,
          workflowId,
          args: [scenario.input(groupId)],
        });
        if (scenario.drive) await scenario.drive({ env, heygen, groupId, handle });
        else await handle.result();
      });
      const history = await env.client.workflow.getHandle(workflowId).fetchHistory();
      const file = `${outDir}${scenario.name}.json`;
      writeFileSync(file, `${historyToJSON(history)}\n`);
      console.log(`recorded ${scenario.name}: ${history.events?.length ?? 0} events -> ${file}`);
    }
  } finally {
    await env.teardown();
  }
}

await main();
