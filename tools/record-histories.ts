/**
 * Records the histories of representative consent runs (happy path, 429s, link refresh, expiry,
 * cancel, checkNow, resend, a blocked key; with payload encryption on; across a continue-as-new)
 * into test/fixtures/histories/, for the replay test.
 *
 * `npm run record-histories` records only the scenarios that have no fixture yet: the committed
 * histories are the point. They stand for workflows already running in production, recorded by the
 * code of their time; the replay test proves that every change of the workflow code can still
 * continue them. `-- --rerecord <name>[,<name>]` replaces the named ones on purpose.
 *
 * Scenarios marked `encrypted` run on a dev server in real time with the production settings:
 * payloads and failures encrypted with the test-only key in replay-codec-key.txt (the replay test
 * reads it too), search attributes set at start. A run that continues as new is written one file
 * per run: `<name>-first-run.json`, `<name>-second-run.json`, …
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { Client } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import type { DataConverter } from '@temporalio/common';
import proto from '@temporalio/proto';
import { bundleWorkflowCode } from '@temporalio/worker';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Client as TemporalClient } from '@temporalio/client';
import { createConsentWorker } from '../src/worker.js';
import { createCodecKeyring, dataConverterFor } from '../src/codec/index.js';
import { cancelSignal, checkNowSignal, resendEmailUpdate, statusQuery } from '../src/contract/index.js';
import { AvatarGroupIdAttribute } from '../src/contract/index.js';
import type { AvatarConsentInput } from '../src/contract/index.js';
import { MailError } from '../src/email/index.js';
import { startAvatarConsent } from '../src/starter.js';
import { TEST_CONTINUE_AS_NEW_MEMO } from '../src/workflows/avatar-consent.js';
import { fetchRunChain } from './bench/history.js';
import { isEntryPoint, runCli } from './kit/cli.js';
import { eventually } from './kit/eventually.js';
import { FakeHeyGen } from './kit/fake-heygen.js';
import { FakeMailer } from './kit/fake-mailer.js';
import { DEV_SERVER_NAMESPACE } from './kit/temporal-server.js';
import { createDevServerEnv, createTimeSkippingEnv } from './kit/temporal-test-env.js';
import { avatarConsentWorkflow } from '../src/workflows/index.js';

const outDir = fileURLToPath(new URL('../test/fixtures/histories/', import.meta.url));
/** The test-only codec key of the encrypted fixtures (`id:base64`, as in AVATAR_CONSENT_CODEC_KEYS). */
const REPLAY_KEY_FILE = 'replay-codec-key.txt';

/** The data converter of the encrypted fixtures, from the key file beside them (the replay test's too). */
export function fixtureDataConverter(): DataConverter {
  const line = readFileSync(`${outDir}${REPLAY_KEY_FILE}`, 'utf8')
    .split('\n')
    .find((l) => /^[A-Za-z0-9._-]+:/.test(l.trim()));
  if (!line) throw new Error(`${REPLAY_KEY_FILE}: no "id:base64" key line`);
  const [id, key] = line.trim().split(':') as [string, string];
  return dataConverterFor(createCodecKeyring({ [id]: Buffer.from(key, 'base64') }));
}

interface Scenario {
  name: string;
  input: (groupId: string) => AvatarConsentInput;
  /** Dev server, real time, payload encryption and search attributes: the production settings. */
  encrypted?: boolean;
  /** Memo given at start, e.g. the test-only continue-as-new threshold. */
  memo?: Record<string, unknown>;
  /** The worker's input check takes this long: longer than 80% of a workflow task's timeout, the
   * SDK ends the task with the local activity's marker and the workflow goes on in the next one. */
  slowInputCheckMs?: number;
  setup?: (heygen: FakeHeyGen, groupId: string, mailer: FakeMailer) => void;
  /** Drives the running workflow; the default just waits for its result. */
  drive?: (ctx: {
    env: TestWorkflowEnvironment;
    heygen: FakeHeyGen;
    groupId: string;
    handle: ReturnType<Client['workflow']['getHandle']>;
  }) => Promise<void>;
}

