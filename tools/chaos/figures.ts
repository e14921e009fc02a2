/** The verdict of a chaos run: its invariants checked, its figures tallied, slow workflows digested. */
import { workflowIdForGroup } from '../../src/contract/index.js';
import { checkConsentRequests, checkHistories, checkOutcomes, list, percentile, sum } from './checks.js';
import type { Check } from './checks.js';
import { checkEmails } from './emails.js';
import { eventTimeMs } from './history.js';
import type { HistoryEvent } from './history.js';
import { WORKER_ENTRY } from './model.js';
import type { ChaosRun, Collected, FigureRow, Recorded } from './model.js';
import { scanForPlaintext } from './plaintext.js';
import { checkPolls } from './polls.js';
import { analyzeRateCap } from './rate-cap.js';
import { analyzeRetryAfter } from './retry-after.js';
import type { WorkerPool } from './worker-control.js';

/** What the checks need besides the run and its records. */
export interface Surroundings {
  workers: WorkerPool | undefined;
  gatewayLog: readonly string[];
  recipientDomain: string;
}

export type Invariants = ReturnType<typeof checkInvariants>;

export function checkInvariants(
  run: ChaosRun,
  { workers, gatewayLog, recipientDomain }: Surroundings,
  { finals, histories, failureTexts, openAtEnd, executionsOnQueue }: Collected,
  { ledger, consents, messages, smtpEvents, records, children, stillRunning }: Recorded,
) {
  const { plan, states, harnessErrors, timeline, stats, options } = run;
  const retryAfter = analyzeRetryAfter(records, workers?.lives ?? []);
  const rateCap = analyzeRateCap(
    records.map((r) => r.at),
    options.maxRps,
  );
  const outcomeChecks = finals.length > 0 ? checkOutcomes(finals) : [];
  const consentResult = checkConsentRequests(ledger, consents, finals);
  const emailResult = checkEmails({
    messages,
    smtpEvents,
    consents,
    finals,
    histories: new Map(finals.map((f) => [f.groupId, histories.get(workflowIdForGroup(f.groupId)) ?? []])),
    failureTexts: new Map(
      finals.map((f) => [f.groupId, failureTexts.get(workflowIdForGroup(f.groupId)) ?? new Map()]),
    ),
    disruptions: {
      workerKills: stats.workerKillTimes,
      temporalDown: stats.temporalDownFrom.map(
        (from, i) => [from, stats.temporalDownUntil[i] ?? Date.now()] as const,
      ),
      smtpDown: stats.smtpDownSpans,
    },
    t0: run.t0,
  });
  const pollResult = checkPolls(finals, records);
  const plaintext = scanForPlaintext(
    histories,
    [
      { source: 'workers', lines: workers?.stderrAll ?? [] },
      { source: 'gateway', lines: gatewayLog },
    ],
    { recipientDomain, recipientName: /Chaos Person \d+/ },
  );
  const historyResult = checkHistories(histories);
  const servedPids = new Set(records.map((r) => r.pid));
  const servingExits = (workers?.unexpectedExits ?? []).filter((e) => servedPids.has(e.pid));
  const retriggers = [...states.values()].filter((s) => s.plan.retriggerAtMs !== null);
  const redirects = [...states.values()].filter((s) => s.redirect !== null);
  const badRedirects = redirects.filter(
    (s) => !s.redirect!.viaGateway || ![302, 303].includes(s.redirect!.status),
  );
  const lost = plan.groups.length - finals.filter((f) => f.status !== 'NOT_FOUND').length;
  const checks: Check[] = [
    {
      name: 'the run itself went as planned (every workflow started, every fault applied)',
      ok: harnessErrors.length === 0 && finals.length === plan.groups.length,
      detail:
        harnessErrors.length === 0
          ? `${timeline.length} timeline events`
          : harnessErrors.slice(0, 5).join('; '),
    },
    {
      name: 'no workflow lost: every one started is still known to Temporal after its crashes',
      ok: lost === 0 && finals.length === plan.groups.length,
      detail: `${finals.length - lost} of ${plan.groups.length} found after ${stats.temporalKills} SIGKILL(s) and ${stats.temporalRestarts} restart(s) of the server`,
    },
    ...outcomeChecks,
    ...consentResult.checks,
    ...emailResult.checks,
    {
      name: 'no HeyGen request was sent before a Retry-After had elapsed (same process, after a restart, across processes)',
      ok: retryAfter.violations === 0 && retryAfter.unreadableRetryAfter === 0 && retryAfter.rateLimited > 0,
      detail:
        retryAfter.rateLimited === 0
          ? 'no 429 was seen, so nothing was proven'
          : `${retryAfter.rateLimited} × 429; in their windows: ${retryAfter.inWindow.raced} raced (in flight), ` +
            `${retryAfter.inWindow.unreceived} unreceived, ${retryAfter.inWindow.same_process} same-process, ` +
            `${retryAfter.inWindow.across_restart} across a restart, ${retryAfter.inWindow.across_processes} across processes, ` +
            `${retryAfter.inWindow.unattributed} unattributed`,
    },
    {
      name: `HeyGen requests stay within HEYGEN_MAX_RPS=${options.maxRps} across all ${options.workers} workers`,
      ok: rateCap.ok,
      detail:
        `at most ${rateCap.maxIn10s} in any 10 s (bound ${rateCap.bound10s}: the refill, a full bucket and two seconds of worker delay), ` +
        `${rateCap.maxIn60s} in any 60 s (bound ${rateCap.bound60s}); ` +
        `at most ${rateCap.maxPerSecond} in one second (the cap must be met once: ${rateCap.reached ? 'it was' : 'it never was, so nothing was proven'}); ` +
        `${rateCap.secondsOverCap} clock second(s) above the cap`,
    },
    ...pollResult.checks,
    {
      name: 'no address, name or link in clear in any history or log (payload encryption on)',
      ok:
        plaintext.historyHits.length === 0 &&
        plaintext.logHits.length === 0 &&
        plaintext.encryptedPayloads > 0,
      detail:
        plaintext.historyHits.length + plaintext.logHits.length === 0
          ? `${plaintext.histories} histories (${plaintext.events} events, ${plaintext.encryptedPayloads} of ${plaintext.payloads} payloads encrypted) and ${plaintext.logLines} log lines scanned`
          : list(
              [...plaintext.historyHits, ...plaintext.logHits].map(
                (h) => `${h.kind} ${h.sample} in ${h.where}`,
              ),
            ),
    },
    {
      name: 'every person who followed the redirect came through the gateway, which sent them on',
      ok: badRedirects.length === 0 && redirects.length > 0,
      detail:
        redirects.length === 0
          ? 'nobody followed a redirect, so nothing was proven'
          : badRedirects.length === 0
            ? `${redirects.length} redirects followed, each answered by the gateway with a redirect`
            : list(
                badRedirects.map(
                  (s) =>
                    `${s.plan.groupId}: ${s.redirect!.viaGateway ? `gateway answered ${s.redirect!.status}` : 'the redirect did not point at the gateway'}`,
                ),
              ),
    },
    ...historyResult.checks,
    {
      name: 'a duplicate trigger attaches to the running execution',
      ok: retriggers.every((s) => s.retriggerSameRun === true),
      detail: `${retriggers.filter((s) => s.retriggerSameRun === true).length} of ${retriggers.length} attached; ${executionsOnQueue} executions on the task queue`,
    },
    {
      name: 'nothing is left running, no operator needed (open workflows = 0, executions = workflows, child processes exited)',
      ok: openAtEnd === 0 && executionsOnQueue === plan.groups.length && stillRunning.length === 0,
      detail: `open workflows ${openAtEnd}, executions ${executionsOnQueue} for ${plan.groups.length} groups, live child processes ${stillRunning.length} of ${children.length}`,
    },
    {
      // A worker that cannot reach Temporal when it starts exits (a supervisor restarts it): recorded,
      // but only a worker that was already serving and then died by itself breaks the promise.
      name: 'no serving worker exited on its own',
      ok: servingExits.length === 0,
      detail:
        (workers?.unexpectedExits.length ?? 0) === 0
          ? `${workers?.lives.length ?? 0} worker processes, all ended by the run`
          : workers!.unexpectedExits
              .map(
                (e) =>
                  `pid ${e.pid} exited with code ${e.code} after ${Math.round(e.livedMs / 100) / 10} s ` +
                  `(${servingExits.includes(e) ? 'while serving' : 'at start-up'}): ${e.lastLine.slice(0, 160)}`,
              )
              .join('; '),
    },
  ];
  return {
    checks,
    retryAfter,
    rateCap,
    consentResult,
    emailResult,
    pollResult,
    plaintext,
    historyResult,
    servingExits,
    lost,
  };
}

