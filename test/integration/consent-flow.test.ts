/**
 * Everything a user would see, over real protocols: the Temporal dev server, the HeyGen sandbox over
 * HTTP, a real SMTP server, and the real activities, clients and worker wiring.
 */
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode } from '@temporalio/worker';
import type { WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AvatarGroupIdAttribute,
  ConsentBlockedAttribute,
  ConsentOutcomeAttribute,
  ConsentPhaseAttribute,
  cancelSignal,
  checkNowSignal,
  statusQuery,
  workflowIdForGroup,
} from '../../src/contract/index.js';
import type { AvatarConsentInput, ConsentStatusView } from '../../src/contract/index.js';
import { createSmtpMailer } from '../../src/email/index.js';
import { GatewaySecrets, startGateway } from '../../src/gateway/index.js';
import { checkNowSender } from '../../src/gateway/main.js';
import { HeyGenClient, RateGate } from '../../src/heygen/index.js';
import { consentLinkIn, startSandbox } from '../../tools/heygen-sandbox/index.js';
import { startAvatarConsent } from '../../src/starter.js';
import type { AvatarConsentHandle } from '../../src/starter.js';
import { createConsentWorker } from '../../src/worker.js';
import { startSmtpCatcher } from '../../tools/kit/smtp-catcher.js';
import type { SmtpCatcher } from '../../tools/kit/smtp-catcher.js';
import { createDevServerEnv, uniqueName } from '../../tools/kit/temporal-test-env.js';
import { freePort } from '../../tools/kit/ports.js';
import { startWorkerProcess } from '../helpers/worker-process.js';
import { escapeMarkdown } from '../../src/rules/markdown.js';
import { callerWorkflow } from '../workflows/test-workflows.js';
import { eventually } from '../../tools/kit/eventually.js';

type Sandbox = Awaited<ReturnType<typeof startSandbox>>;

const API_KEY = 'integration-key';
const FROM = 'Avatar consent <consent@avatar-consent.test>';
/** Fast polling so a test waits seconds, not minutes. */
const fastPolicy = { pollInitialInterval: '1s', pollMaxInterval: '2s' } as const;

let env: TestWorkflowEnvironment;
let bundle: WorkflowBundleWithSourceMap;
let sandbox: Sandbox;
let smtp: SmtpCatcher;

beforeAll(async () => {
  [env, bundle, sandbox, smtp] = await Promise.all([
    createDevServerEnv(),
    bundleWorkflowCode({
      workflowsPath: fileURLToPath(new URL('../workflows/test-workflows.ts', import.meta.url)),
      logger: { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} },
    }),
    startSandbox({ apiKeys: [API_KEY] }),
    startSmtpCatcher(),
  ]);
});

afterAll(async () => {
  await Promise.allSettled([env?.teardown(), sandbox?.close(), smtp?.close()]);
});

function dependencies() {
  return {
    heygen: new HeyGenClient({
      baseUrl: sandbox.url,
      apiKey: API_KEY,
      timeoutMs: 2_000,
      rateGate: new RateGate(),
    }),
    mailer: createSmtpMailer({ smtpUrl: smtp.url, from: FROM, connectionTimeoutMs: 2_000 }),
    messageIdDomain: 'avatar-consent.test',
  };
}

async function withWorker<T>(fn: (taskQueue: string) => Promise<T>): Promise<T> {
  const taskQueue = uniqueName('it');
  const worker = await createConsentWorker({
    connection: env.nativeConnection,
    namespace: 'default',
    taskQueue,
    dependencies: dependencies(),
    workflowBundle: bundle,
  });
  return worker.runUntil(() => fn(taskQueue));
}

function inputFor(
  groupId: string,
  email: string,
  extra: Partial<AvatarConsentInput> = {},
): AvatarConsentInput {
  return { groupId, recipient: { email, name: 'Ada Person' }, policy: fastPolicy, ...extra };
}

async function statusOf(handle: AvatarConsentHandle): Promise<ConsentStatusView | undefined> {
  return handle.query(statusQuery).catch(() => undefined);
}

function consentPosts(groupId: string) {
  return sandbox.ledger().filter((e) => e.method === 'POST' && e.path === `/v3/avatars/${groupId}/consent`);
}

