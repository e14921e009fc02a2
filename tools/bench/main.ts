/**
 * `npm run bench`: the product's consent workflow (the built worker, as deployed) against a control
 * (its four activities in a minimal workflow) and a hand-written one-minute polling loop, on a real
 * Temporal dev server, the HeyGen sandbox and a real SMTP server, with all durations scaled down by
 * one factor; then several product workers on one task queue with 429s injected; then (--hold) many
 * waiting consents on one worker. See docs/benchmark.md for what is measured and how.
 *
 * Progress goes to stderr; the markdown tables to stdout; everything to artifacts/bench-<timestamp>.json.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleWorkflowCode, DefaultLogger, Runtime } from '@temporalio/worker';
import { runCli } from '../kit/cli.js';
import { resolveTemporalExecutable } from '../kit/temporal-binaries.js';
import { startSmtpCatcher } from '../kit/smtp-catcher.js';
import { BUDGET_SHARE, parseBenchArgs, usage } from './args.js';
import type { BenchArgs } from './args.js';
import { runHold } from './hold.js';
import type { HoldResult } from './hold.js';
import { baselineTimings, controlTimings, runPhase, scaledPolicy } from './phase.js';
import type { FlowPlan, PhaseConfig, PhaseResult, System } from './phase.js';
import { ensureBuilt } from './production-worker.js';
import {
  renderCpuTable,
  renderHoldTable,
  renderMultiTable,
  renderSummaryTable,
  renderTable,
  summarizeMulti,
  summarizeSystem,
} from './report.js';
import type { MultiSummary, SystemSummary } from './report.js';
import {
  DEV_SERVER_DYNAMIC_CONFIG,
  DEV_SERVER_SQLITE_PRAGMAS,
  startBenchGateway,
  startStack,
} from './stack.js';
import { drawLogNormal, seededRandom } from './stats.js';

const HOUR = 3_600_000;
/** Approval waits: log-normal, median 2 h, σ = 1 (p95 ≈ 10 h), redrawn outside [1 min, 22 h]. */
const APPROVAL_MEDIAN_MS = 2 * HOUR;
const APPROVAL_SIGMA = 1;
const APPROVAL_MIN_MS = 60_000;
const APPROVAL_MAX_MS = 22 * HOUR;
/** The several-workers runs: the same waits, cut at 12 h so a run lasts under a minute at 1:1000. */
const MULTI_APPROVAL_MAX_MS = 12 * HOUR;
const MULTI_START_RATE = 50;
const HOLD_TARGET = 10_000;

const progress = (line: string): void => {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
};

function drawnPlans(
  args: BenchArgs,
  count: number,
  opts: { offset: number; dayFlows: number; maxMs: number },
): FlowPlan[] {
  const random = seededRandom(args.seed);
  return Array.from({ length: count }, (_, i) => {
    const index = opts.offset + i;
    // The 24-hour cohort starts first, so the run ends about when they are approved.
    const day = i < opts.dayFlows;
    const scaledWait = day
      ? 24 * HOUR
      : drawLogNormal(random, {
          medianMs: APPROVAL_MEDIAN_MS,
          sigma: APPROVAL_SIGMA,
          minMs: APPROVAL_MIN_MS,
          maxMs: opts.maxMs,
        });
    // Half the people let the browser follow the consent page's redirect; the 24-hour cohort does
    // not, so its cost is that of polling alone.
    return { index, day, waitMs: scaledWait / args.scale, followRedirect: !day && i % 2 === 0 };
  });
}

function capacityPlans(count: number, offset: number): FlowPlan[] {
  return Array.from({ length: count }, (_, i) => ({
    index: offset + i,
    day: false,
    waitMs: 0,
    followRedirect: true,
  }));
}

async function bundle(path: string, out: string): Promise<string> {
  const { code } = await bundleWorkflowCode({
    workflowsPath: path,
    logger: { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} },
  });
  writeFileSync(out, code);
  return out;
}