const recipient = { email: 'person@example.com', name: 'Ada Person' };

async function untilPhase(handle: ReturnType<Client['workflow']['getHandle']>, phase: string): Promise<void> {
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
  // With the production settings: everything below is encrypted in history (payloads and failures).
  {
    name: 'encrypted-happy-path',
    encrypted: true,
    input: (groupId) => ({
      groupId,
      recipient,
      policy: { pollInitialInterval: '1s', pollMaxInterval: '2s', pollWindow: '5s' },
    }),
    setup: (heygen, groupId, mailer) => {
      // One refused attempt first: its (encrypted) failure is kept with the email activity's start.
      mailer.failNext(
        groupId,
        new MailError('Email delivery failed (transient, temporary): 451 try again later', {
          kind: 'transient',
          reason: 'temporary',
          responseCode: 451,
        }),
      );
      heygen.approveOnGet.set(groupId, 6);
    },
  },
  {
    name: 'encrypted-email-undeliverable',
    encrypted: true,
    input: (groupId) => ({ groupId, recipient }),
    setup: (_heygen, groupId, mailer) => {
      mailer.failNext(
        groupId,
        new MailError('Email delivery failed (permanent, rejected): 550 no such user', {
          kind: 'permanent',
          reason: 'rejected',
          responseCode: 550,
        }),
      );
    },
  },
  {
    // The chaos run found it: the input check's marker ended the first workflow task, and a full
    // replay resolved it inside the first; a patch asked after it was then misread. Guarded here.
    name: 'encrypted-input-check-across-tasks',
    encrypted: true,
    slowInputCheckMs: 9_000,
    input: (groupId) => ({ groupId, recipient, policy: { pollInitialInterval: '1s' } }),
    setup: (heygen, groupId) => heygen.approveOnGet.set(groupId, 3),
  },
  {
    // The test-only threshold makes a run continue as new after a few polling windows; the
    // second run carries the state on and sees the approval.
    name: 'encrypted-continue-as-new',
    encrypted: true,
    memo: { [TEST_CONTINUE_AS_NEW_MEMO]: 40 },
    input: (groupId) => ({
      groupId,
      recipient,
      policy: { pollInitialInterval: '1s', pollMaxInterval: '1s', pollWindow: '3s' },
    }),
    setup: (heygen, groupId) => heygen.approveOnGet.set(groupId, 24),
  },
];

/** Every fixture file a scenario writes: one, or one per run when it continued as new. */
function hasFixture(name: string): boolean {
  return existsSync(`${outDir}${name}.json`) || existsSync(`${outDir}${name}-first-run.json`);
}

const RUN_NAMES = ['first', 'second', 'third', 'fourth'];