/** What a person does: open the link from the email, press "I agree". */
async function approveFromEmail(text: string): Promise<string> {
  const link = consentLinkIn(text);
  expect(link, 'the email contains the consent link').toBeTruthy();
  const page = await fetch(link!);
  expect(page.status).toBe(200);
  expect(await page.text()).toContain('I agree');
  const agreed = await fetch(`${link!}/agree`, { method: 'POST', redirect: 'manual' });
  expect([200, 303]).toContain(agreed.status);
  return link!;
}

describe('consent flow on the dev server with the sandbox and real SMTP', () => {
  it('happy path: the email arrives, the person approves on the consent page, the caller is signalled', async () => {
    const group = sandbox.createGroup({ name: 'Ada <Twin>' });
    const email = `${uniqueName('ada')}@example.com`;
    const { caller, result } = await withWorker(async (taskQueue) => {
      const callerHandle = await env.client.workflow.start(callerWorkflow, {
        taskQueue,
        workflowId: uniqueName('caller'),
      });
      const handle = await startAvatarConsent(
        env.client,
        inputFor(group.id, email, { notify: { workflowId: callerHandle.workflowId } }),
        { taskQueue },
      );
      const [mail] = await smtp.waitForMessages(1, { to: email, timeoutMs: 30_000 });
      expect(mail!.subject).toContain('Ada <Twin>');
      expect(mail!.html).not.toContain('<Twin>');
      expect(mail!.messageId).toMatch(/^<avatar-consent\.[0-9a-f-]{36}\.g1@avatar-consent\.test>$/);
      await approveFromEmail(mail!.text);
      return { caller: await callerHandle.result(), result: await handle.result() };
    });
    expect(result).toMatchObject({
      outcome: 'approved',
      groupId: group.id,
      consentStatus: 'approved',
      emailsSent: 1,
      linkGeneration: 1,
    });
    expect(result.notification).toMatchObject({ delivered: true });
    expect(caller.outcome).toBe('approved');
    expect(consentPosts(group.id)).toHaveLength(1);

    // Operators find it in the Temporal UI by search attributes, and read its details without JSON.
    const description = await env.client.workflow.getHandle(workflowIdForGroup(group.id)).describe();
    expect(description.typedSearchAttributes.get(AvatarGroupIdAttribute)).toBe(group.id);
    expect(description.typedSearchAttributes.get(ConsentPhaseAttribute)).toBe('done');
    expect(description.typedSearchAttributes.get(ConsentOutcomeAttribute)).toBe('approved');
    expect(description.typedSearchAttributes.get(ConsentBlockedAttribute)).toBe('none');
    expect(await description.staticSummary()).toContain(escapeMarkdown(group.id));
    const details = await description.staticDetails();
    expect(details).toContain(escapeMarkdown(group.id));
    expect(details).not.toContain(email);
    const listed = await eventually('visibility', async () => {
      const found = [];
      for await (const wf of env.client.workflow.list({
        query: `AvatarGroupId = "${group.id}" AND ConsentOutcome = "approved"`,
      })) {
        found.push(wf.workflowId);
      }
      return found.length > 0 ? found : undefined;
    });
    expect(listed).toEqual([workflowIdForGroup(group.id)]);

    // Upserted only what operators filter on: waiting, then done (each upsert is a billable action).
    const history = await env.client.workflow.getHandle(workflowIdForGroup(group.id)).fetchHistory();
    const upsertedPhases = (history.events ?? [])
      .map(
        (e) => e.upsertWorkflowSearchAttributesEventAttributes?.searchAttributes?.indexedFields?.ConsentPhase,
      )
      .filter((payload) => payload?.data)
      .map((payload) => JSON.parse(new TextDecoder().decode(payload!.data)) as string);
    expect(upsertedPhases).toEqual(['awaiting', 'done']);
  });

  it('a duplicate trigger attaches to the running workflow: one consent request, one email', async () => {
    const group = sandbox.createGroup({ name: 'Twice' });
    const email = `${uniqueName('twice')}@example.com`;
    const result = await withWorker(async (taskQueue) => {
      const [first, second] = await Promise.all([
        startAvatarConsent(env.client, inputFor(group.id, email), { taskQueue }),
        startAvatarConsent(env.client, inputFor(group.id, email), { taskQueue }),
      ]);
      const third = await startAvatarConsent(env.client, inputFor(group.id, email), { taskQueue });
      const runIds = await Promise.all([first, second, third].map(async (h) => (await h.describe()).runId));
      expect(new Set(runIds).size).toBe(1);
      const [mail] = await smtp.waitForMessages(1, { to: email });
      await approveFromEmail(mail!.text);
      return first.result();
    });
    expect(result.outcome).toBe('approved');
    const posts = consentPosts(group.id);
    expect(posts.filter((p) => !p.replayed)).toHaveLength(1);
    expect(smtp.messages.filter((m) => m.to.includes(email))).toHaveLength(1);
  });

  it('ends at once on 404 (unknown group) and 400 (HeyGen rejects the request), without retries', async () => {
    const missing = `ag_missing_${Date.now()}`;
    const group = sandbox.createGroup({ name: 'Rejected' });
    sandbox.injectFault({
      kind: 'body',
      count: 1,
      status: 400,
      contentType: 'application/json',
      body: JSON.stringify({
        error: {
          code: 'invalid_parameter',
          message: 'reroute_url is not allowed',
          param: 'reroute_url',
          doc_url: null,
        },
      }),
      pathPrefix: `/v3/avatars/${group.id}/consent`,
    });
    const [notFound, invalid] = await withWorker((taskQueue) =>
      Promise.all([
        startAvatarConsent(env.client, inputFor(missing, 'x@example.com'), { taskQueue }).then((h) =>
          h.result(),
        ),
        startAvatarConsent(env.client, inputFor(group.id, 'y@example.com'), { taskQueue }).then((h) =>
          h.result(),
        ),
      ]),
    );
    expect(notFound).toMatchObject({ outcome: 'group_not_found', error: { code: 'avatar_group_not_found' } });
    expect(sandbox.ledger().filter((e) => e.path.startsWith(`/v3/avatars/${missing}`))).toHaveLength(1);
    expect(invalid).toMatchObject({
      outcome: 'invalid_request',
      error: { code: 'invalid_parameter', param: 'reroute_url' },
    });
    expect(consentPosts(group.id)).toHaveLength(1);
    expect(invalid.emailsSent).toBe(0);
  });

  it('an SMTP server that is down for a while, then up: exactly one email arrives', async () => {
    const group = sandbox.createGroup({ name: 'Mail outage' });
    const email = `${uniqueName('outage')}@example.com`;
    await smtp.stop();
    const result = await withWorker(async (taskQueue) => {
      const handle = await startAvatarConsent(env.client, inputFor(group.id, email), { taskQueue });
      // Wait until the send has failed at least twice against the dead server.
      await eventually('two failed email attempts', async () => {
        const description = await handle.describe();
        const pending = description.raw.pendingActivities?.find(
          (a) => a.activityType?.name === 'sendConsentEmail',
        );
        return (pending?.attempt ?? 0) >= 2 ? true : undefined;
      });
      await smtp.start();
      const [mail] = await smtp.waitForMessages(1, { to: email, timeoutMs: 30_000 });
      await approveFromEmail(mail!.text);
      return handle.result();
    });
    expect(result).toMatchObject({ outcome: 'approved', emailsSent: 1 });
    expect(smtp.messages.filter((m) => m.to.includes(email))).toHaveLength(1);
  });
});

