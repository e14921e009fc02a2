/**
 * Secrets and personal data stay where they belong. Real worker processes run full consents,
 * including HeyGen and SMTP failures and wrong credentials, with payload encryption on; then the
 * raw histories (as Temporal stores them), the describe() output, the results and every log line
 * are searched for the HeyGen keys and SMTP passwords (never allowed anywhere) and for the
 * recipient's address and the consent links (never allowed in what Temporal stores).
 */
import { temporal } from '@temporalio/proto';
import { Client } from '@temporalio/client';
import type { WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dataConverterFor, generateKey, loadCodecKeysFromEnv } from '../../src/codec/index.js';
import { cancelSignal, statusQuery } from '../../src/contract/index.js';
import type { AvatarConsentResult } from '../../src/contract/index.js';
import { startSandbox } from '../../tools/heygen-sandbox/index.js';
import { startAvatarConsent } from '../../src/starter.js';
import { startSmtpCatcher } from '../../tools/kit/smtp-catcher.js';
import type { SmtpCatcher } from '../../tools/kit/smtp-catcher.js';
import { createDevServerEnv, uniqueName } from '../../tools/kit/temporal-test-env.js';
import { startWorkerProcess } from '../helpers/worker-process.js';
import type { WorkerProcess } from '../helpers/worker-process.js';
import { eventually } from '../../tools/kit/eventually.js';

const HEYGEN_KEY = 'hg-live-Zq8s3cr3tK3y-0123456789';
const REVOKED_HEYGEN_KEY = 'hg-revoked-Qw7s3cr3tK3y-9876543210';
const SMTP_PASSWORD = 'smtp-Pa55w0rd-Xy9Secret';
const WRONG_SMTP_PASSWORD = 'smtp-Wr0ngPa55-Ab1Secret';
const SECRETS = [HEYGEN_KEY, REVOKED_HEYGEN_KEY, SMTP_PASSWORD, WRONG_SMTP_PASSWORD];

type Sandbox = Awaited<ReturnType<typeof startSandbox>>;

let env: TestWorkflowEnvironment;
let sandbox: Sandbox;
let smtp: SmtpCatcher;
let codecClient: Client;
const codecKey = generateKey('k1');
const codecEnv = { AVATAR_CONSENT_CODEC_KEYS: codecKey.line };
const workers: WorkerProcess[] = [];

beforeAll(async () => {
  [env, sandbox, smtp] = await Promise.all([
    createDevServerEnv(),
    startSandbox({ apiKeys: [HEYGEN_KEY] }),
    startSmtpCatcher({ auth: { user: 'mailer', pass: SMTP_PASSWORD } }),
  ]);
  codecClient = new Client({
    connection: env.connection,
    namespace: 'default',
    dataConverter: dataConverterFor(loadCodecKeysFromEnv(codecEnv)),
  });
});

afterAll(async () => {
  for (const w of workers) w.proc.kill('SIGKILL');
  await Promise.allSettled([env?.teardown(), sandbox?.close(), smtp?.close()]);
});

function startWorker(taskQueue: string, heygenKey: string, smtpPassword: string): WorkerProcess {
  const smtpUrl = new URL(smtp.url);
  smtpUrl.username = 'mailer';
  smtpUrl.password = smtpPassword;
  const worker = startWorkerProcess({
    TEMPORAL_ADDRESS: env.address,
    TEMPORAL_TASK_QUEUE: taskQueue,
    HEYGEN_API_KEY: heygenKey,
    HEYGEN_BASE_URL: sandbox.url,
    HEYGEN_TIMEOUT_MS: '1000',
    SMTP_URL: smtpUrl.toString(),
    EMAIL_FROM: 'Avatar consent <consent@avatar-consent.test>',
    LOG_LEVEL: 'DEBUG',
    ...codecEnv,
  });
  workers.push(worker);
  return worker;
}

const fast = { pollInitialInterval: '200ms', pollMaxInterval: '500ms' } as const;

