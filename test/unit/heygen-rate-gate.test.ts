import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { RateGate } from '../../src/heygen/rate-gate.js';

function fakeClock(start = 1_700_000_000_000) {
  let t = start;
  return {
    now: () => t,
    advance: (ms: number) => {
      t += ms;
    },
  };
}

describe('RateGate', () => {
  it('starts open', () => {
    const gate = new RateGate({ now: fakeClock().now });
    expect(gate.closedFor()).toBe(0);
    expect(gate.isOpen()).toBe(true);
  });

  it('closes for the given time and reopens when it has passed', () => {
    const clock = fakeClock();
    const gate = new RateGate({ now: clock.now });
    gate.closeFor(1_000);
    expect(gate.closedFor()).toBe(1_000);
    expect(gate.isOpen()).toBe(false);
    clock.advance(400);
    expect(gate.closedFor()).toBe(600);
    clock.advance(600);
    expect(gate.closedFor()).toBe(0);
    expect(gate.isOpen()).toBe(true);
    clock.advance(10_000);
    expect(gate.closedFor()).toBe(0);
  });

  it('only extends: a shorter closure never reopens earlier', () => {
    const clock = fakeClock();
    const gate = new RateGate({ now: clock.now });
    gate.closeFor(10_000);
    clock.advance(1_000);
    gate.closeFor(100);
    expect(gate.closedFor()).toBe(9_000);
    gate.closeFor(20_000);
    expect(gate.closedFor()).toBe(20_000);
  });

  it('ignores zero, negative and non-finite durations', () => {
    const clock = fakeClock();
    const gate = new RateGate({ now: clock.now });
    for (const ms of [0, -5, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY])
      gate.closeFor(ms);
    expect(gate.closedFor()).toBe(0);
    gate.closeFor(500);
    gate.closeFor(Number.NaN);
    expect(gate.closedFor()).toBe(500);
  });

  it('returns whole milliseconds', () => {
    const clock = fakeClock();
    const gate = new RateGate({ now: clock.now });
    gate.closeFor(10.2);
    expect(gate.closedFor()).toBe(11);
  });

  it('uses the real clock by default', () => {
    const gate = new RateGate();
    gate.closeFor(60_000);
    const left = gate.closedFor();
    expect(left).toBeGreaterThan(59_000);
    expect(left).toBeLessThanOrEqual(60_000);
  });

  it('property: behaves like "open at the latest deadline ever set"', () => {
    type Op = { type: 'advance'; ms: number } | { type: 'close'; ms: number };
    const op: fc.Arbitrary<Op> = fc.oneof(
      fc.record({ type: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 5_000 }) }),
      fc.record({ type: fc.constant('close' as const), ms: fc.integer({ min: -100, max: 10_000 }) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 50 }), (ops) => {
        const clock = fakeClock(0);
        const gate = new RateGate({ now: clock.now });
        let deadline = 0;
        for (const o of ops) {
          if (o.type === 'advance') clock.advance(o.ms);
          else {
            gate.closeFor(o.ms);
            if (o.ms > 0) deadline = Math.max(deadline, clock.now() + o.ms);
          }
          expect(gate.closedFor()).toBe(Math.max(0, deadline - clock.now()));
        }
      }),
    );
  });
});
