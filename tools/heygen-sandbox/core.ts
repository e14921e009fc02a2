import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { setTimeout as delay } from 'node:timers/promises';

import { FaultQueue } from './faults.js';
import { singleHeader } from './http.js';
import { IdempotencyStore } from './idempotency.js';
import { Ledger } from './ledger.js';
import { FixedWindowRateLimiter } from './rate-limit.js';
import { ConsentStore, GroupStore, SandboxClock } from './state.js';
import type { AvatarGroupItem, SandboxOptions } from './types.js';

export const DEFAULT_API_KEY = 'sandbox-key';

export interface AuthenticatedClient {
  scheme: 'x-api-key' | 'bearer';
  /** A digest of the key: enough to tell clients apart without keeping the key around. */
  clientId: string;
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

function nonNegative(name: string, value: number | undefined, fallback: number): number {
  const result = value ?? fallback;
  if (!Number.isFinite(result) || result < 0) throw new RangeError(`${name} must be a finite number >= 0`);
  return result;
}

/** Everything the routes share: state, clock, configuration and the shutdown signal. */
export class SandboxCore {
  readonly clock: SandboxClock;
  readonly groups: GroupStore;
  readonly consents: ConsentStore;
  readonly idempotency: IdempotencyStore;
  readonly ledger = new Ledger();
  readonly faults = new FaultQueue();
  readonly rateLimiter: FixedWindowRateLimiter | null;
  readonly processingLatencyMs: number;
  readonly consentLinkTtlMs: number | null;
  /** Set once the server listens; consent URLs are built from it. */
  publicUrl = '';
  readonly #keyDigests: Buffer[];
  readonly #shutdown = new AbortController();
  readonly #onStateChange: (() => void) | undefined;

  constructor(options: SandboxOptions) {
    this.clock = new SandboxClock(options.now ?? Date.now);
    this.groups = new GroupStore(this.clock, nonNegative('trainingTimeMs', options.trainingTimeMs, 0));
    this.consents = new ConsentStore(this.clock);
    this.idempotency = new IdempotencyStore(this.clock);
    this.rateLimiter = options.rateLimit ? new FixedWindowRateLimiter(options.rateLimit, this.clock) : null;
    this.processingLatencyMs = nonNegative('processingLatencyMs', options.processingLatencyMs, 0);
    this.consentLinkTtlMs =
      options.consentLinkTtlMs == null ? null : nonNegative('consentLinkTtlMs', options.consentLinkTtlMs, 0);
    const keys = options.apiKeys ?? [DEFAULT_API_KEY];
    if (keys.length === 0 || keys.some((k) => k.length === 0)) {
      throw new RangeError('apiKeys must hold at least one non-empty key');
    }
    this.#keyDigests = keys.map(digest);
    this.#onStateChange = options.onStateChange;
  }

  /** Tells the owner (SandboxOptions.onStateChange) that the state may have changed. */
  notifyStateChange(): void {
    try {
      this.#onStateChange?.();
    } catch (error) {
      // The owner's problem (e.g. a full disk): the request it followed has been answered already.
      console.error('heygen sandbox: onStateChange failed', error);
    }
  }

  get shuttingDown(): boolean {
    return this.#shutdown.signal.aborted;
  }

  shutdown(): void {
    this.#shutdown.abort();
  }

  /** Real-time wait that rejects (AbortError) when the sandbox closes. */
  async sleep(ms: number): Promise<void> {
    if (ms > 0) await delay(ms, undefined, { signal: this.#shutdown.signal });
  }

  authenticate(req: IncomingMessage): AuthenticatedClient | null {
    const apiKey = singleHeader(req, 'x-api-key');
    if (apiKey !== undefined && this.#isKnownKey(apiKey)) {
      return { scheme: 'x-api-key', clientId: digest(apiKey).toString('hex') };
    }
    const bearer = /^Bearer +(\S+) *$/i.exec(singleHeader(req, 'authorization') ?? '')?.[1];
    if (bearer !== undefined && this.#isKnownKey(bearer)) {
      return { scheme: 'bearer', clientId: digest(bearer).toString('hex') };
    }
    return null;
  }

  /** The person agreed: on one link (token), or on the group's latest pending link (approve()). */
  approve(groupId: string, token?: string): AvatarGroupItem {
    const group = this.groups.approve(groupId);
    const record = token ? this.consents.get(token) : this.consents.latestPending(groupId);
    if (record?.decision === 'pending') this.consents.decide(record.token, 'approved');
    return group;
  }

  #isKnownKey(candidate: string): boolean {
    const candidateDigest = digest(candidate);
    // Compare against every key so timing does not reveal which one (or whether any) matched.
    return this.#keyDigests.reduce((found, known) => timingSafeEqual(known, candidateDigest) || found, false);
  }
}
