/**
 * One benchmark phase: M consent flows of one system (the product, the control or the baseline
 * loop) against a fresh sandbox, the real SMTP server and the worker process(es), then everything
 * measured from the sandbox ledger, the workers' records of attempts and requests, and the real
 * Temporal histories. The product runs as deployed (dist/, configured by its environment), one
 * worker process or several on one task queue, optionally with 429s injected by the sandbox.
 */
import { readFileSync, watch } from 'node:fs';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { WorkflowHandle, WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import proto from '@temporalio/proto';
import type { AvatarConsentInput, AvatarConsentResult } from '../../src/contract/index.js';
import {
  DEFAULT_COMPLETION_SIGNAL,
  heygenTaskQueueFor,
  pollProgress,
  statusQuery,
} from '../../src/contract/index.js';
import type { Gateway } from '../../src/gateway/index.js';
import { parseRetryAfter } from '../../src/heygen/index.js';
import { startSandbox } from '../heygen-sandbox/index.js';
import type { Sandbox } from '../heygen-sandbox/index.js';
import { startAvatarConsent } from '../../src/starter.js';
import type { SmtpCatcher } from '../kit/smtp-catcher.js';
import type { BaselineInput } from './baseline-workflows.js';
import type { ControlInput } from './control-workflows.js';
import { countHistoryCost, fetchRunChain, milestonesOf, signalReceivedAt } from './history.js';
import type { HistoryCost, Milestones } from './history.js';
import { busiestWindow } from '../kit/busiest-window.js';
import { closureWrittenAt, matchRequests, retryAfterFigures } from './ledger-figures.js';
import type { RetryAfterFigures, SentRequest } from './ledger-figures.js';
import { People } from './person.js';
import type { Person } from './person.js';
import { productionEnv, waitForPollers } from './production-worker.js';
import {
  CALLER_TASK_QUEUE,
  NAMESPACE,
  cpuSecondsOf,
  machineBusyCpuSeconds,
  startWorkerChild,
} from './stack.js';
import type { Stack, WorkerChild, WorkerReport } from './stack.js';
import { within } from '../kit/child-process.js';
import { eventually } from '../kit/eventually.js';
import { mapLimit, max, summarize } from './stats.js';
import type { LatencySummary } from './stats.js';

export type System = 'product' | 'control' | 'baseline';

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

/** The control's polling, on the product's scaled schedule (first interval, cap, deadline). */
export function controlTimings(
  scale: number,
): Pick<ControlInput, 'pollInitialIntervalMs' | 'pollMaxIntervalMs' | 'deadlineMs'> {
  const ms = (value: number) => Math.max(1, Math.round(value / scale));
  return { pollInitialIntervalMs: ms(15_000), pollMaxIntervalMs: ms(30 * 60_000), deadlineMs: ms(7 * DAY) };
}

export interface RequestSummary {
  /** Every HeyGen API request the sandbox received. */
  total: number;
  /** 429s the sandbox sent (ledger), and of those the ones its fault API injected. */
  rateLimitedByServer: number;
  injected429: number;
  /** Requests inside a Retry-After window, from the ledger and the workers' records (docs/benchmark.md). */
  retryAfter: RetryAfterFigures;
  /** Worker records with no ledger entry (requests that never reached the sandbox). */
  unmatchedRecords: number;
  /** Most requests the sandbox received within any 1 s, and within any 10 s divided by 10. */
  peakPerSecond: number;
  peakPerSecondOver10s: number;
  /**
   * With gate files: ms from a 429's headers reaching its process until that process had written the
   * closure to its gate file (what another process on the host can see), over the phase's 429s.
   */
  gateFileLagMs: LatencySummary | null;
}

/** The status query against the sandbox, for one waiting consent at one moment. */
export interface StatusSample {
  groupId: string;
  /** ms after the phase's first start. */
  atMs: number;
  /** pollProgress(status, now).polls: what the status says has been polled by now. */
  statusPolls: number;
  /** GETs of the group the sandbox had received after its consent request (the polls). */
  sandboxPolls: number;
}

/** The most a task queue held waiting for a worker during the phase, sampled once a second. */
export interface QueueBacklog {
  /** Tasks waiting (the server's approximate count; sticky workflow tasks are not counted). */
  maxCount: number;
  /** The oldest task's wait, seconds. */
  maxAgeSeconds: number;
}

export interface PhaseResult {
  label: string;
  system: System;
  /** Worker processes, their gate files and whether the QueueGate was on (product). */
  workers: { count: number; gateFiles: number; queueGate: boolean };
  heygenMaxRps: number | null;
  flows: FlowResult[];
  firstStartAt: number;
  lastStartAt: number;
  lastSignalAt: number;
  /** Peak RSS of the busiest worker process, and RSS once a second (seconds since the first start, MB). */
  worker: { peakRss: number; rssMb: Array<[number, number]> };
  requests: RequestSummary;
  /** The phase's queues: workflow tasks, activity tasks, and (product) the HeyGen activity queue. */
  backlog: { workflow: QueueBacklog; activity: QueueBacklog; heygen: QueueBacklog | null };
  statusSamples: StatusSample[];
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
  /** The product's HEYGEN_MAX_RPS. */
  heygenMaxRps: number;
  /** What-if variables for the product's workers (--product-env). */
  productEnv: Record<string, string>;
  /** Product worker processes on the task queue: each one's HEYGEN_RATE_GATE_FILE (null: none). */
  workers?: Array<{ gateFile: string | null }>;
  /** The product's HEYGEN_QUEUE_GATE (default true, as deployed). */
  queueGate?: boolean;
  /** 429s injected through the sandbox's fault API while the flows run. */
  faults?: { everyMs: number; retryAfter: string } | null;
  /** Query the status of a few waiting 24-hour consents at these ms after the first start (product). */
  statusSamplesAtMs?: number[];
  plans: FlowPlan[];
  /** Consents started per second; null: as fast as START_CONCURRENCY allows. */
  startRate: number | null;
  runTag: string;
  /** The loop's workflow bundle (control, baseline); the product runs dist/'s. */
  bundlePath: string;
  logFile: string;
  /** Fetch each consent's histories and count events and actions (the cost phases). */
  collectCosts: boolean;
  /** How long to wait for the flows once all are started (beyond the longest approval wait). */
  graceMs: number;
  progress: (line: string) => void;
}

const TaskQueueType = proto.temporal.api.enums.v1.TaskQueueType;

const WORKFLOW_ID_PREFIX: Record<System, string> = {
  product: 'avatar-consent-',
  control: 'control-consent-',
  baseline: 'baseline-consent-',
};
const STATUS_SAMPLE_CONSENTS = 5;

async function startWorkers(
  config: PhaseConfig,
  taskQueue: string,
  sandbox: Sandbox,
): Promise<WorkerChild[]> {
  const { stack, system } = config;
  if (system !== 'product') {
    const child = await startWorkerChild(
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
        record: true,
      },
      config.logFile,
    );
    return [child];
  }
  const workers = config.workers ?? [{ gateFile: null }];
  const children = await Promise.all(
    workers.map(({ gateFile }, i) =>
      startWorkerChild(
        { type: 'start', system, heygenUrl: sandbox.url, record: true },
        workers.length === 1 ? config.logFile : config.logFile.replace(/\.log$/, `-${i + 1}.log`),
        productionEnv({
          temporalAddress: stack.env.address,
          taskQueue,
          heygenUrl: sandbox.url,
          heygenApiKey: SANDBOX_API_KEY,
          smtpUrl: config.smtp.url,
          emailFrom: EMAIL_FROM,
          gateway: config.gateway
            ? { url: config.gateway.gateway.url, secretText: config.gateway.secretText }
            : null,
          heygenMaxRps: config.heygenMaxRps,
          queueGate: config.queueGate ?? true,
          gateFile,
          extra: config.productEnv,
        }),
      ),
    ),
  );
  try {
    await waitForPollers(stack.env.client, taskQueue, { workers: children.length });
  } catch (error) {
    await Promise.all(children.map((child) => child.stop().catch(() => undefined)));
    throw error;
  }
  return children;
}

