/**
 * `npm run chaos -- [--workflows 200] [--duration 270s] [--seed 42] [--short]`
 *
 * Breaks the avatar-consent stack on purpose while N consent workflows run (worker SIGKILLs among
 * several workers, Temporal SIGKILLs and a polite restart, HeyGen 5xx/hangs/429 storms/outage, SMTP
 * refusals, dropped replies and an outage), with the production settings on, then checks every
 * invariant, prints the figures and writes artifacts/chaos-<timestamp>.json. Exits 1 when an
 * invariant fails, 2 on bad arguments.
 */
import { parseArgs } from 'node:util';

import { parseDuration } from '../../src/contract/index.js';
import { isEntryPoint, runCli } from '../kit/cli.js';
import { formatReport, writeReport } from './report.js';
import { runChaos } from './run.js';
import type { ChaosOptions } from './run.js';

const usage = `Usage: npm run chaos -- [options]

  --workflows <n>      consent workflows run at once (default 200; 24 with --short)
  --duration <d>       length of the chaos phase, e.g. 270s or 4m (default 270s, 0.45 s a workflow
                       beyond 600 workflows; 45s with --short)
  --workers <n>        worker processes at once, killed one at a time (default 3; 2 with --short)
  --server-kills <n>   Temporal SIGKILLs during the chaos phase (default 2; 1 with --short)
  --max-rps <n>        HEYGEN_MAX_RPS for every worker (default workflows / 40, at least 20; 5 with --short)
  --seed <n>           seed for every random choice (default: random, printed)
  --short              the CI profile: shorter outages, fewer faults
  --settle <d>         longest wait for the workflows after the chaos phase (default 420s, 600s beyond
                       600 workflows; 100s with --short)
  --artifacts <dir>    where the JSON report goes (default artifacts/)
  --keep-scratch       keep the Temporal database and the run's codec key (printed path) for a post-mortem
  --help               this text`;

function durationOption(text: string | undefined, fallback: number, name: string): number {
  if (text === undefined) return fallback;
  const ms = parseDuration(/^\d+$/.test(text) ? `${text}s` : text);
  if (ms === undefined || ms < 10_000) {
    throw new Error(`--${name} must be a duration of at least 10s, e.g. 270s or 4m`);
  }
  return ms;
}

function integerOption(
  text: string | undefined,
  fallback: number,
  name: string,
  min: number,
  max: number,
): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!/^\d+$/.test(text) || value < min || value > max)
    throw new Error(`--${name} must be an integer from ${min} to ${max}`);
  return value;
}

type ChaosArgs = ChaosOptions & { artifactsDir: string };

export function optionsFromArgs(argv: string[]): ChaosArgs | 'help' {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      workflows: { type: 'string' },
      duration: { type: 'string' },
      seed: { type: 'string' },
      short: { type: 'boolean', default: false },
      settle: { type: 'string' },
      workers: { type: 'string' },
      'server-kills': { type: 'string' },
      'max-rps': { type: 'string' },
      artifacts: { type: 'string', default: 'artifacts' },
      'keep-scratch': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) return 'help';
  const short = values.short;
  const workflows = values.workflows === undefined ? (short ? 24 : 200) : Number(values.workflows);
  if (!Number.isInteger(workflows) || workflows < 10 || workflows > 2_000) {
    throw new Error('--workflows must be an integer from 10 to 2000');
  }
  const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(values.seed);
  if (!Number.isInteger(seed) || seed < 0) throw new Error('--seed must be a non-negative integer');
  const large = !short && workflows > 600;
  return {
    workflows,
    durationMs: durationOption(
      values.duration,
      short ? 45_000 : large ? workflows * 450 : 270_000,
      'duration',
    ),
    seed,
    profile: short ? 'short' : 'full',
    settleTimeoutMs: durationOption(values.settle, short ? 100_000 : large ? 600_000 : 420_000, 'settle'),
    workers: integerOption(values.workers, short ? 2 : 3, 'workers', 1, 8),
    serverKills: integerOption(values['server-kills'], short ? 1 : 2, 'server-kills', 0, 5),
    maxRps: integerOption(
      values['max-rps'],
      short ? 5 : Math.max(20, Math.round(workflows / 40)),
      'max-rps',
      1,
      10_000,
    ),
    keepScratch: values['keep-scratch'],
    artifactsDir: values.artifacts,
  };
}

async function main({ artifactsDir, ...options }: ChaosArgs): Promise<number> {
  const report = await runChaos(options);
  console.log(formatReport(report));
  const path = writeReport(report, artifactsDir);
  console.log(`\nreport: ${path}`);
  return report.ok ? 0 : 1;
}

if (isEntryPoint(import.meta.url)) {
  runCli({ name: 'chaos run', usage, parse: optionsFromArgs, run: main });
}
