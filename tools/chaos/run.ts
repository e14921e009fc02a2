/**
 * The chaos run: N consent workflows at once against a real Temporal dev server (stopped and
 * restarted on its database file), the HeyGen sandbox behind a recording proxy (5xx bursts, hangs,
 * slow consents, 429 storms, a full outage), a real SMTP server (taken down for a while) and a worker
 * process (SIGKILLed at random). Then every invariant is checked and the figures returned.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

import { Client, Connection } from '@temporalio/client';
import type { ChildProcess } from 'node:child_process';

import { workflowIdForGroup } from '../../src/contract.js';
import type { AvatarConsentInput, AvatarConsentResult } from '../../src/contract.js';
import { startSandbox } from '../heygen-sandbox/index.js';
import type { FaultSpec, Sandbox } from '../heygen-sandbox/index.js';
import { startAvatarConsent } from '../../src/starter.js';
import type { avatarConsentWorkflow } from '../../src/workflows/avatar-consent.js';
import { startSmtpCatcher } from '../kit/smtp-catcher.js';
import type { SmtpCatcher } from '../kit/smtp-catcher.js';
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
import { freePort, temporalServer, workerProcess } from './processes.js';
import type { TemporalServerControl, WorkerControl } from './processes.js';
import { seededRandom } from './random.js';
import { analyzeRetryAfter } from './retry-after.js';
import type { RetryAfterAnalysis } from './retry-after.js';

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const API_KEY = 'chaos-key';
const EMAIL_FROM = 'Avatar consent <consent@chaos.example.com>';
const HEYGEN_TIMEOUT_MS = 1_000;

export type WorkerChoice = 'auto' | 'product';

export interface ChaosOptions {
  workflows: number;
  /** Length of the chaos phase (approvals and faults), ms. */
  durationMs: number;
  seed: number;
  profile: 'full' | 'short';
  /** Which worker entry to run: both mean src/worker.ts, with HEYGEN_RATE_GATE_FILE set (kept for old command lines). */
  worker: WorkerChoice;
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

/** Retries a Temporal call through a server restart. */
async function persist<T>(what: string, fn: () => Promise<T>, timeoutMs = 120_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > until) throw new Error(`${what}: ${errorText(err)}`, { cause: err });
      await delay(500);
    }
  }
}

export function chooseWorkerEntry(_choice: WorkerChoice): string {
  return 'src/worker.ts';
}

