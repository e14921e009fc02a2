/**
 * The consent workflow on the time-skipping test server, with the real activities over an in-memory
 * HeyGen and mailer: days of waiting run in seconds, and every call is recorded at server time.
 */
import { fileURLToPath } from 'node:url';
import { WorkflowFailedError } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleWorkflows } from '../../tools/kit/workflow-bundle.js';
import {
  cancelSignal,
  changeRecipientUpdate,
  pollProgress,
  recipientFingerprint,
  checkNowSignal,
  resendEmailUpdate,
  statusQuery,
  workflowIdForGroup,
} from '../../src/contract/index.js';
import type { AvatarConsentInput, AvatarConsentResult, ConsentStatusView } from '../../src/contract/index.js';
import { MailError } from '../../src/email/index.js';
import type { RerouteRules } from '../../src/activities/check-input.js';
import { createConsentWorker } from '../../src/worker.js';
import { FakeHeyGen } from '../../tools/kit/fake-heygen.js';
import { FakeMailer } from '../../tools/kit/fake-mailer.js';
import { createTimeSkippingEnv, uniqueName } from '../../tools/kit/temporal-test-env.js';
import { avatarConsentWorkflow, callerWorkflow, parentWorkflow } from './test-workflows.js';

let env: TestWorkflowEnvironment;
let bundle: WorkflowBundleWithSourceMap;
const heygen = new FakeHeyGen(() => env.currentTimeMs());
const mailer = new FakeMailer();

beforeAll(async () => {
  [env, bundle] = await Promise.all([
    createTimeSkippingEnv(),
    bundleWorkflows(fileURLToPath(new URL('./test-workflows.ts', import.meta.url))),
  ]);
});

afterAll(async () => {
  await env?.teardown();
});

/** Runs `fn` with a worker of the real activities on a fresh task queue. */
async function withWorker<T>(fn: (taskQueue: string) => Promise<T>, rerouteRules?: RerouteRules): Promise<T> {
  const taskQueue = uniqueName('consent');
  const worker = await createConsentWorker({
    connection: env.nativeConnection,
    namespace: 'default',
    taskQueue,
    workflowBundle: bundle,
    dependencies: { heygen, mailer, messageIdDomain: 'test.example', rerouteRules },
  });
  // Workflows start once the worker polls: a time-skipping server left alone with a pending result()
  // skips ahead past the first workflow task's timeout, again and again.
  return worker.runUntil(() => fn(taskQueue));
}

function newGroup(patch: Parameters<FakeHeyGen['addGroup']>[1] = {}): string {
  const id = uniqueName('ag').replace(/[^A-Za-z0-9_-]/g, '_');
  heygen.addGroup(id, patch);
  return id;
}

async function executeEach(taskQueue: string, groupIds: string[]): Promise<AvatarConsentResult[]> {
  const results: AvatarConsentResult[] = [];
  for (const groupId of groupIds) {
    results.push(
      await env.client.workflow.execute(avatarConsentWorkflow, {
        taskQueue,
        workflowId: workflowIdForGroup(groupId),
        args: [inputFor(groupId)],
      }),
    );
  }
  return results;
}

function inputFor(groupId: string, extra: Partial<AvatarConsentInput> = {}): AvatarConsentInput {
  return { groupId, recipient: { email: 'person@example.com', name: 'Ada Person' }, ...extra };
}

