/**
 * One benchmark phase: M consent flows of one system (the product workflow or the baseline loop)
 * against a fresh sandbox, the real SMTP server and the worker child, then everything measured from
 * the sandbox ledger, the worker's log of attempts and requests, and the real Temporal histories.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { WorkflowHandle, WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import type { AvatarConsentInput, AvatarConsentResult } from '../../src/contract/index.js';
import { DEFAULT_COMPLETION_SIGNAL } from '../../src/contract/index.js';
import type { Gateway } from '../../src/gateway/index.js';
import { startSandbox } from '../heygen-sandbox/index.js';
import { startAvatarConsent } from '../../src/starter.js';
import type { SmtpCatcher } from '../kit/smtp-catcher.js';
import type { BaselineInput } from './baseline-workflows.js';
import { countHistoryCost, fetchRunChain, milestonesOf, signalReceivedAt } from './history.js';
import type { HistoryCost, Milestones } from './history.js';
import type { RequestRecord } from './ipc.js';
import { People } from './person.js';
import type { Person } from './person.js';
import {
  CALLER_TASK_QUEUE,
  NAMESPACE,
  cpuSecondsOf,
  machineBusyCpuSeconds,
  startWorkerChild,
} from './stack.js';
import type { Stack } from './stack.js';
import { within } from '../kit/child-process.js';
import { eventually } from '../kit/eventually.js';
import { mapLimit } from './stats.js';

export type System = 'product' | 'baseline';

export const SANDBOX_API_KEY = 'bench-key';
export const EMAIL_FROM = 'Avatar consent <consent@bench.example>';
const START_CONCURRENCY = 32;
const HISTORY_CONCURRENCY = 12;

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** The README's policy defaults, every duration divided by `scale` (whole milliseconds). */
export function scaledPolicy(scale: number): NonNullable<AvatarConsentInput['policy']> {
  const ms = (value: number) => `${Math.max(1, Math.round(value / scale))}ms`;
  return {
    pollInitialInterval: ms(15_000),
    pollBackoffCoefficient: 2,
    pollMaxInterval: ms(30 * 60_000),
    pollWindow: ms(4 * HOUR),
    linkTtl: ms(23 * HOUR),
    maxLinkRefreshes: 6,
    deadline: ms(7 * DAY),
  };
}

export function baselineTimings(
  scale: number,
): Omit<BaselineInput, 'groupId' | 'recipient' | 'notifyWorkflowId'> {
  const ms = (value: number) => Math.max(1, Math.round(value / scale));
  return {
    pollIntervalMs: ms(60_000),
    deadlineMs: ms(7 * DAY),
    retryInitialIntervalMs: ms(1_000),
    retryMaximumIntervalMs: ms(100_000),
  };
}

export interface FlowPlan {
  index: number;
  /** Real ms from the first email to approval. */
  waitMs: number;
  followRedirect: boolean;
  /** Approved exactly 24 h (scaled) after the first email: the 24-hour cost cohort. */
  day: boolean;
}

export interface FlowResult {
  index: number;
  day: boolean;
  followRedirect: boolean;
  waitMs: number;
  groupId: string;
  workflowId: string;
  startedAt: number;
  firstRunId?: string;
  outcome: string;
  /** When the sandbox recorded the approval (the person's click), epoch ms. */
  approvedAt?: number;
  /** When the caller's workflow received avatarConsentCompleted (its history), epoch ms. */
  signalAt?: number;
  latencyMs?: number;
  emails: number;
  redirectStatus?: number;
  heygenRequests: number;
  heygen429: number;
  cost?: HistoryCost;
  /** Milliseconds after the approval: the nudge recorded, the approval seen by a poll, the signal sent. */
  afterApproval?: { checkNow?: number; seen?: number; signalSent?: number; redirectDone?: number };
  error?: string;
}

export interface RequestSummary {
  /** Every HeyGen API request the sandbox received. */
  total: number;
  /** 429s the sandbox sent (ledger) and the client received (its own log). */
  rateLimitedByServer: number;
  rateLimitedSeenByClient: number;
  /** Requests sent while an earlier 429's Retry-After had not yet passed (must be 0). */
  insideRetryAfter: number;
  insideRetryAfterExamples: Array<{ afterMs: number; method: string; path: string }>;
}

export interface PhaseResult {
  label: string;
  system: System;
  flows: FlowResult[];
  firstStartAt: number;
  lastStartAt: number;
  lastSignalAt: number;
  /** Peak RSS, and RSS once a second (seconds since the first start, MB). */
  worker: { peakRss: number; rssMb: Array<[number, number]> };
  requests: RequestSummary;
  attemptsFromWorkerLogOnly: number;
  /**
   * CPU seconds used during the phase (first start to last flow done) by each process, the wall time,
   * and what the rest of the machine used meanwhile (other people's jobs on a shared machine skew results).
   */
  cpu: { wallSeconds: number; devServer: number; worker: number; bench: number; otherProcesses: number };
}

