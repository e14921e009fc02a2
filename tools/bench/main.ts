/**
 * `npm run bench`: the product's consent workflow against a hand-written one-minute polling loop,
 * on a real Temporal dev server, the HeyGen sandbox and a real SMTP server, with all durations
 * scaled down by one factor. See docs/benchmark.md for what is measured and how.
 *
 * Progress goes to stderr; the markdown table to stdout; everything to artifacts/bench-<timestamp>.json.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleWorkflowCode, DefaultLogger, Runtime } from '@temporalio/worker';
import { GatewaySecrets, startGateway } from '../../src/gateway/index.js';
import type { Gateway, GatewayLogger } from '../../src/gateway/index.js';
import { checkNowSender } from '../../src/gateway/main.js';
import { runCli } from '../kit/cli.js';
import { resolveTemporalExecutable } from '../kit/temporal-binaries.js';
import { workflowsPath } from '../../src/worker.js';
import { startSmtpCatcher } from '../kit/smtp-catcher.js';
import { parseBenchArgs, usage } from './args.js';
import type { BenchArgs } from './args.js';
import { runHold } from './hold.js';
import type { HoldResult } from './hold.js';
import { baselineTimings, runPhase, scaledPolicy } from './phase.js';
import type { FlowPlan, PhaseResult, System } from './phase.js';
import { renderCpuTable, renderTable, summarizeSystem } from './report.js';
import type { SystemSummary } from './report.js';
import {
  DEV_SERVER_DYNAMIC_CONFIG,
  DEV_SERVER_SQLITE_PRAGMAS,
  setWorkerHeapLimitMb,
  startStack,
} from './stack.js';
import { drawLogNormal, seededRandom } from './stats.js';

const HOUR = 3_600_000;
/** Approval waits: log-normal, median 2 h, σ = 1 (p95 ≈ 10 h), redrawn outside [1 min, 22 h]. */
const APPROVAL_MEDIAN_MS = 2 * HOUR;
const APPROVAL_SIGMA = 1;
const APPROVAL_MIN_MS = 60_000;
const APPROVAL_MAX_MS = 22 * HOUR;
const HOLD_TARGET = 10_000;

const progress = (line: string): void => {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
};

