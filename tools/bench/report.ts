/**
 * Turns phase results into per-system numbers and the markdown tables: the systems side by side
 * (product, control, baseline) with the targets, the several-workers runs, the hold, and a summary
 * of every target (the README's table).
 */
import type { HoldResult } from './hold.js';
import type { FlowResult, PhaseResult, QueueBacklog, StatusSample, System } from './phase.js';
import { fitLine, max, mean, summarize } from './stats.js';
import type { LatencySummary } from './stats.js';

export interface CostSummary {
  heygenRequests: number;
  actions: number;
  events: number;
  /** Mean per-category actions (the rule in docs/benchmark.md). */
  actionBreakdown: Record<string, number>;
}

export interface SystemSummary {
  system: System;
  flows: number;
  completed: number;
  failures: number;
  failureOutcomes: Record<string, number>;
  /** Completed flows per second in the burst run (approval as soon as the email arrives). */
  capacityFlowsPerSecond: number | null;
  capacityFlows: number | null;
  capacityFailures: number | null;
  /** Completed flows per second over the main run (bounded by the approval waits). */
  mainFlowsPerSecond: number;
  mainRunSeconds: number;
  latencyWithRedirect: LatencySummary;
  latencyWithoutRedirect: LatencySummary;
  /** The flows approved 24 h (scaled) after their first email. */
  day: CostSummary & { flows: number; polls: number };
  /** Mean over every flow of the main run (waits from the log-normal, plus the 24-h ones). */
  perFlow: CostSummary;
  /** Baseline only: per-iteration costs measured, extrapolated to 1,440 one-minute iterations. */
  designedCadence: CostSummary | null;
  largestRunEvents: number;
  rateLimited: number;
  /** Requests inside a Retry-After window that their sender could have held back (ledger-figures.ts). */
  insideRetryAfter: number;
  /** Inside a window but sent before any process could know (in flight): not counted above. */
  inFlightInsideRetryAfter: number;
  heygenRequestsTotal: number;
  /** Most HeyGen requests the sandbox received within any 1 s (main run and burst). */
  peakPerSecond: number;
  heygenMaxRps: number | null;
  /** Largest |status (pollProgress) − sandbox GETs| over the samples, and how many. */
  statusDifference: { largest: number; samples: number };
  /** The main run's queues at their fullest. */
  backlog: PhaseResult['backlog'] | null;
  peakRssMb: number;
  attemptsFromWorkerLogOnly: number;
}

const MB = 1024 * 1024;
const ITERATIONS_PER_DAY = 1_440;

function pollType(system: System): string {
  return system === 'baseline' ? 'checkConsentStatus' : 'pollConsentStatus';
}

function costOf(flows: readonly FlowResult[]): CostSummary {
  const withCost = flows.filter((f) => f.cost);
  const breakdown: Record<string, number> = {};
  for (const key of [
    'workflowStarts',
    'activitiesScheduled',
    'activityRetries',
    'timers',
    'signals',
    'searchAttributeUpserts',
    'other',
  ] as const) {
    breakdown[key] = mean(withCost.map((f) => f.cost!.actions[key]));
  }
  return {
    heygenRequests: mean(flows.map((f) => f.heygenRequests)),
    actions: mean(withCost.map((f) => f.cost!.actions.total)),
    events: mean(withCost.map((f) => f.cost!.events)),
    actionBreakdown: breakdown,
  };
}

function isCompleted(flow: FlowResult): boolean {
  return flow.outcome === 'approved' && flow.signalAt !== undefined;
}

function throughput(phase: PhaseResult): number {
  const completed = phase.flows.filter(isCompleted);
  const seconds = (phase.lastSignalAt - phase.firstStartAt) / 1000;
  return seconds > 0 ? completed.length / seconds : Number.NaN;
}

/** Per-iteration cost of the baseline, fitted over all its flows, times 1,440 iterations. */
function designedCadence(flows: readonly FlowResult[], system: System): CostSummary | null {
  const points = flows.filter((f) => f.cost && isCompleted(f));
  const iterations = (f: FlowResult) => f.cost!.byActivityType[pollType(system)]?.scheduled ?? 0;
  const at = (y: (f: FlowResult) => number): number => {
    const line = fitLine(points.map((f) => [iterations(f), y(f)] as const));
    return line ? line.a + line.b * ITERATIONS_PER_DAY : Number.NaN;
  };
  if (points.length < 2) return null;
  return {
    heygenRequests: at((f) => f.heygenRequests),
    actions: at((f) => f.cost!.actions.total),
    events: at((f) => f.cost!.events),
    actionBreakdown: {},
  };
}

