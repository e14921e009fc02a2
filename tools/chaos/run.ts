/**
 * The chaos run: N consent workflows at once against a real Temporal dev server (stopped and
 * restarted on its database file), the HeyGen sandbox behind a recording proxy (5xx bursts, hangs,
 * slow consents, 429 storms, a full outage), a real SMTP server (taken down for a while) and a worker
 * process (SIGKILLed at random). Then every invariant is checked and the figures returned.
 *
 * runChaos() reads as the run's story; each phase is a function below it, in the same order.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

import { Client, Connection } from '@temporalio/client';

import { workflowIdForGroup } from '../../src/contract.js';
import type { AvatarConsentInput, AvatarConsentResult } from '../../src/contract.js';
import { startAvatarConsent } from '../../src/starter.js';
import type { avatarConsentWorkflow } from '../../src/workflows/avatar-consent.js';
import { startSandbox } from '../heygen-sandbox/index.js';
import type { ConsentRecord, FaultSpec, LedgerEntry, Sandbox } from '../heygen-sandbox/index.js';
import { isRunning, within } from '../kit/child-process.js';
import { eventually, unlessTimeout } from '../kit/eventually.js';
import { startSmtpCatcher } from '../kit/smtp-catcher.js';
import type { ReceivedMail, SmtpCatcher } from '../kit/smtp-catcher.js';
import { DEV_SERVER_NAMESPACE, temporalServer } from '../kit/temporal-server.js';
import type { TemporalServer } from '../kit/temporal-server.js';
import {
  checkConsentRequests,
  checkEmails,
  checkHistories,
  checkOutcomes,
  consentLinkIn,
  percentile,
} from './checks.js';
import type { Check, GroupFinal, HistoryEventLike } from './checks.js';
import { startRecordingProxy } from './heygen-proxy.js';
import type { RecordingProxy } from './heygen-proxy.js';
import { EXPECTED_OUTCOME, makePlan } from './plan.js';
import type { ChaosAction, ChaosPlan, PlannedGroup } from './plan.js';
import { seededRandom } from './random.js';
import { analyzeRetryAfter } from './retry-after.js';
import type { ProxyRecord, RetryAfterAnalysis } from './retry-after.js';
import { workerProcess } from './worker-control.js';
import type { WorkerControl } from './worker-control.js';

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const API_KEY = 'chaos-key';
const EMAIL_FROM = 'Avatar consent <consent@chaos.example.com>';
const HEYGEN_TIMEOUT_MS = 1_000;
/** The product's worker, with HEYGEN_RATE_GATE_FILE set so a restart still knows a Retry-After. */
const WORKER_ENTRY = 'src/worker.ts';

export interface ChaosOptions {
  workflows: number;
  /** Length of the chaos phase (approvals and faults), ms. */
  durationMs: number;
  seed: number;
  profile: 'full' | 'short';
  /** Longest wait for the workflows after the chaos phase, ms. */
  settleTimeoutMs: number;
  /** HeyGen sandbox rate limit per second and key; default workflows / 2 (full) or workflows (short), at least 10. */
  rateLimitPerSecond?: number;
  log?: (line: string) => void;
}

export interface ChaosStats {
  workerKills: number;
  workerKillsSkipped: number;
  /** 'yes (...)' once the worker was killed right after a long Retry-After. */
  targeted429: string;
  temporalRestarts: number;
  temporalDowntimeMs: number;
  temporalStopsGraceful: number;
  heygenOutageMs: number;
  smtpDowntimeMs: number;
  /** HeyGen answers given by injected faults, by fault kind. */
  faultsInjected: Record<string, number>;
  faultAnswers: number;
  faultsUnused: number;
  pageApprovals: number;
  pageApprovalFallbacks: number;
  workerDrained: string;
}

export interface FigureRow {
  section: string;
  figure: string;
  value: number | string;
}