function mainPlans(args: BenchArgs): FlowPlan[] {
  const random = seededRandom(args.seed);
  return Array.from({ length: args.flows }, (_, index) => {
    // The 24-hour cohort starts first, so the run ends about when they are approved.
    const day = index < args.dayFlows;
    const scaledWait = day
      ? 24 * HOUR
      : drawLogNormal(random, {
          medianMs: APPROVAL_MEDIAN_MS,
          sigma: APPROVAL_SIGMA,
          minMs: APPROVAL_MIN_MS,
          maxMs: APPROVAL_MAX_MS,
        });
    // Half the people let the browser follow the consent page's redirect; the 24-hour cohort does
    // not, so its cost is that of polling alone.
    return { index, day, waitMs: scaledWait / args.scale, followRedirect: !day && index % 2 === 0 };
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

/** Counts the gateway's log lines by message, so the report can say how the redirects went. */
function countingLogger(counts: Record<string, number>): GatewayLogger {
  const note = (message: string) => {
    counts[message] = (counts[message] ?? 0) + 1;
  };
  return { info: note, warn: note, error: note };
}

async function main(args: BenchArgs): Promise<number> {
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  setWorkerHeapLimitMb(args.workerHeapMb);

  const startedAt = new Date();
  const stamp = startedAt.toISOString().replace(/[:.]/g, '-');
  const artifacts = resolve(fileURLToPath(new URL('../../artifacts', import.meta.url)));
  mkdirSync(artifacts, { recursive: true });
  const tmp = mkdtempSync(join(artifacts, `bench-tmp-${stamp}-`));
  const runTag = randomBytes(3).toString('hex');
  progress(
    `flows ${args.flows} (24-h cohort ${args.dayFlows}), burst ${args.capacityFlows}, scale ${args.scale}, ` +
      `rate limit ${args.rateLimit}/s, hold ${args.hold}; work files in ${tmp}`,
  );

  progress('bundling workflow code');
  const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));
  const [productBundle, baselineBundle, callerBundle] = await Promise.all([
    bundle(workflowsPath, join(tmp, 'product-workflows.js')),
    bundle(here('./baseline-workflows.ts'), join(tmp, 'baseline-workflows.js')),
    bundle(here('./caller-workflows.ts'), join(tmp, 'caller-workflows.js')),
  ]);

  const smtp = await startSmtpCatcher();
  let holdPartial: Partial<HoldResult> | null = null;
  const phases: Partial<Record<System, { main: PhaseResult | null; capacity: PhaseResult | null }>> = {};
  const gatewayLog: Record<string, number> = {};
  let hold: HoldResult | null = null;
  /** Writes everything measured so far (after each phase, so a crash later loses nothing). */
  const output = join(artifacts, `bench-${stamp}.json`);
  const writeResults = (complete: boolean): string => {
    const summaries: Partial<Record<System, SystemSummary>> = {};
    for (const system of args.systems) {
      const phase = phases[system];
      if (phase) summaries[system] = summarizeSystem(phase.main, phase.capacity);
    }
    const table = renderTable({
      product: summaries.product ?? null,
      baseline: summaries.baseline ?? null,
      hold: hold ?? holdPartial,
      holdTarget: HOLD_TARGET,
    });
    const cpuTable = renderCpuTable(
      args.systems
        .flatMap((system) => [phases[system]?.main, phases[system]?.capacity])
        .filter((phase): phase is PhaseResult => phase !== null && phase !== undefined),
    );
    const finishedAt = new Date();
    const host = machine();
    const version = productVersion();
    const header = [
      `Benchmark ${startedAt.toISOString()} (${((finishedAt.getTime() - startedAt.getTime()) / 60_000).toFixed(1)} min) on ` +
        `${String(host.cpu)}, ${String(host.cores)} cores, ${String(host.memoryGb)} GB, Node ${process.version}, ${String(host.temporalCli)}; ` +
        `product ${version.commit.slice(0, 10)}${version.dirty ? ' (with uncommitted changes in src/)' : ''}`,
      `${args.flows} flows per system (${args.dayFlows} approved after exactly 24 h), burst of ${args.capacityFlows}, ` +
        `scale 1:${args.scale} (24 h = ${((24 * HOUR) / args.scale / 1000).toFixed(1)} s), sandbox rate limit ${args.rateLimit} requests/s per key` +
        (args.workerHeapMb ? `, what-if: worker --max-old-space-size=${args.workerHeapMb}` : ''),
    ].join('\n');
    writeFileSync(
      output,
      JSON.stringify(
        {
          startedAt: startedAt.toISOString(),
          finishedAt: finishedAt.toISOString(),
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
            scaledBy: args.scale,
          },
          productPolicy: scaledPolicy(args.scale),
          baselineTimings: baselineTimings(args.scale),
          summaries,
          hold: hold ?? holdPartial,
          complete,
          gatewayLog,
          table,
          cpuTable,
          phases,
        },
        null,
        1,
      ),
    );
    return `${header}\n\n${table}\n\n${cpuTable}\n`;
  };

  try {
    for (const system of args.systems) {
      progress(`${system}: starting a fresh Temporal dev server`);
      const stack = await startStack({
        dbFile: join(tmp, `temporal-${system}.sqlite`),
        logFile: join(tmp, `temporal-${system}.log`),
        callerBundlePath: callerBundle,
      });
      let gateway: { gateway: Gateway; secretText: string } | null = null;
      try {
        if (system === 'product') {
          const secretText = `hex:${randomBytes(32).toString('hex')}`;
          gateway = {
            secretText,
            gateway: await startGateway({
              host: '127.0.0.1',
              port: 0,
              secrets: GatewaySecrets.fromTexts([secretText]),
              signal: checkNowSender(stack.env.client),
              logger: countingLogger(gatewayLog),
            }),
          };
        }
        const common = {
          system,
          stack,
          smtp,
          gateway,
          scale: args.scale,
          rateLimit: args.rateLimit,
          runTag,
          bundlePath: system === 'product' ? productBundle : baselineBundle,
          progress,
        };
        const main = args.burstOnly
          ? null
          : await runPhase({
              ...common,
              label: `${system}-main`,
              plans: mainPlans(args),
              startRate: args.startRate,
              logFile: join(tmp, `worker-${system}-main.log`),
              collectCosts: true,
              graceMs: 120_000,
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
    if (args.hold > 0) {
      progress('hold: starting a fresh Temporal dev server');
      const stack = await startStack({
        dbFile: join(tmp, 'temporal-hold.sqlite'),
        logFile: join(tmp, 'temporal-hold.log'),
        callerBundlePath: callerBundle,
      });
      try {
        hold = await runHold({
          n: args.hold,
          stack,
          smtp,
          runTag,
          bundlePath: productBundle,
          logFile: join(tmp, 'worker-hold.log'),
          progress,
          onMeasured: (partial) => {
            holdPartial = partial;
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
  rmSync(tmp, { recursive: true, force: true });
  console.log(printed);
  progress(`results in ${output}`);
  return 0;
}

runCli({ name: 'benchmark', usage, parse: parseBenchArgs, run: main });
