/**
 * The chaos run: N consent workflows at once against a real Temporal dev server (SIGKILLed and
 * politely restarted on its database file), the HeyGen sandbox behind a recording proxy (5xx bursts,
 * hangs, slow consents, 429 storms, a full outage), a real SMTP server (down for a while, refusing
 * with 421/451/550/552, dropping replies after DATA), and several worker processes with the
 * production settings on (payload encryption, the consent-return gateway, HEYGEN_MAX_RPS, one shared
 * rate gate file), SIGKILLed one at a time. Then every invariant is checked and the figures returned.
 *
 * runChaos() reads as the run's story; each phase is a function below it, in the same order. What
 * the chaos phase does to the stack is in actions.ts, the verdict (invariants, figures) in
 * figures.ts, the shapes they share in model.ts.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

import { Client, Connection, WorkflowNotFoundError } from '@temporalio/client';

import { workflowIdForGroup } from '../../src/contract/index.js';
import type { AvatarConsentInput, AvatarConsentResult } from '../../src/contract/index.js';
import { startAvatarConsent } from '../../src/starter.js';
import type { avatarConsentWorkflow } from '../../src/workflows/avatar-consent.js';
import { startSandbox } from '../heygen-sandbox/index.js';
import { isRunning, within } from '../kit/child-process.js';
import { eventually, unlessTimeout } from '../kit/eventually.js';
import { startSmtpCatcher } from '../kit/smtp-catcher.js';
import { DEV_SERVER_NAMESPACE, temporalServer } from '../kit/temporal-server.js';
import { actOnGroup, FaultBursts, runAction } from './actions.js';
import type { ActionContext } from './actions.js';
import { sum } from './checks.js';
import type { GroupFinal } from './checks.js';
import { checkInvariants, compactHistory, tallyFigures } from './figures.js';
import { startRecordingProxy } from './heygen-proxy.js';
import { failureTexts } from './history.js';
import type { HistoryEvent } from './history.js';
import type {
  ChaosOptions,
  ChaosReport,
  ChaosRun,
  Collected,
  Recorded,
  Stack,
  StuckWorkflow,
} from './model.js';
import { WORKER_ENTRY } from './model.js';
import { EXPECTED_OUTCOME, makePlan, PERMANENT_REFUSAL } from './plan.js';
import type { ChaosPlan, PlannedGroup } from './plan.js';
import { startProductionSettings } from './production.js';
import type { ProductionSettings } from './production.js';
import { seededRandom } from './random.js';
import { workerPool } from './worker-control.js';

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const API_KEY = 'chaos-key';
const EMAIL_FROM = 'Avatar consent <consent@chaos.example.com>';
/** Every recipient's address is on this domain, so the personal-data scan can look for any of them. */
const RECIPIENT_DOMAIN = 'people.chaos.example';
const HEYGEN_TIMEOUT_MS = 1_000;

export type { ChaosOptions, ChaosReport, ChaosStats, FigureRow, StuckWorkflow } from './model.js';

export async function runChaos(options: ChaosOptions): Promise<ChaosReport> {
  const run = prepareRun(options);
  const started: Partial<Stack> & { production?: ProductionSettings } = {};
  let collected: Collected = {
    finals: [],
    histories: new Map(),
    failureTexts: new Map(),
    stuck: [],
    openAtEnd: 'n/a',
    executionsOnQueue: 'n/a',
  };
  try {
    const stack = await startStack(run, started);
    await startWorkflows(run, stack);
    await waitForFirstHeyGenRequest(run, stack);
    await runChaosPhase(run, stack);
    await waitForWorkflowsToSettle(run, stack);
    collected = await collectResults(run, stack);
  } catch (err) {
    run.harnessError(null, err);
  }
  const recorded = await tearDown(run, started);
  return report(run, started, collected, recorded);
}

// ---------------------------------------------------------------------------------------------
// Phases, in the order they run