export interface ChaosReport {
  ok: boolean;
  startedAt: string;
  finishedAt: string;
  wallMs: number;
  options: Omit<ChaosOptions, 'log'>;
  workerEntry: string;
  taskQueue: string;
  checks: Check[];
  figures: FigureRow[];
  /** What the run did to the stack, as numbers. */
  stats: ChaosStats;
  retryAfter: RetryAfterAnalysis;
  timeline: Array<{ atMs: number; event: string }>;
  /** The approved groups whose workflow took longest to finish after the approval, with a hint why. */
  slowestApprovals: Array<{
    groupId: string;
    seconds: number;
    activityTimeouts: number;
    linkGeneration: number;
    /** Its history from one second before the approval: `+s EventType detail`. */
    history: string[];
  }>;
  /** What each workflow still running at the end was doing. */
  stuck: StuckWorkflow[];
  wrongGroups: Array<{
    groupId: string;
    fate: string;
    expected: string;
    status: string;
    outcome: string | null;
  }>;
  harnessErrors: string[];
  /** Last stderr lines of the worker and the Temporal server, when a check failed. */
  logs?: { worker: string[]; temporal: string[] };
}

interface GroupState {
  plan: PlannedGroup;
  firstExecutionRunId: string | null;
  approvedAt: number | null;
  decidedAt: number | null;
  approvedViaPage: boolean;
  retriggerSameRun: boolean | null;
}

/** What the run does to the stack, counted as it goes (the fault answers are summed at the end). */
type RunStats = Omit<ChaosStats, 'faultAnswers'>;

/** One run's plan, clock and notes, shared by its phases. */
interface ChaosRun {
  readonly options: ChaosOptions;
  readonly plan: ChaosPlan;
  readonly taskQueue: string;
  /** Scratch folder: the Temporal database, the rate gate file. */
  readonly dir: string;
  readonly startedAt: number;
  /** When the chaos clock started (the first HeyGen request); 0 before. */
  t0: number;
  readonly timeline: ChaosReport['timeline'];
  readonly harnessErrors: string[];
  readonly stats: RunStats;
  readonly states: Map<string, GroupState>;
  readonly note: (event: string) => void;
  /** Something the harness itself could not do: fails the run's first check. */
  readonly harnessError: (what: string | null, err: unknown) => void;
}

/** The pieces the run starts; every phase after start-up gets all of them. */
interface Stack {
  sandbox: Sandbox;
  proxy: RecordingProxy;
  smtp: SmtpCatcher;
  temporal: TemporalServer;
  worker: WorkerControl;
  connection: Connection;
  client: Client;
}

/** What the run learned from Temporal about the workflows, once they were done. */
interface Collected {
  finals: GroupFinal[];
  histories: Map<string, HistoryEventLike[]>;
  stuck: StuckWorkflow[];
  openAtEnd: number | string;
  executionsOnQueue: number | string;
}

/** What the stack recorded, taken as it was torn down. */
interface Recorded {
  ledger: LedgerEntry[];
  consents: ConsentRecord[];
  messages: ReceivedMail[];
  records: ProxyRecord[];
  faultsLeft: FaultSpec[];
  /** Every child process the run started, and those still running after the teardown. */
  children: ChildProcess[];
  stillRunning: ChildProcess[];
}

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
// Invariants and figures

type Invariants = ReturnType<typeof checkInvariants>;