describe('one rate budget for all workflows', () => {
  it('after a 429, no HeyGen request from the worker goes out until its Retry-After has passed', async () => {
    const groups = [0, 1, 2].map((i) => sandbox.createGroup({ name: `Budget ${i}` }));
    const paths = new Set(groups.map((g) => `/v3/avatars/${g.id}`));
    await withWorker(async (taskQueue) => {
      const handles = await Promise.all(
        groups.map((g) =>
          startAvatarConsent(
            env.client,
            inputFor(g.id, `${uniqueName('budget')}@example.com`, {
              policy: { pollInitialInterval: '200ms', pollMaxInterval: '200ms' },
            }),
            { taskQueue },
          ),
        ),
      );
      await eventually('all polling', async () => {
        const statuses = await Promise.all(handles.map(statusOf));
        return statuses.every((s) => s?.phase === 'awaiting') ? true : undefined;
      });
      sandbox.injectFault({ kind: 'rate_limit', count: 1, retryAfter: '3', method: 'GET' });
      // Wait for the 429, then for traffic to resume.
      const limited = await eventually('the 429', () =>
        sandbox.ledger().find((e) => e.fault === 'rate_limit'),
      );
      await eventually('requests after the window', () =>
        sandbox.ledger().some((e) => e.seq > limited.seq && paths.has(e.path) && e.at >= limited.at + 3_000)
          ? true
          : undefined,
      );
      for (const g of groups) sandbox.approve(g.id);
      await Promise.all(handles.map((h) => h.signal(checkNowSignal)));
      for (const h of handles) expect((await h.result()).outcome).toBe('approved');
      // Requests already on the wire when the 429 was answered cannot be held back (the gate closes
      // when the worker reads the answer): allow those first 100 ms, as the chaos run counts them "raced".
      const RACE_MS = 100;
      const inWindow = sandbox
        .ledger()
        .filter(
          (e) =>
            e.seq > limited.seq &&
            e.path.startsWith('/v3/') &&
            e.at > limited.at + RACE_MS &&
            e.at < limited.at + 3_000,
        );
      expect(inWindow).toEqual([]);
    });
  });

  it('HEYGEN_MAX_RPS caps HeyGen requests per second across workflows (the HeyGen task queue limit)', async () => {
    const groups = Array.from({ length: 6 }, (_, i) => sandbox.createGroup({ name: `Capped ${i}` }));
    const paths = new Set(groups.map((g) => `/v3/avatars/${g.id}`));
    const taskQueue = uniqueName('capped');
    const worker = await createConsentWorker({
      connection: env.nativeConnection,
      namespace: 'default',
      taskQueue,
      dependencies: dependencies(),
      workflowBundle: bundle,
      heygenMaxRps: 4,
    });
    await worker.runUntil(async () => {
      const handles = await Promise.all(
        groups.map((g) =>
          startAvatarConsent(
            env.client,
            inputFor(g.id, `${uniqueName('cap')}@example.com`, {
              policy: { pollInitialInterval: '50ms', pollMaxInterval: '50ms' },
            }),
            { taskQueue },
          ),
        ),
      );
      // Uncapped, six workflows polling every 50 ms would make ~120 GETs a second.
      const since = sandbox.now();
      await eventually('five seconds of polling', () => (sandbox.now() - since >= 5_000 ? true : undefined), {
        timeoutMs: 20_000,
      });
      const gets = sandbox
        .ledger()
        .filter((e) => e.method === 'GET' && paths.has(e.path) && e.at >= since && e.at < since + 5_000);
      expect(gets.length).toBeGreaterThan(5);
      expect(gets.length).toBeLessThanOrEqual(4 * 5 + 4);
      await Promise.all(handles.map((h) => h.signal(cancelSignal)));
      for (const h of handles) expect((await h.result()).outcome).toBe('canceled');
    });
  });
});

