// Public types of the HeyGen sandbox. The API shapes (AvatarGroupItem and friends) follow
// vendor/heygen/create-avatar-consent.openapi.yaml; they are written by hand here so the sandbox does
// not depend on the generated client types.

import type { SandboxSnapshot } from './snapshot.js';

export const AVATAR_STATUSES = ['processing', 'pending_consent', 'failed', 'completed'] as const;
export type AvatarStatus = (typeof AVATAR_STATUSES)[number];

export interface AvatarError {
  code: string;
  message: string;
}

/** The spec's AvatarGroupItem. The sandbox always emits every field (nullable ones as null). */
export interface AvatarGroupItem {
  id: string;
  name: string;
  /** Unix seconds. */
  created_at: number;
  looks_count: number;
  preview_image_url: string | null;
  preview_video_url: string | null;
  gender: string | null;
  default_voice_id: string | null;
  /** Open string: null = consent not required, 'pending', 'approved', or anything else. */
  consent_status: string | null;
  status: AvatarStatus | null;
  error: AvatarError | null;
}

export interface CreateGroupInput {
  id?: string;
  name?: string;
  /** false: consent_status null (no consent needed) and status 'completed' unless given. Default true. */
  consentRequired?: boolean;
  /** Overrides consentRequired. */
  consentStatus?: string | null;
  /** Default: 'pending_consent' while consent is pending or unknown, 'completed' when approved or not required. */
  status?: AvatarStatus | null;
  /** Default: a training_failed error when status is 'failed', else null. */
  error?: AvatarError | null;
}

export type ConsentDecision = 'pending' | 'approved' | 'declined';

export interface ConsentRecord {
  groupId: string;
  idempotencyKey: string | null;
  url: string;
  token: string;
  rerouteUrl: string | null;
  consentText: string | null;
  /** Sandbox clock, ms. */
  createdAt: number;
  decision: ConsentDecision;
  /** Sandbox clock, ms; null while pending. */
  decidedAt: number | null;
}

export interface LedgerEntry {
  /** Increasing across clearLedger(). */
  seq: number;
  /** Arrival time, sandbox clock, ms. */
  at: number;
  method: string;
  /** Path without the query string. */
  path: string;
  /** The raw query string without '?', '' when none. */
  query: string;
  idempotencyKey: string | null;
  /** 0 while no response has been sent (in flight, or a 'hang' fault). */
  status: number;
  replayed: boolean;
  /** The kind of the fault that touched this request, if any. */
  fault: FaultSpec['kind'] | null;
  /** Which credential header was accepted; null when unauthenticated or not an API request. */
  authScheme: 'x-api-key' | 'bearer' | null;
}

interface FaultMatch {
  /** Only requests whose path starts with this (e.g. '/v3/avatars/'). Default: every /v3 request. */
  pathPrefix?: string;
  /** Only this HTTP method (case-insensitive). Default: any. */
  method?: string;
}

export type FaultSpec =
  | ({ kind: 'status'; status: 500 | 502 | 503 | 504; count: number } & FaultMatch)
  /** Accept the request and never answer (until close()); the client has to time out. */
  | ({ kind: 'hang'; count: number } & FaultMatch)
  /** 429 rate_limit_exceeded with this raw Retry-After header value (e.g. '120' or an HTTP-date). */
  | ({ kind: 'rate_limit'; count: number; retryAfter: string } & FaultMatch)
  /** Delay the request by ms of real time, then handle it normally. */
  | ({ kind: 'latency'; ms: number; count: number } & FaultMatch)
  /** Answer with this raw body; status default 200, contentType default 'application/json'. */
  | ({ kind: 'body'; count: number; body: string; status?: number; contentType?: string } & FaultMatch);

export interface RateLimitOptions {
  limit: number;
  windowMs: number;
}

export interface SandboxOptions {
  /** Default '127.0.0.1'. */
  host?: string;
  /** Default 0 (any free port). */
  port?: number;
  /** Accepted x-api-key values and Bearer tokens. Default ['sandbox-key']. */
  apiKeys?: string[];
  /** Base of consent page URLs. Default: the listening URL. */
  publicUrl?: string;
  /** Real-time ms a POST consent stays in flight (a same-key retry then gets 409). Default 0. */
  processingLatencyMs?: number;
  /** Sandbox-clock ms a group stays 'processing' after approval before 'completed'. Default 0. */
  trainingTimeMs?: number;
  /** Fixed window per API key. Default null (off). */
  rateLimit?: RateLimitOptions | null;
  /**
   * Sandbox-clock ms after which a consent link stops working (410 page). Default null: links never
   * expire (HeyGen documents no lifetime; third parties report about 24 h).
   */
  consentLinkTtlMs?: number | null;
  /** Base clock in ms. Default Date.now. */
  now?: () => number;
  /**
   * Called after anything that may have changed the state a snapshot() holds: a request that is not
   * a GET or HEAD (API, consent page or admin API), or a change through the methods below.
   */
  onStateChange?: () => void;
}

export interface Sandbox {
  /** e.g. http://127.0.0.1:43123, no trailing slash. */
  readonly url: string;
  /** Stops listening and destroys keep-alive sockets and hanging requests. */
  close(): Promise<void>;
  createGroup(input?: CreateGroupInput): AvatarGroupItem;
  getGroup(id: string): AvatarGroupItem | undefined;
  /** Applied verbatim (no lifecycle magic); a status in the patch cancels a running training timer. */
  updateGroup(id: string, patch: Partial<AvatarGroupItem>): void;
  deleteGroup(id: string): void;
  /** Same as the person clicking "I agree" on the latest pending consent link of the group. */
  approve(groupId: string): void;
  consents(groupId?: string): ConsentRecord[];
  ledger(): LedgerEntry[];
  clearLedger(): void;
  injectFault(fault: FaultSpec): void;
  clearFaults(): void;
  /** Faults not yet used up, with their remaining counts. */
  faults(): FaultSpec[];
  advanceClock(ms: number): void;
  /** The sandbox clock, ms. */
  now(): number;
  /** Groups, consent links and idempotent responses as data (see snapshot.ts). */
  snapshot(): SandboxSnapshot;
  /** Loads a snapshot into this sandbox, which must hold nothing yet; throws on a malformed one. */
  restore(snapshot: unknown): { groups: number; consents: number };
}