function prepareRun(options: ChaosOptions): ChaosRun {
  const log = options.log ?? ((line: string) => console.error(line));
  const runTag = `${options.seed.toString(36)}${Date.now().toString(36).slice(-4)}`;
  const plan = makePlan({
    workflows: options.workflows,
    durationMs: options.durationMs,
    profile: options.profile,
    serverKills: options.serverKills,
    maxRps: options.maxRps,
    heygenTimeoutMs: HEYGEN_TIMEOUT_MS,
    runTag,
    random: seededRandom(options.seed),
  });
  const run: ChaosRun = {
    options,
    plan,
    taskQueue: `avatar-consent-chaos-${runTag}`,
    dir: mkdtempSync(join(tmpdir(), 'avatar-consent-chaos-')),
    startedAt: Date.now(),
    loadAtStart: loadavg()
      .map((l) => l.toFixed(2))
      .join(' '),
    t0: 0,
    timeline: [],
    harnessErrors: [],
    stats: {
      workerKills: 0,
      workerKillsSkipped: 0,
      workerKillTimes: [],
      temporalRestarts: 0,
      temporalKills: 0,
      temporalDowntimeMs: 0,
      temporalStopsGraceful: 0,
      temporalDownFrom: [],
      temporalDownUntil: [],
      heygenOutageMs: 0,
      smtpDowntimeMs: 0,
      smtpDownSpans: [],
      faultsInjected: { status: 0, hang: 0, latency: 0, rate_limit: 0 },
      faultsUnused: 0,
      smtpFaults: { '421_rcpt': 0, '451_rcpt': 0, '421_data': 0, '451_data': 0, drop_after_data: 0 },
      pageApprovals: 0,
      pageApprovalFallbacks: 0,
      targeted429: 'not run',
      workerDrained: 'n/a',
    },
    states: new Map(
      plan.groups.map((group) => [
        group.groupId,
        {
          plan: group,
          firstExecutionRunId: null,
          approvedAt: null,
          decidedAt: null,
          approvedViaPage: false,
          redirect: null,
          retriggerSameRun: null,
        },
      ]),
    ),
    note: (event) => {
      // Before the chaos clock starts, times count back from the run's start.
      const atMs = run.t0 === 0 ? -(Date.now() - run.startedAt) : Date.now() - run.t0;
      run.timeline.push({ atMs, event });
      log(`[chaos ${run.t0 === 0 ? 'setup' : `+${(atMs / 1000).toFixed(1)}s`}] ${event}`);
    },
    harnessError: (what, err) => {
      const text = what === null ? errorText(err) : `${what}: ${errorText(err)}`;
      run.harnessErrors.push(text);
      run.note(`HARNESS ERROR${what === null ? '' : ` in ${what}`}: ${errorText(err)}`);
    },
  };
  run.note(
    `seed ${options.seed}, ${options.workflows} workflows, chaos phase ${Math.round(options.durationMs / 1000)} s, ` +
      `${options.workers} × ${WORKER_ENTRY}, HEYGEN_MAX_RPS=${options.maxRps}; load ${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}`,
  );
  return run;
}

/**
 * The sandbox behind its proxy, the SMTP catcher (with the permanent refusals some groups meet), the
 * Temporal dev server, the gateway and the workers; kept in `started` as they come up.
 */
