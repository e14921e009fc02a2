/**
 * `npm run chaos -- [--workflows 200] [--duration 270s] [--seed 42] [--short] [--worker auto|product]`
 *
 * Breaks the avatar-consent stack on purpose while N consent workflows run (worker SIGKILLs, a Temporal
 * restart, HeyGen 5xx/hangs/429 storms/outage, an SMTP outage), then checks every invariant, prints
 * the figures and writes artifacts/chaos-<timestamp>.json. Exits 1 when an invariant fails, 2 on bad arguments.
 */
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';

import { parseDuration } from '../../src/contract.js';
import { formatReport, writeReport } from './report.js';
import { runChaos } from './run.js';
import type { ChaosOptions, WorkerChoice } from './run.js';

const usage = `Usage: npm run chaos -- [options]

  --workflows <n>      consent workflows run at once (default 200; 24 with --short)
  --duration <d>       length of the chaos phase, e.g. 270s or 4m (default 270s; 45s with --short)
  --seed <n>           seed for every random choice (default: random, printed)
  --short              the CI profile: shorter outages, fewer faults
  --worker <which>     auto (default) | product: src/worker.ts with HEYGEN_RATE_GATE_FILE
  --settle <d>         longest wait for the workflows after the chaos phase (default 420s; 100s with --short)
  --artifacts <dir>    where the JSON report goes (default artifacts/)`;

function fail(message: string): never {
  console.error(`${message}\n\n${usage}`);
  process.exit(2);
}

function durationOption(text: string | undefined, fallback: number, name: string): number {
  if (text === undefined) return fallback;
  const ms = parseDuration(/^\d+$/.test(text) ? `${text}s` : text);
  if (ms === undefined || ms < 10_000) fail(`--${name} must be a duration of at least 10s, e.g. 270s or 4m`);
  return ms;
}

export function optionsFromArgs(argv: string[]): ChaosOptions & { artifactsDir: string } {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      options: {
        workflows: { type: 'string' },
        duration: { type: 'string' },
        seed: { type: 'string' },
        short: { type: 'boolean', default: false },
        worker: { type: 'string', default: 'auto' },
        settle: { type: 'string' },
        artifacts: { type: 'string', default: 'artifacts' },
        help: { type: 'boolean', default: false },
      },
    }));
  } catch (err) {
    fail(err instanceof Error ? err.message : String(err));
  }
  if (values.help) {
    console.log(usage);
    process.exit(0);
  }
  const short = values.short;
  const workflows = values.workflows === undefined ? (short ? 24 : 200) : Number(values.workflows);
  if (!Number.isInteger(workflows) || workflows < 10 || workflows > 2_000)
    fail('--workflows must be an integer from 10 to 2000');
  const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(values.seed);
  if (!Number.isInteger(seed) || seed < 0) fail('--seed must be a non-negative integer');
  if (!['auto', 'product'].includes(values.worker)) fail('--worker must be auto or product');
  return {
    workflows,
    durationMs: durationOption(values.duration, short ? 45_000 : 270_000, 'duration'),
    seed,
    profile: short ? 'short' : 'full',
    worker: values.worker as WorkerChoice,
    settleTimeoutMs: durationOption(values.settle, short ? 100_000 : 420_000, 'settle'),
    artifactsDir: values.artifacts,
  };
}

async function main(): Promise<void> {
  const { artifactsDir, ...options } = optionsFromArgs(process.argv.slice(2));
  const report = await runChaos(options);
  console.log(formatReport(report));
  const path = writeReport(report, artifactsDir);
  console.log(`\nreport: ${path}`);
  process.exit(report.ok ? 0 : 1);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((err: unknown) => {
    console.error('chaos run failed:', err instanceof Error ? (err.stack ?? err.message) : String(err));
    process.exit(1);
  });
}