const sumOf = (phases: readonly PhaseResult[], of: (phase: PhaseResult) => number): number =>
  phases.reduce((sum, phase) => sum + of(phase), 0);

export function statusDifference(samples: readonly StatusSample[]): { largest: number; samples: number } {
  return {
    largest: max(samples.map((s) => Math.abs(s.statusPolls - s.sandboxPolls))),
    samples: samples.length,
  };
}

export function summarizeSystem(main: PhaseResult | null, capacity: PhaseResult | null): SystemSummary {
  const system = main?.system ?? capacity?.system ?? 'product';
  const phases = [main, capacity].filter((phase): phase is PhaseResult => phase !== null);
  const flows = main?.flows ?? [];
  const completed = flows.filter(isCompleted);
  const failureOutcomes: Record<string, number> = {};
  for (const flow of flows.filter((f) => !isCompleted(f))) {
    const key = flow.outcome === 'approved' ? 'approved_but_caller_not_signalled' : flow.outcome;
    failureOutcomes[key] = (failureOutcomes[key] ?? 0) + 1;
  }
  const latency = (follow: boolean) =>
    summarize(
      flows
        .filter((f) => f.followRedirect === follow && f.latencyMs !== undefined && isCompleted(f))
        .map((f) => f.latencyMs! / 1000),
    );
  const dayFlows = flows.filter((f) => f.day && isCompleted(f));
  const capacityCompleted = capacity ? capacity.flows.filter(isCompleted).length : null;
  return {
    system,
    flows: flows.length,
    completed: completed.length,
    failures: flows.length - completed.length,
    failureOutcomes,
    capacityFlowsPerSecond: capacity ? throughput(capacity) : null,
    capacityFlows: capacity ? capacity.flows.length : null,
    capacityFailures:
      capacity && capacityCompleted !== null ? capacity.flows.length - capacityCompleted : null,
    mainFlowsPerSecond: main ? throughput(main) : Number.NaN,
    mainRunSeconds: main ? (main.lastSignalAt - main.firstStartAt) / 1000 : Number.NaN,
    latencyWithRedirect: latency(true),
    latencyWithoutRedirect: latency(false),
    day: {
      flows: dayFlows.length,
      polls: mean(dayFlows.map((f) => f.cost?.byActivityType[pollType(system)]?.attempts ?? Number.NaN)),
      ...costOf(dayFlows),
    },
    perFlow: costOf(flows.filter(isCompleted)),
    designedCadence: system === 'baseline' ? designedCadence(flows, system) : null,
    largestRunEvents: max(flows.map((f) => f.cost?.largestRunEvents ?? 0)),
    rateLimited: sumOf(phases, (phase) => phase.requests.rateLimitedByServer),
    insideRetryAfter: sumOf(phases, (phase) => phase.requests.retryAfter.violations),
    inFlightInsideRetryAfter: sumOf(phases, (phase) => phase.requests.retryAfter.inside.inFlight),
    heygenRequestsTotal: sumOf(phases, (phase) => phase.requests.total),
    peakPerSecond: max(phases.map((phase) => phase.requests.peakPerSecond)),
    heygenMaxRps: main?.heygenMaxRps ?? capacity?.heygenMaxRps ?? null,
    statusDifference: statusDifference(main?.statusSamples ?? []),
    backlog: main?.backlog ?? null,
    peakRssMb: Math.max(main?.worker.peakRss ?? 0, capacity?.worker.peakRss ?? 0) / MB,
    attemptsFromWorkerLogOnly: main?.attemptsFromWorkerLogOnly ?? 0,
  };
}

// ---------------------------------------------------------------------------------------------
// Markdown
// ---------------------------------------------------------------------------------------------

const MINUTE = 60;
export const HOLD_SECONDS_TARGET = 20 * MINUTE;
export const THROUGHPUT_TARGET_RATIO = 0.9;

const num = (value: number | null | undefined, digits = 0): string =>
  value === null || value === undefined || Number.isNaN(value)
    ? '–'
    : value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

