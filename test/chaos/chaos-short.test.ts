/**
 * The chaos run, short: the same code as `npm run chaos`, with 24 workflows, two worker processes
 * and a 45-second chaos phase (worker SIGKILLs, a Temporal SIGKILL, HeyGen faults and outage, SMTP
 * refusals, dropped replies and an outage), encryption and the gateway on. The checks themselves are
 * tested on hand-made records in chaos-checks.test.ts, so a check that cannot fail would be caught there.
 */
import { describe, expect, it } from 'vitest';

import { formatReport, writeReport } from '../../tools/chaos/report.js';
import { runChaos } from '../../tools/chaos/run.js';

describe('chaos run (short)', () => {
  it('24 consent workflows on two workers come through worker kills, a Temporal SIGKILL, HeyGen and SMTP faults with every invariant intact', async () => {
    const seed = Number(process.env.CHAOS_SEED ?? 20_251_130);
    const report = await runChaos({
      workflows: 24,
      durationMs: 45_000,
      seed,
      profile: 'short',
      settleTimeoutMs: 100_000,
      workers: 2,
      serverKills: 1,
      maxRps: 5,
      log: process.env.CHAOS_VERBOSE ? (line) => console.error(line) : () => undefined,
    });
    const table = formatReport(report);
    const path = writeReport(report, 'artifacts');
    console.log(`${table}\n\nreport: ${path}`);

    expect(report.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`)).toEqual([]);
    // The chaos really happened.
    expect(report.stats.workerKills).toBeGreaterThanOrEqual(2);
    expect(report.stats.targeted429).toMatch(/^yes/);
    expect(report.stats.temporalKills).toBe(1);
    expect(report.stats.heygenOutageMs).toBeGreaterThan(5_000);
    expect(report.stats.smtpDowntimeMs).toBeGreaterThan(5_000);
    expect(report.stats.smtpFaults.drop_after_data).toBeGreaterThan(0);
    expect(report.retryAfter.rateLimited).toBeGreaterThan(0);
    expect(report.stats.faultAnswers).toBeGreaterThan(0);
    expect(report.wrongGroups).toEqual([]);
    // Both workers served: within some 10 s, HeyGen saw requests from two processes.
    expect(Math.max(...report.pace.map((p) => p.workers))).toBeGreaterThanOrEqual(2);
    expect(report.excuses.every((e) => e.evidence.length > 0)).toBe(true);
  }, 240_000);
});
