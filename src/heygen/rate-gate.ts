/**
 * A per-process gate that every HeyGen call passes through.
 *
 * HeyGen rate-limits per API key, so all workflows served by one worker share one budget. After a 429,
 * the client closes the gate for the Retry-After duration; until it reopens, calls fail fast with
 * `rate_limited` instead of sending (and earning more 429s). Create one per worker process and pass it
 * to every HeyGenClient of that process.
 *
 * In-memory only: it does not coordinate several worker processes (cap those with the activity task
 * queue's `maxTaskQueueActivitiesPerSecond`).
 */
export interface RateGateOptions {
  /** Clock in epoch milliseconds (tests inject a fake one). */
  now?: () => number;
}

export class RateGate {
  readonly #now: () => number;
  #closedUntil = 0;

  constructor(opts: RateGateOptions = {}) {
    this.#now = opts.now ?? Date.now;
  }

  /** Milliseconds until the gate opens; 0 when open. */
  closedFor(): number {
    return Math.max(0, Math.ceil(this.#closedUntil - this.#now()));
  }

  isOpen(): boolean {
    return this.closedFor() === 0;
  }

  /**
   * Closes the gate for `ms` from now. Only ever extends: a shorter closure never reopens the gate
   * earlier than an existing one (two 429s in a row keep the later deadline). Non-finite or
   * non-positive values are ignored.
   */
  closeFor(ms: number): void {
    if (!Number.isFinite(ms) || ms <= 0) return;
    this.#closedUntil = Math.max(this.#closedUntil, this.#now() + ms);
  }
}
