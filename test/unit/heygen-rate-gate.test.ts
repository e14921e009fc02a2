import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';

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

describe('RateGate with persistPath (survives a worker restart)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rate-gate-'));
  let fileCounter = 0;
  const freshPath = (): string => join(dir, `gate-${++fileCounter}`, 'heygen-rate-gate.json');
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('a new gate on the same file (the restarted worker) stays closed until the old deadline', () => {
    const clock = fakeClock();
    const path = freshPath();
    const before = new RateGate({ now: clock.now, persistPath: path });
    before.closeFor(30_000);
    expect(existsSync(path)).toBe(true);
    expect(JSON.parse(readFileSync(path, 'utf8'))).toEqual({ closedUntil: clock.now() + 30_000 });

    clock.advance(5_000);
    const after = new RateGate({ now: clock.now, persistPath: path });
    expect(after.closedFor()).toBe(25_000);
    clock.advance(25_000);
    expect(after.isOpen()).toBe(true);
  });

  it('leaves no temporary files behind and writes only when the gate is extended', () => {
    const clock = fakeClock();
    const path = freshPath();
    const gate = new RateGate({ now: clock.now, persistPath: path });
    gate.closeFor(10_000);
    const first = readFileSync(path, 'utf8');
    gate.closeFor(1_000); // shorter: no change
    expect(readFileSync(path, 'utf8')).toBe(first);
    gate.closeFor(20_000);
    expect(JSON.parse(readFileSync(path, 'utf8'))).toEqual({ closedUntil: clock.now() + 20_000 });
    expect(readdirSync(join(path, '..'))).toEqual(['heygen-rate-gate.json']);
  });

  it("two processes sharing the file: each sees the other's 429, and neither shortens it", () => {
    const clock = fakeClock();
    const path = freshPath();
    const a = new RateGate({ now: clock.now, persistPath: path });
    const b = new RateGate({ now: clock.now, persistPath: path });
    expect(b.closedFor()).toBe(0); // file read lazily: nothing yet
    a.closeFor(40_000);
    expect(b.closedFor()).toBe(40_000);
    b.closeFor(5_000); // b merges the file first, so its shorter closure does not overwrite a's
    expect(JSON.parse(readFileSync(path, 'utf8'))).toEqual({ closedUntil: clock.now() + 40_000 });
    clock.advance(1_000);
    b.closeFor(60_000);
    expect(a.closedFor()).toBe(60_000);
  });

  it('a missing file means open, without reporting an error', () => {
    const errors: Error[] = [];
    const gate = new RateGate({ persistPath: freshPath(), onPersistError: (e) => errors.push(e) });
    expect(gate.closedFor()).toBe(0);
    expect(errors).toEqual([]);
  });

  it('a corrupt file is reported and ignored: calls are never blocked by it', () => {
    const clock = fakeClock();
    const path = join(dir, 'corrupt.json');
    const errors: Error[] = [];
    for (const content of ['not json', '{"closedUntil":"soon"}', '[]', '{"closedUntil":-5}']) {
      writeFileSync(path, content);
      const gate = new RateGate({ now: clock.now, persistPath: path, onPersistError: (e) => errors.push(e) });
      expect(gate.closedFor()).toBe(0);
    }
    expect(errors).toHaveLength(4);
    expect(errors.every((e) => e.message.includes(path))).toBe(true);
  });

  it('a deadline further ahead than maxPersistedMs (default 1 h) is capped', () => {
    const clock = fakeClock();
    const path = join(dir, 'far.json');
    writeFileSync(path, JSON.stringify({ closedUntil: clock.now() + 30 * 86_400_000 }));
    expect(new RateGate({ now: clock.now, persistPath: path }).closedFor()).toBe(3_600_000);
    expect(new RateGate({ now: clock.now, persistPath: path, maxPersistedMs: 5_000 }).closedFor()).toBe(
      5_000,
    );
  });

  it('an unwritable location is reported, and the gate still closes in memory', () => {
    const clock = fakeClock();
    const blocker = join(dir, 'a-file');
    writeFileSync(blocker, 'x');
    const errors: Error[] = [];
    // A directory cannot be created below a regular file.
    const gate = new RateGate({
      now: clock.now,
      persistPath: join(blocker, 'gate.json'),
      onPersistError: (e) => errors.push(e),
    });
    gate.closeFor(7_000);
    expect(gate.closedFor()).toBe(7_000);
    expect(errors.some((e) => e.message.includes('could not be written'))).toBe(true);
    // Reported once per problem, not on every call while it lasts.
    const reported = errors.length;
    for (let i = 0; i < 5; i++) gate.closedFor();
    expect(errors).toHaveLength(reported);
  });

  it('an empty persistPath means in memory only', () => {
    const clock = fakeClock();
    const gate = new RateGate({ now: clock.now, persistPath: '' });
    gate.closeFor(1_000);
    expect(gate.closedFor()).toBe(1_000);
  });
});
