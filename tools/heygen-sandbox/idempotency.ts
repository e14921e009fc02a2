import type { SandboxClock } from './state.js';

/** The spec's pattern for the Idempotency-Key header. */
export const IDEMPOTENCY_KEY_PATTERN = /^[A-Za-z0-9_\-:.]{1,255}$/;
export const IDEMPOTENCY_TTL_MS = 24 * 60 * 60 * 1000;

export interface StoredResponse {
  status: number;
  body: unknown;
}

/** One remembered response, as a snapshot keeps it. */
export interface IdempotencyEntry {
  scope: string;
  createdAt: number;
  response: StoredResponse;
}

type Entry =
  | { state: 'in_flight'; createdAt: number; ticket: object }
  | { state: 'done'; createdAt: number; response: StoredResponse };

export type IdempotencyBegin =
  | { kind: 'in_progress' }
  | { kind: 'replay'; response: StoredResponse }
  /** Call finish() exactly once: with the response to remember it, or null to forget the key. */
  | { kind: 'started'; finish(response: StoredResponse | null): void };

/**
 * Remembers responses per scope (endpoint + path parameter + key) for 24 h of sandbox time.
 * Only successful (2xx) responses are remembered: like Stripe, a request that failed validation or
 * did not find its resource leaves no trace, so a corrected retry with the same key is executed.
 */
export class IdempotencyStore {
  readonly #entries = new Map<string, Entry>();

  constructor(private readonly clock: SandboxClock) {}

  begin(scope: string): IdempotencyBegin {
    const now = this.clock.now();
    this.#dropExpired(now);
    const existing = this.#entries.get(scope);
    if (existing?.state === 'in_flight') return { kind: 'in_progress' };
    if (existing?.state === 'done') return { kind: 'replay', response: structuredClone(existing.response) };

    const ticket = {};
    this.#entries.set(scope, { state: 'in_flight', createdAt: now, ticket });
    return {
      kind: 'started',
      finish: (response) => {
        const current = this.#entries.get(scope);
        // The entry may have expired (advanceClock) and been replaced meanwhile: leave the newer one.
        if (current?.state !== 'in_flight' || current.ticket !== ticket) return;
        if (response && response.status >= 200 && response.status < 300) {
          this.#entries.set(scope, {
            state: 'done',
            createdAt: current.createdAt,
            response: structuredClone(response),
          });
        } else {
          this.#entries.delete(scope);
        }
      },
    };
  }

  /** The remembered responses (not requests in flight: those died with the process), for a snapshot. */
  export(): IdempotencyEntry[] {
    this.#dropExpired(this.clock.now());
    return [...this.#entries]
      .filter((entry): entry is [string, Extract<Entry, { state: 'done' }>] => entry[1].state === 'done')
      .map(([scope, entry]) => ({
        scope,
        createdAt: entry.createdAt,
        response: structuredClone(entry.response),
      }));
  }

  /** Takes remembered responses from a snapshot into an empty store. */
  import(entries: readonly IdempotencyEntry[]): void {
    if (this.#entries.size > 0)
      throw new Error('idempotency keys can only be restored into an empty sandbox');
    for (const { scope, createdAt, response } of entries) {
      this.#entries.set(scope, { state: 'done', createdAt, response: structuredClone(response) });
    }
  }

  #dropExpired(now: number): void {
    for (const [scope, entry] of this.#entries) {
      if (now - entry.createdAt >= IDEMPOTENCY_TTL_MS) this.#entries.delete(scope);
    }
  }
}
