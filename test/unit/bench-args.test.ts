/** The benchmark's flags: the budget it gives the product, the what-if environment of the hold. */
import { describe, expect, it } from 'vitest';
import { parseBenchArgs } from '../../tools/bench/args.js';
import type { BenchArgs } from '../../tools/bench/args.js';

const parse = (argv: string[]): BenchArgs => {
  const args = parseBenchArgs(argv);
  if (args === 'help') throw new Error('unexpected --help');
  return args;
};

describe('parseBenchArgs', () => {
  it('gives the product 80 % of the sandbox rate limit as HEYGEN_MAX_RPS unless told', () => {
    expect(parse([]).heygenMaxRps).toBe(80);
    expect(parse(['--rate-limit', '30']).heygenMaxRps).toBe(24);
    expect(parse(['--rate-limit', '30', '--heygen-max-rps', '10']).heygenMaxRps).toBe(10);
  });

  it('runs the three systems, the several-workers runs and no hold by default', () => {
    expect(parse([])).toMatchObject({
      systems: ['product', 'control', 'baseline'],
      multiFlows: 300,
      faultEveryMs: 5_000,
      hold: 0,
      holdApprovals: 0,
    });
    expect(parse(['--only', 'control']).systems).toEqual(['control']);
  });

  it('approves at most as many consents as the hold has', () => {
    expect(parse(['--hold', '10000']).holdApprovals).toBe(100);
    expect(parse(['--hold', '40']).holdApprovals).toBe(40);
  });

  it('takes what-if variables for the product workers, value as written', () => {
    const args = parse([
      '--product-env',
      'WORKER_MAX_CACHED_WORKFLOWS=1000',
      '--product-env',
      'NODE_OPTIONS=--max-old-space-size=256',
    ]);
    expect(args.productEnv).toEqual({
      WORKER_MAX_CACHED_WORKFLOWS: '1000',
      NODE_OPTIONS: '--max-old-space-size=256',
    });
    expect(parse([]).productEnv).toEqual({});
  });

  it('names the flag that is wrong', () => {
    expect(() => parse(['--product-env', 'not a pair'])).toThrow(/--product-env/);
    expect(() => parse(['--heygen-max-rps', 'fast'])).toThrow(/--heygen-max-rps/);
    expect(() => parse(['--only', 'everything'])).toThrow(/only/);
  });
});