describe('secrets and personal data', () => {
  it('never appear in histories, describe output, results or logs', { timeout: 180_000 }, async () => {
    const handles: WorkflowHandle[] = [];
    const recipients: string[] = [];
    const start = async (taskQueue: string, groupId: string) => {
      const email = `${uniqueName('person')}@example.com`;
      recipients.push(email);
      const handle = await startAvatarConsent(
        codecClient,
        { groupId, recipient: { email, name: 'Ada Secretperson' }, policy: fast },
        { taskQueue },
      );
      handles.push(handle);
      return { handle, email };
    };

    // 1. The right credentials, through HeyGen 5xx, a hang, a 429, and a permanent SMTP rejection.
    const good = uniqueName('good');
    startWorker(good, HEYGEN_KEY, SMTP_PASSWORD);
    const approvedGroup = sandbox.createGroup({ name: 'Approved' });
    sandbox.injectFault({ kind: 'status', status: 503, count: 2, method: 'POST' });
    sandbox.injectFault({ kind: 'hang', count: 1, method: 'GET' });
    sandbox.injectFault({ kind: 'rate_limit', count: 1, retryAfter: '1', method: 'GET' });
    const approved = await start(good, approvedGroup.id);
    await smtp.waitForMessages(1, { to: approved.email, timeoutMs: 45_000 });
    sandbox.approve(approvedGroup.id);

    const rejectedGroup = sandbox.createGroup({ name: 'Rejected' });
    smtp.rejectNext({ code: 550, message: 'mailbox unavailable', stage: 'rcpt' });
    const rejected = await start(good, rejectedGroup.id);

    const missing = await start(good, `ag_missing_${Date.now()}`);

    // 2. A revoked HeyGen key: blocked on credentials until canceled.
    const revoked = uniqueName('revoked');
    startWorker(revoked, REVOKED_HEYGEN_KEY, SMTP_PASSWORD);
    const blocked = await start(revoked, sandbox.createGroup({ name: 'Blocked' }).id);
    // 401s are retried every 5 minutes: one refusal is all this test waits for.
    await eventually(
      'a refused request',
      async () => {
        const pending = (await blocked.handle.describe()).raw.pendingActivities?.[0];
        // The message is encrypted with the payloads (encoded failure attributes); the type is not.
        return pending?.lastFailure?.applicationFailureInfo?.type === 'HeyGenNeedsOperator'
          ? true
          : undefined;
      },
      { timeoutMs: 45_000 },
    );

    // 3. A wrong SMTP password: the email step retries (never "undeliverable") until canceled.
    const wrongMail = uniqueName('wrong-mail');
    startWorker(wrongMail, HEYGEN_KEY, WRONG_SMTP_PASSWORD);
    const authFails = await start(wrongMail, sandbox.createGroup({ name: 'Mail auth' }).id);
    await eventually(
      'two refused SMTP logins',
      async () => {
        const pending = (await authFails.handle.describe()).raw.pendingActivities?.find(
          (a) => a.activityType?.name === 'sendConsentEmail',
        );
        return (pending?.attempt ?? 0) >= 2 ? true : undefined;
      },
      { timeoutMs: 45_000 },
    );

    // Everything the operators and the database see, before the blocked ones are canceled.
    const describes: string[] = [];
    for (const h of [blocked.handle, authFails.handle]) {
      // As the server answers an operator (no codec: the memo and payloads stay encrypted).
      const description = await env.client.workflowService.describeWorkflowExecution({
        namespace: 'default',
        execution: { workflowId: h.workflowId },
      });
      describes.push(JSON.stringify(description));
      describes.push(JSON.stringify(await h.query(statusQuery)));
    }
    await blocked.handle.signal(cancelSignal, { reason: 'key revoked' });
    await authFails.handle.signal(cancelSignal, { reason: 'mail login broken' });

    const results = new Map<string, AvatarConsentResult>();
    for (const h of handles) results.set(h.workflowId, (await h.result()) as AvatarConsentResult);
    expect(results.get(approved.handle.workflowId)?.outcome).toBe('approved');
    expect(results.get(rejected.handle.workflowId)?.outcome).toBe('email_undeliverable');
    expect(results.get(missing.handle.workflowId)?.outcome).toBe('group_not_found');
    expect(results.get(blocked.handle.workflowId)?.outcome).toBe('canceled');
    expect(results.get(authFails.handle.workflowId)?.outcome).toBe('canceled');

    // Raw histories as Temporal stores them (no codec): protobuf bytes and JSON.
    const stored: Buffer[] = [];
    for (const h of handles) {
      const history = await env.client.workflow.getHandle(h.workflowId).fetchHistory();
      stored.push(Buffer.from(temporal.api.history.v1.History.encode(history).finish()));
    }
    const storedText = Buffer.concat(stored).toString('latin1');
    const links = sandbox.consents().map((c) => c.url);
    expect(links.length).toBeGreaterThanOrEqual(3);

    for (const secret of SECRETS) {
      expect(storedText, 'history').not.toContain(secret);
      expect(describes.join('\n'), 'describe').not.toContain(secret);
      expect(JSON.stringify([...results.values()]), 'results').not.toContain(secret);
    }
    for (const personal of [...recipients, ...links, 'Secretperson']) {
      expect(storedText, 'history').not.toContain(personal);
      expect(describes.join('\n'), 'describe').not.toContain(personal);
    }

    // Logs: stop the workers gracefully and read everything they wrote.
    for (const w of workers) w.proc.kill('SIGTERM');
    await Promise.all(workers.map((w) => w.exited));
    const logs = workers.flatMap((w) => w.logs).join('\n');
    expect(logs.length).toBeGreaterThan(0);
    expect(logs).toMatch(/401|authentication_failed/);
    for (const secret of SECRETS) expect(logs, 'logs').not.toContain(secret);
  });
});