const finite = (v: number | null | undefined): v is number =>
  v !== null && v !== undefined && Number.isFinite(v);

const ratio = (a: number | null | undefined, b: number | null | undefined): string =>
  finite(a) && finite(b) && b !== 0 ? `${num(a / b, 2)}×` : '–';

const latencyText = (l: LatencySummary): string =>
  l.count === 0 ? '–' : `${num(l.p50, 2)} / ${num(l.p95, 2)} / ${num(l.p99, 2)} s (n=${l.count})`;

const mark = (ok: boolean | null): string => (ok === null ? '' : ok ? '✅ met' : '❌ missed');
/** A target check on a number that may be missing (NaN): no verdict then. */
const check = (value: number | null | undefined, ok: (v: number) => boolean): boolean | null =>
  finite(value) ? ok(value) : null;

/** The requests per second target: the cap plus one window of tolerance (a full bucket: one second of the cap). */
export function peakRateLimit(cap: number): number {
  return 2 * cap;
}

function table(header: string[], rows: string[][]): string {
  return [
    `| ${header.join(' | ')} |`,
    `| ${header.map(() => '---').join(' | ')} |`,
    ...rows.map((row) => `| ${row.join(' | ')} |`),
  ].join('\n');
}

export interface Systems {
  product: SystemSummary | null;
  control: SystemSummary | null;
  baseline: SystemSummary | null;
}

