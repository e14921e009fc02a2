/** Turns phase results into per-system numbers and the markdown table (product vs baseline, targets). */
import type { HoldResult } from './hold.js';
import type { FlowResult, PhaseResult, System } from './phase.js';
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
  insideRetryAfter: number;
  heygenRequestsTotal: number;
  peakRssMb: number;
  attemptsFromWorkerLogOnly: number;
}

const MB = 1024 * 1024;
const ITERATIONS_PER_DAY = 1_440;

function pollType(system: System): string {
  return system === 'product' ? 'pollConsentStatus' : 'checkConsentStatus';
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

export function summarizeSystem(main: PhaseResult | null, capacity: PhaseResult | null): SystemSummary {
  const system = main?.system ?? capacity?.system ?? 'product';
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
    rateLimited: (main?.requests.rateLimitedByServer ?? 0) + (capacity?.requests.rateLimitedByServer ?? 0),
    insideRetryAfter: (main?.requests.insideRetryAfter ?? 0) + (capacity?.requests.insideRetryAfter ?? 0),
    heygenRequestsTotal: (main?.requests.total ?? 0) + (capacity?.requests.total ?? 0),
    peakRssMb: Math.max(main?.worker.peakRss ?? 0, capacity?.worker.peakRss ?? 0) / MB,
    attemptsFromWorkerLogOnly: main?.attemptsFromWorkerLogOnly ?? 0,
  };
}

// ---------------------------------------------------------------------------------------------
// Markdown
// ---------------------------------------------------------------------------------------------

const num = (value: number | null | undefined, digits = 0): string =>
  value === null || value === undefined || Number.isNaN(value)
    ? '–'
    : value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

const ratio = (a: number | null | undefined, b: number | null | undefined): string =>
  a === null ||
  a === undefined ||
  b === null ||
  b === undefined ||
  !Number.isFinite(a) ||
  !Number.isFinite(b) ||
  b === 0
    ? '–'
    : `${num(a / b, 2)}×`;

const latencyText = (l: LatencySummary): string =>
  l.count === 0 ? '–' : `${num(l.p50, 2)} / ${num(l.p95, 2)} / ${num(l.p99, 2)} s (n=${l.count})`;

const mark = (ok: boolean | null): string => (ok === null ? '' : ok ? '✅ met' : '❌ missed');
/** A target check on a number that may be missing (NaN): no verdict then. */
const check = (value: number | null | undefined, ok: (v: number) => boolean): boolean | null =>
  value === null || value === undefined || Number.isNaN(value) ? null : ok(value);

interface Row {
  metric: string;
  product: string;
  baseline: string;
  ratio: string;
  target: string;
  met: string;
}