function checkInvariants(
  run: ChaosRun,
  worker: WorkerControl | undefined,
  { finals, histories, openAtEnd, executionsOnQueue }: Collected,
  { ledger, consents, messages, records, children, stillRunning }: Recorded,
) {
  const { plan, states, harnessErrors, timeline } = run;
  const lastProcessedPostAt = new Map<string, number>();
  for (const entry of ledger) {
    const groupId = /^\/v3\/avatars\/([^/]+)\/consent$/.exec(entry.path)?.[1];
    if (entry.method === 'POST' && groupId && entry.status === 200 && !entry.replayed)
      lastProcessedPostAt.set(groupId, Math.max(lastProcessedPostAt.get(groupId) ?? 0, entry.at));
  }
  const retryAfter = analyzeRetryAfter(records, worker?.lives ?? []);
  const outcomeChecks = finals.length > 0 ? checkOutcomes(finals) : [];
  const consentResult = checkConsentRequests(ledger, consents, finals);
  const emailResult = checkEmails(messages, consents, finals, lastProcessedPostAt);
  const historyResult = checkHistories(histories);
  const servedPids = new Set(records.map((r) => r.pid));
  const servingExits = (worker?.unexpectedExits ?? []).filter((e) => servedPids.has(e.pid));
  const retriggers = [...states.values()].filter((s) => s.plan.retriggerAtMs !== null);
  const checks: Check[] = [
    {
      name: 'the run itself went as planned (every workflow started, every fault applied)',
      ok: harnessErrors.length === 0 && finals.length === plan.groups.length,
      detail:
        harnessErrors.length === 0
          ? `${timeline.length} timeline events`
          : harnessErrors.slice(0, 5).join('; '),
    },
    ...outcomeChecks,
    ...consentResult.checks,
    ...emailResult.checks,
    {
      name: 'no HeyGen request was sent before a Retry-After had elapsed',
      ok: retryAfter.violations === 0 && retryAfter.unreadableRetryAfter === 0 && retryAfter.rateLimited > 0,
      detail:
        retryAfter.rateLimited === 0
          ? 'no 429 was seen, so nothing was proven'
          : `${retryAfter.rateLimited} × 429; in their windows: ${retryAfter.inWindow.raced} raced (in flight), ` +
            `${retryAfter.inWindow.unreceived} unreceived, ${retryAfter.inWindow.same_process} same-process, ` +
            `${retryAfter.inWindow.across_restart} across a restart, ${retryAfter.inWindow.unattributed} unattributed`,
    },
    ...historyResult.checks,
    {
      name: 'a duplicate trigger attaches to the running execution',
      ok: retriggers.every((s) => s.retriggerSameRun === true),
      detail: `${retriggers.filter((s) => s.retriggerSameRun === true).length} of ${retriggers.length} attached; ${executionsOnQueue} executions on the task queue`,
    },
    {
      name: 'nothing is left running (open workflows = 0, executions = workflows, child processes exited)',
      ok: openAtEnd === 0 && executionsOnQueue === plan.groups.length && stillRunning.length === 0,
      detail: `open workflows ${openAtEnd}, executions ${executionsOnQueue} for ${plan.groups.length} groups, live child processes ${stillRunning.length} of ${children.length}`,
    },
    {
      // A worker that cannot reach Temporal when it starts exits (a supervisor restarts it): recorded,
      // but only a worker that was already serving and then died by itself breaks the promise.
      name: 'no serving worker exited on its own',
      ok: servingExits.length === 0,
      detail:
        (worker?.unexpectedExits.length ?? 0) === 0
          ? `${worker?.lives.length ?? 0} worker processes, all ended by the run`
          : worker!.unexpectedExits
              .map(
                (e) =>
                  `pid ${e.pid} exited with code ${e.code} after ${Math.round(e.livedMs / 100) / 10} s ` +
                  `(${servingExits.includes(e) ? 'while serving' : 'at start-up'}): ${e.lastLine.slice(0, 160)}`,
              )
              .join('; '),
    },
  ];
  return { checks, retryAfter, consentResult, emailResult, historyResult, servingExits };
}

