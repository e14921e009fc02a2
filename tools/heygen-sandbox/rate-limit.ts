import type { SandboxClock } from './state.js';
import type { RateLimitOptions } from './types.js';

export type RateLimitDecision = { allowed: true } | { allowed: false; retryAfterSeconds: number };

/**
 * Fixed window per client (API key), on the sandbox clock. Rejected requests do not use up budget.
 * Retry-After is the whole seconds until the window resets, at least 1.
 */
export class FixedWindowRateLimiter {
  readonly #windows = new Map<string, { startedAt: number; count: number }>();

  constructor(
    private readonly options: RateLimitOptions,
    private readonly clock: SandboxClock,
  ) {
    if (!Number.isInteger(options.limit) || options.limit < 1)
      throw new RangeError('rateLimit.limit must be an integer >= 1');
    if (!Number.isFinite(options.windowMs) || options.windowMs <= 0)
      throw new RangeError('rateLimit.windowMs must be > 0');
  }

  take(clientId: string): RateLimitDecision {
    const now = this.clock.now();
    let window = this.#windows.get(clientId);
    if (!window || now - window.startedAt >= this.options.windowMs) {
      window = { startedAt: now, count: 0 };
      this.#windows.set(clientId, window);
    }
    if (window.count < this.options.limit) {
      window.count += 1;
      return { allowed: true };
    }
    const remainingMs = window.startedAt + this.options.windowMs - now;
    return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil(remainingMs / 1000)) };
  }
}