/** The systems side by side: product, control, baseline, the product's ratios and its targets. */
export function renderTable(systems: Systems): string {
  const { product: p, control: c, baseline: b } = systems;
  const rows: string[][] = [];
  const add = (
    metric: string,
    of: (s: SystemSummary) => number | null | undefined,
    format: (v: number | null | undefined) => string,
    target = '',
    ok: boolean | null = null,
  ) => {
    const [pv, cv, bv] = [p, c, b].map((s) => (s ? of(s) : undefined));
    rows.push([metric, format(pv), format(cv), format(bv), ratio(pv, cv), ratio(pv, bv), target, mark(ok)]);
  };
  const text = (metric: string, of: (s: SystemSummary) => string, target = '', ok: boolean | null = null) =>
    rows.push([metric, ...[p, c, b].map((s) => (s ? of(s) : '–')), '', '', target, mark(ok)]);

  const burstRatio = p && c ? p.capacityFlowsPerSecond! / c.capacityFlowsPerSecond! : Number.NaN;
  add(
    `Throughput: completed flows/s (burst of ${p?.capacityFlows ?? c?.capacityFlows ?? b?.capacityFlows ?? 0}, approval on email)`,
    (s) => s.capacityFlowsPerSecond,
    (v) => num(v, 1),
    `≥ ${THROUGHPUT_TARGET_RATIO}× control`,
    check(burstRatio, (v) => v >= THROUGHPUT_TARGET_RATIO),
  );
  text(
    'Failures in the burst',
    (s) => num(s.capacityFailures),
    '0',
    p?.capacityFailures != null ? p.capacityFailures === 0 : null,
  );
  text(
    `Main run: completed / failed (of ${p?.flows ?? c?.flows ?? b?.flows ?? 0})`,
    (s) => `${s.completed} / ${s.failures}`,
    '0 failed',
    p && p.flows > 0 ? p.failures === 0 : null,
  );
  add(
    'Main run: completed flows/s (includes the approval waits)',
    (s) => s.mainFlowsPerSecond,
    (v) => num(v, 2),
  );
  rows.push([
    'Approval → caller signalled, **with** redirect: p50 / p95 / p99',
    ...[p, c, b].map((s) => (s ? latencyText(s.latencyWithRedirect) : '–')),
    ratio(p?.latencyWithRedirect.p99, c?.latencyWithRedirect.p99),
    ratio(p?.latencyWithRedirect.p99, b?.latencyWithRedirect.p99),
    'p99 < 5 s',
    mark(check(p?.latencyWithRedirect.p99, (v) => v < 5)),
  ]);
  rows.push([
    'Approval → caller signalled, without redirect: p50 / p95 / p99',
    ...[p, c, b].map((s) => (s ? latencyText(s.latencyWithoutRedirect) : '–')),
    ratio(p?.latencyWithoutRedirect.p99, c?.latencyWithoutRedirect.p99),
    ratio(p?.latencyWithoutRedirect.p99, b?.latencyWithoutRedirect.p99),
    '',
    '',
  ]);
  add(
    `HeyGen requests per consent, 24-h wait (measured, n=${p?.day.flows ?? b?.day.flows ?? 0})`,
    (s) => s.day.heygenRequests,
    (v) => num(v, 1),
    '≤ 60',
    check(p?.day.heygenRequests, (v) => v <= 60),
  );
  add(
    'HeyGen requests per consent, 24-h wait (baseline at its designed 1-min cadence)',
    (s) => (s.system === 'baseline' ? s.designedCadence?.heygenRequests : s.day.heygenRequests),
    (v) => num(v, 0),
  );
  add(
    'Billable actions per consent, 24-h wait (measured)',
    (s) => s.day.actions,
    (v) => num(v, 1),
    '≤ 80',
    check(p?.day.actions, (v) => v <= 80),
  );
  add(
    'Billable actions per consent, 24-h wait (baseline at its designed 1-min cadence)',
    (s) => (s.system === 'baseline' ? s.designedCadence?.actions : s.day.actions),
    (v) => num(v, 0),
  );
  add(
    'History events per consent, 24-h wait (measured)',
    (s) => s.day.events,
    (v) => num(v, 0),
    'bounded whatever the wait',
  );
  add(
    'History events per consent, 24-h wait (baseline at its designed 1-min cadence)',
    (s) => (s.system === 'baseline' ? s.designedCadence?.events : s.day.events),
    (v) => num(v, 0),
  );
  add(
    'Largest single-run history (events)',
    (s) => s.largestRunEvents,
    (v) => num(v),
  );
  add(
    'Per consent, whole main run (mean): HeyGen requests',
    (s) => s.perFlow.heygenRequests,
    (v) => num(v, 1),
  );
  add(
    'Per consent, whole main run (mean): billable actions',
    (s) => s.perFlow.actions,
    (v) => num(v, 1),
  );
  add(
    'Per consent, whole main run (mean): history events',
    (s) => s.perFlow.events,
    (v) => num(v, 0),
  );
  add(
    `Most HeyGen requests in any 1 s (product's HEYGEN_MAX_RPS ${num(p?.heygenMaxRps)})`,
    (s) => s.peakPerSecond,
    (v) => num(v),
  );
  add(
    '429s received (main run and burst)',
    (s) => s.rateLimited,
    (v) => num(v),
    '0',
    p ? p.rateLimited === 0 : null,
  );
  add(
    'Requests sent inside a Retry-After window (not counting those already in flight)',
    (s) => s.insideRetryAfter,
    (v) => num(v),
    '0',
    p ? p.insideRetryAfter === 0 : null,
  );
  add(
    'Requests in flight when a 429 was answered (arrived inside its window)',
    (s) => s.inFlightInsideRetryAfter,
    (v) => num(v),
  );
  text(
    "Status (pollProgress) vs the sandbox's polls: largest difference",
    (s) =>
      s.statusDifference.samples === 0
        ? '–'
        : `${num(s.statusDifference.largest)} (n=${s.statusDifference.samples})`,
    '≤ 1 poll',
    p && p.statusDifference.samples > 0 ? p.statusDifference.largest <= 1 : null,
  );
  const backlogText = (b: QueueBacklog | null | undefined) =>
    b ? `${num(b.maxCount)} (oldest ${num(b.maxAgeSeconds, 1)} s)` : '–';
  text('Main run, most tasks waiting: workflow queue (oldest)', (s) => backlogText(s.backlog?.workflow));
  text('Main run, most tasks waiting: activity queue (oldest)', (s) => backlogText(s.backlog?.activity));
  text('Main run, most tasks waiting: HeyGen queue (oldest)', (s) => backlogText(s.backlog?.heygen));
  add(
    'Worker peak RSS (MB)',
    (s) => s.peakRssMb,
    (v) => num(v, 0),
  );
  return table(
    [
      'metric',
      'product',
      'control',
      'baseline',
      'product ÷ control',
      'product ÷ baseline',
      'target (product)',
      '',
    ],
    rows,
  );
}