/**
 * Watches the workers' gate files and keeps every deadline they held (`monotonicUntil`): each write
 * is a closure, so the 429s can be matched with the moment their closure reached the file.
 */
function watchGateFiles(files: readonly string[]): { closures: Map<string, number[]>; close(): void } {
  const closures = new Map(files.map((file) => [file, [] as number[]]));
  const watchers = [...new Set(files.map((file) => dirname(file)))].map((dir) =>
    watch(dir, (_event, name) => {
      const file = name ? join(dir, name) : '';
      const seen = closures.get(file);
      if (!seen) return;
      try {
        const deadline: unknown = (JSON.parse(readFileSync(file, 'utf8')) as { monotonicUntil?: unknown })
          .monotonicUntil;
        if (typeof deadline === 'number') seen.push(deadline);
      } catch {
        // Replaced again meanwhile: the next event reads it.
      }
    }),
  );
  return { closures, close: () => watchers.forEach((w) => w.close()) };
}

/** The HeyGen figures of a phase: from the ledger, with the workers' records naming each sender. */
function requestSummary(
  ledgerEntries: ReturnType<Sandbox['ledger']>,
  reports: readonly WorkerReport[],
  retryAfterSeconds: number,
  gateFiles: { ofPid: Map<number, string>; closures: Map<string, number[]> } | null,
): RequestSummary {
  const api = ledgerEntries.filter((entry) => entry.path.startsWith('/v3/'));
  const records: SentRequest[] = reports.flatMap((report) => {
    const deadlines = gateFiles?.closures.get(gateFiles.ofPid.get(report.pid) ?? '') ?? null;
    return report.requests.map(([sentAt, respondedAt, bodyReadAt, status, retryAfter, method, path]) => {
      const record: SentRequest = {
        pid: report.pid,
        sentAt,
        respondedAt,
        bodyReadAt,
        status,
        retryAfter,
        method,
        path,
      };
      // The sandbox's Retry-After is seconds, so the time it is read at does not matter.
      const waitMs = parseRetryAfter(retryAfter, Date.now());
      if (status === 429 && deadlines)
        record.gateClosedAt = closureWrittenAt({ respondedAt, waitMs }, deadlines);
      return record;
    });
  });
  const { requests, unmatchedRecords } = matchRequests(
    api.map(({ at, method, path, status }) => ({ at, method, path, status })),
    records,
  );
  const arrivals = api.map((entry) => entry.at);
  return {
    total: api.length,
    rateLimitedByServer: api.filter((entry) => entry.status === 429).length,
    injected429: api.filter((entry) => entry.fault === 'rate_limit').length,
    retryAfter: retryAfterFigures(requests, {
      // The sandbox's own 429s ask for 1 s; injected ones for what the phase injects.
      fallbackRetryAfterMs: Math.max(1, retryAfterSeconds) * 1000,
      queueClosedAt: reports.flatMap((report) => report.queueClosedAt),
    }),
    unmatchedRecords,
    peakPerSecond: busiestWindow(arrivals, 1_000).count,
    peakPerSecondOver10s: busiestWindow(arrivals, 10_000).count / 10,
    gateFileLagMs: gateFiles
      ? summarize(
          records
            .filter((r) => r.gateClosedAt !== undefined && r.gateClosedAt !== null)
            .map((r) => r.gateClosedAt! - r.respondedAt),
        )
      : null,
  };
}

