/**
 * The chaos run: N consent workflows at once against a real Temporal dev server (stopped and
 * restarted on its database file), the HeyGen sandbox behind a recording proxy (5xx bursts, hangs,
 * slow consents, 429 storms, a full outage), a real SMTP server (taken down for a while) and a worker
 * process (SIGKILLed at random). Then every invariant is checked and the figures returned.
 *
 * runChaos() reads as the run's story; each phase is a function below it, in the same order. What
 * the chaos phase does to the stack is in actions.ts, the verdict (invariants, figures) in
 * figures.ts, the shapes they share in model.ts.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

import { Client, Connection } from '@temporalio/client';

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
import type { GroupFinal, HistoryEventLike } from './checks.js';
import { checkInvariants, compactHistory, tallyFigures } from './figures.js';
import { startRecordingProxy } from './heygen-proxy.js';
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
import { EXPECTED_OUTCOME, makePlan } from './plan.js';
import type { ChaosPlan, PlannedGroup } from './plan.js';
import { seededRandom } from './random.js';
import { workerProcess } from './worker-control.js';

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const API_KEY = 'chaos-key';
const EMAIL_FROM = 'Avatar consent <consent@chaos.example.com>';
const HEYGEN_TIMEOUT_MS = 1_000;

export type { ChaosOptions, ChaosReport, ChaosStats, FigureRow, StuckWorkflow } from './model.js';

export async function runChaos(options: ChaosOptions): Promise<ChaosReport> {
  const run = prepareRun(options);
  const started: Partial<Stack> = {};
  let collected: Collected = {
    finals: [],
    histories: new Map(),
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
    t0: 0,
    timeline: [],
    harnessErrors: [],
    stats: {
      workerKills: 0,
      workerKillsSkipped: 0,
      temporalRestarts: 0,
      temporalDowntimeMs: 0,
      temporalStopsGraceful: 0,
      heygenOutageMs: 0,
      smtpDowntimeMs: 0,
      faultsInjected: { status: 0, hang: 0, latency: 0, rate_limit: 0 },
      faultsUnused: 0,
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
    `seed ${options.seed}, ${options.workflows} workflows, chaos phase ${Math.round(options.durationMs / 1000)} s, worker ${WORKER_ENTRY}`,
  );
  return run;
}

/** The sandbox behind its proxy, the SMTP catcher, the Temporal dev server and the worker; kept in `started` as they come up. */
async function startStack(run: ChaosRun, started: Partial<Stack>): Promise<Stack> {
  const { options, note } = run;
  // Full run: about what the workflows poll at full speed, so the per-key limit answers 429 when they
  // all start at once or come back from an outage together. Short run: above it, so CI sees only the
  // injected storms (a short run cannot wait out the request steps' 5-minute backoff).
  const rateLimitPerSecond =
    options.rateLimitPerSecond ??
    (options.profile === 'full'
      ? Math.max(10, Math.round(options.workflows / 2))
      : Math.max(10, options.workflows));
  const sandbox = (started.sandbox = await startSandbox({
    apiKeys: [API_KEY],
    rateLimit: { limit: rateLimitPerSecond, windowMs: 1_000 },
  }));
  const proxy = (started.proxy = await startRecordingProxy({ target: sandbox.url }));
  const smtp = (started.smtp = await startSmtpCatcher());
  const temporal = (started.temporal = temporalServer({ dbFile: join(run.dir, 'chaos.db') }));
  await temporal.start();
  note(
    `temporal dev server on ${temporal.address} (db ${temporal.dbFile}); sandbox ${sandbox.url} via proxy ${proxy.url}`,
  );
  const connection = (started.connection = await Connection.connect({ address: temporal.address }));
  const client = (started.client = new Client({ connection }));

  const worker = (started.worker = workerProcess({
    cwd: REPO_ROOT,
    entry: WORKER_ENTRY,
    probedEntry: 'tools/chaos/probed-worker.ts',
    env: workerEnv({
      temporalAddress: temporal.address,
      taskQueue: run.taskQueue,
      heygenUrl: proxy.url,
      smtpUrl: smtp.url,
      gateFile: join(run.dir, 'heygen-rate-gate.json'),
    }),
    restartOnUnexpectedExit: true,
    onEvent: note,
  }));
  note(`worker started: pid ${worker.start().pid}`);
  return { sandbox, proxy, smtp, temporal, worker, connection, client };
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

/** The chaos clock starts with the first HeyGen request: the worker is up and working. */
async function waitForFirstHeyGenRequest(run: ChaosRun, { proxy }: Stack): Promise<void> {
  await eventually('the first HeyGen request after starting the workflows', () => proxy.records.length > 0, {
    timeoutMs: 180_000,
  });
  run.t0 = Date.now();
  run.note('first HeyGen request: chaos clock starts');
}

/** The planned faults and each group's fate (approval, failure, deletion, a second trigger), each at its time. */
async function runChaosPhase(run: ChaosRun, stack: Stack): Promise<void> {
  const { plan, options, note, stats } = run;
  const bursts = new FaultBursts(stack.sandbox, note, stats);
  const context: ActionContext = { ...stack, bursts, note, stats };
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
          `progress: open workflows ${open}, HeyGen requests ${stack.proxy.records.length}, emails ${stack.smtp.messages.length}, worker pid ${stack.worker.current?.pid ?? 'none'}`,
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
async function collectResults(run: ChaosRun, { client }: Stack): Promise<Collected> {
  const finals: GroupFinal[] = [];
  const histories = new Map<string, HistoryEventLike[]>();
  const stuck: StuckWorkflow[] = [];
  await eachLimited(run.plan.groups, 12, async (group) => {
    const state = run.states.get(group.groupId)!;
    const handle = client.workflow.getHandle<typeof avatarConsentWorkflow>(workflowIdForGroup(group.groupId));
    const description = await persist(`describe ${group.groupId}`, () => handle.describe(), 30_000);
    let result: AvatarConsentResult | null = null;
    if (description.status.name === 'COMPLETED') {
      result = await persist(`result ${group.groupId}`, () => handle.result(), 30_000);
    }
    if (description.status.name === 'RUNNING') stuck.push(await describeStuck(group.groupId, handle));
    const history = await persist(`history ${group.groupId}`, () => handle.fetchHistory(), 30_000);
    histories.set(workflowIdForGroup(group.groupId), history.events ?? []);
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
    });
  });
  finals.sort((a, b) => a.groupId.localeCompare(b.groupId));
  const openAtEnd = await persist('count open', () => openWorkflows(run, client));
  const executionsOnQueue = (
    await persist('count all', () => client.workflow.count(`TaskQueue = "${run.taskQueue}"`))
  ).count;
  return { finals, histories, stuck, openAtEnd, executionsOnQueue };
}