async function startStack(
  run: ChaosRun,
  started: Partial<Stack> & { production?: ProductionSettings },
): Promise<Stack> {
  const { options, note, plan } = run;
  // Above the cap: the sandbox answers 429 only to the cap's bursts and to the injected storms.
  const rateLimitPerSecond = options.rateLimitPerSecond ?? Math.max(10, 3 * options.maxRps);
  const sandbox = (started.sandbox = await startSandbox({
    apiKeys: [API_KEY],
    rateLimit: { limit: rateLimitPerSecond, windowMs: 1_000 },
  }));
  const proxy = (started.proxy = await startRecordingProxy({ target: sandbox.url }));
  const smtp = (started.smtp = await startSmtpCatcher());
  for (const group of plan.groups) {
    const refusal = PERMANENT_REFUSAL[group.fate];
    if (refusal)
      smtp.rejectNext({
        ...refusal,
        to: group.email,
        message: refusal.code === 550 ? 'No such user here' : 'Message refused: mailbox policy',
      });
  }
  const temporal = (started.temporal = temporalServer({
    dbFile: join(run.dir, 'chaos.db'),
    // One partition per task queue, as a rate-capped HeyGen queue should run: with the default
    // four, HEYGEN_MAX_RPS=50 let through about 7 requests a second here (README, chaos).
    dynamicConfig: ['matching.numTaskqueueReadPartitions=1', 'matching.numTaskqueueWritePartitions=1'],
  }));
  await temporal.start();
  note(
    `temporal dev server on ${temporal.address} (db ${temporal.dbFile}); sandbox ${sandbox.url} via proxy ${proxy.url}`,
  );
  const production = (started.production = await startProductionSettings({
    cwd: REPO_ROOT,
    temporalAddress: temporal.address,
    namespace: DEV_SERVER_NAMESPACE,
    keyFile: join(run.dir, 'codec-key.txt'),
  }));
  started.gatewayUrl = production.gatewayUrl;
  started.gatewayLog = production.gatewayLog;
  started.payloadCodecs = production.payloadCodecs;
  note(
    `payload encryption on; consent-return gateway on ${production.gatewayUrl} (pid ${production.gatewayProcess.pid})`,
  );
  const connection = (started.connection = await Connection.connect({ address: temporal.address }));
  const client = (started.client = new Client({ connection, dataConverter: production.dataConverter }));

  const workers = (started.workers = workerPool({
    size: options.workers,
    cwd: REPO_ROOT,
    entry: WORKER_ENTRY,
    probedEntry: 'tools/chaos/probed-worker.ts',
    env: {
      ...workerEnv({
        temporalAddress: temporal.address,
        taskQueue: run.taskQueue,
        heygenUrl: proxy.url,
        smtpUrl: smtp.url,
        gateFile: join(run.dir, 'heygen-rate-gate.json'),
        maxRps: options.maxRps,
      }),
      ...production.workerEnv,
    },
    restartOnUnexpectedExit: true,
    onEvent: note,
  }));
  note(
    `workers started: pids ${workers
      .start()
      .map((p) => p.pid)
      .join(', ')}`,
  );
  return {
    sandbox,
    proxy,
    smtp,
    temporal,
    workers,
    gatewayUrl: production.gatewayUrl,
    gatewayLog: production.gatewayLog,
    payloadCodecs: production.payloadCodecs,
    connection,
    client,
  };
}

/** Every planned group in the sandbox (some deleted at once), and one consent workflow each. */
async function startWorkflows(run: ChaosRun, { sandbox, client }: Stack): Promise<void> {
  const { plan } = run;
  for (const group of plan.groups) {
    sandbox.createGroup({
      id: group.groupId,
      name: group.name,
      ...(group.fate === 'not_required' ? { consentRequired: false } : {}),
    });
    if (group.fate === 'deleted_before_start') sandbox.deleteGroup(group.groupId);
  }
  await eachLimited(plan.groups, 16, async (group) => {
    const handle = await persist(`start ${group.groupId}`, () =>
      startAvatarConsent(client, inputFor(group, plan), { taskQueue: run.taskQueue }),
    );
    run.states.get(group.groupId)!.firstExecutionRunId = firstRunIdOf(handle);
  });
  run.note(`${plan.groups.length} workflows started`);
}

/**
 * The chaos clock starts once every workflow is started and HeyGen has had a request: the workers are
 * up and working. (With many workflows, requests began while the others were being started.)
 */
async function waitForFirstHeyGenRequest(run: ChaosRun, { proxy }: Stack): Promise<void> {
  await eventually('the first HeyGen request after starting the workflows', () => proxy.records.length > 0, {
    timeoutMs: 180_000,
  });
  run.t0 = Date.now();
  run.note(`workers answering (${proxy.records.length} HeyGen requests so far): chaos clock starts`);
}