function tallyFigures(
  run: ChaosRun,
  worker: WorkerControl | undefined,
  { finals, openAtEnd }: Collected,
  { ledger, records, faultsLeft }: Recorded,
  { retryAfter, consentResult, emailResult, historyResult, servingExits }: Invariants,
  finishedAt: number,
): FigureRow[] {
  const { plan, options, stats, startedAt } = run;
  const figures: FigureRow[] = [];
  const add = (section: string, figure: string, value: number | string | null): void =>
    void figures.push({ section, figure, value: value ?? 'n/a' });
  add('run', 'workflows', plan.groups.length);
  add('run', 'wall time (s)', Math.round((finishedAt - startedAt) / 1000));
  add('run', 'chaos phase (s)', Math.round(options.durationMs / 1000));
  add('run', 'seed', options.seed);
  add('run', 'worker entry', WORKER_ENTRY);
  const outcomeCounts = new Map<string, { expected: number; actual: number }>();
  for (const final of finals) {
    const e = outcomeCounts.get(final.expectedOutcome) ?? { expected: 0, actual: 0 };
    e.expected += 1;
    outcomeCounts.set(final.expectedOutcome, e);
    const actualKey = final.result?.outcome ?? final.status;
    const a = outcomeCounts.get(actualKey) ?? { expected: 0, actual: 0 };
    a.actual += 1;
    outcomeCounts.set(actualKey, a);
  }
  for (const [outcome, { expected, actual }] of [...outcomeCounts].sort())
    add('outcomes', `${outcome} (expected / actual)`, `${expected} / ${actual}`);
  const latencies = finals
    .filter((f) => f.fate === 'approved' && f.approvedAt !== null && f.closedAt !== null)
    .map((f) => (f.closedAt! - f.approvedAt!) / 1000);
  add('outcomes', 'approval → workflow done p50 (s)', round1(percentile(latencies, 50)));
  add('outcomes', 'approval → workflow done p95 (s)', round1(percentile(latencies, 95)));
  add('outcomes', 'approval → workflow done max (s)', round1(percentile(latencies, 100)));
  add('outcomes', 'approvals on the consent page (from the email)', stats.pageApprovals);
  add('outcomes', 'link generations (all groups)', sum(finals.map((f) => f.result?.linkGeneration ?? 0)));
  add('outcomes', 'polls counted by workflows (result.polls)', sum(finals.map((f) => f.result?.polls ?? 0)));

  add('chaos', 'worker SIGKILLs', stats.workerKills);
  add('chaos', 'worker processes', worker?.lives.length ?? 0);
  add('chaos', 'targeted kill after a 429', stats.targeted429);
  add(
    'chaos',
    'temporal restarts (graceful stops)',
    `${stats.temporalRestarts} (${stats.temporalStopsGraceful})`,
  );
  add('chaos', 'temporal down (s)', round1(stats.temporalDowntimeMs / 1000));
  add('chaos', 'HeyGen full outage (s)', round1(stats.heygenOutageMs / 1000));
  add('chaos', 'SMTP down (s)', round1(stats.smtpDowntimeMs / 1000));
  for (const [kind, count] of Object.entries(stats.faultsInjected))
    add('chaos', `fault answers: ${kind}`, count);
  add(
    'chaos',
    'fault answers unused when their burst ended',
    stats.faultsUnused + sum(faultsLeft.map((f) => f.count)),
  );
  add('chaos', 'worker SIGTERM at the end', stats.workerDrained);

  const v3 = ledger.filter((e) => e.path.startsWith('/v3/'));
  add('heygen', 'requests through the proxy', records.length);
  add('heygen', 'requests in the sandbox ledger', v3.length);
  const byStatus = new Map<number, number>();
  for (const entry of v3) byStatus.set(entry.status, (byStatus.get(entry.status) ?? 0) + 1);
  for (const [status, count] of [...byStatus].sort((a, b) => a[0] - b[0]))
    add('heygen', `status ${status === 0 ? '0 (no answer)' : status}`, count);
  // How closely each group's polls kept the schedule (2 s at most between polls when all is well).
  const pollTimes = new Map<string, number[]>();
  for (const entry of v3) {
    const groupId = entry.method === 'GET' ? /^\/v3\/avatars\/([^/]+)$/.exec(entry.path)?.[1] : undefined;
    if (groupId) pollTimes.set(groupId, [...(pollTimes.get(groupId) ?? []), entry.at]);
  }
  const pollGaps = [...pollTimes.values()].flatMap((times) =>
    times.slice(1).map((t, i) => (t - times[i]!) / 1000),
  );
  add('heygen', 'GET group requests (look-ups and polls)', sum([...pollTimes.values()].map((t) => t.length)));
  add(
    'heygen',
    'gap between polls of one group p50 / p95 / max (s)',
    `${round1(percentile(pollGaps, 50))} / ${round1(percentile(pollGaps, 95))} / ${round1(percentile(pollGaps, 100))}`,
  );
  add('heygen', 'answered by an injected fault', v3.filter((e) => e.fault !== null).length);
  add(
    'heygen',
    'worker gave up waiting (client timeout or death)',
    records.filter((r) => r.clientAborted).length,
  );
  add('heygen', 'consent POSTs', consentResult.figures.consentPosts);
  add('heygen', 'consent requests processed (200, not replayed)', consentResult.figures.processed);
  add('heygen', 'consent replays (same key)', consentResult.figures.replayed);
  add('heygen', 'consent 409 request_in_progress', consentResult.figures.inProgress409);
  add('heygen', 'idempotency keys', consentResult.figures.idempotencyKeys);
  add('heygen', 'keys processed more than once', consentResult.figures.keysProcessedMoreThanOnce);

  add('retry-after', '429 answers received', retryAfter.rateLimited);
  add('retry-after', 'requests in a Retry-After window: raced (in flight)', retryAfter.inWindow.raced);
  add('retry-after', '… to a process that died before reading the 429', retryAfter.inWindow.unreceived);
  add('retry-after', '… VIOLATION same process', retryAfter.inWindow.same_process);
  add('retry-after', '… VIOLATION across a worker restart', retryAfter.inWindow.across_restart);
  add('retry-after', '… VIOLATION unattributed', retryAfter.inWindow.unattributed);

  add('email', 'messages received', emailResult.figures.messages);
  add('email', 'distinct Message-IDs', emailResult.figures.distinctMessageIds);
  add('email', 'duplicates (same Message-ID)', emailResult.figures.duplicates);
  add(
    'email',
    'recipients with a link / emailed',
    `${emailResult.figures.recipientsWithLink} / ${emailResult.figures.recipientsEmailed}`,
  );
  add(
    'email',
    'link but no email (decided by the link request, or expired while the email was retried)',
    emailResult.figures.linkWithoutEmailJustified,
  );

  add('temporal', 'WorkflowTaskFailed events', historyResult.figures.workflowTaskFailed);
  add('temporal', 'WorkflowTaskTimedOut events', historyResult.figures.workflowTaskTimedOut);
  add(
    'temporal',
    'ActivityTaskTimedOut events (windows closing, lost attempts)',
    historyResult.figures.activityTaskTimedOut,
  );
  add('temporal', 'history events', historyResult.figures.events);
  add('temporal', 'open workflows at the end', openAtEnd);
  add(
    'temporal',
    'worker exits at start-up (Temporal unreachable)',
    (worker?.unexpectedExits.length ?? 0) - servingExits.length,
  );
  add('temporal', 'serving worker exits (crashes)', servingExits.length);
  return figures;
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

export interface StuckWorkflow {
  groupId: string;
  status: unknown;
  pendingWorkflowTask: unknown;
  pendingActivities: unknown[];
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

/**
 * HeyGen fault bursts, one at a time. A burst lasts a while (or until its count is used up), like a
 * real incident; a count-only fault would linger while traffic is low and hit every later retry.
 */
const MAX_BURST_MS = 30_000;

class FaultBursts {
  #chain: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly sandbox: Sandbox,
    private readonly note: (event: string) => void,
    private readonly stats: Pick<RunStats, 'faultsInjected' | 'faultsUnused'>,
  ) {}

  /**
   * Injects `spec`, keeps it for `windowMs` — longer (up to MAX_BURST_MS) while fewer than a handful
   * of requests have met it, so a burst that lands while Temporal or the worker is down still hits
   * something — then removes what is left.
   */
  run(spec: FaultSpec, windowMs: number, label: string, maxMs = MAX_BURST_MS): Promise<void> {
    const job = this.#chain.then(async () => {
      this.sandbox.clearFaults();
      this.sandbox.injectFault(spec);
      this.note(`${label} — for about ${Math.round(windowMs / 100) / 10} s`);
      const startedAt = Date.now();
      const wanted = Math.min(spec.count, 5);
      const left = (): number => sum(this.sandbox.faults().map((f) => f.count));
      // Over once used up, or once its window has passed and enough requests met it; at the latest after maxMs.
      await eventually(
        `the end of the burst "${label}"`,
        () => {
          const remaining = left();
          return remaining === 0 || (Date.now() - startedAt >= windowMs && spec.count - remaining >= wanted);
        },
        { timeoutMs: maxMs, intervalMs: 50 },
      ).catch(unlessTimeout);
      const unused = left();
      this.sandbox.clearFaults();
      this.stats.faultsInjected[spec.kind] =
        (this.stats.faultsInjected[spec.kind] ?? 0) + spec.count - unused;
      this.stats.faultsUnused += unused;
    });
    this.#chain = job.catch(() => undefined);
    return job;
  }
}

