/** Command-line flags of `npm run bench`, validated with zod. */
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { formatIssues } from '../../src/rules/issues.js';

export const usage = `Usage: npm run bench -- [options]

Drives consent flows through the product workflow and a hand-written one-minute polling loop
(the baseline) on a Temporal dev server, the HeyGen sandbox and a real SMTP server, with every
duration divided by --scale, and prints a markdown table (JSON in artifacts/bench-<timestamp>.json).

  --flows <M>           consent flows per system in the main run (default 500)
  --scale <factor>      all durations divided by this (default 1000: 24 h = 86.4 s; at most 1500,
                        because the 15 s first poll interval must stay >= 10 ms)
  --hold <N>            also start N consents that are never approved, measure the worker's memory
                        once all are waiting, then cancel them (default 0: skipped)
  --day-flows <K>       flows of the M approved exactly 24 h (scaled) after the first email, to
                        measure the cost of a 24-hour wait (default max(3, M/50))
  --capacity-flows <C>  flows in the throughput run, approved as soon as the email arrives
                        (default M; 0 skips it)
  --start-rate <r>      consents started per second in the main run (default 50)
  --rate-limit <n>      sandbox rate limit: requests per 1-second window per API key (default 100)
  --seed <n>            seed of the approval times (default 1)
  --only <system>       product or baseline (default both)
  --burst-only          only the throughput run (no main run: no latency or cost numbers)
  --worker-heap-mb <n>  what-if: start the worker under test with --max-old-space-size=<n>; the SDK
                        sizes its workflow cache from the heap limit (default: the product's defaults)
  --help                this text`;

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
  only: z.enum(['product', 'baseline']).optional(),
  'burst-only': z.boolean().default(false),
  'worker-heap-mb': positiveInt('--worker-heap-mb', 64, 65_536).optional(),
  help: z.boolean().default(false),
});

export interface BenchArgs {
  flows: number;
  scale: number;
  hold: number;
  dayFlows: number;
  capacityFlows: number;
  startRate: number;
  rateLimit: number;
  seed: number;
  systems: Array<'product' | 'baseline'>;
  burstOnly: boolean;
  workerHeapMb: number | null;
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
      only: { type: 'string' },
      'burst-only': { type: 'boolean' },
      'worker-heap-mb': { type: 'string' },
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
    dayFlows,
    capacityFlows: a['capacity-flows'] ?? a.flows,
    startRate: a['start-rate'],
    rateLimit: a['rate-limit'],
    seed: a.seed,
    systems: a.only ? [a.only] : ['product', 'baseline'],
    burstOnly: a['burst-only'],
    workerHeapMb: a['worker-heap-mb'] ?? null,
  };
}