/** The planned faults and each group's fate (approval, failure, deletion, a second trigger), each at its time. */
async function runChaosPhase(run: ChaosRun, stack: Stack): Promise<void> {
  const { plan, options, note, stats } = run;
  const context: ActionContext = {
    ...stack,
    heygenBursts: new FaultBursts(note),
    smtpBursts: new FaultBursts(note),
    note,
    stats,
    random: seededRandom(options.seed ^ 0x5eed),
  };
  const tasks: Array<Promise<void>> = [];
  const at = (ms: number, what: string, fn: () => Promise<void>): void => {
    tasks.push(
      (async () => {
        // Planned times on the chaos clock: a wait for a moment, not for a condition.
        await delay(Math.max(0, run.t0 + ms - Date.now()));
        try {
          await fn();
        } catch (err) {
          run.harnessError(what, err);
        }
      })(),
    );
  };
  for (const { atMs, action } of plan.actions) at(atMs, action.kind, () => runAction(action, context));
  for (const group of plan.groups) {
    const state = run.states.get(group.groupId)!;
    if (group.actAtMs !== null) {
      at(group.actAtMs, `${group.fate} ${group.groupId}`, () =>
        actOnGroup(state, context, run.t0 + options.durationMs * 0.85),
      );
    }
    if (group.retriggerAtMs !== null) {
      at(group.retriggerAtMs, `retrigger ${group.groupId}`, async () => {
        const handle = await persist(`retrigger ${group.groupId}`, () =>
          startAvatarConsent(stack.client, inputFor(group, plan), { taskQueue: run.taskQueue }),
        );
        state.retriggerSameRun =
          firstRunIdOf(handle) !== null && firstRunIdOf(handle) === state.firstExecutionRunId;
      });
    }
  }
  const progress = setInterval(() => {
    void openWorkflows(run, stack.client)
      .then(
        (count) => String(count),
        () => 'n/a (server down)',
      )
      .then((open) =>
        note(
          `progress: open workflows ${open}, HeyGen requests ${stack.proxy.records.length}, emails ${stack.smtp.messages.length}, ` +
            `workers ${stack.workers.current.map((p) => p?.pid ?? 'down').join('/')}, load ${loadavg()[0]!.toFixed(2)}`,
        ),
      );
  }, 15_000);
  try {
    await Promise.all(tasks);
  } finally {
    clearInterval(progress);
  }
}

/** Until no workflow is open on the task queue, or the settle time is up (then they are reported as stuck). */
async function waitForWorkflowsToSettle(run: ChaosRun, { client }: Stack): Promise<void> {
  run.note('chaos phase over: waiting for every workflow to finish');
  let open: number | string = 'n/a';
  const settled = await eventually(
    'every workflow to finish',
    async () => {
      open = await openWorkflows(run, client);
      return open === 0;
    },
    { timeoutMs: run.options.settleTimeoutMs, intervalMs: 1_000 },
  ).catch(unlessTimeout);
  run.note(
    settled
      ? 'all workflows closed: collecting'
      : `gave up waiting: ${open} workflow(s) still open; collecting`,
  );
}