/** One several-workers run, as the tables show it. */
export interface MultiSummary {
  label: string;
  description: string;
  workers: number;
  gateFiles: number;
  queueGate: boolean;
  cap: number;
  flows: number;
  completed: number;
  peakPerSecond: number;
  peakPerSecondOver10s: number;
  injected429: number;
  rateLimited: number;
  inFlight: number;
  gateClosing: number;
  otherProcess: number;
  otherProcessBeforeQueueClosed: number;
  sameProcess: number;
  unattributed: number;
  violations: number;
  /** 429 headers → closure written to the receiver's gate file, ms. */
  gateFileLagMs: LatencySummary | null;
  latencyWithRedirect: LatencySummary;
}

export function summarizeMulti(phase: PhaseResult, description: string): MultiSummary {
  const completed = phase.flows.filter(isCompleted);
  const r = phase.requests.retryAfter;
  return {
    label: phase.label,
    description,
    workers: phase.workers.count,
    gateFiles: phase.workers.gateFiles,
    queueGate: phase.workers.queueGate,
    cap: phase.heygenMaxRps ?? Number.NaN,
    flows: phase.flows.length,
    completed: completed.length,
    peakPerSecond: phase.requests.peakPerSecond,
    peakPerSecondOver10s: phase.requests.peakPerSecondOver10s,
    injected429: phase.requests.injected429,
    rateLimited: phase.requests.rateLimitedByServer,
    inFlight: r.inside.inFlight,
    gateClosing: r.inside.gateClosing,
    otherProcess: r.inside.otherProcess,
    otherProcessBeforeQueueClosed: r.otherProcessBeforeQueueClosed,
    sameProcess: r.inside.sameProcess,
    unattributed: r.inside.unattributed,
    violations: r.violations,
    gateFileLagMs: phase.requests.gateFileLagMs,
    latencyWithRedirect: summarize(
      completed.filter((f) => f.followRedirect && f.latencyMs !== undefined).map((f) => f.latencyMs! / 1000),
    ),
  };
}

/** Whether a several-workers run meets its targets; the run without the queue gate across hosts only measures. */
export function multiVerdict(m: MultiSummary): { rate: boolean; retryAfter: boolean | null } {
  const acrossHostsUnshared = m.gateFiles > 1 && !m.queueGate;
  return {
    rate: m.peakPerSecond <= peakRateLimit(m.cap),
    retryAfter: acrossHostsUnshared ? null : m.violations === 0,
  };
}

export function renderMultiTable(runs: readonly MultiSummary[]): string {
  return table(
    [
      'run',
      'flows completed',
      'most requests in any 1 s (10-s average) vs HEYGEN_MAX_RPS',
      '429s (injected)',
      'inside a Retry-After window: in flight / before the gate closed / other process / same process / unattributed',
      'requests that could have been held back (target 0)',
      '429 → closure in its gate file: p50 / max (ms)',
      'approval → caller, with redirect p50 / p95 / p99',
      '',
    ],
    runs.map((m) => {
      const verdict = multiVerdict(m);
      const other =
        m.queueGate && m.gateFiles > 1
          ? `${m.otherProcess} (${m.otherProcessBeforeQueueClosed} before the queue closed)`
          : String(m.otherProcess);
      return [
        `${m.description}`,
        `${m.completed} / ${m.flows}`,
        `${num(m.peakPerSecond)} (${num(m.peakPerSecondOver10s, 1)}) vs ${num(m.cap)}: ${mark(verdict.rate)} (≤ ${num(peakRateLimit(m.cap))})`,
        `${num(m.rateLimited)} (${num(m.injected429)})`,
        `${m.inFlight} / ${m.gateClosing} / ${other} / ${m.sameProcess} / ${m.unattributed}`,
        `**${m.violations}**`,
        m.gateFileLagMs && m.gateFileLagMs.count > 0
          ? `${num(m.gateFileLagMs.p50, 1)} / ${num(m.gateFileLagMs.max, 1)} (n=${m.gateFileLagMs.count})`
          : '–',
        latencyText(m.latencyWithRedirect),
        verdict.retryAfter === null ? 'measured (no shared gate)' : mark(verdict.retryAfter),
      ];
    }),
  );
}