async function waitForStatus(
  handle: { query: (q: typeof statusQuery) => Promise<ConsentStatusView> },
  predicate: (s: ConsentStatusView) => boolean,
): Promise<ConsentStatusView> {
  const until = Date.now() + 20_000;
  for (;;) {
    const status = await handle.query(statusQuery).catch(() => undefined);
    if (status && predicate(status)) return status;
    if (Date.now() > until) throw new Error(`status never matched; last: ${JSON.stringify(status)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Starts a consent whose polls are 6 h apart and waits until it is awaiting approval. */
async function startAwaitingSlowPolls(taskQueue: string, groupId: string) {
  const handle = await env.client.workflow.start(avatarConsentWorkflow, {
    taskQueue,
    workflowId: workflowIdForGroup(groupId),
    args: [inputFor(groupId, { policy: { pollInitialInterval: '6h', pollMaxInterval: '6h' } })],
  });
  await waitForStatus(handle, (s) => s.phase === 'awaiting');
  return handle;
}

describe('avatarConsentWorkflow (time-skipping server)', () => {
  it('reaches the 7-day deadline in seconds, refreshing and re-emailing the link on the default policy', async () => {
    const groupId = newGroup();
    const result = await withWorker((taskQueue) =>
      env.client.workflow.execute(avatarConsentWorkflow, {
        taskQueue,
        workflowId: workflowIdForGroup(groupId),
        args: [inputFor(groupId)],
      }),
    );
    expect(result.outcome).toBe('expired');
    // Default: links every 23 h, at most 6 refreshes, so 7 links and 7 emails in 7 days.
    expect(result.linkGeneration).toBe(7);
    expect(result.emailsSent).toBe(7);
    const keys = heygen.callsFor(groupId, 'POST').map((c) => c.idempotencyKey);
    expect(new Set(keys).size).toBe(7);
    expect(keys.every((k) => /^avatar-consent:[0-9a-f-]{36}:g[1-7]$/.test(k ?? ''))).toBe(true);
    // Infrequent polling with backoff to a 30-minute cap: far fewer than one poll a minute.
    const polls = heygen.callsFor(groupId, 'GET').length - 1;
    expect(result.polls).toBe(polls);
    expect(polls).toBeGreaterThan(7 * 24);
    expect(polls).toBeLessThan(7 * 24 * 2 + 7 * 12);
    const messageIds = mailer.sentTo(groupId).map((e) => e.messageId);
    expect(new Set(messageIds).size).toBe(7);
  });

  it('refreshes the link after linkTtl with a new key and email, then expires at the deadline', async () => {
    const groupId = newGroup();
    const result = await withWorker((taskQueue) =>
      env.client.workflow.execute(avatarConsentWorkflow, {
        taskQueue,
        workflowId: workflowIdForGroup(groupId),
        args: [inputFor(groupId, { policy: { linkTtl: '1h', maxLinkRefreshes: 2, deadline: '5h' } })],
      }),
    );
    expect(result).toMatchObject({ outcome: 'expired', linkGeneration: 3, emailsSent: 3 });
    const posts = heygen.callsFor(groupId, 'POST');
    expect(posts.map((c) => c.idempotencyKey?.split(':').at(-1))).toEqual(['g1', 'g2', 'g3']);
    // Refreshes happen one linkTtl apart in server time.
    expect(posts[1]!.at - posts[0]!.at).toBeGreaterThanOrEqual(3_600_000);
    expect(posts[2]!.at - posts[1]!.at).toBeGreaterThanOrEqual(3_600_000);
    const emails = mailer.sentTo(groupId);
    expect(emails.map((e) => e.generation)).toEqual([1, 2, 3]);
    expect(emails[1]!.consentUrl).not.toBe(emails[0]!.consentUrl);
  });

  it('after a 429 with Retry-After: 120 never polls again before 120 s have passed', async () => {
    const groupId = newGroup();
    heygen.approveOnGet.set(groupId, 6);
    const result = await withWorker((taskQueue) => {
      // The look-up GET is the first call; it is rate limited, and so is everything until 120 s later.
      heygen.failNext(groupId, 'GET', {
        kind: 'rate_limited',
        status: 429,
        code: 'rate_limit_exceeded',
        retryAfterMs: 120_000,
      });
      return env.client.workflow.execute(avatarConsentWorkflow, {
        taskQueue,
        workflowId: workflowIdForGroup(groupId),
        args: [inputFor(groupId, { policy: { pollInitialInterval: '5s' } })],
      });
    });
    expect(result.outcome).toBe('approved');
    const gets = heygen.callsFor(groupId, 'GET');
    const limited = gets.findIndex((c) => c.outcome === '429');
    expect(limited).toBeGreaterThanOrEqual(0);
    const next = gets[limited + 1]!;
    expect(next.at - gets[limited]!.at).toBeGreaterThanOrEqual(120_000);
  });

  it('ends with canceled on the cancel signal and still notifies the caller', async () => {
    const groupId = newGroup();
    const { consent, caller } = await withWorker(async (taskQueue) => {
      const callerHandle = await env.client.workflow.start(callerWorkflow, {
        taskQueue,
        workflowId: uniqueName('caller'),
      });
      const handle = await env.client.workflow.start(avatarConsentWorkflow, {
        taskQueue,
        workflowId: workflowIdForGroup(groupId),
        args: [inputFor(groupId, { notify: { workflowId: callerHandle.workflowId } })],
      });
      await waitForStatus(handle, (s) => s.phase === 'awaiting');
      await handle.signal(cancelSignal, { reason: 'customer withdrew' });
      return { consent: await handle.result(), caller: await callerHandle.result() };
    });
    expect(consent).toMatchObject({
      outcome: 'canceled',
      error: { code: 'canceled', message: 'customer withdrew' },
    });
    expect(consent.notification).toMatchObject({ delivered: true, signalName: 'avatarConsentCompleted' });
    expect(caller.outcome).toBe('canceled');
  });

  it('polls at once on checkNow instead of waiting for the next scheduled poll', async () => {
    const groupId = newGroup();
    const result = await withWorker(async (taskQueue) => {
      const handle = await startAwaitingSlowPolls(taskQueue, groupId);
      // The first poll happened; the next would be 6 h away.
      const until = Date.now() + 10_000;
      while (heygen.callsFor(groupId, 'GET').length < 2 && Date.now() < until) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      heygen.approve(groupId);
      await handle.signal(checkNowSignal);
      return handle.result();
    });
    expect(result.outcome).toBe('approved');
    const gets = heygen.callsFor(groupId, 'GET');
    // look-up, first poll, then the nudged poll: well before the 6-hour interval.
    expect(gets).toHaveLength(3);
    expect(gets[2]!.at - gets[1]!.at).toBeLessThan(60_000);
    // The interrupted window's poll counts too (from the schedule): every GET after the look-up.
    expect(result.polls).toBe(2);
  });

  it('ignores a checkNow within 10 s of the last one, and puts the nudged poll ahead of the queue', async () => {
    const groupId = newGroup();
    const events = await withWorker(async (taskQueue) => {
      const handle = await env.client.workflow.start(avatarConsentWorkflow, {
        taskQueue,
        workflowId: workflowIdForGroup(groupId),
        args: [
          inputFor(groupId, {
            policy: { pollInitialInterval: '6h', pollMaxInterval: '6h', pollWindow: '1d' },
          }),
        ],
      });
      await waitForStatus(handle, (s) => s.phase === 'awaiting');
      // Two nudges a moment apart (a double click, two gateway replicas): the second is ignored.
      await handle.signal(checkNowSignal);
      await handle.signal(checkNowSignal);
      await handle.query(statusQuery); // answered after both signals were handled
      heygen.approve(groupId);
      await handle.result(); // the next scheduled poll, 6 h later in skipped time, sees the approval
      return (await handle.fetchHistory()).events ?? [];
    });
    const polls = events
      .map((e) => e.activityTaskScheduledEventAttributes)
      .filter((a) => a?.activityType?.name === 'pollConsentStatus');
    // The first window, and one window for the nudge (not one per nudge).
    expect(polls).toHaveLength(2);
    expect(polls[0]!.priority?.priorityKey ?? 0).toBe(0);
    expect(polls[1]!.priority?.priorityKey).toBe(1);
  });

  it('the status tells the polls made and the next poll while a window is open, from its schedule', async () => {
    const groupId = newGroup();
    const { status, now } = await withWorker(async (taskQueue) => {
      const handle = await env.client.workflow.start(avatarConsentWorkflow, {
        taskQueue,
        workflowId: workflowIdForGroup(groupId),
        args: [inputFor(groupId, { policy: { pollInitialInterval: '1m', pollMaxInterval: '10m' } })],
      });
      await waitForStatus(handle, (s) => s.phase === 'awaiting' && s.pollWindow !== null);
      // The window polls at 0, 1, 3, 7, 15 and 25 min: 20 minutes in, five polls were made.
      await env.sleep('20 minutes');
      const seen = { status: await handle.query(statusQuery), now: await env.currentTimeMs() };
      // Not left running: later tests let the server skip time, and it would wake on a queue nobody polls.
      await handle.terminate('test over');
      return seen;
    });
    const made = heygen.callsFor(groupId, 'GET').length - 1; // the look-up is not a poll
    const progress = pollProgress(status, now);
    expect(made).toBe(5);
    expect(Math.abs(progress.polls - made)).toBeLessThanOrEqual(1);
    expect(status.polls).toBe(0); // as of the window's opening: the workflow has not woken since
    expect(Date.parse(progress.nextPollAt!)).toBeGreaterThan(now);
    expect(Date.parse(progress.nextPollAt!) - now).toBeLessThanOrEqual(10 * 60_000);
  });

  it("escapes HeyGen's words in the UI's current details: an odd consent_status cannot become a link", async () => {
    const groupId = newGroup({ consent_status: '[verify](https://evil.example/x)\n# Approved' });
    const details = await withWorker(async (taskQueue) => {
      const handle = await env.client.workflow.start(avatarConsentWorkflow, {
        taskQueue,
        workflowId: workflowIdForGroup(groupId),
        args: [inputFor(groupId)],
      });
      await waitForStatus(handle, (s) => s.phase === 'awaiting');
      const metadata = await handle.query<{ currentDetails?: string }>('__temporal_workflow_metadata');
      await handle.terminate('test over');
      return metadata.currentDetails ?? '';
    });
    expect(details).toContain('consent_status:** \\[verify\\]\\(https\\:');
    expect(details).not.toContain('[verify](');
    expect(details).not.toMatch(/^# Approved/m);
  });

  it('signals a caller workflow with avatarConsentCompleted and the typed result', async () => {
    const groupId = newGroup();
    heygen.approveOnGet.set(groupId, 3);
    const { consent, received } = await withWorker(async (taskQueue) => {
      const callerHandle = await env.client.workflow.start(callerWorkflow, {
        taskQueue,
        workflowId: uniqueName('caller'),
      });
      const consentResult = await env.client.workflow.execute(avatarConsentWorkflow, {
        taskQueue,
        workflowId: workflowIdForGroup(groupId),
        args: [inputFor(groupId, { notify: { workflowId: callerHandle.workflowId } })],
      });
      return { consent: consentResult, received: await callerHandle.result() };
    });
    expect(consent.outcome).toBe('approved');
    expect(consent.approvedAt).toMatch(/^\d{4}-\d\d-\d\dT/);
    const { notification, ...withoutNotification } = consent;
    expect(received).toEqual(withoutNotification);
    expect(notification).toMatchObject({ delivered: true });
  });

  it('signals its parent when started as a child without notify', async () => {
    const groupId = newGroup();
    heygen.approveOnGet.set(groupId, 2);
    const { signalled, childResult } = await withWorker((taskQueue) =>
      env.client.workflow.execute(parentWorkflow, {
        taskQueue,
        workflowId: uniqueName('parent'),
        args: [inputFor(groupId)],
      }),
    );
    expect(childResult.outcome).toBe('approved');
    expect(signalled.outcome).toBe('approved');
    expect(childResult.notification).toMatchObject({ delivered: true });
  });

  it('records an undeliverable completion signal and still finishes normally', async () => {
    const groupId = newGroup({ consent_status: 'approved', status: 'completed' });
    const result = await withWorker((taskQueue) =>
      env.client.workflow.execute(avatarConsentWorkflow, {
        taskQueue,
        workflowId: workflowIdForGroup(groupId),
        args: [inputFor(groupId, { notify: { workflowId: 'no-such-caller-workflow' } })],
      }),
    );
    expect(result.outcome).toBe('approved');
    expect(result.notification).toMatchObject({ workflowId: 'no-such-caller-workflow', delivered: false });
    expect(result.notification?.reason).toBeTruthy();
  });

  it('finishes at once with no request and no email when consent is already approved or not required', async () => {
    const approved = newGroup({ consent_status: 'approved', status: 'completed' });
    const notRequired = newGroup({ consent_status: null, status: 'completed' });
    const skipped = newGroup({ consent_status: 'skipped', status: 'completed' });
    // One at a time: concurrent result() calls confuse the time-skipping server's idle detection.
    const results = await withWorker((taskQueue) => executeEach(taskQueue, [approved, notRequired, skipped]));
    expect(results.map((r) => r.outcome)).toEqual(['approved', 'not_required', 'not_required']);
    for (const groupId of [approved, notRequired, skipped]) {
      expect(heygen.callsFor(groupId, 'GET')).toHaveLength(1);
      expect(heygen.callsFor(groupId, 'POST')).toHaveLength(0);
      expect(mailer.sentTo(groupId)).toHaveLength(0);
    }
  });

  it('ends with group_not_found on 404 and invalid_request on 400, without retrying', async () => {
    const missing = `ag_missing_${Date.now()}`;
    const invalid = newGroup();
    heygen.failNext(invalid, 'POST', {
      kind: 'invalid',
      status: 400,
      code: 'invalid_parameter',
      param: 'reroute_url',
    });
    const [notFound, badRequest] = await withWorker((taskQueue) =>
      executeEach(taskQueue, [missing, invalid]),
    );
    expect(notFound).toMatchObject({ outcome: 'group_not_found', error: { code: 'avatar_group_not_found' } });
    expect(heygen.callsFor(missing)).toHaveLength(1);
    expect(badRequest).toMatchObject({
      outcome: 'invalid_request',
      error: { code: 'invalid_parameter', param: 'reroute_url' },
    });
    expect(heygen.callsFor(invalid, 'POST')).toHaveLength(1);
    expect(mailer.sentTo(invalid)).toHaveLength(0);
  });

  it('a group deleted while the consent waits ends it as group_not_found, and that last poll is counted', async () => {
    const groupId = newGroup();
    const result = await withWorker(async (taskQueue) => {
      const handle = await startAwaitingSlowPolls(taskQueue, groupId);
      heygen.groups.delete(groupId);
      await handle.signal(checkNowSignal);
      return handle.result();
    });
    expect(result.outcome).toBe('group_not_found');
    expect(result.polls).toBe(heygen.callsFor(groupId, 'GET').length - 1); // the look-up is not a poll
    expect(result.polls).toBeGreaterThanOrEqual(2);
  });

  it('on 401 keeps retrying slowly, shows "blocked: credentials", and resumes by itself once the key works', async () => {
    const groupId = newGroup();
    heygen.approveOnGet.set(groupId, 2);
    heygen.failNext(
      groupId,
      'POST',
      { kind: 'needs_operator', status: 401, code: 'authentication_failed' },
      4,
    );
    const { result, blocked } = await withWorker(async (taskQueue) => {
      const handle = await env.client.workflow.start(avatarConsentWorkflow, {
        taskQueue,
        workflowId: workflowIdForGroup(groupId),
        args: [inputFor(groupId)],
      });
      // Drive time by hand: the first request window (10 min) closes after two 401s, 5 min apart.
      // With no result() pending, server time then stands still (at wall-clock pace) until the next
      // window at 15 min, so the blocked state cannot be skipped past while we look at it.
      await env.sleep('11 minutes');
      const blockedStatus = await waitForStatus(handle, (s) => s.blocked !== null || s.outcome !== null);
      return { result: await handle.result(), blocked: blockedStatus };
    });
    expect(blocked).toMatchObject({
      phase: 'requesting',
      blocked: 'credentials',
      lastError: { code: 'authentication_failed' },
    });
    expect(result.outcome).toBe('approved');
    const posts = heygen.callsFor(groupId, 'POST');
    expect(posts).toHaveLength(5);
    // Slow retries (5 minutes apart), all with the same idempotency key.
    expect(posts[2]!.at - posts[1]!.at).toBeGreaterThanOrEqual(5 * 60_000);
    expect(new Set(posts.map((p) => p.idempotencyKey)).size).toBe(1);
  });

  it('resendEmail returns once the email is sent, as a distinct message for the same link', async () => {
    const groupId = newGroup();
    const { update, result } = await withWorker(async (taskQueue) => {
      const handle = await env.client.workflow.start(avatarConsentWorkflow, {
        taskQueue,
        workflowId: workflowIdForGroup(groupId),
        args: [inputFor(groupId)],
      });
      await waitForStatus(handle, (s) => s.phase === 'awaiting');
      const rejected: unknown = await handle
        .executeUpdate(resendEmailUpdate, { args: [{ reason: 'x'.repeat(600) }] })
        .catch((e: unknown) => e);
      expect(((rejected as Error).cause as Error | undefined)?.message ?? '').toMatch(
        /Invalid resendEmail input: reason:/,
      );
      const updateResult = await handle.executeUpdate(resendEmailUpdate, {
        args: [{ reason: 'asked by support' }],
      });
      heygen.approve(groupId);
      await handle.signal(checkNowSignal);
      return { update: updateResult, result: await handle.result() };
    });
    expect(update).toMatchObject({ emailsSent: 2, linkGeneration: 1 });
    expect(update.messageId).toMatch(/\.g1\.r1@test\.example>$/);
    expect(result).toMatchObject({ outcome: 'approved', emailsSent: 2 });
    const emails = mailer.sentTo(groupId);
    expect(emails.map((e) => e.reminder)).toEqual([false, true]);
    expect(emails[1]!.consentUrl).toBe(emails[0]!.consentUrl);
  });

  it('ends with email_undeliverable on a permanent SMTP rejection, keeping the link in the result', async () => {
    const groupId = newGroup();
    mailer.failNext(
      groupId,
      new MailError('550 mailbox unavailable', { kind: 'permanent', reason: 'rejected', responseCode: 550 }),
    );
    const result: AvatarConsentResult = await withWorker((taskQueue) =>
      env.client.workflow.execute(avatarConsentWorkflow, {
        taskQueue,
        workflowId: workflowIdForGroup(groupId),
        args: [inputFor(groupId)],
      }),
    );
    expect(result).toMatchObject({
      outcome: 'email_undeliverable',
      emailsSent: 0,
      error: { code: 'smtp_550' },
    });
    expect(result.consentUrl).toMatch(/^https:\/\/consent\.example\//);
  });

  it("refuses to run under any ID but the group's (a tenant prefix is fine): no request, no email", async () => {
    const groupId = newGroup({ consent_status: 'approved', status: 'completed' });
    const tenant = newGroup({ consent_status: 'approved', status: 'completed' });
    const [wrong, prefixed] = await withWorker(async (taskQueue) => [
      await env.client.workflow.execute(avatarConsentWorkflow, {
        taskQueue,
        workflowId: uniqueName('my-own-id'),
        args: [inputFor(groupId)],
      }),
      await env.client.workflow.execute(avatarConsentWorkflow, {
        taskQueue,
        workflowId: `acme:${workflowIdForGroup(tenant)}`,
        args: [inputFor(tenant)],
      }),
    ]);
    expect(wrong).toMatchObject({ outcome: 'invalid_input', groupId, emailsSent: 0 });
    expect(wrong.error?.fields).toEqual([
      {
        path: '(workflowId)',
        message: expect.stringContaining(`"${workflowIdForGroup(groupId)}"`) as string,
      },
    ]);
    expect(heygen.callsFor(groupId)).toHaveLength(0);
    expect(prefixed.outcome).toBe('approved');
  });

  it('changeRecipient checks the address, emails the current link to the new person, and later links too', async () => {
    const groupId = newGroup();
    const { changed, status, result } = await withWorker(async (taskQueue) => {
      const handle = await env.client.workflow.start(avatarConsentWorkflow, {
        taskQueue,
        workflowId: workflowIdForGroup(groupId),
        args: [inputFor(groupId, { policy: { linkTtl: '1h', maxLinkRefreshes: 1, deadline: '90m' } })],
      });
      await waitForStatus(handle, (s) => s.phase === 'awaiting');
      const rejected: unknown = await handle
        .executeUpdate(changeRecipientUpdate, { args: [{ email: `${'x'.repeat(65)}@example.com` }] })
        .catch((e: unknown) => e);
      expect(((rejected as Error).cause as Error | undefined)?.message ?? '').toMatch(
        /Invalid changeRecipient input: email: must be a plain email address/,
      );
      const update = await handle.executeUpdate(changeRecipientUpdate, {
        args: [{ email: 'New.Person@example.com', name: 'New Person', reason: 'wrong address' }],
      });
      return { changed: update, status: await handle.query(statusQuery), result: await handle.result() };
    });
    expect(changed).toMatchObject({ emailsSent: 2, linkGeneration: 1 });
    expect(changed.recipientFingerprint).toBe(recipientFingerprint('new.person@example.com'));
    expect(status.recipientFingerprint).toBe(changed.recipientFingerprint);
    expect(status.recipientFingerprint).not.toBe(recipientFingerprint('person@example.com'));
    const emails = mailer.sentTo(groupId);
    expect(emails.map((e) => e.to.email)).toEqual([
      'person@example.com',
      'New.Person@example.com',
      'New.Person@example.com',
    ]);
    expect(emails[1]).toMatchObject({ generation: 1, reminder: false, consentUrl: emails[0]!.consentUrl });
    expect(new Set(emails.map((e) => e.messageId)).size).toBe(3);
    expect(emails[2]!.generation).toBe(2);
    expect(result.outcome).toBe('expired');
  });

  it("applies the deployment's rerouteUrl rules: local http only where allowed, an optional host list", async () => {
    const run = (groupId: string, rerouteUrl: string, rules: RerouteRules) =>
      withWorker(
        (taskQueue) =>
          env.client.workflow.execute(avatarConsentWorkflow, {
            taskQueue,
            workflowId: workflowIdForGroup(groupId),
            args: [inputFor(groupId, { rerouteUrl })],
          }),
        rules,
      );
    const approved = { consent_status: 'approved', status: 'completed' } as const;
    const local = await run(newGroup(approved), 'http://localhost:3000/done', {});
    expect(local).toMatchObject({ outcome: 'invalid_input', error: { fields: [{ path: 'rerouteUrl' }] } });
    expect(local.error?.message).toMatch(/only where the deployment is local/);
    expect(
      (await run(newGroup(approved), 'http://localhost:3000/done', { allowLocalHttp: true })).outcome,
    ).toBe('approved');
    const listed = { allowedHosts: ['app.example.com'] };
    expect((await run(newGroup(approved), 'https://app.example.com/done', listed)).outcome).toBe('approved');
    const elsewhere = await run(newGroup(approved), 'https://evil.example.net/done', listed);
    expect(elsewhere.error?.message).toMatch(/allowed hosts/);
  });

  it('ends bad input with invalid_input naming every field, and still tells the caller', async () => {
    const { result, received } = await withWorker(async (taskQueue) => {
      const callerHandle = await env.client.workflow.start(callerWorkflow, {
        taskQueue,
        workflowId: uniqueName('caller'),
      });
      const consent = await env.client.workflow.execute(avatarConsentWorkflow, {
        taskQueue,
        workflowId: uniqueName('bad-input'),
        args: [
          {
            groupId: 'ag/../x',
            recipient: { email: 'not-an-address' },
            notify: { workflowId: callerHandle.workflowId },
          },
        ],
      });
      return { result: consent, received: await callerHandle.result() };
    });
    expect(result).toMatchObject({ outcome: 'invalid_input', groupId: '', emailsSent: 0, polls: 0 });
    expect(result.error?.fields?.map((f) => f.path)).toEqual(['groupId', 'recipient.email']);
    expect(result.error?.message).toMatch(/groupId: must be 1-128 characters/);
    expect(result.error?.message).toMatch(/recipient\.email: must be a plain email address/);
    expect(result.notification).toMatchObject({ delivered: true });
    const { notification: _notification, ...signalled } = result;
    expect(received).toEqual(signalled);
  });

  it('fails without signalling when the notify target itself is invalid (there is nobody to tell)', async () => {
    const err: unknown = await withWorker((taskQueue) =>
      env.client.workflow
        .execute(avatarConsentWorkflow, {
          taskQueue,
          workflowId: uniqueName('bad-notify'),
          args: [{ groupId: 'ag_1', recipient: { email: 'a@example.com' }, notify: { workflowId: '' } }],
        })
        .catch((e: unknown) => e),
    );
    expect(err).toBeInstanceOf(WorkflowFailedError);
    expect((err as WorkflowFailedError).cause?.message).toMatch(/notify\.workflowId: must not be empty/);
  });
});