describe('consent-return gateway', () => {
  it("the consent page's redirect nudges the workflow: approval is seen at once, not at the next poll", async () => {
    const secrets = GatewaySecrets.fromTexts(['gateway-test-secret-0123456789abcdef']);
    const gateway = await startGateway({
      host: '127.0.0.1',
      port: 0,
      secrets,
      signal: checkNowSender(env.client),
      logger: { info() {}, warn() {}, error() {} },
    });
    try {
      const group = sandbox.createGroup({ name: 'Fast path' });
      const email = `${uniqueName('fast')}@example.com`;
      const taskQueue = uniqueName('gateway');
      const worker = await createConsentWorker({
        connection: env.nativeConnection,
        namespace: 'default',
        taskQueue,
        dependencies: {
          ...dependencies(),
          returnLinks: { publicBaseUrl: gateway.url, secrets, ttlMs: 86_400_000 },
        },
        workflowBundle: bundle,
      });
      const result = await worker.runUntil(async () => {
        // Polls an hour apart: only the redirect can make the workflow notice the approval quickly.
        const handle = await startAvatarConsent(
          env.client,
          inputFor(group.id, email, {
            rerouteUrl: 'https://app.example.com/consent-done',
            policy: { pollInitialInterval: '1h', pollMaxInterval: '1h' },
          }),
          { taskQueue },
        );
        const [mail] = await smtp.waitForMessages(1, { to: email });
        const link = consentLinkIn(mail!.text)!;
        const agreed = await fetch(`${link}/agree`, { method: 'POST', redirect: 'manual' });
        expect(agreed.status).toBe(303);
        const returnUrl = agreed.headers.get('location')!;
        expect(returnUrl.startsWith(`${gateway.url}/consent-return?t=`)).toBe(true);
        const returned = await fetch(returnUrl, { redirect: 'manual' });
        expect(returned.status).toBe(303);
        expect(returned.headers.get('location')).toBe('https://app.example.com/consent-done');
        return handle.result();
      });
      expect(result.outcome).toBe('approved');
      // The look-up, the first poll, and the nudged poll: nothing waited for the hourly schedule.
      const gets = sandbox.ledger().filter((e) => e.method === 'GET' && e.path === `/v3/avatars/${group.id}`);
      expect(gets.length).toBeLessThanOrEqual(4);
      const sent = sandbox.consents(group.id);
      expect(sent[0]!.rerouteUrl?.startsWith(gateway.url)).toBe(true);
    } finally {
      await gateway.close();
    }
  });
});