/** Each workflow's status, result and history, and the task queue's counts. */
async function collectResults(run: ChaosRun, { client, payloadCodecs }: Stack): Promise<Collected> {
  const finals: GroupFinal[] = [];
  const histories = new Map<string, HistoryEvent[]>();
  const failureTextsById = new Map<string, Map<string, string>>();
  const stuck: StuckWorkflow[] = [];
  await eachLimited(run.plan.groups, 12, async (group) => {
    const state = run.states.get(group.groupId)!;
    const handle = client.workflow.getHandle<typeof avatarConsentWorkflow>(workflowIdForGroup(group.groupId));
    const description = await persist(
      `describe ${group.groupId}`,
      () =>
        handle.describe().catch((err: unknown) => {
          // A workflow the server no longer knows is lost: reported, not retried.
          if (err instanceof WorkflowNotFoundError) return null;
          throw err;
        }),
      30_000,
    ).catch(() => null);
    if (description === null) {
      finals.push({
        groupId: group.groupId,
        email: group.email,
        fate: group.fate,
        expectedOutcome: EXPECTED_OUTCOME[group.fate],
        status: 'NOT_FOUND',
        result: null,
        approvedAt: state.approvedAt,
        decidedAt: state.decidedAt,
        closedAt: null,
        deadlineAt: null,
      });
      return;
    }
    let result: AvatarConsentResult | null = null;
    if (description.status.name === 'COMPLETED') {
      result = await persist(`result ${group.groupId}`, () => handle.result(), 30_000);
    }
    if (description.status.name === 'RUNNING') stuck.push(await describeStuck(group.groupId, handle));
    const history = await persist(`history ${group.groupId}`, () => handle.fetchHistory(), 30_000);
    histories.set(workflowIdForGroup(group.groupId), history.events ?? []);
    failureTextsById.set(
      workflowIdForGroup(group.groupId),
      await failureTexts(history.events ?? [], payloadCodecs),
    );
    finals.push({
      groupId: group.groupId,
      email: group.email,
      fate: group.fate,
      expectedOutcome: EXPECTED_OUTCOME[group.fate],
      status: description.status.name,
      result,
      approvedAt: state.approvedAt,
      decidedAt: state.decidedAt,
      closedAt: description.closeTime?.getTime() ?? null,
      deadlineAt: description.startTime.getTime() + deadlineMsOf(group, run.plan),
    });
  });
  finals.sort((a, b) => a.groupId.localeCompare(b.groupId));
  const openAtEnd = await persist('count open', () => openWorkflows(run, client));
  const executionsOnQueue = (
    await persist('count all', () => client.workflow.count(`TaskQueue = "${run.taskQueue}"`))
  ).count;
  return { finals, histories, failureTexts: failureTextsById, stuck, openAtEnd, executionsOnQueue };
}

/** Always: the worker drains (SIGTERM), the server stops, the rest closes; what they recorded is kept. */
async function tearDown(
  run: ChaosRun,
  {
    workers,
    connection,
    temporal,
    sandbox,
    proxy,
    smtp,
    production,
  }: Partial<Stack> & {
    production?: ProductionSettings;
  },
): Promise<Recorded> {
  const children: ChildProcess[] = [];
  try {
    if (workers) {
      const before = Date.now();
      const alive = workers.liveSlots().length;
      await workers.stop(30_000);
      run.stats.workerDrained =
        alive > 0 ? `${alive} SIGTERMed → all exited in ${Date.now() - before} ms` : 'no worker was running';
      children.push(...workers.processes);
    }
    if (production) {
      await production.close();
      children.push(production.gatewayProcess);
    }
    await connection?.close().catch(() => undefined);
    if (temporal) {
      await temporal.stop(30_000);
      children.push(...temporal.processes);
    }
  } catch (err) {
    run.harnessError('teardown', err);
  }
  const recorded: Recorded = {
    ledger: sandbox?.ledger() ?? [],
    consents: sandbox?.consents() ?? [],
    messages: [...(smtp?.messages ?? [])],
    smtpEvents: [...(smtp?.events ?? [])],
    records: [...(proxy?.records ?? [])],
    faultsLeft: sandbox?.faults() ?? [],
    children,
    stillRunning: [],
  };
  await Promise.allSettled([proxy?.close(), sandbox?.close(), smtp?.close()]);
  recorded.stillRunning = children.filter(isRunning);
  if (run.options.keepScratch)
    run.note(`scratch folder kept: ${run.dir} (chaos.db, codec-key.txt for AVATAR_CONSENT_CODEC_KEYS)`);
  else rmSync(run.dir, { recursive: true, force: true });
  return recorded;
}

