/** Inputs and outputs of the consent activities: plain data, shared by the activities and (as types) the workflow. */
import type { BlockedReason } from '../contract/index.js';
import type { ApiError } from '../rules/api-error.js';
import type { GroupSnapshot } from '../rules/consent-decision.js';

export type { GroupSnapshot };

export interface RequestConsentLinkInput {
  groupId: string;
  idempotencyKey: string;
  rerouteUrl?: string;
  consentText?: string;
}

export interface ConsentLink {
  consentUrl: string;
  group: GroupSnapshot;
}

export interface SendConsentEmailInput {
  groupId: string;
  to: { email: string; name?: string };
  avatarName: string;
  consentUrl: string;
  expiresAt: string;
  generation: number;
  /** Local part of the Message-ID, fixed by the workflow per generation (and per resend). */
  messageKey: string;
  reminder: boolean;
}

export interface SentEmail {
  messageId: string;
}

export interface PollConsentInput {
  groupId: string;
}

/** A poll that found a decision (approved, failed, not required). */
export interface PollOutcome {
  group: GroupSnapshot;
  /** Attempts this polling window made, including this one. */
  attempts: number;
}

/**
 * Carried in the details of every failure the consent activities throw, so the workflow learns the
 * attempt count and the last reason when a window closes (retries themselves leave no history).
 */
export interface AttemptDetails {
  attempt: number;
  consentStatus?: string | null;
  avatarStatus?: string | null;
  blocked?: BlockedReason | null;
  error?: ApiError | null;
  /** The delay this failure asked for before the next attempt (429 Retry-After, 401 slow retry...). */
  retryDelayMs?: number;
}

/** Failure types the workflow maps to outcomes; everything else is retried. */
export const FailureType = {
  consentPending: 'ConsentPending',
  groupNotFound: 'HeyGenGroupNotFound',
  invalidRequest: 'HeyGenInvalidRequest',
  needsOperator: 'HeyGenNeedsOperator',
  rateLimited: 'HeyGenRateLimited',
  inProgress: 'HeyGenRequestInProgress',
  unavailable: 'HeyGenUnavailable',
  emailTransient: 'EmailTransientFailure',
  emailUndeliverable: 'EmailUndeliverable',
} as const;
