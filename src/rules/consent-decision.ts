/**
 * When a consent is decided, written once: the poll activity uses it to stop polling, the workflow
 * to choose its outcome. Pure, so workflow code can use it.
 */
import type { ApiError } from './api-error.js';

/** What the flow needs to know about an avatar group. */
export interface GroupSnapshot {
  groupId: string;
  name: string;
  /** HeyGen's consent_status: an open string; documented: null (not required), pending, approved. */
  consentStatus: string | null;
  /** HeyGen's training status: processing, pending_consent, failed, completed (or null). */
  avatarStatus: string | null;
  error: ApiError | null;
}

export type ConsentDecision =
  { outcome: 'approved' } | { outcome: 'failed'; error: ApiError } | { outcome: 'not_required' };

/**
 * The decision a group's state holds, or null while the person has yet to act. `skipped` (consent
 * waived, seen for enterprise accounts) counts as not required; any other unknown value keeps the
 * flow waiting, since HeyGen documents consent_status as an open string.
 */
export function consentDecision(group: GroupSnapshot): ConsentDecision | null {
  if (group.consentStatus === 'approved') return { outcome: 'approved' };
  if (group.avatarStatus === 'failed') {
    return {
      outcome: 'failed',
      error: group.error ?? { code: 'failed', message: 'HeyGen marked the avatar group failed' },
    };
  }
  if (group.consentStatus === null || group.consentStatus === 'skipped') return { outcome: 'not_required' };
  return null;
}

/** A consent_status the flow knows (anything else is kept polling, and shown to operators). */
export function isKnownConsentStatus(status: string | null): boolean {
  return status === null || status === 'pending' || status === 'approved' || status === 'skipped';
}