/** The invariants, the figures and what went wrong, as one report. */
function report(
  run: ChaosRun,
  { workers, temporal, gatewayLog }: Partial<Stack>,
  collected: Collected,
  recorded: Recorded,
): ChaosReport {
  const invariants = checkInvariants(
    run,
    { workers, gatewayLog: gatewayLog ?? [], recipientDomain: RECIPIENT_DOMAIN },
    collected,
    recorded,
  );
  const finishedAt = Date.now();
  const { headline, figures } = tallyFigures(run, workers, collected, recorded, invariants, finishedAt);
  const { finals, histories, stuck, failureTexts: texts } = collected;
  const { checks, retryAfter, rateCap, emailResult, plaintext } = invariants;
  const slowestApprovals = finals
    .filter((f) => f.fate === 'approved' && f.approvedAt !== null && f.closedAt !== null)
    .map((f) => ({
      groupId: f.groupId,
      seconds: Math.round((f.closedAt! - f.approvedAt!) / 100) / 10,
      activityTimeouts: (histories.get(workflowIdForGroup(f.groupId)) ?? []).filter(
        (e) => e.activityTaskTimedOutEventAttributes,
      ).length,
      linkGeneration: f.result?.linkGeneration ?? 0,
      history: compactHistory(
        histories.get(workflowIdForGroup(f.groupId)) ?? [],
        f.approvedAt! - 1_000,
        texts.get(workflowIdForGroup(f.groupId)),
      ),
    }))
    .sort((a, b) => b.seconds - a.seconds)
    .slice(0, 5);
  const ok = checks.every((c) => c.ok);
  const wrongGroups = finals
    .filter((f) => f.status !== 'COMPLETED' || f.result?.outcome !== f.expectedOutcome)
    .map((f) => ({
      groupId: f.groupId,
      fate: f.fate,
      expected: f.expectedOutcome,
      status: f.status,
      outcome: f.result?.outcome ?? null,
    }));
  const { log: _log, ...shownOptions } = run.options;
  return {
    ok,
    startedAt: new Date(run.startedAt).toISOString(),
    finishedAt: new Date(finishedAt).toISOString(),
    wallMs: finishedAt - run.startedAt,
    options: shownOptions,
    workerEntry: WORKER_ENTRY,
    taskQueue: run.taskQueue,
    checks,
    headline,
    figures,
    stats: { ...run.stats, faultAnswers: sum(Object.values(run.stats.faultsInjected)) },
    retryAfter,
    rateCap,
    pace: paceOf(run.t0, recorded),
    excuses: emailResult.excuses,
    plaintext: {
      historyHits: plaintext.historyHits.slice(0, 20),
      logHits: plaintext.logHits.slice(0, 20),
      payloadsInClear: plaintext.payloadsInClear,
    },
    load: {
      start: run.loadAtStart,
      end: loadavg()
        .map((l) => l.toFixed(2))
        .join(' '),
    },
    timeline: run.timeline,
    wrongGroups,
    slowestApprovals,
    stuck,
    harnessErrors: run.harnessErrors,
    ...(ok
      ? {}
      : {
          logs: {
            worker: workers?.stderrTail.slice(-60) ?? [],
            temporal: temporal?.tail(30) ?? [],
          },
        }),
  };
}

// ---------------------------------------------------------------------------------------------
// Helpers of the phases

/** The run a start call started or attached to (the client sets it at runtime; the starter's type omits it). */
function firstRunIdOf(handle: object): string | null {
  const value = (handle as { firstExecutionRunId?: unknown }).firstExecutionRunId;
  return typeof value === 'string' ? value : null;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Runs `fn` over `items`, at most `limit` at a time. */
async function eachLimited<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const item = items[next++]!;
      await fn(item);
    }
  });
  await Promise.all(lanes);
}

/** A Temporal call, tried again until it succeeds: the server may be restarting. */
function persist<T>(
  what: string,
  fn: () => Promise<T>,
  timeoutMs = 120_000,
): Promise<Exclude<T, undefined | false>> {
  return eventually(what, fn, { timeoutMs, intervalMs: 500 });
}

async function openWorkflows(run: ChaosRun, client: Client): Promise<number> {
  return (await client.workflow.count(`TaskQueue = "${run.taskQueue}" AND ExecutionStatus = "Running"`))
    .count;
}