/** The product's commit, and whether the tree had changes (the product moves; numbers belong to a commit). */
function productVersion(): { commit: string; dirty: boolean } {
  try {
    const commit = execFileSync('git', ['rev-parse', 'HEAD'], { encoding: 'utf8' }).trim();
    const dirty =
      execFileSync('git', ['status', '--porcelain', '--', 'src'], { encoding: 'utf8' }).trim() !== '';
    return { commit, dirty };
  } catch {
    return { commit: 'unknown', dirty: false };
  }
}

function machine(): Record<string, unknown> {
  const executable = resolveTemporalExecutable('dev-server');
  let temporalCli = 'SDK download';
  if (executable.type === 'existing-path') {
    try {
      temporalCli = execFileSync(executable.path, ['--version'], { encoding: 'utf8' }).trim();
    } catch {
      temporalCli = executable.path;
    }
  }
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memoryGb: Math.round(totalmem() / 1024 ** 3),
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    temporalCli,
  };
}

/** The several-workers runs: one host (one gate file), then two hosts without and with the shared queue gate. */
const MULTI_RUNS = [
  {
    key: 'one-host',
    description: '3 workers, one host (one gate file, queue gate on)',
    workers: 3,
    sharedFile: true,
    queueGate: true,
  },
  {
    key: 'two-hosts-no-queue-gate',
    description: '2 hosts (a gate file each), HEYGEN_QUEUE_GATE=false',
    workers: 2,
    sharedFile: false,
    queueGate: false,
  },
  {
    key: 'two-hosts-queue-gate',
    description: '2 hosts (a gate file each), HEYGEN_QUEUE_GATE on',
    workers: 2,
    sharedFile: false,
    queueGate: true,
  },
] as const;