/** A readable digest of history events from `fromMs` on: what a slow workflow was waiting for. */
function compactHistory(events: readonly HistoryEventLike[], fromMs: number, max = 40): string[] {
  const lines: string[] = [];
  for (const event of events as ReadonlyArray<Record<string, unknown>>) {
    const time = event.eventTime as { seconds?: unknown; nanos?: unknown } | null | undefined;
    const at =
      time?.seconds == null ? 0 : Number(time.seconds) * 1000 + Math.floor(Number(time.nanos ?? 0) / 1e6);
    if (at < fromMs) continue;
    const [key, attrs] =
      Object.entries(event).find(([k, v]) => k.endsWith('EventAttributes') && v != null) ?? [];
    if (!key) continue;
    const a = attrs as {
      activityType?: { name?: string };
      attempt?: number;
      lastFailure?: { message?: string } | null;
      failure?: { message?: string; cause?: { message?: string } } | null;
      startToFireTimeout?: { seconds?: unknown };
    };
    const type = key.replace(/EventAttributes$/, '').replace(/^./, (c) => c.toUpperCase());
    if (/^WorkflowTask(Scheduled|Started|Completed)$/.test(type)) continue;
    const detail = [
      a.activityType?.name,
      a.attempt !== undefined && a.attempt > 1 ? `attempt ${a.attempt}` : undefined,
      a.lastFailure?.message ? `last: ${a.lastFailure.message.slice(0, 90)}` : undefined,
      a.failure ? (a.failure.cause?.message ?? a.failure.message ?? '').slice(0, 90) : undefined,
      a.startToFireTimeout?.seconds != null ? `${Number(a.startToFireTimeout.seconds)} s` : undefined,
    ].filter(Boolean);
    lines.push(
      `+${((at - fromMs) / 1000).toFixed(1)}s ${type}${detail.length ? ` ${detail.join(', ')}` : ''}`,
    );
    if (lines.length >= max) break;
  }
  return lines;
}