/** Runs one scenario on `env` with `client` and writes its history (each run of it). */
async function record(
  env: TestWorkflowEnvironment,
  client: Client,
  scenario: Scenario,
  options: { workflowBundle?: { code: string }; dataConverter?: DataConverter },
): Promise<void> {
  const heygen = new FakeHeyGen(() => env.currentTimeMs());
  const mailer = new FakeMailer();
  const groupId = `ag_${scenario.name.replace(/-/g, '_')}`;
  heygen.addGroup(groupId);
  scenario.setup?.(heygen, groupId, mailer);
  const taskQueue = `record-${scenario.name}`;
  const worker = await createConsentWorker({
    connection: env.nativeConnection,
    namespace: DEV_SERVER_NAMESPACE,
    taskQueue,
    ...options,
    dependencies: { heygen, mailer, messageIdDomain: 'example.com' },
    ...(scenario.slowInputCheckMs
      ? {
          wrapActivities: (activities) => ({
            ...activities,
            checkConsentInput: async (raw: unknown) => {
              await sleep(scenario.slowInputCheckMs);
              return activities.checkConsentInput(raw);
            },
          }),
        }
      : {}),
  });
  const workflowId = `avatar-consent-${groupId}`;
  const firstRunId = await worker.runUntil(async () => {
    const input = scenario.input(groupId);
    // The production starter (search attributes, summary); a memo needs the plain client call.
    const handle = scenario.memo
      ? await client.workflow.start(avatarConsentWorkflow, {
          taskQueue,
          workflowId,
          args: [input],
          memo: scenario.memo,
          typedSearchAttributes: [{ key: AvatarGroupIdAttribute, value: groupId }],
        })
      : scenario.encrypted
        ? await startAvatarConsent(client, input, { taskQueue })
        : await client.workflow.start(avatarConsentWorkflow, { taskQueue, workflowId, args: [input] });
    if (scenario.drive) await scenario.drive({ env, heygen, groupId, handle });
    else await handle.result();
    return handle.firstExecutionRunId;
  });
  const runs = await fetchRunChain(client, workflowId, firstRunId);
  runs.forEach((run, i) => {
    const name = runs.length === 1 ? scenario.name : `${scenario.name}-${RUN_NAMES[i] ?? i + 1}-run`;
    const file = `${outDir}${name}.json`;
    writeFileSync(
      file,
      `${historyToJSON(proto.temporal.api.history.v1.History.create({ events: run.events }))}\n`,
    );
    console.log(`recorded ${name}: ${run.events.length} events -> ${file}`);
  });
}

const usage = `Usage: npm run record-histories -- [--rerecord <name>[,<name>]]

  Records the scenarios that have no fixture in test/fixtures/histories/ yet.
  --rerecord <names>   record these again, replacing their fixtures (on purpose only)
  --help               this text

Scenarios: ${scenarios.map((s) => s.name).join(', ')}`;

function parse(argv: string[]): Set<string> | 'help' {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: { rerecord: { type: 'string' }, help: { type: 'boolean', default: false } },
  });
  if (values.help) return 'help';
  const rerecord = new Set(values.rerecord?.split(',').filter(Boolean) ?? []);
  const unknown = [...rerecord].filter((name) => !scenarios.some((s) => s.name === name));
  if (unknown.length > 0) throw new Error(`--rerecord: no scenario named ${unknown.join(', ')}`);
  return rerecord;
}

async function main(rerecord: Set<string>): Promise<number> {
  const due = scenarios.filter((s) => rerecord.has(s.name) || !hasFixture(s.name));
  if (due.length === 0) {
    console.log('every scenario has its fixture; --rerecord <name> replaces one on purpose');
    return 0;
  }
  mkdirSync(outDir, { recursive: true });
  const plain = due.filter((s) => !s.encrypted);
  if (plain.length > 0) {
    const env = await createTimeSkippingEnv();
    try {
      const workflowBundle = await bundleWorkflowCode({
        workflowsPath: fileURLToPath(new URL('../src/workflows/index.ts', import.meta.url)),
      });
      for (const scenario of plain) await record(env, env.client, scenario, { workflowBundle });
    } finally {
      await env.teardown();
    }
  }
  const encrypted = due.filter((s) => s.encrypted);
  if (encrypted.length > 0) {
    const env = await createDevServerEnv();
    const dataConverter = fixtureDataConverter();
    const client = new TemporalClient({
      connection: env.connection,
      namespace: DEV_SERVER_NAMESPACE,
      dataConverter,
    });
    try {
      // No prebuilt bundle: the worker bundles the workflows with the codec's failure converter.
      for (const scenario of encrypted) await record(env, client, scenario, { dataConverter });
    } finally {
      await env.teardown();
    }
  }
  return 0;
}

if (isEntryPoint(import.meta.url)) runCli({ name: 'record-histories', usage, parse, run: main });