export async function runChaos(options: ChaosOptions): Promise<ChaosReport> {
  const log = options.log ?? ((line: string) => console.error(line));
  const random = seededRandom(options.seed);
  const runTag = `${options.seed.toString(36)}${Date.now().toString(36).slice(-4)}`;
  const taskQueue = `avatar-consent-chaos-${runTag}`;
  const plan = makePlan({
    workflows: options.workflows,
    durationMs: options.durationMs,
    profile: options.profile,
    heygenTimeoutMs: HEYGEN_TIMEOUT_MS,
    runTag,
    random,
  });
  const workerEntry = chooseWorkerEntry(options.worker);
  const startedAt = Date.now();
  const dir = mkdtempSync(join(tmpdir(), 'avatar-consent-chaos-'));
  const timeline: ChaosReport['timeline'] = [];
  const harnessErrors: string[] = [];
  let t0 = 0;
  const note = (event: string): void => {
    const atMs = t0 === 0 ? -(Date.now() - startedAt) : Date.now() - t0;
    timeline.push({ atMs, event });
    log(`[chaos ${t0 === 0 ? 'setup' : `+${(atMs / 1000).toFixed(1)}s`}] ${event}`);
  };
  note(
    `seed ${options.seed}, ${options.workflows} workflows, chaos phase ${Math.round(options.durationMs / 1000)} s, worker ${workerEntry}`,
  );

  let sandbox: Sandbox | undefined;
  let proxy: RecordingProxy | undefined;
  let smtp: SmtpCatcher | undefined;
  let temporal: TemporalServerControl | undefined;
  let worker: WorkerControl | undefined;
  let connection: Connection | undefined;
  const states = new Map<string, GroupState>(
    plan.groups.map((g) => [
      g.groupId,
      {
        plan: g,
        firstExecutionRunId: null,
        approvedAt: null,
        decidedAt: null,
        approvedViaPage: false,
        retriggerSameRun: null,
      },
    ]),
  );
  const stats = {
    workerKills: 0,
    workerKillsSkipped: 0,
    temporalRestarts: 0,
    temporalDowntimeMs: 0,
    temporalStopsGraceful: 0,
    heygenOutageMs: 0,
    smtpDowntimeMs: 0,
    faultsInjected: { status: 0, hang: 0, latency: 0, rate_limit: 0 } as Record<string, number>,
    faultsUnused: 0,
    pageApprovals: 0,
    pageApprovalFallbacks: 0,
    targeted429: 'not run',
    workerDrained: 'n/a',
  };
  let finals: GroupFinal[] = [];
  const histories = new Map<string, HistoryEventLike[]>();
  const stuck: StuckWorkflow[] = [];
  let openAtEnd: number | string = 'n/a';
  let executionsOnQueue: number | string = 'n/a';

  try {
    // ----- servers
    // Full run: about what the workflows poll at full speed, so the per-key limit answers 429 when they
    // all start at once or come back from an outage together. Short run: above it, so CI sees only the
    // injected storms (a short run cannot wait out the request steps' 5-minute backoff).
    const rateLimitPerSecond =
      options.rateLimitPerSecond ??
      (options.profile === 'full'
        ? Math.max(10, Math.round(options.workflows / 2))
        : Math.max(10, options.workflows));
    sandbox = await startSandbox({
      apiKeys: [API_KEY],
      rateLimit: { limit: rateLimitPerSecond, windowMs: 1_000 },
    });
    proxy = await startRecordingProxy({ target: sandbox.url });
    smtp = await startSmtpCatcher();
    temporal = temporalServer({
      dbFile: join(dir, 'chaos.db'),
      port: await freePort(),
      uiPort: await freePort(),
    });
    await temporal.start();
    note(
      `temporal dev server on ${temporal.address} (db ${temporal.dbFile}); sandbox ${sandbox.url} via proxy ${proxy.url}`,
    );
    connection = await Connection.connect({ address: temporal.address });
    const client = new Client({ connection });

    worker = workerProcess({
      cwd: REPO_ROOT,
      entry: workerEntry,
      probedEntry: 'tools/chaos/probed-worker.ts',
      env: workerEnv({
        temporalAddress: temporal.address,
        taskQueue,
        heygenUrl: proxy.url,
        smtpUrl: smtp.url,
        gateFile: join(dir, 'heygen-rate-gate.json'),
      }),
      restartOnUnexpectedExit: true,
      onEvent: note,
    });
    note(`worker started: pid ${worker.start().pid}`);

    // ----- groups and workflows
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
        startAvatarConsent(client, inputFor(group, plan), { taskQueue }),
      );
      states.get(group.groupId)!.firstExecutionRunId = firstRunIdOf(handle);
    });
    note(`${plan.groups.length} workflows started`);

    // The chaos clock starts with the first HeyGen request: the worker is up and working.
    const firstRequestBy = Date.now() + 180_000;
    while (proxy.records.length === 0) {
      if (Date.now() > firstRequestBy)
        throw new Error('no HeyGen request within 180 s of starting the workflows');
      await delay(100);
    }
    t0 = Date.now();
    note('first HeyGen request: chaos clock starts');

    // ----- the chaos phase
    const bursts = new FaultBursts(sandbox, note, stats);
    const context: ActionContext = { sandbox, proxy, smtp, temporal, worker, bursts, note, stats };
    const tasks: Array<Promise<void>> = [];
    const at = (ms: number, what: string, fn: () => Promise<void>): void => {
      tasks.push(
        (async () => {
          await delay(Math.max(0, t0 + ms - Date.now()));
          try {
            await fn();
          } catch (err) {
            harnessErrors.push(`${what}: ${errorText(err)}`);
            note(`HARNESS ERROR in ${what}: ${errorText(err)}`);
          }
        })(),
      );
    };
    for (const { atMs, action } of plan.actions) at(atMs, action.kind, () => runAction(action, context));
    for (const group of plan.groups) {
      const state = states.get(group.groupId)!;
      if (group.actAtMs !== null) {
        at(group.actAtMs, `${group.fate} ${group.groupId}`, () =>
          actOnGroup(state, context, t0 + options.durationMs * 0.85),
        );
      }
      if (group.retriggerAtMs !== null) {
        at(group.retriggerAtMs, `retrigger ${group.groupId}`, async () => {
          const handle = await persist(`retrigger ${group.groupId}`, () =>
            startAvatarConsent(client, inputFor(group, plan), { taskQueue }),
          );
          state.retriggerSameRun =
            firstRunIdOf(handle) !== null && firstRunIdOf(handle) === state.firstExecutionRunId;
        });
      }
    }

    const progress = setInterval(() => {
      void client.workflow
        .count(`TaskQueue = "${taskQueue}" AND ExecutionStatus = "Running"`)
        .then(
          ({ count }) => String(count),
          () => 'n/a (server down)',
        )
        .then((open) =>
          note(
            `progress: open workflows ${open}, HeyGen requests ${proxy!.records.length}, emails ${smtp!.messages.length}, worker pid ${worker!.current?.pid ?? 'none'}`,
          ),
        );
    }, 15_000);
    try {
      await Promise.all(tasks);
      note('chaos phase over: waiting for every workflow to finish');
      const settleBy = Date.now() + options.settleTimeoutMs;
      for (;;) {
        const open = await client.workflow
          .count(`TaskQueue = "${taskQueue}" AND ExecutionStatus = "Running"`)
          .then(({ count }) => count)
          .catch(() => -1);
        if (open === 0) break;
        if (Date.now() > settleBy) {
          note(`gave up waiting: ${open} workflow(s) still open`);
          break;
        }
        await delay(1_000);
      }
    } finally {
      clearInterval(progress);
    }
    note('all workflows closed (or time is up): collecting');

    // ----- collect
    finals = [];
    await eachLimited(plan.groups, 12, async (group) => {
      const state = states.get(group.groupId)!;
      const handle = client.workflow.getHandle<typeof avatarConsentWorkflow>(
        workflowIdForGroup(group.groupId),
      );
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
    openAtEnd = (
      await persist('count open', () =>
        client.workflow.count(`TaskQueue = "${taskQueue}" AND ExecutionStatus = "Running"`),
      )
    ).count;
    executionsOnQueue = (
      await persist('count all', () => client.workflow.count(`TaskQueue = "${taskQueue}"`))
    ).count;
  } catch (err) {
    harnessErrors.push(errorText(err));
    note(`HARNESS ERROR: ${errorText(err)}`);
  }

  // ----- teardown (always), then check that nothing is left running
  const children: ChildProcess[] = [];
  try {
    if (worker) {
      const before = Date.now();
      const alive = worker.current !== null;
      await worker.stop(30_000);
      stats.workerDrained = alive ? `SIGTERM → exit in ${Date.now() - before} ms` : 'no worker was running';
      children.push(...worker.processes);
    }
    await connection?.close().catch(() => undefined);
    if (temporal) {
      await temporal.stop(30_000);
      children.push(...temporal.processes);
    }
  } catch (err) {
    harnessErrors.push(`teardown: ${errorText(err)}`);
  }
  const ledger = sandbox?.ledger() ?? [];
  const consents = sandbox?.consents() ?? [];
  const messages = [...(smtp?.messages ?? [])];
  const records = [...(proxy?.records ?? [])];
  const faultsLeft = sandbox?.faults() ?? [];
  await Promise.allSettled([proxy?.close(), sandbox?.close(), smtp?.close()]);
  const stillRunning = children.filter((c) => c.exitCode === null && c.signalCode === null);
  rmSync(dir, { recursive: true, force: true });

  // ----- invariants
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

  // ----- figures
  const figures: FigureRow[] = [];
  const add = (section: string, figure: string, value: number | string | null): void =>
    void figures.push({ section, figure, value: value ?? 'n/a' });
  const finishedAt = Date.now();
  add('run', 'workflows', plan.groups.length);
  add('run', 'wall time (s)', Math.round((finishedAt - startedAt) / 1000));
  add('run', 'chaos phase (s)', Math.round(options.durationMs / 1000));
  add('run', 'seed', options.seed);
  add('run', 'worker entry', workerEntry);
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
  const { log: _log, ...shownOptions } = options;
  return {
    ok,
    startedAt: new Date(startedAt).toISOString(),
    finishedAt: new Date(finishedAt).toISOString(),
    wallMs: finishedAt - startedAt,
    options: shownOptions,
    workerEntry,
    taskQueue,
    checks,
    figures,
    stats: { ...stats, faultAnswers: sum(Object.values(stats.faultsInjected)) },
    retryAfter,
    timeline,
    wrongGroups,
    slowestApprovals,
    stuck,
    harnessErrors,
    ...(ok
      ? {}
      : {
          logs: {
            worker: worker?.stderrTail.slice(-60) ?? [],
            temporal: temporal?.stderrTail.slice(-30) ?? [],
          },
        }),
  };
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
  const status = await Promise.race([
    handle.query<unknown>('status').catch((err: unknown) => `query failed: ${errorText(err)}`),
    delay(5_000).then(() => 'query timed out'),
  ]);
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
    private readonly stats: { faultsInjected: Record<string, number>; faultsUnused: number },
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
      for (;;) {
        const remaining = left();
        if (remaining === 0) break;
        const elapsed = Date.now() - startedAt;
        if (elapsed >= maxMs || (elapsed >= windowMs && spec.count - remaining >= wanted)) break;
        await delay(50);
      }
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
    TEMPORAL_NAMESPACE: 'default',
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

interface ActionContext {
  sandbox: Sandbox;
  proxy: RecordingProxy;
  smtp: SmtpCatcher;
  temporal: TemporalServerControl;
  worker: WorkerControl;
  bursts: FaultBursts;
  note: (event: string) => void;
  stats: {
    workerKills: number;
    workerKillsSkipped: number;
    temporalRestarts: number;
    temporalDowntimeMs: number;
    temporalStopsGraceful: number;
    heygenOutageMs: number;
    smtpDowntimeMs: number;
    faultsInjected: Record<string, number>;
    faultsUnused: number;
    pageApprovals: number;
    pageApprovalFallbacks: number;
    targeted429: string;
  };
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
      const until = Date.now() + 180_000;
      for (;;) {
        const hit = ctx.proxy.records.find(
          (r) => r.status === 429 && r.retryAfter === retryAfter && r.respondedAt !== null && !seen.has(r.id),
        );
        if (hit && hit.respondedAt !== null && !hit.clientAborted) {
          // Give the worker time to read the 429 and close its gate (and write the gate file) first.
          await delay(Math.max(0, hit.respondedAt + 300 - Date.now()));
          await killAndRestartWorker(ctx, `300 ms after a 429 with Retry-After ${retryAfter} s`);
          stats.targeted429 = `yes (Retry-After ${retryAfter} s, SIGKILL 300 ms after)`;
          await burst;
          return;
        }
        if (Date.now() > until) throw new Error('the targeted 429 was not answered within 180 s');
        await delay(20);
      }
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
  for (;;) {
    const latest = ctx.smtp.messages
      .filter((m) => m.to.some((to) => to.toLowerCase() === email.toLowerCase()))
      .at(-1);
    const link = latest ? consentLinkIn(latest.text) : null;
    if (link) {
      const page = await fetch(link);
      await page.text();
      if (page.status !== 200) throw new Error(`consent page answered ${page.status}`);
      const agreed = await fetch(`${link}/agree`, { method: 'POST', redirect: 'manual' });
      await agreed.text();
      if (agreed.status !== 303) throw new Error(`"I agree" answered ${agreed.status}`);
      return true;
    }
    if (Date.now() > deadline) return false;
    await delay(1_000);
  }
}