function round1(value: number | null): number | null {
  return value === null ? null : Math.round(value * 10) / 10;
}

function sum(values: readonly number[]): number {
  return values.reduce((a, b) => a + b, 0);
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

// ---------------------------------------------------------------------------------------------
// Actions

interface ActionContext extends Stack {
  bursts: FaultBursts;
  note: (event: string) => void;
  stats: RunStats;
}

async function killAndRestartWorker(ctx: ActionContext, why: string): Promise<void> {
  const victim = ctx.worker.current;
  if (!victim) {
    ctx.stats.workerKillsSkipped += 1;
    ctx.note(`worker SIGKILL skipped (${why}): no worker running`);
    return;
  }
  await ctx.worker.kill();
  ctx.stats.workerKills += 1;
  const next = ctx.worker.start();
  ctx.note(`worker pid ${victim.pid} SIGKILLed (${why}); started pid ${next.pid}`);
}

async function runAction(action: ChaosAction, ctx: ActionContext): Promise<void> {
  const { stats } = ctx;
  switch (action.kind) {
    case 'kill_worker':
      await killAndRestartWorker(ctx, 'random moment');
      return;
    case 'kill_worker_after_429': {
      const retryAfter = String(action.retryAfterSeconds);
      const seen = new Set(ctx.proxy.records.filter((r) => r.status === 429).map((r) => r.id));
      const burst = ctx.bursts.run(
        { kind: 'rate_limit', count: 1, retryAfter },
        0,
        `HeyGen: one 429 with Retry-After ${retryAfter} s; the worker is killed as soon as it has read it`,
        150_000,
      );
      // Other bursts may come first, and Temporal or HeyGen may be down for a while.
      const answeredAt = await eventually(
        `the targeted 429 (Retry-After ${retryAfter} s) to be answered`,
        () =>
          ctx.proxy.records.find(
            (r) =>
              r.status === 429 &&
              r.retryAfter === retryAfter &&
              r.respondedAt !== null &&
              !r.clientAborted &&
              !seen.has(r.id),
          )?.respondedAt ?? undefined,
        { timeoutMs: 180_000, intervalMs: 20 },
      );
      // Give the worker time to read the 429 and close its gate (and write the gate file) first.
      await delay(Math.max(0, answeredAt + 300 - Date.now()));
      await killAndRestartWorker(ctx, `300 ms after a 429 with Retry-After ${retryAfter} s`);
      stats.targeted429 = `yes (Retry-After ${retryAfter} s, SIGKILL 300 ms after)`;
      await burst;
      return;
    }
    case 'restart_temporal': {
      const stopAt = Date.now();
      const stopped = await ctx.temporal.stop(30_000);
      if (stopped.graceful) stats.temporalStopsGraceful += 1;
      ctx.note(
        `temporal dev server stopped (SIGTERM, ${stopped.graceful ? 'exited' : 'had to be SIGKILLed'}); down for ${action.downMs} ms`,
      );
      await delay(action.downMs);
      await ctx.temporal.start();
      stats.temporalRestarts += 1;
      stats.temporalDowntimeMs += Date.now() - stopAt;
      ctx.note(
        `temporal dev server up again on the same db file (${Math.round((Date.now() - stopAt) / 100) / 10} s down)`,
      );
      return;
    }
    case 'heygen_outage': {
      const from = Date.now();
      await ctx.proxy.down();
      ctx.note(`HeyGen outage: connections refused for ${action.downMs / 1000} s`);
      await delay(action.downMs);
      await ctx.proxy.up();
      stats.heygenOutageMs += Date.now() - from;
      ctx.note('HeyGen back');
      return;
    }
    case 'heygen_5xx':
      await ctx.bursts.run(
        { kind: 'status', status: action.status, count: action.count },
        action.windowMs,
        `HeyGen: up to ${action.count} requests answer ${action.status}`,
      );
      return;
    case 'heygen_hang':
      await ctx.bursts.run(
        { kind: 'hang', count: action.count },
        action.windowMs,
        `HeyGen: up to ${action.count} requests hang (never answered)`,
      );
      return;
    case 'heygen_slow_consent':
      await ctx.bursts.run(
        { kind: 'latency', ms: action.ms, count: action.count, method: 'POST', pathPrefix: '/v3/avatars/' },
        action.windowMs,
        `HeyGen: up to ${action.count} consent POSTs take ${action.ms} ms (past the client timeout, but processed)`,
      );
      return;
    case 'heygen_429_storm': {
      const retryAfter = action.retryAfter.startsWith('http-date+')
        ? new Date(
            Math.ceil((Date.now() + Number(action.retryAfter.slice('http-date+'.length)) * 1000) / 1000) *
              1000,
          ).toUTCString()
        : action.retryAfter;
      await ctx.bursts.run(
        { kind: 'rate_limit', count: action.count, retryAfter },
        action.windowMs,
        `HeyGen: 429 storm, up to ${action.count} requests, Retry-After ${retryAfter}`,
      );
      return;
    }
    case 'smtp_outage': {
      const from = Date.now();
      await ctx.smtp.stop();
      ctx.note(`SMTP server down for ${action.downMs / 1000} s`);
      await delay(action.downMs);
      await ctx.smtp.start();
      stats.smtpDowntimeMs += Date.now() - from;
      ctx.note('SMTP server back');
      return;
    }
  }
}

/** What a person or HeyGen does to one group: approve (admin call or the consent page), fail it, delete it. */
async function actOnGroup(state: GroupState, ctx: ActionContext, pageDeadline: number): Promise<void> {
  const { plan: group } = state;
  switch (group.fate) {
    case 'approved': {
      if (group.viaConsentPage && (await approveOnConsentPage(group.email, ctx, pageDeadline))) {
        state.approvedViaPage = true;
        ctx.stats.pageApprovals += 1;
      } else {
        if (group.viaConsentPage) ctx.stats.pageApprovalFallbacks += 1;
        ctx.sandbox.approve(group.groupId);
      }
      state.approvedAt = Date.now();
      state.decidedAt = state.approvedAt;
      return;
    }
    case 'deleted_mid_run':
      ctx.sandbox.deleteGroup(group.groupId);
      state.decidedAt = Date.now();
      return;
    case 'failed':
      ctx.sandbox.updateGroup(group.groupId, {
        status: 'failed',
        error: {
          code: 'consent_mismatch',
          message: 'The person in the consent video is not the person in the footage.',
        },
      });
      state.decidedAt = Date.now();
      return;
    default:
      return;
  }
}

/** Opens the newest link emailed to `email` and presses "I agree". False when no email came in time. */
async function approveOnConsentPage(email: string, ctx: ActionContext, deadline: number): Promise<boolean> {
  const link = await eventually(
    `a consent link emailed to ${email}`,
    () => {
      const latest = ctx.smtp.messages
        .filter((m) => m.to.some((to) => to.toLowerCase() === email.toLowerCase()))
        .at(-1);
      return (latest && consentLinkIn(latest.text)) ?? undefined;
    },
    { timeoutMs: Math.max(0, deadline - Date.now()), intervalMs: 1_000 },
  ).catch(unlessTimeout);
  if (!link) return false;
  const page = await fetch(link);
  await page.text();
  if (page.status !== 200) throw new Error(`consent page answered ${page.status}`);
  const agreed = await fetch(`${link}/agree`, { method: 'POST', redirect: 'manual' });
  await agreed.text();
  if (agreed.status !== 303) throw new Error(`"I agree" answered ${agreed.status}`);
  return true;
}
