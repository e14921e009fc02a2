// The sandbox's in-memory pieces without HTTP: clock, rate limiter, idempotency store, fault queue.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { FaultQueue } from '../../tools/heygen-sandbox/faults.js';
import { IDEMPOTENCY_TTL_MS, IdempotencyStore } from '../../tools/heygen-sandbox/idempotency.js';
import { FixedWindowRateLimiter } from '../../tools/heygen-sandbox/rate-limit.js';
import { GroupStore, SandboxClock } from '../../tools/heygen-sandbox/state.js';

const frozenClock = () => new SandboxClock(() => 1_000_000);

describe('FixedWindowRateLimiter', () => {
  it('never allows more than `limit` requests per window, and Retry-After points at the window end', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 1, max: 5000 }),
        fc.array(fc.integer({ min: 0, max: 3000 }), { maxLength: 60 }),
        (limit, windowMs, gaps) => {
          const clock = frozenClock();
          const limiter = new FixedWindowRateLimiter({ limit, windowMs }, clock);
          // Model: a window opens at the first request after the previous one ended.
          let windowStart: number | null = null;
          let allowedInWindow = 0;
          for (const gap of gaps) {
            clock.advance(gap);
            if (windowStart === null || clock.now() - windowStart >= windowMs) {
              windowStart = clock.now();
              allowedInWindow = 0;
            }
            const decision = limiter.take('client');
            if (decision.allowed) {
              allowedInWindow += 1;
              expect(allowedInWindow).toBeLessThanOrEqual(limit);
            } else {
              expect(allowedInWindow).toBe(limit);
              const untilReset = windowStart + windowMs - clock.now();
              expect(decision.retryAfterSeconds).toBe(Math.max(1, Math.ceil(untilReset / 1000)));
            }
          }
        },
      ),
    );
  });

  it('keeps clients apart', () => {
    const limiter = new FixedWindowRateLimiter({ limit: 1, windowMs: 1000 }, frozenClock());
    expect(limiter.take('a').allowed).toBe(true);
    expect(limiter.take('a').allowed).toBe(false);
    expect(limiter.take('b').allowed).toBe(true);
  });
});

describe('IdempotencyStore', () => {
  it('in flight, then replays a 2xx for 24 h', () => {
    const clock = frozenClock();
    const store = new IdempotencyStore(clock);
    const first = store.begin('scope');
    expect(first.kind).toBe('started');
    expect(store.begin('scope')).toEqual({ kind: 'in_progress' });
    if (first.kind === 'started') first.finish({ status: 200, body: { data: { url: 'u' } } });
    clock.advance(IDEMPOTENCY_TTL_MS - 1);
    expect(store.begin('scope')).toEqual({
      kind: 'replay',
      response: { status: 200, body: { data: { url: 'u' } } },
    });
    clock.advance(1);
    expect(store.begin('scope').kind).toBe('started');
  });

  it('forgets non-2xx results and aborted requests', () => {
    const store = new IdempotencyStore(frozenClock());
    const failed = store.begin('a');
    if (failed.kind === 'started') failed.finish({ status: 404, body: {} });
    expect(store.begin('a').kind).toBe('started');
    const aborted = store.begin('b');
    if (aborted.kind === 'started') aborted.finish(null);
    expect(store.begin('b').kind).toBe('started');
  });

  it('an in-flight request older than 24 h does not overwrite its successor', () => {
    const clock = frozenClock();
    const store = new IdempotencyStore(clock);
    const old = store.begin('k');
    clock.advance(IDEMPOTENCY_TTL_MS);
    const fresh = store.begin('k');
    if (old.kind !== 'started' || fresh.kind !== 'started') throw new Error('expected both to start');
    old.finish({ status: 200, body: 'old' });
    fresh.finish({ status: 200, body: 'fresh' });
    expect(store.begin('k')).toEqual({ kind: 'replay', response: { status: 200, body: 'fresh' } });
  });
});

describe('FaultQueue', () => {
  it('uses faults up in order, count by count', () => {
    const queue = new FaultQueue();
    queue.inject({ kind: 'status', status: 500, count: 2, method: 'GET' });
    queue.inject({ kind: 'hang', count: 1 });
    expect(queue.take('POST', '/v3/x')?.kind).toBe('hang');
    expect(queue.take('get', '/v3/x')).toMatchObject({ kind: 'status', status: 500 });
    expect(queue.take('GET', '/v3/x')).toMatchObject({ kind: 'status', status: 500 });
    expect(queue.take('GET', '/v3/x')).toBeNull();
  });
});

describe('GroupStore', () => {
  it('completes training lazily on the clock, and not before', () => {
    const clock = frozenClock();
    const groups = new GroupStore(clock, 5000);
    const { id } = groups.create();
    expect(groups.approve(id).status).toBe('processing');
    clock.advance(4999);
    expect(groups.get(id)?.status).toBe('processing');
    clock.advance(1);
    expect(groups.get(id)?.status).toBe('completed');
  });

  it('with no training time, is completed at the first read after approval', () => {
    const groups = new GroupStore(frozenClock(), 0);
    const { id } = groups.create();
    expect(groups.approve(id)).toMatchObject({ consent_status: 'approved', status: 'completed' });
  });
});