async function main(args: BenchArgs): Promise<number> {
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  const startedAt = new Date();
  const loadAtStart = loadavg();
  const stamp = startedAt.toISOString().replace(/[:.]/g, '-');
  const artifacts = resolve(fileURLToPath(new URL('../../artifacts', import.meta.url)));
  mkdirSync(artifacts, { recursive: true });
  const tmp = mkdtempSync(join(artifacts, `bench-tmp-${stamp}-`));
  const runTag = randomBytes(3).toString('hex');
  progress(
    `flows ${args.flows} (24-h cohort ${args.dayFlows}), burst ${args.capacityFlows}, scale ${args.scale}, ` +
      `rate limit ${args.rateLimit}/s, HEYGEN_MAX_RPS ${args.heygenMaxRps}, several workers ${args.multiFlows} flows, ` +
      `hold ${args.hold}; work files in ${tmp}`,
  );

  // The product runs as deployed: the built worker and its pre-built workflow bundle.
  ensureBuilt(progress);
  progress('bundling the control, baseline and caller workflows');
  const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));
  const [controlBundle, baselineBundle, callerBundle] = await Promise.all([
    bundle(here('./control-workflows.ts'), join(tmp, 'control-workflows.js')),
    bundle(here('./baseline-workflows.ts'), join(tmp, 'baseline-workflows.js')),
    bundle(here('./caller-workflows.ts'), join(tmp, 'caller-workflows.js')),
  ]);

  const smtp = await startSmtpCatcher();
  /** What every phase shares. */
  const shared = {
    smtp,
    scale: args.scale,
    rateLimit: args.rateLimit,
    heygenMaxRps: args.heygenMaxRps,
    productEnv: args.productEnv,
    runTag,
    progress,
  } satisfies Partial<PhaseConfig>;
  const phases: Partial<Record<System, { main: PhaseResult | null; capacity: PhaseResult | null }>> = {};
  const multi: Array<{ phase: PhaseResult; summary: MultiSummary }> = [];
  const gatewayLog: Record<string, number> = {};
  let hold: Partial<HoldResult> | null = null;
  const output = join(artifacts, `bench-${stamp}.json`);
  const artifact = `artifacts/${basename(output)}`;
  /** Writes everything measured so far (after each phase, so a crash later loses nothing). */
  const writeResults = (complete: boolean): string => {
    const summaries: Partial<Record<System, SystemSummary>> = {};
    for (const system of args.systems) {
      const phase = phases[system];
      if (phase) summaries[system] = summarizeSystem(phase.main, phase.capacity);
    }
    const systems = {
      product: summaries.product ?? null,
      control: summaries.control ?? null,
      baseline: summaries.baseline ?? null,
    };
    const multiSummaries = multi.map((m) => m.summary);
    const summaryTable = renderSummaryTable({
      systems,
      multi: multiSummaries,
      hold,
      holdTarget: HOLD_TARGET,
      artifact,
    });
    const table = renderTable(systems);
    const multiTable = multiSummaries.length > 0 ? renderMultiTable(multiSummaries) : '';
    const holdTable = hold ? renderHoldTable(hold, HOLD_TARGET) : '';
    const cpuTable = renderCpuTable(
      [
        ...args.systems.flatMap((system) => [phases[system]?.main, phases[system]?.capacity]),
        ...multi.map((m) => m.phase),
      ].filter((phase): phase is PhaseResult => phase !== null && phase !== undefined),
    );
    const finishedAt = new Date();
    const host = machine();
    const version = productVersion();
    const load = [loadAtStart, loadavg()].map((l) => l.map((v) => v.toFixed(2)).join(' ')).join(' → ');
    const header = [
      `Benchmark ${startedAt.toISOString()} (${((finishedAt.getTime() - startedAt.getTime()) / 60_000).toFixed(1)} min) on ` +
        `${String(host.cpu)}, ${String(host.cores)} cores, ${String(host.memoryGb)} GB, Node ${process.version}, ${String(host.temporalCli)}; ` +
        `product ${version.commit.slice(0, 10)}${version.dirty ? ' (with uncommitted changes in src/)' : ''}; ` +
        `load average (1/5/15 min) at start → end: ${load}`,
      `${args.flows} flows per system (${args.dayFlows} approved after exactly 24 h), burst of ${args.capacityFlows}, ` +
        `scale 1:${args.scale} (24 h = ${((24 * HOUR) / args.scale / 1000).toFixed(1)} s), sandbox rate limit ${args.rateLimit} requests/s per key, ` +
        `product HEYGEN_MAX_RPS ${args.heygenMaxRps} (${args.heygenMaxRps === Math.floor(args.rateLimit * BUDGET_SHARE) ? `${BUDGET_SHARE * 100} % of it: ` : ''}the known budget)` +
        Object.entries(args.productEnv)
          .map(([name, value]) => `, what-if ${name}=${value}`)
          .join(''),
    ].join('\n');
    writeFileSync(
      output,
      JSON.stringify(
        {
          startedAt: startedAt.toISOString(),
          finishedAt: finishedAt.toISOString(),
          loadAverage: { atStart: loadAtStart, atEnd: loadavg() },
          machine: host,
          product: version,
          args,
          devServer: { sqlitePragmas: DEV_SERVER_SQLITE_PRAGMAS, dynamicConfig: DEV_SERVER_DYNAMIC_CONFIG },
          approvalWaits: {
            distribution: 'log-normal, redrawn outside [min, max]',
            medianMs: APPROVAL_MEDIAN_MS,
            sigma: APPROVAL_SIGMA,
            minMs: APPROVAL_MIN_MS,
            maxMs: APPROVAL_MAX_MS,
            multiMaxMs: MULTI_APPROVAL_MAX_MS,
            scaledBy: args.scale,
          },
          productPolicy: scaledPolicy(args.scale),
          controlTimings: controlTimings(args.scale),
          baselineTimings: baselineTimings(args.scale),
          summaries,
          multi: multiSummaries,
          hold,
          complete,
          gatewayLog,
          tables: {
            summary: summaryTable,
            systems: table,
            multi: multiTable,
            hold: holdTable,
            cpu: cpuTable,
          },
          phases,
          multiPhases: multi.map((m) => m.phase),
        },
        null,
        1,
      ),
    );
    return (
      [header, summaryTable, table, multiTable, holdTable, cpuTable].filter((t) => t !== '').join('\n\n') +
      '\n'
    );
  };

  try {
    for (const system of args.systems) {
      progress(`${system}: starting a fresh Temporal dev server`);
      const stack = await startStack({
        dbFile: join(tmp, `temporal-${system}.sqlite`),
        logFile: join(tmp, `temporal-${system}.log`),
        callerBundlePath: callerBundle,
      });
      // The gateway is one of the product's extras: the control and the baseline have none.
      const gateway = system === 'product' ? await startBenchGateway(stack.env.client, gatewayLog) : null;
      try {
        const common = {
          ...shared,
          system,
          stack,
          gateway,
          bundlePath: system === 'control' ? controlBundle : baselineBundle,
        } satisfies Partial<PhaseConfig>;
        const dayWaitMs = (24 * HOUR) / args.scale;
        const main = args.burstOnly
          ? null
          : await runPhase({
              ...common,
              label: `${system}-main`,
              plans: drawnPlans(args, args.flows, {
                offset: 0,
                dayFlows: args.dayFlows,
                maxMs: APPROVAL_MAX_MS,
              }),
              startRate: args.startRate,
              logFile: join(tmp, `worker-${system}-main.log`),
              collectCosts: true,
              graceMs: 120_000,
              // While the 24-hour cohort waits, its polls are spaced at the backoff's cap.
              statusSamplesAtMs: [0.4, 0.6, 0.8].map((f) => f * dayWaitMs),
            });
        const capacity =
          args.capacityFlows > 0
            ? await runPhase({
                ...common,
                label: `${system}-burst`,
                plans: capacityPlans(args.capacityFlows, args.flows),
                startRate: null,
                logFile: join(tmp, `worker-${system}-burst.log`),
                collectCosts: false,
                graceMs: 180_000 + args.capacityFlows * 200,
              })
            : null;
        phases[system] = { main, capacity };
        writeResults(false);
      } finally {
        await gateway?.gateway.close();
        await stack.close();
      }
    }

    if (args.multiFlows > 0 && args.systems.includes('product')) {
      progress('several workers: starting a fresh Temporal dev server');
      const stack = await startStack({
        dbFile: join(tmp, 'temporal-multi.sqlite'),
        logFile: join(tmp, 'temporal-multi.log'),
        callerBundlePath: callerBundle,
      });
      const gateway = await startBenchGateway(stack.env.client, gatewayLog);
      try {
        for (const [i, run] of MULTI_RUNS.entries()) {
          const phase = await runPhase({
            ...shared,
            label: `multi-${run.key}`,
            system: 'product',
            stack,
            gateway,
            workers: Array.from({ length: run.workers }, (_, w) => ({
              gateFile: join(tmp, `rate-gate-${run.key}${run.sharedFile ? '' : `-host${w + 1}`}.json`),
            })),
            queueGate: run.queueGate,
            faults: { everyMs: args.faultEveryMs, retryAfter: '1' },
            plans: drawnPlans(args, args.multiFlows, {
              offset: 1_000_000 * (i + 1),
              dayFlows: 0,
              maxMs: MULTI_APPROVAL_MAX_MS,
            }),
            startRate: MULTI_START_RATE,
            bundlePath: '',
            logFile: join(tmp, `worker-multi-${run.key}.log`),
            collectCosts: false,
            graceMs: 120_000,
          });
          multi.push({ phase, summary: summarizeMulti(phase, run.description) });
          writeResults(false);
        }
      } finally {
        await gateway.gateway.close();
        await stack.close();
      }
    }

    if (args.hold > 0) {
      progress('hold: starting a fresh Temporal dev server');
      const stack = await startStack({
        dbFile: join(tmp, 'temporal-hold.sqlite'),
        logFile: join(tmp, 'temporal-hold.log'),
        callerBundlePath: callerBundle,
      });
      try {
        hold = await runHold({
          ...shared,
          n: args.hold,
          approvals: args.holdApprovals,
          stack,
          extraEnv: args.productEnv,
          logFile: join(tmp, 'worker-hold.log'),
          onMeasured: (partial) => {
            hold = partial;
            writeResults(false);
          },
        });
      } finally {
        await stack.close();
      }
    }
  } finally {
    await smtp.close();
  }

  const printed = writeResults(true);
  // The servers' databases go; the logs stay, beside the results, for a look at what happened.
  for (const file of readdirSync(tmp)) if (file.includes('.sqlite')) rmSync(join(tmp, file), { force: true });
  console.log(printed);
  progress(`results in ${output}; logs in ${tmp}`);
  return 0;
}

runCli({ name: 'benchmark', usage, parse: parseBenchArgs, run: main });