export async function runPhase(config: PhaseConfig): Promise<PhaseResult> {
  const { stack, system, plans, label } = config;
  const client = stack.env.client;
  const taskQueue = `bench-${label}-${config.runTag}`;
  const sandbox = await startSandbox({
    apiKeys: [SANDBOX_API_KEY],
    rateLimit: { limit: config.rateLimit, windowMs: 1_000 },
  });
  const gateFileList = [
    ...new Set((config.workers ?? []).map((w) => w.gateFile).filter((f): f is string => f !== null)),
  ];
  const gateWatch = system === 'product' && gateFileList.length > 0 ? watchGateFiles(gateFileList) : null;
  const workers = await startWorkers(config, taskQueue, sandbox);

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
      workflowId: `${WORKFLOW_ID_PREFIX[system]}${groupId}`,
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

  const workerCpu = () => workers.reduce((sum, w) => sum + cpuSecondsOf(w.pid), 0);
  const cpuAtStart = {
    devServer: cpuSecondsOf(stack.serverPid),
    worker: workerCpu(),
    bench: process.cpuUsage(),
    machine: machineBusyCpuSeconds(),
  };
  const policy = scaledPolicy(config.scale);
  let inFlight = 0;
  const t0 = Date.now();
  const backlogs = sampleBacklogs(client, taskQueue, system === 'product');
  let faultTimer: NodeJS.Timeout | undefined;
  if (config.faults) {
    const { everyMs, retryAfter } = config.faults;
    // One 429 at a time: the next only once the last was used up (a quiet sandbox does not stack them).
    faultTimer = setInterval(() => {
      if (sandbox.faults().length === 0)
        sandbox.injectFault({ kind: 'rate_limit', count: 1, retryAfter, pathPrefix: '/v3/' });
    }, everyMs);
  }
  config.progress(`${label}: starting ${flows.length} flows on ${workers.length} worker process(es)`);
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
      const loop = (type: string, args: BaselineInput | ControlInput) =>
        client.workflow.start(type, { taskQueue, workflowId: flow.workflowId, args: [args] });
      const common = { groupId: flow.groupId, recipient, notifyWorkflowId: flow.callerId };
      const handle: WorkflowHandle =
        system === 'product'
          ? await startAvatarConsent(
              client,
              { groupId: flow.groupId, recipient, notify: { workflowId: flow.callerId }, policy },
              { taskQueue },
            )
          : system === 'control'
            ? await loop('controlConsentWorkflow', { ...common, ...controlTimings(config.scale) })
            : await loop('baselineConsentWorkflow', { ...common, ...baselineTimings(config.scale) });
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

  const statusSampling =
    system === 'product' && config.statusSamplesAtMs
      ? sampleStatuses(config.statusSamplesAtMs, t0, flows, sandbox, client)
      : Promise.resolve([]);
  const everyFlow = Promise.allSettled(flows.map((f) => f.done ?? Promise.resolve()));
  const report = setInterval(() => {
    const finished = flows.filter((f) => f.outcome !== 'running' && f.outcome !== 'not_started').length;
    config.progress(`${label}: ${finished}/${flows.length} finished`);
  }, 15_000);
  // Flows still running by then count as timed out (below): the phase reports, it does not fail.
  await within(longestWait + config.graceMs, 'every flow to finish', everyFlow).catch(() => undefined);
  clearInterval(report);
  clearInterval(faultTimer);
  const backlog = await backlogs.stop();
  const benchCpu = process.cpuUsage(cpuAtStart.bench);
  const cpu = {
    wallSeconds: (Date.now() - t0) / 1000,
    devServer: cpuSecondsOf(stack.serverPid) - cpuAtStart.devServer,
    worker: workerCpu() - cpuAtStart.worker,
    bench: (benchCpu.user + benchCpu.system) / 1e6,
    otherProcesses: 0,
  };
  cpu.otherProcesses = Math.max(
    0,
    machineBusyCpuSeconds() - cpuAtStart.machine - cpu.devServer - cpu.worker - cpu.bench,
  );
  const statusSamples = await statusSampling;

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
  const workerReports = await Promise.all(workers.map((w) => w.stop()));
  const ledger = sandbox.ledger();
  const approvals = new Map<string, number>();
  for (const consent of sandbox.consents()) {
    if (consent.decision === 'approved' && consent.decidedAt !== null)
      approvals.set(consent.groupId, consent.decidedAt);
  }
  await sandbox.close();

  // HeyGen requests per flow, from the sandbox's ledger.
  const byPath = new Map<string, { total: number; limited: number }>();
  for (const entry of ledger) {
    if (!entry.path.startsWith('/v3/')) continue;
    const groupPath = entry.path.replace(/\/consent$/, '');
    const counts = byPath.get(groupPath) ?? { total: 0, limited: 0 };
    counts.total += 1;
    if (entry.status === 429) counts.limited += 1;
    byPath.set(groupPath, counts);
  }
  gateWatch?.close();
  const requests = requestSummary(
    ledger,
    workerReports,
    Number(config.faults?.retryAfter ?? 1),
    gateWatch
      ? {
          ofPid: new Map(
            workerReports.map((report, i) => [report.pid, config.workers?.[i]?.gateFile ?? ''] as const),
          ),
          closures: gateWatch.closures,
        }
      : null,
  );

  const attemptMap = new Map<string, number>();
  for (const [, runId, activityId, , attempt] of workerReports.flatMap((r) => r.attempts))
    attemptMap.set(
      `${runId}/${activityId}`,
      Math.max(attempt, attemptMap.get(`${runId}/${activityId}`) ?? 0),
    );

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
        const at: Milestones = milestonesOf(runs, POLL_ACTIVITY[system]);
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
  const busiestIndex = workerReports.reduce(
    (best, report, i) => (report.peakRss > workerReports[best]!.peakRss ? i : best),
    0,
  );
  const busiest = workers[busiestIndex];
  return {
    label,
    system,
    workers: {
      count: workers.length,
      gateFiles: new Set((config.workers ?? []).map((w) => w.gateFile).filter((f) => f !== null)).size,
      queueGate: system === 'product' && (config.queueGate ?? true),
    },
    heygenMaxRps: system === 'product' ? config.heygenMaxRps : null,
    flows: flows.map(
      ({ person: _person, handle: _handle, callerId: _callerId, done: _done, ...flow }) => flow,
    ),
    firstStartAt: t0,
    lastStartAt,
    lastSignalAt: signals.length > 0 ? Math.max(...signals) : Number.NaN,
    worker: {
      peakRss: max(workerReports.map((r) => r.peakRss)),
      rssMb: (busiest?.samples ?? [])
        .filter((_, i) => i % 5 === 0)
        .map(([at, rss]) => [Math.round((at - t0) / 100) / 10, Math.round(rss / 1024 / 1024)]),
    },
    requests,
    backlog,
    statusSamples,
    attemptsFromWorkerLogOnly,
    cpu,
  };
}