export interface PhaseConfig {
  label: string;
  system: System;
  stack: Stack;
  smtp: SmtpCatcher;
  gateway: { gateway: Gateway; secretText: string } | null;
  scale: number;
  rateLimit: number;
  plans: FlowPlan[];
  /** Consents started per second; null: as fast as START_CONCURRENCY allows. */
  startRate: number | null;
  runTag: string;
  bundlePath: string;
  logFile: string;
  /** Fetch each consent's histories and count events and actions (the cost phases). */
  collectCosts: boolean;
  /** How long to wait for the flows once all are started (beyond the longest approval wait). */
  graceMs: number;
  progress: (line: string) => void;
}

/** Requests sent in [response time, response time + Retry-After) of an earlier 429. */
export function countInsideRetryAfter(requests: readonly RequestRecord[]): {
  rateLimited: number;
  inside: number;
  /** Up to 20 of them: ms after the 429's response arrived, method, path. */
  examples: Array<{ afterMs: number; method: string; path: string }>;
} {
  const windows: Array<[number, number]> = [];
  for (const [, respondedAt, status, retryAfter] of requests) {
    if (status !== 429 || retryAfter === null) continue;
    const seconds = /^\d+$/.test(retryAfter.trim()) ? Number(retryAfter.trim()) * 1000 : undefined;
    const waitMs = seconds ?? Math.max(0, Date.parse(retryAfter) - respondedAt);
    if (Number.isFinite(waitMs) && waitMs > 0) windows.push([respondedAt, respondedAt + waitMs]);
  }
  windows.sort((a, b) => a[0] - b[0]);
  const merged: Array<[number, number]> = [];
  for (const w of windows) {
    const last = merged.at(-1);
    if (last && w[0] <= last[1]) last[1] = Math.max(last[1], w[1]);
    else merged.push([...w]);
  }
  let inside = 0;
  const examples: Array<{ afterMs: number; method: string; path: string }> = [];
  for (const [sentAt, , , , method, path] of requests) {
    // Binary search for the last window starting at or before sentAt.
    let lo = 0;
    let hi = merged.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (merged[mid]![0] <= sentAt) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    // Strictly after the response arrived: a request sent in the same instant was already on its way.
    if (found >= 0 && sentAt > merged[found]![0] && sentAt < merged[found]![1]) {
      inside += 1;
      // The nearest 429 answered before this request was sent.
      const cause = windows.filter(([start]) => start <= sentAt).at(-1);
      if (examples.length < 20)
        examples.push({ afterMs: Math.round((sentAt - (cause?.[0] ?? sentAt)) * 1000) / 1000, method, path });
    }
  }
  return { rateLimited: windows.length, inside, examples };
}

