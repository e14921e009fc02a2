/**
 * Another language, for real: test/python/consent_backend.py, a backend on Temporal's Python SDK
 * (pinned in tools/setup/requirements.txt, run from .venv), starts the consent by name with plain
 * JSON from the published schema against the project's worker (`npm run worker`'s entry point as a
 * process) on a dev server, with the HeyGen sandbox and a real SMTP server. This file plays the
 * person (waits for the email, approves) and checks what the Python side reports; then the same
 * with payload encryption, the Python codec written from docs/integrators.md.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKey, isEncryptedPayload } from '../../src/codec/index.js';
import { workflowIdForGroup } from '../../src/contract/index.js';
import type { AvatarConsentResult } from '../../src/contract/index.js';
import { startSandbox } from '../../tools/heygen-sandbox/index.js';
import { exited, keepLines } from '../../tools/kit/child-process.js';
import { startSmtpCatcher } from '../../tools/kit/smtp-catcher.js';
import type { SmtpCatcher } from '../../tools/kit/smtp-catcher.js';
import { createDevServerEnv, uniqueName } from '../../tools/kit/temporal-test-env.js';
import type { DevServerEnv } from '../../tools/kit/temporal-test-env.js';
import { SETUP_COMMAND, venvBinDir } from '../../tools/setup/setup.js';
import { startWorkerProcess } from '../helpers/worker-process.js';
import type { WorkerProcess } from '../helpers/worker-process.js';

const API_KEY = 'python-it-key';
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const PYTHON = join(venvBinDir(), 'python');

let env: DevServerEnv;
let sandbox: Awaited<ReturnType<typeof startSandbox>>;
let smtp: SmtpCatcher;
const workers: WorkerProcess[] = [];

beforeAll(async () => {
  if (!existsSync(PYTHON)) throw new Error(`${PYTHON} is missing: run \`${SETUP_COMMAND}\``);
  [env, sandbox, smtp] = await Promise.all([
    createDevServerEnv(),
    startSandbox({ apiKeys: [API_KEY] }),
    startSmtpCatcher(),
  ]);
});

afterAll(async () => {
  for (const worker of workers) worker.proc.kill('SIGKILL');
  await Promise.allSettled([env?.teardown(), sandbox?.close(), smtp?.close()]);
});

interface PythonReport {
  encrypted: boolean;
  sent: Record<string, unknown>;
  approved: { signal: AvatarConsentResult; result: AvatarConsentResult; workflowId: string };
  badInputSchemaErrors: string[];
  invalid: { signal: AvatarConsentResult };
}

/** Runs the Python backend to its end; its last stdout line is its report. */
async function runPythonBackend(args: string[], extraEnv: Record<string, string>): Promise<PythonReport> {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const proc = spawn(PYTHON, [join(ROOT, 'test/python/consent_backend.py'), ...args], {
    cwd: ROOT,
    env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1', ...extraEnv },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  keepLines(proc.stdout, stdout);
  keepLines(proc.stderr, stderr, 60);
  const { code } = await exited(proc);
  expect(code, `the Python backend failed:\n${stderr.join('\n')}`).toBe(0);
  return JSON.parse(stdout.at(-1)!) as PythonReport;
}

/** The worker as deployed (`npm run worker`), configured by its environment only. */
function startWorker(taskQueue: string, extraEnv: Record<string, string>): void {
  workers.push(
    startWorkerProcess({
      TEMPORAL_ADDRESS: env.address,
      TEMPORAL_TASK_QUEUE: taskQueue,
      HEYGEN_API_KEY: API_KEY,
      HEYGEN_BASE_URL: sandbox.url,
      SMTP_URL: smtp.url,
      EMAIL_FROM: 'Avatar consent <consent@avatar-consent.test>',
      ...extraEnv,
    }),
  );
}

async function runScenario(codecEnv: Record<string, string>) {
  const taskQueue = uniqueName('python');
  startWorker(taskQueue, codecEnv);
  const group = sandbox.createGroup({ name: 'Py Ada' });
  const badGroupId = `ag_py_bad_${Date.now()}`;
  const email = `${uniqueName('py')}@example.com`;
  const python = runPythonBackend(
    [
      '--address',
      env.address,
      '--consent-task-queue',
      taskQueue,
      '--group-id',
      group.id,
      '--email',
      email,
      '--bad-group-id',
      badGroupId,
    ],
    codecEnv,
  );
  // The person: the email arrives, they agree. (A Python failure ends the wait at once.)
  await Promise.race([smtp.waitForMessages(1, { to: email, timeoutMs: 90_000 }), python]);
  sandbox.approve(group.id);
  return { report: await python, group, badGroupId, email };
}

function expectContractBehaviour({ report, group, badGroupId }: Awaited<ReturnType<typeof runScenario>>) {
  // What it sent: nulls for absent fields and ISO-8601 durations, straight from the schema's example.
  expect(report.sent).toMatchObject({
    recipient: { name: null },
    consentText: null,
    policy: { pollInitialInterval: 'PT1S', deadline: 'P7D' },
  });
  expect(report.approved.workflowId).toBe(workflowIdForGroup(group.id));
  expect(report.approved.signal).toMatchObject({ outcome: 'approved', groupId: group.id, emailsSent: 1 });
  // The signal is the result (the result also says whether the signal was delivered).
  const { notification, ...result } = report.approved.result;
  expect(report.approved.signal).toEqual(result);
  expect(notification).toMatchObject({ delivered: true, signalName: 'avatarConsentCompleted' });

  // Bad input: the schema and the worker both refuse it, naming the same fields.
  expect(report.badInputSchemaErrors).toEqual(
    expect.arrayContaining(['(root)', 'recipient/email', 'policy/deadline']),
  );
  const invalid = report.invalid.signal;
  expect(invalid).toMatchObject({ outcome: 'invalid_input', groupId: badGroupId, emailsSent: 0 });
  expect(invalid.error?.fields?.map((field) => field.path)).toEqual(
    expect.arrayContaining(['recipient.email', 'policy.deadline', 'priority']),
  );
  expect(JSON.stringify(invalid)).not.toContain('not an address');
}

describe('a Python backend on the Temporal Python SDK', () => {
  it(
    'starts the consent by name with JSON from the schema and gets the completion signal',
    { timeout: 240_000 },
    async () => {
      const scenario = await runScenario({});
      expect(scenario.report.encrypted).toBe(false);
      expectContractBehaviour(scenario);
    },
  );

  it('does the same through the documented payload encryption', { timeout: 240_000 }, async () => {
    const key = generateKey('py-it');
    const scenario = await runScenario({ AVATAR_CONSENT_CODEC_KEYS: key.line });
    expect(scenario.report.encrypted).toBe(true);
    expectContractBehaviour(scenario);

    // What Python sent is stored encrypted in the documented format (the worker could read it: it ran).
    const handle = env.client.workflow.getHandle(workflowIdForGroup(scenario.group.id));
    const history = await handle.fetchHistory();
    const started = history.events?.[0]?.workflowExecutionStartedEventAttributes;
    const payloads = started?.input?.payloads ?? [];
    expect(payloads).toHaveLength(1);
    expect(payloads.every(isEncryptedPayload)).toBe(true);
    expect(Buffer.from(payloads[0]!.data!).includes(scenario.email)).toBe(false);
  });
});