describe('worker process', () => {
  let child: ChildProcess | undefined;
  afterAll(() => {
    child?.kill('SIGKILL');
  });

  function startWorker(taskQueue: string, extraEnv: Record<string, string> = {}) {
    return startWorkerProcess({
      TEMPORAL_ADDRESS: env.address,
      TEMPORAL_NAMESPACE: 'default',
      TEMPORAL_TASK_QUEUE: taskQueue,
      HEYGEN_API_KEY: API_KEY,
      HEYGEN_BASE_URL: sandbox.url,
      SMTP_URL: smtp.url,
      EMAIL_FROM: FROM,
      ...extraEnv,
    });
  }

  it('a worker killed with SIGKILL mid-poll and started again still finishes, without a second consent or email', async () => {
    const group = sandbox.createGroup({ name: 'Crash' });
    const email = `${uniqueName('crash')}@example.com`;
    const taskQueue = uniqueName('crash');
    child = startWorker(taskQueue).proc;
    const handle = await startAvatarConsent(env.client, inputFor(group.id, email), { taskQueue });
    const [mail] = await smtp.waitForMessages(1, { to: email, timeoutMs: 60_000 });
    await eventually('polling', async () => {
      const status = await statusOf(handle);
      const polls = sandbox
        .ledger()
        .filter((e) => e.method === 'GET' && e.path === `/v3/avatars/${group.id}`).length;
      return status?.phase === 'awaiting' && polls >= 3 ? true : undefined;
    });
    const killed = new Promise((resolve) => child!.once('exit', resolve));
    child.kill('SIGKILL');
    await killed;
    await approveFromEmail(mail!.text);

    const metricsPort = await freePort();
    const restarted = startWorker(taskQueue, {
      METRICS_PORT: String(metricsPort),
      METRICS_HOST: '127.0.0.1',
    });
    child = restarted.proc;
    const result = await handle.result();
    expect(result.outcome).toBe('approved');
    expect(consentPosts(group.id)).toHaveLength(1);
    expect(smtp.messages.filter((m) => m.to.includes(email))).toHaveLength(1);

    // Prometheus metrics: the SDK's own and the consent counters.
    const metrics = await eventually('metrics', async () => {
      const text = await fetch(`http://127.0.0.1:${metricsPort}/metrics`).then(
        (r) => r.text(),
        () => '',
      );
      return text.includes('avatar_consent_outcomes') ? text : undefined;
    });
    expect(metrics).toMatch(/avatar_consent_heygen_requests\{[^}]*status="2xx"/);
    expect(metrics).toMatch(/avatar_consent_outcomes\{[^}]*outcome="approved"/);

    // SIGTERM: graceful shutdown, exit code 0.
    const exited = new Promise<number | null>((resolve) => child!.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);

    // Structured logs: one JSON object per line, and never the API key.
    const lines = restarted.logs.filter((line) => line.startsWith('{'));
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) expect(() => JSON.parse(line) as unknown).not.toThrow();
    expect(
      lines.some((line) => (JSON.parse(line) as { msg?: string }).msg === 'avatar-consent worker configured'),
    ).toBe(true);
    expect(restarted.logs.join('\n')).not.toContain(API_KEY);
  });
});
