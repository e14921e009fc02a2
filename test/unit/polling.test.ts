import { describe, expect, it } from 'vitest';
import { intervalAfter, planWindow, pollOffsetsWithin, refreshDueAt } from '../../src/workflows/polling.js';
import { consentIdempotencyKey, emailMessageKey, IDEMPOTENCY_KEY_PATTERN } from '../../src/workflows/keys.js';

const schedule = { initialIntervalMs: 15_000, backoffCoefficient: 2, maxIntervalMs: 30 * 60_000 };

describe('intervalAfter', () => {
  it('starts at the initial interval and doubles after each elapsed interval, up to the cap', () => {
    expect(intervalAfter(0, schedule)).toBe(15_000);
    expect(intervalAfter(14_999, schedule)).toBe(15_000);
    expect(intervalAfter(15_000, schedule)).toBe(30_000);
    expect(intervalAfter(15_000 + 30_000, schedule)).toBe(60_000);
    expect(intervalAfter(24 * 3_600_000, schedule)).toBe(30 * 60_000);
  });

  it('treats negative elapsed time as none and never exceeds the cap', () => {
    expect(intervalAfter(-5, schedule)).toBe(15_000);
    expect(intervalAfter(1e12, { ...schedule, backoffCoefficient: 10 })).toBe(30 * 60_000);
  });
});

describe('pollOffsetsWithin', () => {
  it('lists the polls a window makes, for a 24-hour wait about 55 with the defaults', () => {
    const offsets = pollOffsetsWithin(24 * 3_600_000, 15_000, schedule);
    expect(offsets.slice(0, 4)).toEqual([0, 15_000, 45_000, 105_000]);
    expect(offsets.length).toBeGreaterThan(45);
    expect(offsets.length).toBeLessThan(60);
  });
});

describe('planWindow', () => {
  const base = { nowMs: 1_000, windowMs: 4 * 3_600_000, deadlineAtMs: 10 * 3_600_000, refreshAtMs: null };

  it('uses the configured window when nothing is due sooner', () => {
    expect(planWindow(base)).toEqual({ windowMs: 4 * 3_600_000, endsAt: 'window' });
  });

  it('ends at the link refresh or the deadline, whichever is first', () => {
    expect(planWindow({ ...base, refreshAtMs: 3_600_000 })).toEqual({
      windowMs: 3_600_000 - 1_000,
      endsAt: 'refresh',
    });
    expect(planWindow({ ...base, deadlineAtMs: 2_000, refreshAtMs: 3_000 })).toEqual({
      windowMs: 1_000,
      endsAt: 'deadline',
    });
  });

  it('never plans a negative window', () => {
    expect(planWindow({ ...base, deadlineAtMs: 0 }).windowMs).toBe(0);
  });
});

describe('refreshDueAt', () => {
  it('is one TTL after the link was issued while refreshes remain, then null', () => {
    const args = { linkIssuedAtMs: 100, linkTtlMs: 50, maxLinkRefreshes: 2 };
    expect(refreshDueAt({ ...args, generation: 1 })).toBe(150);
    expect(refreshDueAt({ ...args, generation: 2 })).toBe(150);
    expect(refreshDueAt({ ...args, generation: 3 })).toBeNull();
    expect(refreshDueAt({ ...args, generation: 1, maxLinkRefreshes: 0 })).toBeNull();
  });
});

describe('idempotency keys and Message-IDs', () => {
  const runId = '0193a9f2-7c1e-7d4a-9b3e-2f5c8d1a6e40';

  it('are stable for one run and generation, and differ across generations and runs', () => {
    expect(consentIdempotencyKey(runId, 1)).toBe(`avatar-consent:${runId}:g1`);
    expect(consentIdempotencyKey(runId, 1)).toBe(consentIdempotencyKey(runId, 1));
    expect(consentIdempotencyKey(runId, 2)).not.toBe(consentIdempotencyKey(runId, 1));
    expect(consentIdempotencyKey(runId.replace('0193', '0194'), 1)).not.toBe(consentIdempotencyKey(runId, 1));
    expect(emailMessageKey(runId, 3)).toBe(`avatar-consent.${runId}.g3`);
    expect(emailMessageKey(runId, 3, 2)).toBe(`avatar-consent.${runId}.g3.r2`);
  });

  it("always fit HeyGen's Idempotency-Key pattern, even for run IDs that are not UUIDs", () => {
    for (const id of [runId, 'run with spaces/and:slashes', 'x'.repeat(600), 'ünïcödé']) {
      expect(consentIdempotencyKey(id, 12)).toMatch(IDEMPOTENCY_KEY_PATTERN);
    }
    expect(consentIdempotencyKey('a b', 1)).not.toBe(consentIdempotencyKey('a c', 1));
  });
});