export function tallyFigures(
  run: ChaosRun,
  workers: WorkerPool | undefined,
  { finals, openAtEnd, histories }: Collected,
  { ledger, records, faultsLeft, smtpEvents }: Recorded,
  {
    retryAfter,
    rateCap,
    consentResult,
    emailResult,
    pollResult,
    plaintext,
    historyResult,
    servingExits,
    lost,
  }: Invariants,
  finishedAt: number,
): { headline: FigureRow[]; figures: FigureRow[] } {
  const { plan, options, stats, startedAt, states } = run;
  const figures: FigureRow[] = [];
  const add = (section: string, figure: string, value: number | string | null): void =>
    void figures.push({ section, figure, value: value ?? 'n/a' });
  const e = emailResult.figures;
  const violations =
    retryAfter.inWindow.same_process +
    retryAfter.inWindow.across_restart +
    retryAfter.inWindow.across_processes +
    retryAfter.inWindow.unattributed;
  // SMTP faults as the server's own record has them (the permanent refusals aimed at groups included).
  const smtpByKind = new Map<string, number>();
  for (const event of smtpEvents) {
    if (event.kind === 'accepted') continue;
    const kind =
      event.kind === 'dropped' ? 'reply dropped after DATA' : `${event.code} at ${event.stage.toUpperCase()}`;
    smtpByKind.set(kind, (smtpByKind.get(kind) ?? 0) + 1);
  }
  const smtpKinds =
    [...smtpByKind]
      .sort()
      .map(([kind, n]) => `${kind} ${n}`)
      .join(', ') || 'none';
  const headline: FigureRow[] = [
    { section: 'headline', figure: 'workflows (lost)', value: `${plan.groups.length} (${lost})` },
    {
      section: 'headline',
      figure: 'worker processes at once / SIGKILLed',
      value: `${options.workers} / ${stats.workerKills}`,
    },
    {
      section: 'headline',
      figure: 'Temporal SIGKILLs (and polite restarts)',
      value: `${stats.temporalKills} (${stats.temporalRestarts})`,
    },
    {
      section: 'headline',
      figure: 'SMTP faults by kind',
      value: `${smtpKinds}; down ${round1(stats.smtpDowntimeMs / 1000)} s`,
    },
    {
      section: 'headline',
      figure: 'emails per link generation (max): messages / copies of one',
      value: `${e.maxMessagesPerGeneration} / ${e.maxCopiesPerMessage}`,
    },
    {
      section: 'headline',
      figure: 'duplicate copies (explained)',
      value: `${e.duplicates} (${e.duplicates - e.duplicatesByCause.unexplained})`,
    },
    {
      section: 'headline',
      figure: 'requests inside a Retry-After window (violations)',
      value: `${sum(Object.values(retryAfter.inWindow))} (${violations})`,
    },
    {
      section: 'headline',
      figure: `HeyGen requests per second, max 1 s / 10 s average (cap ${options.maxRps})`,
      value: `${rateCap.maxPerSecond} / ${rateCap.maxPerSecondOver10s}`,
    },
    {
      section: 'headline',
      figure: 'plaintext hits in history / in logs',
      value: `${plaintext.historyHits.length} / ${plaintext.logHits.length}`,
    },
    {
      section: 'headline',
      figure: 'excused link generations without a counted email',
      value: `${sum(Object.values(e.excusesByKind))}`,
    },
    {
      section: 'headline',
      figure: 'polls counted / seen by HeyGen (undercounted workflows)',
      value: `${pollResult.figures.counted} / ${pollResult.figures.seenAttempts} (${pollResult.figures.undercountedGroups})`,
    },
    {
      section: 'headline',
      figure: 'wall time (min)',
      value: round1((finishedAt - startedAt) / 60_000) ?? 'n/a',
    },
  ];

  add('run', 'workflows', plan.groups.length);
  add('run', 'wall time (s)', Math.round((finishedAt - startedAt) / 1000));
  add('run', 'chaos phase (s)', Math.round(options.durationMs / 1000));
  add('run', 'seed', options.seed);
  add(
    'run',
    'worker entry',
    `${WORKER_ENTRY} × ${options.workers}, HEYGEN_MAX_RPS=${options.maxRps}, encryption + gateway on`,
  );
  add(
    'run',
    'policy',
    `polls ${plan.policy.pollInitialInterval} → ${plan.policy.pollMaxInterval} in ${plan.policy.pollWindow} windows, links live ${plan.policy.linkTtl}`,
  );
  const outcomeCounts = new Map<string, { expected: number; actual: number }>();
  for (const final of finals) {
    const ex = outcomeCounts.get(final.expectedOutcome) ?? { expected: 0, actual: 0 };
    ex.expected += 1;
    outcomeCounts.set(final.expectedOutcome, ex);
    const actualKey = final.result?.outcome ?? final.status;
    const a = outcomeCounts.get(actualKey) ?? { expected: 0, actual: 0 };
    a.actual += 1;
    outcomeCounts.set(actualKey, a);
  }
  for (const [outcome, { expected, actual }] of [...outcomeCounts].sort())
    add('outcomes', `${outcome} (expected / actual)`, `${expected} / ${actual}`);
  const latency = (redirect: boolean | null): number[] =>
    finals
      .filter((f) => f.fate === 'approved' && f.approvedAt !== null && f.closedAt !== null)
      .filter((f) => redirect === null || (states.get(f.groupId)?.redirect !== null) === redirect)
      .map((f) => (f.closedAt! - f.approvedAt!) / 1000);
  const latencies = latency(null);
  add(
    'outcomes',
    'approval → workflow done p50 / p95 / max (s)',
    `${round1(percentile(latencies, 50))} / ${round1(percentile(latencies, 95))} / ${round1(percentile(latencies, 100))}`,
  );
  add(
    'outcomes',
    '… p50 for people who followed the redirect (gateway nudge) / the others (s)',
    `${round1(percentile(latency(true), 50))} / ${round1(percentile(latency(false), 50))}`,
  );
  add('outcomes', 'approvals on the consent page (from the email)', stats.pageApprovals);
  add(
    'outcomes',
    'redirects followed to the gateway',
    [...states.values()].filter((s) => s.redirect?.viaGateway).length,
  );
  add('outcomes', 'link generations (all groups)', sum(finals.map((f) => f.result?.linkGeneration ?? 0)));

  add('chaos', 'worker SIGKILLs', stats.workerKills);
  add('chaos', 'worker processes (all lives)', workers?.lives.length ?? 0);
  add('chaos', 'targeted kill after a 429', stats.targeted429);
  add('chaos', 'temporal SIGKILLs', stats.temporalKills);
  add(
    'chaos',
    'temporal polite restarts (exited by themselves)',
    `${stats.temporalRestarts} (${stats.temporalStopsGraceful})`,
  );
  add('chaos', 'temporal down (s)', round1(stats.temporalDowntimeMs / 1000));
  add('chaos', 'HeyGen full outage (s)', round1(stats.heygenOutageMs / 1000));
  add('chaos', 'SMTP down (s)', round1(stats.smtpDowntimeMs / 1000));
  for (const [kind, count] of Object.entries(stats.smtpFaults))
    add('chaos', `SMTP fault burst uses: ${kind}`, count);
  for (const [kind, count] of [...smtpByKind].sort()) add('chaos', `SMTP server answered: ${kind}`, count);
  for (const [kind, count] of Object.entries(stats.faultsInjected))
    add('chaos', `HeyGen fault answers: ${kind}`, count);
  add(
    'chaos',
    'HeyGen fault answers unused when their burst ended',
    stats.faultsUnused + sum(faultsLeft.map((f) => f.count)),
  );
  add('chaos', 'workers SIGTERM at the end', stats.workerDrained);

  const v3 = ledger.filter((entry) => entry.path.startsWith('/v3/'));
  add('heygen', 'requests through the proxy', records.length);
  add('heygen', 'requests in the sandbox ledger', v3.length);
  const byStatus = new Map<number, number>();
  for (const entry of v3) byStatus.set(entry.status, (byStatus.get(entry.status) ?? 0) + 1);
  for (const [status, count] of [...byStatus].sort((a, b) => a[0] - b[0]))
    add('heygen', `status ${status === 0 ? '0 (no answer)' : status}`, count);
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
  add(
    'heygen',
    'requests per second: max in 1 s / max 10 s average / cap',
    `${rateCap.maxPerSecond} / ${rateCap.maxPerSecondOver10s} / ${rateCap.cap}`,
  );
  add('heygen', 'answered by an injected fault', v3.filter((entry) => entry.fault !== null).length);
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
  add(
    'heygen',
    '(group, generation) processed more than once',
    consentResult.figures.generationsProcessedMoreThanOnce,
  );
  add(
    'heygen',
    'polls counted by workflows / seen (highest attempt per window) / poll requests',
    `${pollResult.figures.counted} / ${pollResult.figures.seenAttempts} / ${pollResult.figures.seenRequests}`,
  );
  add(
    'heygen',
    'workflows counting fewer polls than seen / most counted beyond seen',
    `${pollResult.figures.undercountedGroups} / ${pollResult.figures.maxOvercount}`,
  );

  add('retry-after', '429 answers received', retryAfter.rateLimited);
  add(
    'retry-after',
    'requests in a Retry-After window: raced (in flight, or before it could be shared)',
    retryAfter.inWindow.raced,
  );
  add('retry-after', '… to a process that died before reading the 429', retryAfter.inWindow.unreceived);
  add('retry-after', '… VIOLATION same process', retryAfter.inWindow.same_process);
  add('retry-after', '… VIOLATION after a worker restart (gate file)', retryAfter.inWindow.across_restart);
  add(
    'retry-after',
    '… VIOLATION across running workers (shared gate file)',
    retryAfter.inWindow.across_processes,
  );
  add('retry-after', '… VIOLATION unattributed', retryAfter.inWindow.unattributed);

  add('email', 'messages received', e.messages);
  add('email', 'distinct Message-IDs', e.distinctMessageIds);
  add(
    'email',
    'link generations / recipients with a link / emailed',
    `${e.linkGenerations} / ${e.recipientsWithLink} / ${e.recipientsEmailed}`,
  );
  add('email', 'most messages for one link generation', e.maxMessagesPerGeneration);
  add('email', 'most copies of one message', e.maxCopiesPerMessage);
  add('email', 'extra copies (same Message-ID)', e.duplicates);
  for (const [cause, count] of Object.entries(e.duplicatesByCause))
    add('email', `… extra copies: ${cause.replaceAll('_', ' ')}`, count);
  for (const [kind, count] of Object.entries(e.excusesByKind))
    add('email', `excused: ${kind.replaceAll('_', ' ')}`, count);

  add(
    'privacy',
    'payloads in histories / encrypted',
    `${plaintext.payloads} / ${plaintext.encryptedPayloads}`,
  );
  for (const [where, count] of Object.entries(plaintext.payloadsInClear))
    add('privacy', `payloads in clear: ${where}`, count);
  add('privacy', 'plaintext hits in history', plaintext.historyHits.length);
  add('privacy', 'plaintext hits in worker and gateway logs', plaintext.logHits.length);

  add('temporal', 'WorkflowTaskFailed events', historyResult.figures.workflowTaskFailed);
  add('temporal', 'WorkflowTaskTimedOut events', historyResult.figures.workflowTaskTimedOut);
  add(
    'temporal',
    'ActivityTaskTimedOut events (windows closing, lost attempts)',
    historyResult.figures.activityTaskTimedOut,
  );
  add('temporal', 'history events', historyResult.figures.events);
  add('temporal', 'longest history (events)', Math.max(0, ...[...histories.values()].map((h) => h.length)));
  // The longest a workflow went without a single event: a stall it came out of by itself.
  let stall = { seconds: 0, workflowId: '' };
  for (const [workflowId, events] of histories) {
    for (let i = 1; i < events.length; i++) {
      const gap = (eventTimeMs(events[i]!) - eventTimeMs(events[i - 1]!)) / 1000;
      if (gap > stall.seconds) stall = { seconds: gap, workflowId };
    }
  }
  add(
    'temporal',
    'longest stretch without an event in one history (s)',
    `${round1(stall.seconds)} (${stall.workflowId})`,
  );
  add('temporal', 'open workflows at the end', openAtEnd);
  add(
    'temporal',
    'worker exits at start-up (Temporal unreachable)',
    (workers?.unexpectedExits.length ?? 0) - servingExits.length,
  );
  add('temporal', 'serving worker exits (crashes)', servingExits.length);
  return { headline, figures };
}

/** A readable digest of history events from `fromMs` on: what a slow workflow was waiting for. */
export function compactHistory(
  events: readonly HistoryEvent[],
  fromMs: number,
  texts: ReadonlyMap<string, string> = new Map(),
  max = 40,
): string[] {
  const lines: string[] = [];
  for (const event of events) {
    const at = eventTimeMs(event);
    if (at < fromMs) continue;
    const [key, attrs] =
      Object.entries(event as Record<string, unknown>).find(
        ([k, v]) => k.endsWith('EventAttributes') && v != null,
      ) ?? [];
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
      a.lastFailure?.message
        ? `last: ${(texts.get(String(event.eventId)) ?? a.lastFailure.message).slice(0, 90)}`
        : undefined,
      a.failure
        ? (texts.get(String(event.eventId)) ?? a.failure.cause?.message ?? a.failure.message ?? '').slice(
            0,
            90,
          )
        : undefined,
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