/** Samples the backlog of the phase's queues once a second until stopped. */
function sampleBacklogs(
  client: Stack['env']['client'],
  taskQueue: string,
  withHeygen: boolean,
): { stop(): Promise<PhaseResult['backlog']> } {
  const queues = [
    ['workflow', taskQueue, TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW],
    ['activity', taskQueue, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY],
    ...(withHeygen
      ? ([['heygen', heygenTaskQueueFor(taskQueue), TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY]] as const)
      : []),
  ] as const;
  const most = new Map<string, QueueBacklog>(queues.map(([key]) => [key, { maxCount: 0, maxAgeSeconds: 0 }]));
  const sample = async () => {
    await Promise.all(
      queues.map(async ([key, name, type]) => {
        const { stats } = await client.workflowService.describeTaskQueue({
          namespace: NAMESPACE,
          taskQueue: { name },
          taskQueueType: type,
          reportStats: true,
        });
        const seen = most.get(key)!;
        const age = stats?.approximateBacklogAge;
        seen.maxCount = Math.max(seen.maxCount, Number(stats?.approximateBacklogCount ?? 0));
        seen.maxAgeSeconds = Math.max(
          seen.maxAgeSeconds,
          Number(age?.seconds ?? 0) + (age?.nanos ?? 0) / 1e9,
        );
      }),
    ).catch(() => undefined);
  };
  let sampling = sample();
  const timer = setInterval(() => {
    sampling = sampling.then(sample);
  }, 1_000);
  return {
    async stop() {
      clearInterval(timer);
      await sampling;
      return {
        workflow: most.get('workflow')!,
        activity: most.get('activity')!,
        heygen: most.get('heygen') ?? null,
      };
    },
  };
}

