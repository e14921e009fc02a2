import { ApplicationFailureCategory } from '@temporalio/common';
import { describe, expect, it } from 'vitest';
import {
  NEEDS_OPERATOR_RETRY_MS,
  consentPending,
  scrubbingConsentText,
  scrubbing,
  toActivityFailure,
  withJitter,
} from '../../src/activities/failures.js';
import { FailureType } from '../../src/activities/types.js';
import type { AttemptDetails } from '../../src/activities/types.js';
import { MailError } from '../../src/email/index.js';
import { HeyGenError } from '../../src/heygen/index.js';
import type { HeyGenFailureKind } from '../../src/heygen/index.js';

function heygen(
  kind: HeyGenFailureKind,
  status: number | null,
  extra: Partial<ConstructorParameters<typeof HeyGenError>[0]> = {},
) {
  return new HeyGenError({
    kind,
    status,
    message: `HeyGen ${status}`,
    method: 'GET',
    path: '/v3/avatars/ag_1',
    ...extra,
  });
}

function detailsOf(failure: { details?: unknown[] | null }): AttemptDetails {
  return failure.details?.[0] as AttemptDetails;
}

describe('HeyGen failures as Temporal failures', () => {
  it('rate limited: retryable after Retry-After plus at most 10% jitter', () => {
    const failure = toActivityFailure(heygen('rate_limited', 429, { retryAfterMs: 120_000 }), 3);
    expect(failure.type).toBe(FailureType.rateLimited);
    expect(failure.nonRetryable).toBeFalsy();
    const delay = failure.nextRetryDelay as number;
    expect(delay).toBeGreaterThanOrEqual(120_000);
    expect(delay).toBeLessThanOrEqual(125_000);
    expect(detailsOf(failure)).toMatchObject({ attempt: 3, retryDelayMs: delay });
  });

  it.each([
    [401, 'credentials'],
    [402, 'billing'],
    [403, 'access'],
  ])('%i: retried slowly and marked blocked on %s', (status, blocked) => {
    const failure = toActivityFailure(heygen('needs_operator', status, { code: 'x' }), 1);
    expect(failure.type).toBe(FailureType.needsOperator);
    expect(failure.nonRetryable).toBeFalsy();
    expect(failure.nextRetryDelay).toBe(NEEDS_OPERATOR_RETRY_MS);
    expect(detailsOf(failure).blocked).toBe(blocked);
  });

  it('400 and 404 are not retried; 409 retries soon; 5xx uses the normal backoff', () => {
    const invalid = toActivityFailure(
      heygen('invalid', 400, { code: 'invalid_parameter', param: 'consent_text' }),
      1,
    );
    expect(invalid).toMatchObject({ type: FailureType.invalidRequest, nonRetryable: true });
    expect(detailsOf(invalid).error).toMatchObject({ code: 'invalid_parameter', param: 'consent_text' });
    expect(toActivityFailure(heygen('not_found', 404), 1)).toMatchObject({
      type: FailureType.groupNotFound,
      nonRetryable: true,
    });
    expect(toActivityFailure(heygen('in_progress', 409), 1)).toMatchObject({
      type: FailureType.inProgress,
      nextRetryDelay: 2_000,
    });
    const unavailable = toActivityFailure(heygen('retryable', 503), 1);
    expect(unavailable).toMatchObject({ type: FailureType.unavailable });
    expect(unavailable.nextRetryDelay).toBeUndefined();
  });

  it('a pending poll is a benign failure carrying what it saw', () => {
    const failure = consentPending({ attempt: 7, consentStatus: 'pending', avatarStatus: 'pending_consent' });
    expect(failure.category).toBe(ApplicationFailureCategory.BENIGN);
    expect(detailsOf(failure)).toMatchObject({ attempt: 7, consentStatus: 'pending' });
    // A normal wait must not show in the UI as a crash: no stack trace goes with it.
    expect(failure.stack).toBe('');
  });

  it('scrubs an echoed consent text: the whole of it, and a sentence quoted on its own', () => {
    const text = 'I agree to the avatar. It will be used for training videos only.';
    const scrub = scrubbingConsentText(text);
    expect(scrub(`consent_text "${text}" rejected`)).toBe('consent_text "[consent text]" rejected');
    expect(scrub('near "It will be used for training videos only." at 31')).toBe(
      'near "[consent text]" at 31',
    );
    expect(scrubbingConsentText(undefined)('unchanged')).toBe('unchanged');
  });

  it('jitter stays within 10% and 5 s', () => {
    expect(withJitter(1_000, () => 0.999)).toBeLessThanOrEqual(1_100);
    expect(withJitter(3_600_000, () => 0.999)).toBeLessThanOrEqual(3_605_000);
    expect(withJitter(1_000, () => 0)).toBe(1_000);
  });
});

describe('email failures', () => {
  const rejected = new MailError('550 5.1.1 <ada@example.com>: Recipient address rejected', {
    kind: 'permanent',
    reason: 'rejected',
    responseCode: 550,
  });

  it('a permanent rejection ends the consent; a transient one retries', () => {
    expect(toActivityFailure(rejected, 1)).toMatchObject({
      type: FailureType.emailUndeliverable,
      nonRetryable: true,
    });
    const transient = new MailError('451 try later', {
      kind: 'transient',
      reason: 'temporary',
      responseCode: 451,
    });
    expect(toActivityFailure(transient, 1)).toMatchObject({
      type: FailureType.emailTransient,
      nonRetryable: false,
    });
  });

  it('keeps the recipient address out of the failure Temporal stores', () => {
    const failure = toActivityFailure(rejected, 1, {}, scrubbing(['ada@example.com', undefined]));
    expect(failure.message).not.toContain('ada@example.com');
    expect(JSON.stringify(failure.details)).not.toContain('ada@example.com');
    expect(failure.message).toContain('[recipient]');
  });
});