export function renderHoldTable(hold: Partial<HoldResult>, target: number): string {
  const mb = (v: number | undefined) => `${num((v ?? Number.NaN) / MB, 0)} MB`;
  const held = hold.held ?? 0;
  const approvals = hold.approvals;
  const rows: string[][] = [
    [
      `Worker RSS with ${num(held)} consents waiting, settled after ${num((hold.idleWindowMs ?? Number.NaN) / 1000)} s idle (VmRSS)${Object.entries(
        hold.extraEnv ?? {},
      )
        .map(([k, v]) => `, what-if ${k}=${v}`)
        .join('')}`,
      `${mb(hold.rssWhileHolding)} (idle before any: ${mb(hold.rssIdle)}; as all reached awaiting: ${mb(hold.rssAtAwaiting)}; peak VmHWM: ${mb(hold.peakRss)}` +
        (hold.memoryWhileHolding
          ? `; settled VmRSS = anonymous ${mb(hold.memoryWhileHolding.anon)} + files ${mb(hold.memoryWhileHolding.file)} + shared ${mb(hold.memoryWhileHolding.shmem)}, ${hold.memoryWhileHolding.threads} threads)`
          : ')'),
      `< 400 MB at ${num(target)}`,
      mark(
        held >= target
          ? (hold.awaiting ?? 0) === held && (hold.rssWhileHolding ?? Infinity) < 400 * MB
          : check(hold.rssWhileHolding, (v) => v < 400 * MB) === false
            ? false
            : null,
      ),
    ],
    [
      'Reached awaiting (email sent, first poll made) / time from the first start',
      `${num(hold.awaiting)} / ${num(held)} in ${num(hold.secondsToAwaiting, 0)} s (all started in ${num(hold.secondsToStart, 0)} s)`,
      'all',
      mark(hold.awaiting === undefined ? null : hold.awaiting === held),
    ],
    ...(hold.notAwaiting ?? []).map((g) => [
      `Not awaiting: ${g.groupId}`,
      `phase ${g.phase ?? '?'}${g.lastError ? `, last error ${g.lastError}` : ''}; sandbox saw: ${g.requests.join(', ') || 'nothing'}`,
      '',
      '',
    ]),
    [
      `Approved afterwards through the consent page + redirect: approval → workflow closed, p50 / p95 / p99`,
      approvals
        ? `${latencyText(approvals.latency)}; ${approvals.completed} / ${approvals.requested} completed`
        : '–',
      'p99 < 5 s',
      mark(approvals ? approvals.completed === approvals.requested && approvals.latency.p99 < 5 : null),
    ],
    [
      'Cancelled afterwards (Temporal cancellation), and how long it took',
      hold.cancelled === undefined ? '–' : `${num(hold.cancelled)} in ${num(hold.secondsToCancel, 0)} s`,
      '',
      '',
    ],
    [
      "The whole hold, from the worker's start to its stop",
      hold.wallSeconds === undefined ? '–' : `${num(hold.wallSeconds / MINUTE, 1)} min`,
      '< 20 min',
      mark(check(hold.wallSeconds, (v) => v < HOLD_SECONDS_TARGET)),
    ],
  ];
  if (hold.cpuToAwaiting) {
    const c = hold.cpuToAwaiting;
    rows.push([
      'CPU until all were awaiting: dev server / worker / benchmark / other processes',
      `${num(c.devServer)} / ${num(c.worker)} / ${num(c.bench)} / ${num(c.otherProcesses)} s (${num((c.devServer * 1000) / held, 1)} / ${num((c.worker * 1000) / held, 1)} ms per consent)`,
      '',
      '',
    ]);
  }
  return table(['hold (one production worker, `node dist/worker.js`)', 'measured', 'target', ''], rows);
}

