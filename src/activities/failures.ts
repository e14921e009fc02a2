/**
 * Turns classified client errors into Temporal failures, in one place. The HTTP classification itself
 * lives in `src/heygen/failures.ts`; this only decides how Temporal should retry each kind.
 */
import { ApplicationFailure, ApplicationFailureCategory } from '@temporalio/common';
import type { BlockedReason } from '../contract/index.js';
import { HeyGenError } from '../heygen/index.js';
import { MailError } from '../email/index.js';
import { FailureType } from './types.js';
import type { AttemptDetails } from './types.js';

/** 409 request_in_progress: the original request is still being processed; ask again soon with the same key. */
const IN_PROGRESS_RETRY_MS = 2_000;
/** 401/402/403: an operator must act. Retry slowly so a fixed key resumes every workflow without hammering HeyGen. */
export const NEEDS_OPERATOR_RETRY_MS = 5 * 60_000;

/** Up to 10% (at most 5 s) extra on Retry-After, so workers that were told the same wait do not return at once. */
export function withJitter(ms: number, random: () => number = Math.random): number {
  return ms + Math.floor(random() * Math.min(ms * 0.1, 5_000));
}

function blockedReasonFor(status: number | null): BlockedReason {
  if (status === 402) return 'billing';
  if (status === 403) return 'access';
  return 'credentials';
}

/**
 * Keeps what we sent (the recipient's address, the consent text) out of failure messages: a mail
 * server or HeyGen may quote it back, and without payload encryption Temporal stores messages in clear.
 */
export type Scrub = (text: string) => string;
const keep: Scrub = (text) => text;

/** Fragments shorter than this are left alone: too common to be telling, and scrubbing them would garble messages. */
const MIN_SCRUBBED_LENGTH = 3;

export function scrubbing(values: readonly (string | undefined)[], placeholder = '[recipient]'): Scrub {
  const present = values
    .filter((v): v is string => typeof v === 'string' && v.length >= MIN_SCRUBBED_LENGTH)
    // Longest first, so a value that contains another is removed whole.
    .sort((a, b) => b.length - a.length);
  return (text) => present.reduce((out, value) => out.split(value).join(placeholder), text);
}

/**
 * Scrubs an echoed consent text: the whole text, and each of its lines and sentences of 12 characters
 * or more (an error message tends to quote the part it objects to, not all of it).
 */
export function scrubbingConsentText(text: string | undefined): Scrub {
  if (!text) return keep;
  const parts = [text, ...text.split(/\n|(?<=[.!?])\s+/).map((part) => part.trim())].filter(
    (p) => p.length >= 12,
  );
  return scrubbing(parts, '[consent text]');
}

export function heygenFailure(
  err: HeyGenError,
  attempt: number,
  extra: Partial<AttemptDetails> = {},
  scrub: Scrub = keep,
): ApplicationFailure {
  const message = scrub(err.message);
  const error = { code: err.code ?? `http_${err.status ?? 'error'}`, message, param: err.param };
  const details = (more: Partial<AttemptDetails> = {}): AttemptDetails[] => [
    { attempt, ...extra, error, ...more },
  ];
  switch (err.kind) {
    case 'rate_limited': {
      const delay = withJitter(err.retryAfterMs ?? 60_000);
      return ApplicationFailure.create({
        type: FailureType.rateLimited,
        message,
        details: details({ retryDelayMs: delay }),
        nextRetryDelay: delay,
      });
    }
    case 'in_progress':
      return ApplicationFailure.create({
        type: FailureType.inProgress,
        message,
        details: details({ retryDelayMs: IN_PROGRESS_RETRY_MS }),
        nextRetryDelay: IN_PROGRESS_RETRY_MS,
      });
    case 'needs_operator': {
      const blocked = blockedReasonFor(err.status);
      return ApplicationFailure.create({
        type: FailureType.needsOperator,
        message: `${message} (blocked: ${blocked}; an operator must fix it, retrying every ${NEEDS_OPERATOR_RETRY_MS / 60_000} min)`,
        details: details({ blocked, retryDelayMs: NEEDS_OPERATOR_RETRY_MS }),
        nextRetryDelay: NEEDS_OPERATOR_RETRY_MS,
      });
    }
    case 'invalid':
      return ApplicationFailure.create({
        type: FailureType.invalidRequest,
        message,
        details: details(),
        nonRetryable: true,
      });
    case 'not_found':
      return ApplicationFailure.create({
        type: FailureType.groupNotFound,
        message,
        details: details(),
        nonRetryable: true,
      });
    case 'retryable':
      return ApplicationFailure.create({
        type: FailureType.unavailable,
        message,
        details: details(),
      });
  }
}

export function mailFailure(err: MailError, attempt: number, scrub: Scrub = keep): ApplicationFailure {
  const message = scrub(err.message);
  const error = { code: err.responseCode ? `smtp_${err.responseCode}` : 'smtp_error', message };
  if (err.kind === 'permanent') {
    return ApplicationFailure.create({
      type: FailureType.emailUndeliverable,
      message,
      details: [{ attempt, error } satisfies AttemptDetails],
      nonRetryable: true,
    });
  }
  return ApplicationFailure.create({
    type: FailureType.emailTransient,
    message,
    details: [{ attempt, error } satisfies AttemptDetails],
  });
}

/** A still-pending poll: benign (no error logs or failure metrics), retried on the polling schedule. */
export function consentPending(details: AttemptDetails): ApplicationFailure {
  const pending = ApplicationFailure.create({
    type: FailureType.consentPending,
    message: `consent still pending (consent_status=${details.consentStatus ?? 'null'}, status=${details.avatarStatus ?? 'null'})`,
    details: [details],
    category: ApplicationFailureCategory.BENIGN,
  });
  // Not an error: the UI shows the pending poll's last "failure", and a stack trace there would
  // make a normal wait look like a crash.
  pending.stack = '';
  return pending;
}

/** Maps anything a client throws to a Temporal failure; unknown errors become plain retryable failures without secrets. */
export function toActivityFailure(
  err: unknown,
  attempt: number,
  extra: Partial<AttemptDetails> = {},
  scrub: Scrub = keep,
): ApplicationFailure {
  if (err instanceof ApplicationFailure) return err;
  if (err instanceof HeyGenError) return heygenFailure(err, attempt, extra, scrub);
  if (err instanceof MailError) return mailFailure(err, attempt, scrub);
  const message = err instanceof Error ? scrub(`${err.name}: ${err.message}`) : 'unexpected error';
  return ApplicationFailure.create({
    type: 'UnexpectedActivityError',
    message,
    details: [{ attempt, ...extra }],
  });
}