/** Always: the worker drains (SIGTERM), the server stops, the rest closes; what they recorded is kept. */
async function tearDown(
  run: ChaosRun,
  { worker, connection, temporal, sandbox, proxy, smtp }: Partial<Stack>,
): Promise<Recorded> {
  const children: ChildProcess[] = [];
  try {
    if (worker) {
      const before = Date.now();
      const alive = worker.current !== null;
      await worker.stop(30_000);
      run.stats.workerDrained = alive
        ? `SIGTERM → exit in ${Date.now() - before} ms`
        : 'no worker was running';
      children.push(...worker.processes);
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
    records: [...(proxy?.records ?? [])],
    faultsLeft: sandbox?.faults() ?? [],
    children,
    stillRunning: [],
  };
  await Promise.allSettled([proxy?.close(), sandbox?.close(), smtp?.close()]);
  recorded.stillRunning = children.filter(isRunning);
  rmSync(run.dir, { recursive: true, force: true });
  return recorded;
}

/** The invariants, the figures and what went wrong, as one report. */
function report(
  run: ChaosRun,
  { worker, temporal }: Partial<Stack>,
  collected: Collected,
  recorded: Recorded,
): ChaosReport {
  const invariants = checkInvariants(run, worker, collected, recorded);
  const finishedAt = Date.now();
  const figures = tallyFigures(run, worker, collected, recorded, invariants, finishedAt);
  const { finals, histories, stuck } = collected;
  const { checks, retryAfter } = invariants;
  const slowestApprovals = finals
    .filter((f) => f.fate === 'approved' && f.approvedAt !== null && f.closedAt !== null)
    .map((f) => ({
      groupId: f.groupId,
      seconds: Math.round((f.closedAt! - f.approvedAt!) / 100) / 10,
      activityTimeouts: (histories.get(workflowIdForGroup(f.groupId)) ?? []).filter(
        (e) => e.activityTaskTimedOutEventAttributes,
      ).length,
      linkGeneration: f.result?.linkGeneration ?? 0,
      history: compactHistory(histories.get(workflowIdForGroup(f.groupId)) ?? [], f.approvedAt! - 1_000),
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
    figures,
    stats: { ...run.stats, faultAnswers: sum(Object.values(run.stats.faultsInjected)) },
    retryAfter,
    timeline: run.timeline,
    wrongGroups,
    slowestApprovals,
    stuck,
    harnessErrors: run.harnessErrors,
    ...(ok
      ? {}
      : {
          logs: {
            worker: worker?.stderrTail.slice(-60) ?? [],
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
}): Record<string, string> {
  return {
    TEMPORAL_ADDRESS: opts.temporalAddress,
    TEMPORAL_NAMESPACE: DEV_SERVER_NAMESPACE,
    TEMPORAL_TASK_QUEUE: opts.taskQueue,
    HEYGEN_API_KEY: API_KEY,
    HEYGEN_BASE_URL: opts.heygenUrl,
    HEYGEN_TIMEOUT_MS: String(HEYGEN_TIMEOUT_MS),
    HEYGEN_RATE_GATE_FILE: opts.gateFile,
    SMTP_URL: opts.smtpUrl,
    EMAIL_FROM,
    LOG_LEVEL: 'WARN',
  };
}

function inputFor(group: PlannedGroup, plan: ChaosPlan): AvatarConsentInput {
  const short = plan.expiringDeadlineMs < 120_000;
  return {
    groupId: group.groupId,
    recipient: { email: group.email, name: group.name },
    policy: {
      pollInitialInterval: '200ms',
      pollMaxInterval: '2s',
      pollWindow: short ? '10s' : '20s',
      // Short enough that people who take their time get a refreshed link (new key, new email).
      linkTtl: short ? '30s' : '75s',
      deadline: group.fate === 'never_approved' ? `${Math.round(plan.expiringDeadlineMs / 1000)}s` : '1h',
    },
  };
}