/** Every target of the scale issue, one row each: the README's table. */
export function renderSummaryTable(args: {
  systems: Systems;
  multi: readonly MultiSummary[];
  hold: Partial<HoldResult> | null;
  holdTarget: number;
  artifact: string;
}): string {
  const { product: p, control: c } = args.systems;
  const rows: string[][] = [];
  const row = (what: string, measured: string, target: string, ok: boolean | null) =>
    rows.push([what, measured, target, mark(ok)]);
  const hold = args.hold;
  if (hold?.held !== undefined) {
    row(
      `Worker RSS, ${num(hold.held)} consents waiting (all reached awaiting: ${num(hold.awaiting)})`,
      `${num((hold.rssWhileHolding ?? Number.NaN) / MB)} MB (idle ${num((hold.rssIdle ?? Number.NaN) / MB)} MB)`,
      `< 400 MB at ${num(args.holdTarget)}`,
      hold.held >= args.holdTarget
        ? hold.awaiting === hold.held && (hold.rssWhileHolding ?? Infinity) < 400 * MB
        : null,
    );
    const a = hold.approvals;
    row(
      `${a?.requested ?? 0} of them approved through the redirect: approval → completion p50 / p95 / p99`,
      a ? latencyText(a.latency) : '–',
      'p99 < 5 s',
      a ? a.completed === a.requested && a.latency.p99 < 5 : null,
    );
    row(
      'The hold, start to stop',
      hold.wallSeconds === undefined ? '–' : `${num(hold.wallSeconds / MINUTE, 1)} min`,
      '< 20 min',
      check(hold.wallSeconds, (v) => v < HOLD_SECONDS_TARGET),
    );
  }
  for (const m of args.multi) {
    const verdict = multiVerdict(m);
    row(
      `${m.description}: most requests in any 1 s`,
      `${num(m.peakPerSecond)} (cap ${num(m.cap)})`,
      `≤ ${num(peakRateLimit(m.cap))} (cap + one window)`,
      verdict.rate,
    );
    row(
      `${m.description}: requests inside a Retry-After window`,
      `${m.violations} (in flight, not counted: ${m.inFlight})`,
      verdict.retryAfter === null ? 'measure' : '0',
      verdict.retryAfter,
    );
  }
  if (p) {
    row(
      'Redirect → caller signal p99, main run',
      latencyText(p.latencyWithRedirect),
      'p99 < 5 s',
      check(p.latencyWithRedirect.p99, (v) => v < 5),
    );
    row(
      'Requests inside a Retry-After window, main run and burst (429s received)',
      `${p.insideRetryAfter} (${p.rateLimited})`,
      '0 (0)',
      p.insideRetryAfter === 0 && p.rateLimited === 0,
    );
    row(
      "Status (pollProgress) vs the sandbox's polls, largest difference",
      p.statusDifference.samples === 0
        ? '–'
        : `${num(p.statusDifference.largest)} (n=${p.statusDifference.samples})`,
      '≤ 1',
      p.statusDifference.samples > 0 ? p.statusDifference.largest <= 1 : null,
    );
  }
  if (p && c) {
    const r = p.capacityFlowsPerSecond! / c.capacityFlowsPerSecond!;
    row(
      'Burst throughput, product ÷ control',
      `${num(p.capacityFlowsPerSecond, 1)} ÷ ${num(c.capacityFlowsPerSecond, 1)} flows/s = ${num(r, 2)}×`,
      `≥ ${THROUGHPUT_TARGET_RATIO}×`,
      check(r, (v) => v >= THROUGHPUT_TARGET_RATIO),
    );
  }
  return `${table(['target', 'measured', 'goal', ''], rows)}\n\nFrom ${args.artifact}.`;
}

/** Where the machine's CPU went in each phase: the throughput story on a 2-core box. */
export function renderCpuTable(phases: readonly PhaseResult[]): string {
  const lines = [
    '| phase | flows | wall (s) | dev server CPU (s) | worker CPU (s) | bench CPU (s) | other processes CPU (s) | CPU ms per flow (server / worker) |',
    '| --- | --- | --- | --- | --- | --- | --- | --- |',
  ];
  for (const phase of phases) {
    const c = phase.cpu;
    const n = phase.flows.length;
    lines.push(
      `| ${phase.label} | ${n} | ${num(c.wallSeconds, 1)} | ${num(c.devServer, 1)} | ${num(c.worker, 1)} | ${num(c.bench, 1)} | ${num(c.otherProcesses, 1)} | ${num((c.devServer * 1000) / n)} / ${num((c.worker * 1000) / n)} |`,
    );
  }
  const busy = phases.filter((p) => p.cpu.otherProcesses > 0.1 * p.cpu.wallSeconds);
  if (busy.length > 0) {
    lines.push(
      '',
      `**Warning:** other processes used more than 10 % of a core during ${busy.map((p) => p.label).join(', ')}; ` +
        'the machine was shared, so throughput and latency are understated. Run again on an idle machine.',
    );
  }
  return lines.join('\n');
}