const POLL_ACTIVITY: Record<System, string> = {
  product: 'pollConsentStatus',
  control: 'pollConsentStatus',
  baseline: 'checkConsentStatus',
};

/**
 * At each moment, the status of a few waiting 24-hour consents through `pollProgress`, beside the
 * polls the sandbox had received for the group by then (its GETs after the consent request).
 */
async function sampleStatuses(
  atMs: readonly number[],
  t0: number,
  flows: ReadonlyArray<FlowResult & { handle?: WorkflowHandle; person: Person }>,
  sandbox: Sandbox,
  client: Stack['env']['client'],
): Promise<StatusSample[]> {
  const samples: StatusSample[] = [];
  for (const offset of atMs) {
    await sleep(Math.max(0, t0 + offset - Date.now()));
    const waiting = flows
      .filter((f) => f.day && f.outcome === 'running' && f.person.firstEmailAt !== undefined)
      .slice(0, STATUS_SAMPLE_CONSENTS);
    for (const flow of waiting) {
      try {
        const status = await client.workflow.getHandle(flow.workflowId).query(statusQuery);
        const now = Date.now();
        const path = `/v3/avatars/${flow.groupId}`;
        const ledger = sandbox.ledger();
        const requested = ledger.find(
          (e) => e.method === 'POST' && e.path === `${path}/consent` && e.status === 200,
        );
        const sandboxPolls = ledger.filter(
          (e) => e.method === 'GET' && e.path === path && requested !== undefined && e.at > requested.at,
        ).length;
        samples.push({
          groupId: flow.groupId,
          atMs: now - t0,
          statusPolls: pollProgress(status, now).polls,
          sandboxPolls,
        });
      } catch {
        // Finished meanwhile: nothing to compare.
      }
    }
  }
  return samples;
}
