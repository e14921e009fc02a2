/**
 * `--hold N`: N consents waiting at once on one production worker (`node dist/worker.js`, configured
 * only through its environment): its RSS idle and with all N waiting, then approvals through the
 * consent page and the gateway's redirect (evicted workflows must wake at once), then cancel the rest.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { statusQuery, workflowIdForGroup } from '../../src/contract/index.js';
import { startAvatarConsent } from '../../src/starter.js';
import { startSandbox } from '../heygen-sandbox/index.js';
import type { Sandbox } from '../heygen-sandbox/index.js';
import { within } from '../kit/child-process.js';
import { eventually, unlessTimeout } from '../kit/eventually.js';
import type { SmtpCatcher } from '../kit/smtp-catcher.js';
import { People } from './person.js';
import { EMAIL_FROM, SANDBOX_API_KEY } from './phase.js';
import { productionEnv, startProductionWorker } from './production-worker.js';
import type { ProcMemory } from './production-worker.js';
import { cpuSecondsOf, machineBusyCpuSeconds, startBenchGateway } from './stack.js';
import type { Stack } from './stack.js';
import { mapLimit, max, summarize } from './stats.js';
import type { LatencySummary } from './stats.js';

export interface HoldResult {
  held: number;
  /** How many reached "awaiting" (email sent, first poll made) before the timeout. */
  awaiting: number;
  /** From the first start until all were awaiting (or the timeout). */
  secondsToAwaiting: number;
  /** Until the last start returned. */
  secondsToStart: number;
  /** Worker RSS right after it started polling, before any consent (VmRSS, median over 3 s), bytes. */
  rssIdle: number;
  /** Worker RSS as soon as all were awaiting: the start's garbage not yet collected, bytes. */
  rssAtAwaiting: number;
  /**
   * Worker RSS with all of them waiting, settled: the highest sample of the last 10 s of an idle
   * window (HOLD_IDLE_MS), once V8 has given back what the start left behind, bytes.
   */
  rssWhileHolding: number;
  idleWindowMs: number;
  /** Groups that had not reached awaiting by the timeout: their status, for the report (up to 5). */
  notAwaiting: Array<{ groupId: string; phase: string | null; lastError: string | null; requests: string[] }>;
  /** The kernel's high-water mark over the whole hold (VmHWM), bytes. */
  peakRss: number;
  /** What the resident memory was made of while holding: anonymous (heaps) and file-backed, and threads. */
  memoryWhileHolding: ProcMemory | null;
  /** What-if environment of the worker (empty: as the product ships). */
  extraEnv: Record<string, string>;
  /** Consents approved afterwards through the consent page and the redirect. */
  approvals: {
    requested: number;
    completed: number;
    /** The sandbox's approval → the workflow closed (server time), seconds. */
    latency: LatencySummary;
    failures: string[];
  };
  cancelled: number;
  secondsToCancel: number;
  /** The whole hold, from the worker's start until it stopped. */
  wallSeconds: number;
  /** CPU seconds from the first start until all were awaiting: where the time went. */
  cpuToAwaiting: { devServer: number; worker: number; bench: number; otherProcesses: number };
  /** Consents in flight (started, no email yet) at most, and HEYGEN_MAX_RPS: what bounds the start. */
  maxStartsInFlight: number;
  heygenMaxRps: number;
}

/** The idle worker's RSS: the median over this window, once it polls. */
const IDLE_SAMPLE_MS = 3_000;
/**
 * A waiting consent sleeps for its 30-minute poll, so a worker holding them is idle: its memory is
 * what is left once V8 has shrunk the heaps the start grew. V8 does that about a minute after the
 * allocation stops (measured: ~55 s on the main thread, ~90 s on the workflow thread), so the
 * worker's RSS is read over an idle window this long, not at once. A measurement window, not a wait
 * for a condition: from outside nothing says that V8 is done.
 */
const HOLD_IDLE_MS = Number(process.env.BENCH_HOLD_IDLE_MS ?? 150_000);
const SETTLED_TAIL_MS = 10_000;
/**
 * Consents started but not yet emailed, at most. Below the worker's workflow cache (100), so a
 * consent in its first steps stays cached between them instead of being replayed at every step.
 */
const MAX_STARTS_IN_FLIGHT = Number(process.env.BENCH_HOLD_IN_FLIGHT ?? 60);
/** Approvals per second afterwards: people arriving one after another, not all in one millisecond. */
const APPROVALS_PER_SECOND = 10;

/** A group is awaiting once the sandbox has its look-up and its first poll: two GETs answered 200. */
function awaitingGroups(groups: ReadonlyArray<{ groupId: string }>, sandbox: Sandbox): Set<string> {
  const gets = new Map<string, number>();
  for (const entry of sandbox.ledger()) {
    if (entry.method === 'GET' && entry.status === 200) gets.set(entry.path, (gets.get(entry.path) ?? 0) + 1);
  }
  return new Set(
    groups.filter(({ groupId }) => (gets.get(`/v3/avatars/${groupId}`) ?? 0) >= 2).map((g) => g.groupId),
  );
}

