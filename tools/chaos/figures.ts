/** The verdict of a chaos run: its invariants checked, its figures tallied, slow workflows digested. */
import type { WorkerControl } from './worker-control.js';
import {
  checkConsentRequests,
  checkEmails,
  checkHistories,
  checkOutcomes,
  percentile,
  sum,
} from './checks.js';
import type { Check, HistoryEventLike } from './checks.js';
import { WORKER_ENTRY } from './model.js';
import type { ChaosRun, Collected, FigureRow, Recorded } from './model.js';
import { analyzeRetryAfter } from './retry-after.js';

export type Invariants = ReturnType<typeof checkInvariants>;

export function checkInvariants(
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

export function tallyFigures(
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

/** A readable digest of history events from `fromMs` on: what a slow workflow was waiting for. */
export function compactHistory(events: readonly HistoryEventLike[], fromMs: number, max = 40): string[] {
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