/** Why a workflow is still open: its status query (if a worker answers) and pending activities. */
async function describeStuck(
  groupId: string,
  handle: ReturnType<Client['workflow']['getHandle']>,
): Promise<StuckWorkflow> {
  const description = await handle.describe();
  const status = await within(5_000, 'the status query', handle.query<unknown>('status')).catch(
    (err: unknown) => `query failed: ${errorText(err)}`,
  );
  const iso = (ts: { seconds?: unknown; nanos?: unknown } | null | undefined): string | null =>
    ts?.seconds == null
      ? null
      : new Date(Number(ts.seconds) * 1000 + Math.floor(Number(ts.nanos ?? 0) / 1e6)).toISOString();
  return {
    groupId,
    status,
    pendingWorkflowTask: description.raw.pendingWorkflowTask
      ? {
          state: description.raw.pendingWorkflowTask.state,
          attempt: description.raw.pendingWorkflowTask.attempt,
          scheduledTime: iso(description.raw.pendingWorkflowTask.scheduledTime),
          startedTime: iso(description.raw.pendingWorkflowTask.startedTime),
        }
      : null,
    pendingActivities: (description.raw.pendingActivities ?? []).map((a) => ({
      activityType: a.activityType?.name,
      state: a.state,
      attempt: a.attempt,
      lastFailure: a.lastFailure?.message,
      scheduledTime: iso(a.scheduledTime),
      lastStartedTime: iso(a.lastStartedTime),
      lastAttemptCompleteTime: iso(a.lastAttemptCompleteTime),
      nextAttemptScheduleTime: iso(a.nextAttemptScheduleTime),
      expirationTime: iso(a.expirationTime),
      lastWorkerIdentity: a.lastWorkerIdentity,
    })),
  };
}

function workerEnv(opts: {
  temporalAddress: string;
  taskQueue: string;
  heygenUrl: string;
  smtpUrl: string;
  gateFile: string;
  maxRps: number;
}): Record<string, string> {
  return {
    TEMPORAL_ADDRESS: opts.temporalAddress,
    TEMPORAL_NAMESPACE: DEV_SERVER_NAMESPACE,
    TEMPORAL_TASK_QUEUE: opts.taskQueue,
    HEYGEN_API_KEY: API_KEY,
    HEYGEN_BASE_URL: opts.heygenUrl,
    HEYGEN_TIMEOUT_MS: String(HEYGEN_TIMEOUT_MS),
    // One file for every worker process: a restart, and the other workers, know a Retry-After.
    HEYGEN_RATE_GATE_FILE: opts.gateFile,
    HEYGEN_MAX_RPS: String(opts.maxRps),
    SMTP_URL: opts.smtpUrl,
    EMAIL_FROM,
    LOG_LEVEL: 'WARN',
  };
}

/** Requests, polls and emails per 10 s of the chaos clock. */
function paceOf(t0: number, { records, messages }: Recorded): ChaosReport['pace'] {
  const pace: ChaosReport['pace'] = [];
  const senders: Array<Set<number>> = [];
  const slot = (at: number) => {
    const index = Math.max(0, Math.floor((at - t0) / 10_000));
    while (pace.length <= index) {
      pace.push({ fromS: pace.length * 10, requests: 0, polls: 0, emails: 0, workers: 0 });
      senders.push(new Set());
    }
    return index;
  };
  for (const record of records) {
    const index = slot(record.at);
    pace[index]!.requests += 1;
    if (record.activity?.type === 'pollConsentStatus') pace[index]!.polls += 1;
    if (record.pid !== null) senders[index]!.add(record.pid);
    pace[index]!.workers = senders[index]!.size;
  }
  for (const message of messages) pace[slot(message.receivedAt)]!.emails += 1;
  return pace;
}

/** A never-approved group's deadline comes within the run; everyone else's is far away. */
function deadlineMsOf(group: PlannedGroup, plan: ChaosPlan): number {
  return group.fate === 'never_approved' ? Math.round(plan.expiringDeadlineMs / 1000) * 1000 : 3_600_000;
}

function inputFor(group: PlannedGroup, plan: ChaosPlan): AvatarConsentInput {
  return {
    groupId: group.groupId,
    recipient: { email: group.email, name: group.name },
    policy: { ...plan.policy, deadline: `${deadlineMsOf(group, plan) / 1000}s` },
  };
}