export async function runPhase(config: PhaseConfig): Promise<PhaseResult> {
  const { stack, system, plans, label } = config;
  const client = stack.env.client;
  const taskQueue = `bench-${label}-${config.runTag}`;
  const sandbox = await startSandbox({
    apiKeys: [SANDBOX_API_KEY],
    rateLimit: { limit: config.rateLimit, windowMs: 1_000 },
  });
  const worker = await startWorkerChild(
    {
      type: 'start',
      system,
      temporalAddress: stack.env.address,
      namespace: NAMESPACE,
      taskQueue,
      bundlePath: config.bundlePath,
      heygenUrl: sandbox.url,
      heygenApiKey: SANDBOX_API_KEY,
      smtpUrl: config.smtp.url,
      emailFrom: EMAIL_FROM,
      ...(config.gateway
        ? {
            returnLinks: {
              publicBaseUrl: config.gateway.gateway.url,
              secretText: config.gateway.secretText,
              ttlMs: 8 * DAY,
            },
          }
        : {}),
      record: true,
    },
    config.logFile,
  );

  const people = new People(config.smtp, config.gateway?.gateway.url ?? null);
  const flows: Array<
    FlowResult & { person: Person; handle?: WorkflowHandle; callerId: string; done?: Promise<void> }
  > = plans.map((plan) => {
    const groupId = `ag_${config.runTag}_${label}_${plan.index}`.replace(/[^A-Za-z0-9_-]/g, '_');
    sandbox.createGroup({ id: groupId, name: `Bench avatar ${plan.index}` });
    const person: Person = {
      email: `p${plan.index}.${label}.${config.runTag}@bench.example`.toLowerCase(),
      waitMs: plan.waitMs,
      followRedirect: plan.followRedirect,
      emails: 0,
    };
    people.add(person);
    return {
      index: plan.index,
      day: plan.day,
      followRedirect: plan.followRedirect,
      waitMs: plan.waitMs,
      groupId,
      workflowId: system === 'product' ? `avatar-consent-${groupId}` : `baseline-consent-${groupId}`,
      callerId: `bench-caller-${groupId}`,
      startedAt: 0,
      outcome: 'not_started',
      emails: 0,
      heygenRequests: 0,
      heygen429: 0,
      person,
    };
  });
  people.start();

  const cpuAtStart = {
    devServer: cpuSecondsOf(stack.serverPid),
    worker: cpuSecondsOf(worker.pid),
    bench: process.cpuUsage(),
    machine: machineBusyCpuSeconds(),
  };
  const policy = scaledPolicy(config.scale);
  const timings = baselineTimings(config.scale);
  let inFlight = 0;
  const t0 = Date.now();
  config.progress(`${label}: starting ${flows.length} flows`);
  for (const [i, flow] of flows.entries()) {
    if (config.startRate !== null) {
      const due = t0 + (i * 1000) / config.startRate;
      if (due > Date.now()) await sleep(due - Date.now());
    }
    await eventually('a start slot', () => inFlight < START_CONCURRENCY, {
      intervalMs: 2,
      timeoutMs: 120_000,
    });
    inFlight += 1;
    flow.startedAt = Date.now();
    const starting = (async () => {
      await client.workflow.start('benchCallerWorkflow', {
        taskQueue: CALLER_TASK_QUEUE,
        workflowId: flow.callerId,
      });
      const recipient = { email: flow.person.email, name: 'Bench Person' };
      const handle: WorkflowHandle =
        system === 'product'
          ? await startAvatarConsent(
              client,
              { groupId: flow.groupId, recipient, notify: { workflowId: flow.callerId }, policy },
              { taskQueue },
            )
          : await client.workflow.start('baselineConsentWorkflow', {
              taskQueue,
              workflowId: flow.workflowId,
              args: [
                {
                  groupId: flow.groupId,
                  recipient,
                  notifyWorkflowId: flow.callerId,
                  ...timings,
                } satisfies BaselineInput,
              ],
            });
      flow.handle = handle;
      // start() hands back the run it started; the product's typed handle just does not say so.
      flow.firstRunId =
        (handle as Partial<WorkflowHandleWithFirstExecutionRunId>).firstExecutionRunId ??
        (await handle.describe()).runId;
      flow.outcome = 'running';
    })();
    flow.done = starting
      .finally(() => {
        inFlight -= 1;
      })
      .then(() => flow.handle!.result() as Promise<AvatarConsentResult>)
      .then(
        (result) => {
          flow.outcome = result.outcome;
        },
        (err: unknown) => {
          flow.outcome = 'error';
          flow.error = err instanceof Error ? err.message : String(err);
        },
      );
  }
  const lastStartAt = Date.now();
  const longestWait = Math.max(0, ...plans.map((p) => (Number.isFinite(p.waitMs) ? p.waitMs : 0)));
  config.progress(
    `${label}: all started in ${((lastStartAt - t0) / 1000).toFixed(1)} s; waiting up to ${((longestWait + config.graceMs) / 1000).toFixed(0)} s`,
  );

  const everyFlow = Promise.allSettled(flows.map((f) => f.done ?? Promise.resolve()));
  const report = setInterval(() => {
    const finished = flows.filter((f) => f.outcome !== 'running' && f.outcome !== 'not_started').length;
    config.progress(`${label}: ${finished}/${flows.length} finished`);
  }, 15_000);
  // Flows still running by then count as timed out (below): the phase reports, it does not fail.
  await within(longestWait + config.graceMs, 'every flow to finish', everyFlow).catch(() => undefined);
  clearInterval(report);
  const benchCpu = process.cpuUsage(cpuAtStart.bench);
  const cpu = {
    wallSeconds: (Date.now() - t0) / 1000,
    devServer: cpuSecondsOf(stack.serverPid) - cpuAtStart.devServer,
    worker: cpuSecondsOf(worker.pid) - cpuAtStart.worker,
    bench: (benchCpu.user + benchCpu.system) / 1e6,
    otherProcesses: 0,
  };
  cpu.otherProcesses = Math.max(
    0,
    machineBusyCpuSeconds() - cpuAtStart.machine - cpu.devServer - cpu.worker - cpu.bench,
  );

  // Anything still running is a failure of this phase: stop it so the next phase starts clean.
  await mapLimit(
    flows.filter((f) => f.outcome === 'running' || f.outcome === 'not_started'),
    16,
    async (flow) => {
      flow.outcome = flow.outcome === 'running' ? 'timeout' : flow.outcome;
      await flow.handle?.terminate('benchmark phase timed out').catch(() => undefined);
      await client.workflow
        .getHandle(flow.callerId)
        .terminate('benchmark phase timed out')
        .catch(() => undefined);
    },
  );
  await people.stop();
  const workerReport = await worker.stop();
  const ledger = sandbox.ledger();
  const approvals = new Map<string, number>();
  for (const consent of sandbox.consents()) {
    if (consent.decision === 'approved' && consent.decidedAt !== null)
      approvals.set(consent.groupId, consent.decidedAt);
  }
  await sandbox.close();

  // HeyGen requests per flow, from the sandbox's ledger.
  const byPath = new Map<string, { total: number; limited: number }>();
  let apiRequests = 0;
  let rateLimitedByServer = 0;
  for (const entry of ledger) {
    if (!entry.path.startsWith('/v3/')) continue;
    apiRequests += 1;
    if (entry.status === 429) rateLimitedByServer += 1;
    const groupPath = entry.path.replace(/\/consent$/, '');
    const counts = byPath.get(groupPath) ?? { total: 0, limited: 0 };
    counts.total += 1;
    if (entry.status === 429) counts.limited += 1;
    byPath.set(groupPath, counts);
  }
  const retryAfter = countInsideRetryAfter(workerReport.requests);

  const attemptMap = new Map<string, number>();
  for (const [, runId, activityId, , attempt] of workerReport.attempts)
    attemptMap.set(`${runId}/${activityId}`, attempt);

  config.progress(
    `${label}: reading ${flows.length} caller histories${config.collectCosts ? ' and consent histories' : ''}`,
  );
  let attemptsFromWorkerLogOnly = 0;
  await mapLimit(flows, HISTORY_CONCURRENCY, async (flow) => {
    flow.emails = flow.person.emails;
    if (flow.person.redirectStatus !== undefined) flow.redirectStatus = flow.person.redirectStatus;
    if (flow.person.error && !flow.error) flow.error = `approval: ${flow.person.error}`;
    const counts = byPath.get(`/v3/avatars/${flow.groupId}`);
    flow.heygenRequests = counts?.total ?? 0;
    flow.heygen429 = counts?.limited ?? 0;
    const approvedAt = approvals.get(flow.groupId) ?? flow.person.approveSentAt;
    if (approvedAt !== undefined) flow.approvedAt = approvedAt;
    try {
      const callerHistory = await client.workflow.getHandle(flow.callerId).fetchHistory();
      const signalAt = signalReceivedAt(callerHistory.events ?? [], DEFAULT_COMPLETION_SIGNAL);
      if (signalAt !== undefined) flow.signalAt = signalAt;
    } catch {
      // No caller history: counted as not notified.
    }
    if (flow.signalAt !== undefined && flow.approvedAt !== undefined)
      flow.latencyMs = flow.signalAt - flow.approvedAt;
    if (config.collectCosts && flow.firstRunId) {
      const runs = await fetchRunChain(client, flow.workflowId, flow.firstRunId);
      flow.cost = countHistoryCost(runs, attemptMap);
      if (flow.approvedAt !== undefined) {
        const at: Milestones = milestonesOf(
          runs,
          system === 'product' ? 'pollConsentStatus' : 'checkConsentStatus',
        );
        const since = (t: number | undefined) => (t === undefined ? undefined : t - flow.approvedAt!);
        flow.afterApproval = {
          checkNow: since(at.checkNowAt),
          seen: since(at.approvalSeenAt),
          signalSent: since(at.signalSentAt),
          redirectDone: since(flow.person.redirectDoneAt),
        };
      }
      attemptsFromWorkerLogOnly += flow.cost.attemptsFromWorkerLogOnly;
    }
  });

  const signals = flows.map((f) => f.signalAt).filter((t): t is number => t !== undefined);
  return {
    label,
    system,
    flows: flows.map(
      ({ person: _person, handle: _handle, callerId: _callerId, done: _done, ...flow }) => flow,
    ),
    firstStartAt: t0,
    lastStartAt,
    lastSignalAt: signals.length > 0 ? Math.max(...signals) : Number.NaN,
    worker: {
      peakRss: workerReport.peakRss,
      rssMb: worker.samples
        .filter((_, i) => i % 5 === 0)
        .map(([at, rss]) => [Math.round((at - t0) / 100) / 10, Math.round(rss / 1024 / 1024)]),
    },
    requests: {
      total: apiRequests,
      rateLimitedByServer,
      rateLimitedSeenByClient: retryAfter.rateLimited,
      insideRetryAfter: retryAfter.inside,
      insideRetryAfterExamples: retryAfter.examples,
    },
    attemptsFromWorkerLogOnly,
    cpu,
  };
}
