/**
 * The starter as its users meet it: the CLI as a process, and startAvatarConsent() as a backend calls
 * it, against the Temporal dev server, the HeyGen sandbox over HTTP, an SMTP catcher, and the worker
 * as a process of its own (`npm run worker`'s entry point).
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  checkNowSignal,
  recipientFingerprint,
  statusQuery,
  workflowIdForGroup,
} from '../../src/contract/index.js';
import type { ConsentStatusView } from '../../src/contract/index.js';
import { escapeMarkdown } from '../../src/rules/markdown.js';
import { EXIT, RecipientConflictError, startAvatarConsent } from '../../src/starter.js';
import type { avatarConsentWorkflow } from '../../src/workflows/avatar-consent.js';
import { consentLinkIn, startSandbox } from '../../tools/heygen-sandbox/index.js';
import { endProcess, exited, keepLines } from '../../tools/kit/child-process.js';
import { eventually } from '../../tools/kit/eventually.js';
import { startSmtpCatcher } from '../../tools/kit/smtp-catcher.js';
import type { SmtpCatcher } from '../../tools/kit/smtp-catcher.js';
import { createDevServerEnv, uniqueName } from '../../tools/kit/temporal-test-env.js';
import type { DevServerEnv } from '../../tools/kit/temporal-test-env.js';
import { startWorkerProcess } from '../helpers/worker-process.js';
import type { WorkerProcess } from '../helpers/worker-process.js';

type Sandbox = Awaited<ReturnType<typeof startSandbox>>;

const API_KEY = 'starter-cli-key';
const taskQueue = uniqueName('starter-cli');

let env: DevServerEnv;
let sandbox: Sandbox;
let smtp: SmtpCatcher;
let worker: WorkerProcess;

beforeAll(async () => {
  [env, sandbox, smtp] = await Promise.all([
    createDevServerEnv(),
    startSandbox({ apiKeys: [API_KEY] }),
    startSmtpCatcher(),
  ]);
  worker = startWorkerProcess({
    TEMPORAL_ADDRESS: env.address,
    TEMPORAL_NAMESPACE: 'default',
    TEMPORAL_TASK_QUEUE: taskQueue,
    HEYGEN_API_KEY: API_KEY,
    HEYGEN_BASE_URL: sandbox.url,
    SMTP_URL: smtp.url,
    EMAIL_FROM: 'Avatar consent <consent@avatar-consent.test>',
  });
});

afterAll(async () => {
  if (worker) await endProcess(worker.proc);
  await Promise.allSettled([env?.teardown(), sandbox?.close(), smtp?.close()]);
});

interface CliRun {
  code: number | null;
  stdout: string[];
  stderr: string[];
}

/** `npm run starter -- …` as a process, on this file's server and task queue; its lines as they come. */
function launch(args: string[]): CliRun & { done: Promise<CliRun> } {
  const proc = spawn(
    process.execPath,
    ['--import', 'tsx', 'src/starter.ts', ...args, '--task-queue', taskQueue],
    {
      cwd: fileURLToPath(new URL('../..', import.meta.url)),
      env: { ...process.env, TEMPORAL_ADDRESS: env.address, TEMPORAL_NAMESPACE: 'default' },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const stdout: string[] = [];
  const stderr: string[] = [];
  keepLines(proc.stdout, stdout, Infinity);
  keepLines(proc.stderr, stderr, Infinity);
  const run = { code: null, stdout, stderr };
  return { ...run, done: exited(proc).then(({ code }) => ({ ...run, code })) };
}

function starter(args: string[]): Promise<CliRun> {
  return launch(args).done;
}

function statusOf(groupId: string): Promise<ConsentStatusView> {
  return env.client.workflow.getHandle(workflowIdForGroup(groupId)).query(statusQuery);
}

/** The person approves on HeyGen, and the workflow is nudged to look now (as the return gateway does). */
async function approve(groupId: string): Promise<void> {
  sandbox.approve(groupId);
  await env.client.workflow.getHandle(workflowIdForGroup(groupId)).signal(checkNowSignal);
}

const person = (name: string) => `${uniqueName(name)}@example.com`;

describe('the starter CLI', () => {
  it('--wait: says it started, shows progress, ends with one outcome line; a second trigger attaches', async () => {
    const group = sandbox.createGroup({ name: 'CLI wait' });
    const email = person('ada');
    const waiting = launch(['--group-id', group.id, '--email', email, '--name', 'Ada', '--wait']);
    const [mail] = await smtp.waitForMessages(1, { to: email, timeoutMs: 60_000 });
    expect(consentLinkIn(mail!.text)).toBeTruthy();

    // An address is compared as an address: in any case.
    const again = await starter(['--group-id', group.id, '--email', email.toUpperCase()]);
    expect(again.code, again.stderr.join('\n')).toBe(EXIT.ok);
    expect(again.stdout).toEqual([
      expect.stringMatching(
        new RegExp(
          `^A consent for group ${group.id} is already running for A\\*\\*\\*@EXAMPLE\\.COM: attached to workflow avatar-consent-${group.id} \\(run [0-9a-f-]+\\)\\. Nothing new is sent\\.$`,
        ),
      ),
    ]);

    // While it waits, it shows where the consent is.
    await eventually('a progress line', () =>
      waiting.stdout.some((line) => line.startsWith('phase=awaiting')),
    );
    await approve(group.id);
    const first = await waiting.done;
    expect(first.code, first.stderr.join('\n')).toBe(EXIT.ok);
    expect(first.stdout[0]).toMatch(
      new RegExp(
        `^Started the consent for group ${group.id}: workflow avatar-consent-${group.id} \\(run [0-9a-f-]+\\)\\.`,
      ),
    );
    expect(first.stdout.at(-1)).toMatch(
      new RegExp(
        `^Outcome: approved: the avatar may be used at \\S+; group ${group.id}, \\d+ polls?, 1 email, workflow avatar-consent-${group.id}$`,
      ),
    );
    // The link is the person's: it is never printed.
    expect(first.stdout.join('\n')).not.toContain(consentLinkIn(mail!.text)!);
    expect(smtp.messages.filter((m) => m.to.includes(email))).toHaveLength(1);
  });

  it('a second trigger for another recipient fails with exit 3 and changes nothing; --change-recipient sends it to them', async () => {
    const group = sandbox.createGroup({ name: 'CLI other' });
    const first = person('first');
    const second = person('second');
    const started = await starter(['--group-id', group.id, '--email', first]);
    expect(started.code, started.stderr.join('\n')).toBe(EXIT.ok);
    const [firstMail] = await smtp.waitForMessages(1, { to: first, timeoutMs: 60_000 });

    const refused = await starter(['--group-id', group.id, '--email', second]);
    expect(refused.code).toBe(EXIT.recipientConflict);
    expect(refused.stdout).toEqual([]);
    const message = refused.stderr.join('\n');
    expect(message).toContain(
      `A consent for group ${group.id} is already running (workflow avatar-consent-${group.id}`,
    );
    expect(message).toContain('its emails go to a different recipient. Nothing was changed.');
    expect(message).toContain('run again with --change-recipient');
    expect(message).not.toContain(first);
    expect((await statusOf(group.id)).recipientFingerprint).toBe(recipientFingerprint(first));

    const changed = await starter([
      '--group-id',
      group.id,
      '--email',
      second,
      '--change-recipient',
      '--json',
    ]);
    expect(changed.code, changed.stderr.join('\n')).toBe(EXIT.ok);
    expect(changed.stdout).toHaveLength(1);
    const printed = JSON.parse(changed.stdout[0]!) as Record<string, unknown>;
    expect(printed).toMatchObject({
      workflowId: workflowIdForGroup(group.id),
      groupId: group.id,
      started: false,
      recipient: 'changed',
      recipientChange: { recipientFingerprint: recipientFingerprint(second), linkGeneration: 1 },
      result: null,
    });
    expect(changed.stderr.join('\n')).toContain(`now sends it to s***@example.com`);

    // The new recipient gets the current link; the status shows them from now on.
    const [secondMail] = await smtp.waitForMessages(1, { to: second, timeoutMs: 30_000 });
    expect(consentLinkIn(secondMail!.text)).toBe(consentLinkIn(firstMail!.text));
    expect((await statusOf(group.id)).recipientFingerprint).toBe(recipientFingerprint(second));

    // Triggering again for the new recipient is now the same consent.
    const same = await starter(['--group-id', group.id, '--email', second, '--json']);
    expect(same.code).toBe(EXIT.ok);
    expect(JSON.parse(same.stdout[0]!)).toMatchObject({
      started: false,
      recipient: 'same',
      recipientChange: null,
    });
    await approve(group.id);
    const result = await env.client.workflow
      .getHandle<typeof avatarConsentWorkflow>(workflowIdForGroup(group.id))
      .result();
    expect(result.outcome).toBe('approved');
  });

  it('--wait --json: an outcome other than approved exits 1, with the result as JSON on stdout', async () => {
    const missing = `ag_cli_missing_${Date.now()}`;
    const run = await starter(['--group-id', missing, '--email', person('x'), '--wait', '--json']);
    expect(run.code).toBe(EXIT.failed);
    expect(run.stdout).toHaveLength(1);
    expect(JSON.parse(run.stdout[0]!)).toMatchObject({
      started: true,
      recipient: 'new',
      result: { outcome: 'group_not_found', groupId: missing, consentUrl: null },
    });
    expect(run.stderr.at(-1)).toMatch(/^Outcome: group_not_found: HeyGen has no such avatar group \(/);
  });

  it('writes escaped markdown into the workflow summary and details', async () => {
    const group = sandbox.createGroup({ name: 'Markdown', id: `__md_${Date.now()}__` });
    const run = await starter(['--group-id', group.id, '--email', person('md')]);
    expect(run.code, run.stderr.join('\n')).toBe(EXIT.ok);
    const description = await env.client.workflow.getHandle(workflowIdForGroup(group.id)).describe();
    expect(await description.staticSummary()).toBe(
      `Avatar consent for HeyGen group ${escapeMarkdown(group.id)}`,
    );
    expect(await description.staticDetails()).toContain(`**Group:** ${escapeMarkdown(group.id)}\n\n`);
    await approve(group.id);
    await env.client.workflow.getHandle(workflowIdForGroup(group.id)).result();
  });
});

describe('startAvatarConsent for backends', () => {
  it('tells started from attached, and throws RecipientConflictError for another recipient unless asked to change', async () => {
    const group = sandbox.createGroup({ name: 'Library' });
    const first = person('lib-first');
    const second = person('lib-second');
    const input = (email: string) => ({ groupId: group.id, recipient: { email } });

    const start = await startAvatarConsent(env.client, input(first), { taskQueue });
    expect(start).toMatchObject({ started: true, recipient: 'new', recipientChange: null });
    const again = await startAvatarConsent(env.client, input(first), { taskQueue });
    expect(again).toMatchObject({ started: false, recipient: 'same', runId: start.runId });

    const conflict = await startAvatarConsent(env.client, input(second), { taskQueue }).catch(
      (e: unknown) => e,
    );
    expect(conflict).toBeInstanceOf(RecipientConflictError);
    expect(conflict).toMatchObject({
      reason: 'different_recipient',
      workflowId: workflowIdForGroup(group.id),
      runId: start.runId,
    });
    expect((conflict as Error).message).toContain("pass differentRecipient: 'change'");
    expect((conflict as Error).message).not.toContain(second);

    // 'attach' looks at nothing: the old behaviour, for callers that do not care.
    const attached = await startAvatarConsent(env.client, input(second), {
      taskQueue,
      differentRecipient: 'attach',
    });
    expect(attached).toMatchObject({ started: false, recipient: 'unchecked' });
    expect((await statusOf(group.id)).recipientFingerprint).toBe(recipientFingerprint(first));

    // 'change' waits for the first link, then sends the consent to the new recipient.
    const changed = await startAvatarConsent(env.client, input(second), {
      taskQueue,
      differentRecipient: 'change',
    });
    expect(changed).toMatchObject({
      started: false,
      recipient: 'changed',
      recipientChange: { recipientFingerprint: recipientFingerprint(second) },
    });
    await smtp.waitForMessages(1, { to: second, timeoutMs: 30_000 });
    await approve(group.id);
    expect((await changed.result()).outcome).toBe('approved');
  });

  it('without a worker to answer, the recipient cannot be checked: recipient_unchecked, nothing changed', async () => {
    const group = sandbox.createGroup({ name: 'No worker' });
    const idle = uniqueName('no-worker');
    const first = await startAvatarConsent(
      env.client,
      { groupId: group.id, recipient: { email: person('a') } },
      {
        taskQueue: idle,
      },
    );
    try {
      const error = await startAvatarConsent(
        env.client,
        { groupId: group.id, recipient: { email: person('b') } },
        { taskQueue: idle, recipientCheckTimeoutMs: 1_500 },
      ).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(RecipientConflictError);
      expect(error).toMatchObject({ reason: 'recipient_unchecked', runId: first.runId });
      expect((error as Error).message).toMatch(/no worker answered its status query in time/);
      const history = await first.fetchHistory();
      expect(history.events?.some((e) => e.workflowExecutionUpdateAcceptedEventAttributes)).toBe(false);
    } finally {
      await first.terminate('test over');
    }
  });

  it('two triggers at once for the same person: one starts, the other attaches', async () => {
    const group = sandbox.createGroup({ name: 'Race' });
    const email = person('race');
    const starts = await Promise.all(
      [0, 1].map(() =>
        startAvatarConsent(env.client, { groupId: group.id, recipient: { email } }, { taskQueue }),
      ),
    );
    expect(starts.map((s) => s.started).sort()).toEqual([false, true]);
    expect(new Set(starts.map((s) => s.runId)).size).toBe(1);
    await eventually('the email', () => smtp.messages.some((m) => m.to.includes(email)));
    await approve(group.id);
    expect((await starts[0]!.result()).outcome).toBe('approved');
  });
});