/** For a few groups that did not get there: their status and what the sandbox saw, to say why. */
async function whyNotAwaiting(
  groups: ReadonlyArray<{ groupId: string }>,
  sandbox: Sandbox,
  client: Client,
): Promise<HoldResult['notAwaiting']> {
  const done = awaitingGroups(groups, sandbox);
  const ledger = sandbox.ledger();
  return Promise.all(
    groups
      .filter(({ groupId }) => !done.has(groupId))
      .slice(0, 5)
      .map(async ({ groupId }) => {
        const status = await client.workflow
          .getHandle(workflowIdForGroup(groupId))
          .query(statusQuery)
          .catch(() => null);
        return {
          groupId,
          phase: status?.phase ?? null,
          lastError: status?.lastError ? `${status.lastError.code}: ${status.lastError.message}` : null,
          requests: ledger
            .filter((e) => e.path.startsWith(`/v3/avatars/${groupId}`))
            .map((e) => `${e.method} ${e.path.endsWith('/consent') ? 'consent' : 'group'} ${e.status}`),
        };
      }),
  );
}

export async function runHold(opts: {
  n: number;
  approvals: number;
  stack: Stack;
  smtp: SmtpCatcher;
  runTag: string;
  rateLimit: number;
  heygenMaxRps: number;
  extraEnv: Record<string, string>;
  logFile: string;
  progress: (line: string) => void;
  /** Called with the figures as soon as they are taken (before the slower steps after them). */
  onMeasured?: (partial: Partial<HoldResult>) => void;
}): Promise<HoldResult> {
  const { n, stack, progress } = opts;
  const client = stack.env.client;
  const taskQueue = `bench-hold-${opts.runTag}`;
  const sandbox = await startSandbox({
    apiKeys: [SANDBOX_API_KEY],
    rateLimit: { limit: opts.rateLimit, windowMs: 1_000 },
  });
  const gateway = await startBenchGateway(client, {});
  const wallStart = Date.now();
  const worker = await startProductionWorker({
    client,
    logFile: opts.logFile,
    env: productionEnv({
      temporalAddress: stack.env.address,
      taskQueue,
      heygenUrl: sandbox.url,
      heygenApiKey: SANDBOX_API_KEY,
      smtpUrl: opts.smtp.url,
      emailFrom: EMAIL_FROM,
      gateway: { url: gateway.gateway.url, secretText: gateway.secretText },
      heygenMaxRps: opts.heygenMaxRps,
      queueGate: true,
      gateFile: null,
      extra: opts.extraEnv,
    }),
  });
  const result: Partial<HoldResult> = {
    held: n,
    idleWindowMs: HOLD_IDLE_MS,
    extraEnv: opts.extraEnv,
    maxStartsInFlight: MAX_STARTS_IN_FLIGHT,
    heygenMaxRps: opts.heygenMaxRps,
  };
  try {
    const idleFrom = Date.now();
    await sleep(IDLE_SAMPLE_MS);
    const idle = worker.samples.filter(([at]) => at >= idleFrom).map(([, rss]) => rss);
    result.rssIdle = idle.sort((a, b) => a - b)[Math.floor(idle.length / 2)] ?? Number.NaN;

    const people = new People(opts.smtp, gateway.gateway.url);
    const groups = Array.from({ length: n }, (_, i) => ({
      groupId: `ag_hold_${opts.runTag}_${i}`,
      email: `h${i}.${opts.runTag}@bench.example`,
    }));
    for (const [i, { groupId, email }] of groups.entries()) {
      sandbox.createGroup({ id: groupId, name: `Held avatar ${i}` });
      people.add({ email, waitMs: Infinity, followRedirect: true, emails: 0 });
    }
    people.start();

    const cpuAt = () => ({
      devServer: cpuSecondsOf(stack.serverPid),
      worker: cpuSecondsOf(worker.pid),
      bench: process.cpuUsage(),
      machine: machineBusyCpuSeconds(),
    });
    const cpu0 = cpuAt();
    const t0 = Date.now();
    progress(`hold: starting ${n} consents that wait (at most ${MAX_STARTS_IN_FLIGHT} before their email)`);
    let started = 0;
    const startProgress = setInterval(
      () => progress(`hold: ${started}/${n} started, ${people.firstEmails} emailed`),
      30_000,
    );
    let handles: WorkflowHandle[];
    try {
      handles = await mapLimit(groups, 16, async ({ groupId, email }) => {
        await eventually('a start slot', () => started - people.firstEmails < MAX_STARTS_IN_FLIGHT, {
          intervalMs: 5,
          timeoutMs: 300_000,
        });
        started += 1;
        return startAvatarConsent(
          client,
          {
            groupId,
            recipient: { email, name: 'Held Person' },
            policy: { pollInitialInterval: '30m', pollMaxInterval: '30m', deadline: '7d' },
          },
          { taskQueue },
        );
      });
    } finally {
      clearInterval(startProgress);
    }
    result.secondsToStart = (Date.now() - t0) / 1000;

    const awaitingCount = () => awaitingGroups(groups, sandbox).size;
    let awaiting = 0;
    let lastReport = Date.now();
    // Running out of time is a result here: the figures say how many got there.
    await eventually(
      `${n} consents awaiting`,
      () => {
        awaiting = awaitingCount();
        if (Date.now() - lastReport > 30_000) {
          lastReport = Date.now();
          progress(`hold: ${awaiting}/${n} awaiting after ${((Date.now() - t0) / 1000).toFixed(0)} s`);
        }
        return awaiting >= n;
      },
      { timeoutMs: Math.max(300_000, n * 120), intervalMs: 1_000 },
    ).catch(unlessTimeout);
    result.awaiting = awaiting;
    result.secondsToAwaiting = (Date.now() - t0) / 1000;
    const cpu1 = cpuAt();
    const benchCpu = process.cpuUsage(cpu0.bench);
    const spent = {
      devServer: cpu1.devServer - cpu0.devServer,
      worker: cpu1.worker - cpu0.worker,
      bench: (benchCpu.user + benchCpu.system) / 1e6,
    };
    result.cpuToAwaiting = {
      ...spent,
      otherProcesses: Math.max(0, cpu1.machine - cpu0.machine - spent.devServer - spent.worker - spent.bench),
    };
    progress(
      `hold: ${awaiting}/${n} awaiting after ${result.secondsToAwaiting.toFixed(0)} s; the worker's memory over ${HOLD_IDLE_MS / 1000} s idle`,
    );
    result.rssAtAwaiting = worker.memory()?.rss ?? Number.NaN;
    if (awaiting < n) result.notAwaiting = await whyNotAwaiting(groups, sandbox, client);
    await sleep(HOLD_IDLE_MS);
    const tail = worker.samples.filter(([at]) => at >= Date.now() - SETTLED_TAIL_MS).map(([, rss]) => rss);
    result.rssWhileHolding = max(tail);
    result.memoryWhileHolding = worker.memory();
    opts.onMeasured?.({ ...result });

    // Evicted long ago (the cache holds 100 of N): each must wake on the redirect's checkNow.
    const approve = groups.slice(0, Math.min(opts.approvals, n));
    progress(`hold: approving ${approve.length} through the consent page and the redirect`);
    const latencies: number[] = [];
    const failures: string[] = [];
    const approvalsFrom = Date.now();
    await mapLimit(approve, approve.length, async ({ groupId, email }, i) => {
      // People arrive one after another, APPROVALS_PER_SECOND of them a second.
      await sleep(Math.max(0, approvalsFrom + (i * 1000) / APPROVALS_PER_SECOND - Date.now()));
      try {
        const person = await people.approveNow(email);
        if (person.redirectStatus === undefined) throw new Error(`no redirect (${person.error ?? 'none'})`);
        const handle = handles[i]!;
        await within(60_000, 'the approved consent to complete', handle.result());
        const closedAt = (await handle.describe()).closeTime?.getTime();
        const approvedAt = sandbox.consents(groupId).find((c) => c.decision === 'approved')?.decidedAt;
        if (closedAt === undefined || approvedAt == null) throw new Error('no close or approval time');
        latencies.push((closedAt - approvedAt) / 1000);
      } catch (error) {
        failures.push(`${groupId}: ${error instanceof Error ? error.message : String(error)}`);
      }
    });
    result.approvals = {
      requested: approve.length,
      completed: latencies.length,
      latency: summarize(latencies),
      failures: failures.slice(0, 10),
    };
    opts.onMeasured?.({ ...result });

    const c0 = Date.now();
    const rest = handles.slice(approve.length);
    progress(`hold: cancelling the other ${rest.length}`);
    await mapLimit(rest, 64, (handle) => handle.cancel().catch(() => undefined));
    // Counted through visibility: nothing is left pending on the connection when the stack stops.
    const running = async (): Promise<number> =>
      (await client.workflow.count(`TaskQueue = "${taskQueue}" AND ExecutionStatus = "Running"`)).count;
    let stillRunning = rest.length;
    await eventually(
      `${rest.length} consents cancelled`,
      async () => {
        stillRunning = await running().catch(() => stillRunning);
        return stillRunning === 0;
      },
      { timeoutMs: Math.max(120_000, rest.length * 60), intervalMs: 2_000 },
    ).catch(unlessTimeout);
    result.cancelled = rest.length - stillRunning;
    result.secondsToCancel = (Date.now() - c0) / 1000;
    await people.stop();
  } finally {
    const stopped = await worker.stop();
    result.peakRss = stopped.peakRss;
    result.wallSeconds = (Date.now() - wallStart) / 1000;
    await gateway.gateway.close();
    await sandbox.close();
  }
  return result as HoldResult;
}
