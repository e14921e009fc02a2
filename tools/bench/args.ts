/** Command-line flags of `npm run bench`, validated with zod. */
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { formatIssues } from '../../src/rules/issues.js';

export const usage = `Usage: npm run bench -- [options]

Drives consent flows through the product (the built worker, dist/), a control (the product's four
activities in a minimal workflow) and a hand-written one-minute polling loop (the baseline) on a
Temporal dev server, the HeyGen sandbox and a real SMTP server, with every duration divided by
--scale; then several product workers on one task queue with 429s injected; then, with --hold, N
waiting consents on one worker. Prints markdown tables (JSON in artifacts/bench-<timestamp>.json).

  --flows <M>           consent flows per system in the main run (default 500)
  --scale <factor>      all durations divided by this (default 1000: 24 h = 86.4 s; at most 1500,
                        because the 15 s first poll interval must stay >= 10 ms)
  --hold <N>            also start N consents on one production worker, measure its memory once
                        all are waiting, approve --hold-approvals of them through the redirect,
                        cancel the rest (default 0: skipped)
  --hold-approvals <K>  consents of the hold approved afterwards (default 100)
  --product-env NAME=VALUE
                        what-if: an environment variable for every product worker (phases and
                        hold), as a deployment could set it (repeatable), e.g.
                        --product-env WORKER_MAX_CACHED_WORKFLOWS=1000 or
                        --product-env NODE_OPTIONS=--max-old-space-size=256 (default: none)
  --day-flows <K>       flows of the M approved exactly 24 h (scaled) after the first email, to
                        measure the cost of a 24-hour wait (default max(3, M/50))
  --capacity-flows <C>  flows in the throughput run, approved as soon as the email arrives
                        (default M; 0 skips it)
  --start-rate <r>      consents started per second in the main run (default 50)
  --rate-limit <n>      sandbox rate limit: requests per 1-second window per API key (default 100)
  --heygen-max-rps <n>  the product's HEYGEN_MAX_RPS, the known budget (default 80% of --rate-limit)
  --multi-flows <n>     flows in each several-workers run (default 300; 0 skips those runs)
  --fault-every-ms <n>  in the several-workers runs, a 429 (Retry-After: 1) injected this often
                        (default 5000)
  --seed <n>            seed of the approval times (default 1)
  --only <system>       product, control or baseline (default all three)
  --burst-only          only the throughput run (no main run: no latency or cost numbers)
  --help                this text`;

/**
 * The product's known HeyGen budget, as a share of the sandbox's rate limit: what an operator sets
 * HEYGEN_MAX_RPS to, leaving room for other clients of the key and for the limiter's window edges.
 */
export const BUDGET_SHARE = 0.8;

const positiveInt = (name: string, min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, `${name} must be a whole number`)
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));

const argsSchema = z.object({
  flows: positiveInt('--flows', 1, 100_000).default(500),
  scale: z
    .string()
    .regex(/^\d+(\.\d+)?$/, '--scale must be a number')
    .transform(Number)
    .pipe(z.number().min(1).max(1500))
    .default(1000),
  hold: positiveInt('--hold', 0, 200_000).default(0),
  'day-flows': positiveInt('--day-flows', 0, 100_000).optional(),
  'capacity-flows': positiveInt('--capacity-flows', 0, 100_000).optional(),
  'start-rate': positiveInt('--start-rate', 1, 10_000).default(50),
  'rate-limit': positiveInt('--rate-limit', 1, 1_000_000).default(100),
  seed: positiveInt('--seed', 0, 2 ** 31).default(1),
  'hold-approvals': positiveInt('--hold-approvals', 0, 10_000).default(100),
  'product-env': z
    .array(
      z.string().regex(/^[A-Z][A-Z0-9_]*=.*$/, {
        message: '--product-env must be NAME=VALUE, e.g. WORKER_MAX_CACHED_WORKFLOWS=1000',
      }),
    )
    .default([]),
  'heygen-max-rps': positiveInt('--heygen-max-rps', 1, 10_000).optional(),
  'multi-flows': positiveInt('--multi-flows', 0, 100_000).default(300),
  'fault-every-ms': positiveInt('--fault-every-ms', 100, 600_000).default(5_000),
  only: z.enum(['product', 'control', 'baseline']).optional(),
  'burst-only': z.boolean().default(false),
  help: z.boolean().default(false),
});

export interface BenchArgs {
  flows: number;
  scale: number;
  hold: number;
  holdApprovals: number;
  /** What-if environment variables for every product worker. */
  productEnv: Record<string, string>;
  dayFlows: number;
  capacityFlows: number;
  startRate: number;
  rateLimit: number;
  /** The product's HEYGEN_MAX_RPS in every phase. */
  heygenMaxRps: number;
  multiFlows: number;
  faultEveryMs: number;
  seed: number;
  systems: Array<'product' | 'control' | 'baseline'>;
  burstOnly: boolean;
}

export function parseBenchArgs(argv: string[]): BenchArgs | 'help' {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      flows: { type: 'string' },
      scale: { type: 'string' },
      hold: { type: 'string' },
      'day-flows': { type: 'string' },
      'capacity-flows': { type: 'string' },
      'start-rate': { type: 'string' },
      'rate-limit': { type: 'string' },
      seed: { type: 'string' },
      'hold-approvals': { type: 'string' },
      'product-env': { type: 'string', multiple: true },
      'heygen-max-rps': { type: 'string' },
      'multi-flows': { type: 'string' },
      'fault-every-ms': { type: 'string' },
      only: { type: 'string' },
      'burst-only': { type: 'boolean' },
      help: { type: 'boolean' },
    },
  });
  const parsed = argsSchema.safeParse(values);
  if (!parsed.success) throw new Error(`Invalid arguments: ${formatIssues(parsed.error)}`);
  const a = parsed.data;
  if (a.help) return 'help';
  const dayFlows = Math.min(a.flows, a['day-flows'] ?? Math.max(3, Math.round(a.flows / 50)));
  return {
    flows: a.flows,
    scale: a.scale,
    hold: a.hold,
    holdApprovals: Math.min(a['hold-approvals'], a.hold),
    productEnv: Object.fromEntries(
      a['product-env'].map((pair) => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)]),
    ),
    dayFlows,
    capacityFlows: a['capacity-flows'] ?? a.flows,
    startRate: a['start-rate'],
    rateLimit: a['rate-limit'],
    heygenMaxRps: a['heygen-max-rps'] ?? Math.max(1, Math.floor(a['rate-limit'] * BUDGET_SHARE)),
    multiFlows: a['multi-flows'],
    faultEveryMs: a['fault-every-ms'],
    seed: a.seed,
    systems: a.only ? [a.only] : ['product', 'control', 'baseline'],
    burstOnly: a['burst-only'],
  };
}
