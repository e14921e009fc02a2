import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

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

describe('RateGate with persistPath (shared by the processes of a host, survives a restart)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rate-gate-'));
  let fileCounter = 0;
  const freshPath = (): string => join(dir, `gate-${++fileCounter}`, 'heygen-rate-gate.json');
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  /** A host: one monotonic clock and one boot for every gate made with it; the wall clock can jump. */
  function host(bootId = 'boot-1') {
    const mono = fakeClock(50_000);
    const wall = fakeClock();
    const gate = (path: string, extra: Partial<ConstructorParameters<typeof RateGate>[0]> = {}) =>
      new RateGate({ now: mono.now, wallNow: wall.now, bootId, persistPath: path, ...extra });
    const advance = (ms: number) => {
      mono.advance(ms);
      wall.advance(ms);
    };
    return { mono, wall, gate, advance };
  }
  const fileOf = (path: string) => JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;

  it('a new gate on the same file (the restarted worker) stays closed until the old deadline', () => {
    const h = host();
    const path = freshPath();
    h.gate(path).closeFor(30_000);
    expect(existsSync(path)).toBe(true);
    expect(fileOf(path)).toEqual({
      monotonicUntil: h.mono.now() + 30_000,
      bootId: 'boot-1',
      closedUntil: h.wall.now() + 30_000,
    });
    h.advance(5_000);
    const after = h.gate(path);
    expect(after.closedFor()).toBe(25_000);
    h.advance(25_000);
    expect(after.isOpen()).toBe(true);
  });

  it('leaves no temporary or lock files behind and writes only when the gate is extended', () => {
    const h = host();
    const path = freshPath();
    const gate = h.gate(path);
    gate.closeFor(10_000);
    const first = readFileSync(path, 'utf8');
    gate.closeFor(1_000); // shorter: no change
    expect(readFileSync(path, 'utf8')).toBe(first);
    gate.closeFor(20_000);
    expect(fileOf(path).monotonicUntil).toBe(h.mono.now() + 20_000);
    expect(readdirSync(join(path, '..'))).toEqual(['heygen-rate-gate.json']);
  });

  it("two gates sharing the file: each sees the other's 429, and neither shortens it", () => {
    const h = host();
    const path = freshPath();
    const a = h.gate(path);
    const b = h.gate(path);
    expect(b.closedFor()).toBe(0);
    a.closeFor(40_000);
    expect(b.closedFor()).toBe(40_000);
    b.closeFor(5_000); // b merges the file under its lock, so its shorter closure does not overwrite a's
    expect(fileOf(path).monotonicUntil).toBe(h.mono.now() + 40_000);
    h.advance(1_000);
    b.closeFor(60_000);
    expect(a.closedFor()).toBe(60_000);
  });

  it('a wall-clock jump neither opens nor extends the gate (deadlines are on the monotonic clock)', () => {
    const h = host();
    const path = freshPath();
    h.gate(path).closeFor(30_000);
    h.wall.advance(3_600_000); // NTP, a VM resume: the wall clock jumps an hour ahead
    expect(h.gate(path).closedFor()).toBe(30_000);
    h.wall.advance(-7_200_000); // and back
    expect(h.gate(path).closedFor()).toBe(30_000);
  });

  it('after a reboot (another boot ID) the wall-clock copy holds', () => {
    const before = host('boot-1');
    const path = freshPath();
    before.gate(path).closeFor(30_000);
    // The new boot's monotonic clock starts near zero; its wall clock is 10 s later.
    const after = new RateGate({
      now: () => 1_000,
      wallNow: () => before.wall.now() + 10_000,
      bootId: 'boot-2',
      persistPath: path,
    });
    expect(after.closedFor()).toBe(20_000);
  });

  it('a missing file means open, without reporting an error', () => {
    const errors: Error[] = [];
    const gate = new RateGate({ persistPath: freshPath(), onPersistError: (e) => errors.push(e) });
    expect(gate.closedFor()).toBe(0);
    expect(errors).toEqual([]);
  });

  it('a corrupt file is reported and ignored: calls are never blocked by it', () => {
    const h = host();
    const path = join(dir, 'corrupt.json');
    const errors: Error[] = [];
    for (const content of ['not json', '{"closedUntil":"soon"}', '[]', '{"closedUntil":-5}']) {
      writeFileSync(path, content);
      expect(h.gate(path, { onPersistError: (e) => errors.push(e) }).closedFor()).toBe(0);
    }
    expect(errors).toHaveLength(4);
    expect(errors.every((e) => e.message.includes(path))).toBe(true);
  });

  it('a deadline further ahead than maxPersistedMs (default 1 h) is clamped, and the file repaired', () => {
    const h = host();
    const path = freshPath();
    const errors: Error[] = [];
    h.gate(path).closeFor(10_000);
    writeFileSync(path, JSON.stringify({ ...fileOf(path), monotonicUntil: h.mono.now() + 30 * 86_400_000 }));
    expect(h.gate(path, { onPersistError: (e) => errors.push(e) }).closedFor()).toBe(3_600_000);
    expect(errors.map((e) => e.message)).toEqual([expect.stringMatching(/clamped/)]);
    expect(fileOf(path).monotonicUntil).toBe(h.mono.now() + 3_600_000);
    // An old file (wall clock only) far ahead is clamped too.
    writeFileSync(path, JSON.stringify({ closedUntil: h.wall.now() + 30 * 86_400_000 }));
    expect(h.gate(path, { maxPersistedMs: 5_000 }).closedFor()).toBe(5_000);
    // And a closure asked for beyond the ceiling is held to it.
    const gate = h.gate(freshPath());
    gate.closeFor(10 * 3_600_000);
    expect(gate.closedFor()).toBe(3_600_000);
  });

  it('an unwritable location is reported, and the gate still closes in memory', () => {
    const h = host();
    const blocker = join(dir, 'a-file');
    writeFileSync(blocker, 'x');
    const errors: Error[] = [];
    // A directory cannot be created below a regular file.
    const gate = h.gate(join(blocker, 'gate.json'), { onPersistError: (e) => errors.push(e) });
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

  it('four processes closing the gate at once never shorten it (updates are made under a lock)', async () => {
    const path = freshPath();
    const script = fileURLToPath(new URL('./rate-gate-writer.ts', import.meta.url));
    // Each process closes the gate 2,000 times with ever longer durations, on one fixed clock, and
    // checks after each closure that the file still holds at least its own deadline.
    const startAt = String(Date.now() + 1_500);
    const runs = [1, 2, 3, 4].map(
      (seed) =>
        new Promise<{ largest: number; shortened: number }>((resolve, reject) => {
          const child = spawn(process.execPath, ['--import', 'tsx', script, path, String(seed), startAt], {
            stdio: ['ignore', 'pipe', 'inherit'],
          });
          let out = '';
          child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
          child.on('error', reject);
          child.on('exit', (code) =>
            code === 0
              ? resolve(JSON.parse(out) as { largest: number; shortened: number })
              : reject(new Error(`exit ${code}`)),
          );
        }),
    );
    const results = await Promise.all(runs);
    expect(results.map((r) => r.shortened)).toEqual([0, 0, 0, 0]);
    expect(fileOf(path).monotonicUntil).toBe(1_000 + Math.max(...results.map((r) => r.largest)));
    expect(readdirSync(join(path, '..'))).toEqual(['heygen-rate-gate.json']);
  });
});