export function renderTable(args: {
  product: SystemSummary | null;
  baseline: SystemSummary | null;
  /** Partial while the cancellation is still running (or failed). */
  hold: Partial<HoldResult> | null;
  holdTarget: number;
}): string {
  const { product: p, baseline: b, hold } = args;
  const rows: Row[] = [];
  const add = (
    metric: string,
    pv: number | null | undefined,
    bv: number | null | undefined,
    format: (v: number | null | undefined) => string,
    target = '',
    ok: boolean | null = null,
  ) =>
    rows.push({
      metric,
      product: format(pv),
      baseline: format(bv),
      ratio: ratio(pv, bv),
      target,
      met: mark(ok),
    });

  add(
    `Throughput: completed flows/s (burst of ${p?.capacityFlows ?? b?.capacityFlows ?? 0}, approval on email)`,
    p?.capacityFlowsPerSecond,
    b?.capacityFlowsPerSecond,
    (v) => num(v, 1),
    '≥ 25/s',
    check(p?.capacityFlowsPerSecond, (v) => v >= 25),
  );
  rows.push({
    metric: 'Failures in the burst',
    product: num(p?.capacityFailures),
    baseline: num(b?.capacityFailures),
    ratio: '',
    target: '0',
    met: mark(p?.capacityFailures != null ? p.capacityFailures === 0 : null),
  });
  rows.push({
    metric: `Main run: completed / failed (of ${p?.flows ?? b?.flows ?? 0})`,
    product: p ? `${p.completed} / ${p.failures}` : '–',
    baseline: b ? `${b.completed} / ${b.failures}` : '–',
    ratio: '',
    target: '0 failed',
    met: mark(p && p.flows > 0 ? p.failures === 0 : null),
  });
  add(
    'Main run: completed flows/s (includes the approval waits)',
    p?.mainFlowsPerSecond,
    b?.mainFlowsPerSecond,
    (v) => num(v, 2),
  );
  rows.push({
    metric: 'Approval → caller signalled, **with** redirect: p50 / p95 / p99',
    product: p ? latencyText(p.latencyWithRedirect) : '–',
    baseline: b ? latencyText(b.latencyWithRedirect) : '–',
    ratio: ratio(p?.latencyWithRedirect.p99, b?.latencyWithRedirect.p99),
    target: 'p99 < 5 s',
    met: mark(check(p?.latencyWithRedirect.p99, (v) => v < 5)),
  });
  rows.push({
    metric: 'Approval → caller signalled, without redirect: p50 / p95 / p99',
    product: p ? latencyText(p.latencyWithoutRedirect) : '–',
    baseline: b ? latencyText(b.latencyWithoutRedirect) : '–',
    ratio: ratio(p?.latencyWithoutRedirect.p99, b?.latencyWithoutRedirect.p99),
    target: '',
    met: '',
  });
  add(
    `HeyGen requests per consent, 24-h wait (measured, n=${p?.day.flows ?? b?.day.flows ?? 0})`,
    p?.day.heygenRequests,
    b?.day.heygenRequests,
    (v) => num(v, 1),
    '≤ 60',
    check(p?.day.heygenRequests, (v) => v <= 60),
  );
  add(
    'HeyGen requests per consent, 24-h wait (baseline at its designed 1-min cadence)',
    p?.day.heygenRequests,
    b?.designedCadence?.heygenRequests,
    (v) => num(v, 0),
  );
  add(
    'Billable actions per consent, 24-h wait (measured)',
    p?.day.actions,
    b?.day.actions,
    (v) => num(v, 1),
    '≤ 80',
    check(p?.day.actions, (v) => v <= 80),
  );
  add(
    'Billable actions per consent, 24-h wait (baseline at its designed 1-min cadence)',
    p?.day.actions,
    b?.designedCadence?.actions,
    (v) => num(v, 0),
  );
  add(
    'History events per consent, 24-h wait (measured)',
    p?.day.events,
    b?.day.events,
    (v) => num(v, 0),
    'bounded whatever the wait',
    null,
  );
  add(
    'History events per consent, 24-h wait (baseline at its designed 1-min cadence)',
    p?.day.events,
    b?.designedCadence?.events,
    (v) => num(v, 0),
  );
  add('Largest single-run history (events)', p?.largestRunEvents, b?.largestRunEvents, (v) => num(v));
  add(
    'Per consent, whole main run (mean): HeyGen requests',
    p?.perFlow.heygenRequests,
    b?.perFlow.heygenRequests,
    (v) => num(v, 1),
  );
  add('Per consent, whole main run (mean): billable actions', p?.perFlow.actions, b?.perFlow.actions, (v) =>
    num(v, 1),
  );
  add('Per consent, whole main run (mean): history events', p?.perFlow.events, b?.perFlow.events, (v) =>
    num(v, 0),
  );
  add('429s received', p?.rateLimited, b?.rateLimited, (v) => num(v));
  add(
    'Requests sent inside a Retry-After window',
    p?.insideRetryAfter,
    b?.insideRetryAfter,
    (v) => num(v),
    '0',
    p ? p.insideRetryAfter === 0 : null,
  );
  add('Worker peak RSS (MB)', p?.peakRssMb, b?.peakRssMb, (v) => num(v, 0));
  if (hold && hold.held !== undefined) {
    const held = hold.held;
    const awaiting = hold.awaiting ?? 0;
    const rss = hold.rssWhileHolding ?? Number.NaN;
    rows.push({
      metric: `Worker RSS with ${num(held)} consents waiting (${num(awaiting)} had reached awaiting)`,
      product: `${num(rss / MB, 0)} MB (idle ${num((hold.rssIdle ?? Number.NaN) / MB, 0)} MB)`,
      baseline: '',
      ratio: '',
      target: `< 400 MB at ${num(args.holdTarget)}`,
      met: mark(
        held >= args.holdTarget ? awaiting === held && rss < 400 * MB : rss >= 400 * MB ? false : null,
      ),
    });
  }

  const header = '| metric | product | baseline | product ÷ baseline | target (product) | |';
  const rule = '| --- | --- | --- | --- | --- | --- |';
  return [
    header,
    rule,
    ...rows.map(
      (r) => `| ${r.metric} | ${r.product} | ${r.baseline} | ${r.ratio} | ${r.target} | ${r.met} |`,
    ),
  ].join('\n');
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
