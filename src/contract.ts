/**
 * The public contract of avatar-consent: names, input and result schemas, signals, queries and updates.
 *
 * Workflows, the starter and callers all import this module, and backend services in other
 * languages start the workflow by these names with JSON, so everything here is a compatibility
 * promise. It must stay deterministic (it is bundled into workflow code): no I/O, no Node built-ins.
 */
import { SearchAttributeType, defineSearchAttributeKey } from '@temporalio/common';
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import { z } from 'zod';
import type { ApiError } from './rules/api-error.js';
import {
  auditReasonSchema,
  consentTextSchema,
  emailAddressSchema,
  groupIdSchema,
  personNameSchema,
  rerouteUrlSchema,
  signalNameSchema,
  workflowIdSchema,
} from './rules/input.js';
import { formatIssues } from './rules/issues.js';

export const WORKFLOW_TYPE = 'avatarConsentWorkflow';
export const DEFAULT_TASK_QUEUE = 'avatar-consent';
export const DEFAULT_COMPLETION_SIGNAL = 'avatarConsentCompleted';

/**
 * HeyGen calls run on their own task queue beside the workflow's, so one cap
 * (`maxTaskQueueActivitiesPerSecond`, from HEYGEN_MAX_RPS) limits every worker's HeyGen requests together.
 */
export function heygenTaskQueueFor(taskQueue: string): string {
  return `${taskQueue}-heygen`;
}

/** Deterministic ID: a second trigger for the same group attaches to the running workflow. */
export function workflowIdForGroup(groupId: string): string {
  return `avatar-consent-${groupId}`;
}

// ---------------------------------------------------------------------------------------------
// Search attributes (Keyword). Never put addresses or links here: search attributes are not encrypted.
// ---------------------------------------------------------------------------------------------

export const AvatarGroupIdAttribute = defineSearchAttributeKey('AvatarGroupId', SearchAttributeType.KEYWORD);
/** looking, requesting, emailing, awaiting, refreshing, done. */
export const ConsentPhaseAttribute = defineSearchAttributeKey('ConsentPhase', SearchAttributeType.KEYWORD);
/** The outcome once done (approved, expired...). */
export const ConsentOutcomeAttribute = defineSearchAttributeKey(
  'ConsentOutcome',
  SearchAttributeType.KEYWORD,
);
/** credentials, billing or access while HeyGen refuses our key (401/402/403); none otherwise. */
export const ConsentBlockedAttribute = defineSearchAttributeKey(
  'ConsentBlocked',
  SearchAttributeType.KEYWORD,
);
export const CONSENT_SEARCH_ATTRIBUTES = [
  AvatarGroupIdAttribute,
  ConsentPhaseAttribute,
  ConsentOutcomeAttribute,
  ConsentBlockedAttribute,
] as const;

// ---------------------------------------------------------------------------------------------
// Durations
// ---------------------------------------------------------------------------------------------

const durationUnitsMs = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 } as const;
const durationPattern = /^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)$/;

/** Parses "30s", "15m", "7d"... into milliseconds; undefined when the text is not a duration. */
export function parseDuration(text: string): number | undefined {
  const match = durationPattern.exec(text.trim());
  if (!match) return undefined;
  const [, amount, unit] = match as unknown as [string, string, keyof typeof durationUnitsMs];
  const ms = Math.round(Number(amount) * durationUnitsMs[unit]);
  return Number.isFinite(ms) ? ms : undefined;
}

/** Formats milliseconds as the largest exact unit, e.g. 1800000 -> "30m" (for messages and the UI). */
export function formatDuration(ms: number): string {
  for (const unit of ['w', 'd', 'h', 'm', 's'] as const) {
    const size = durationUnitsMs[unit];
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

const durationString = (min: string, max: string) => {
  const minMs = parseDuration(min)!;
  const maxMs = parseDuration(max)!;
  return z
    .string()
    .max(32)
    .transform((text, ctx) => {
      const ms = parseDuration(text);
      if (ms === undefined) {
        ctx.addIssue({ code: 'custom', message: `"${text}" is not a duration such as "30s", "15m" or "7d"` });
        return z.NEVER;
      }
      if (ms < minMs || ms > maxMs) {
        ctx.addIssue({ code: 'custom', message: `must be between ${min} and ${max}, got ${text}` });
        return z.NEVER;
      }
      return ms;
    });
};

// ---------------------------------------------------------------------------------------------
// Input
// ---------------------------------------------------------------------------------------------

export const notifyTargetSchema = z.strictObject({
  workflowId: workflowIdSchema,
  runId: z.string().min(1).max(128).optional(),
  signalName: signalNameSchema.optional(),
});

export type NotifyTarget = z.output<typeof notifyTargetSchema>;

/** Defaults, documented in README ("Polling and link policy"). */
export const DEFAULT_POLICY = {
  pollInitialInterval: '15s',
  pollMaxInterval: '30m',
  pollBackoffCoefficient: 2,
  pollWindow: '4h',
  deadline: '7d',
  linkTtl: '23h',
  maxLinkRefreshes: 6,
} as const;

/**
 * The lower bounds are low on purpose: tests and the benchmark run whole days scaled down by a
 * factor of a thousand. HeyGen is protected anyway by the worker's rate gate and Retry-After.
 */
export const policySchema = z.strictObject({
  pollInitialInterval: durationString('10ms', '1d').optional(),
  pollMaxInterval: durationString('10ms', '1d').optional(),
  pollBackoffCoefficient: z.number().min(1).max(10).optional(),
  /** How long one polling activity runs (its retries are the polls) before the workflow takes stock. */
  pollWindow: durationString('1s', '1d').optional(),
  deadline: durationString('1s', '90d').optional(),
  linkTtl: durationString('1s', '7d').optional(),
  maxLinkRefreshes: z.number().int().min(0).max(100).optional(),
});

export const avatarConsentInputSchema = z.strictObject({
  groupId: groupIdSchema,
  recipient: z.strictObject({ email: emailAddressSchema, name: personNameSchema.optional() }),
  rerouteUrl: rerouteUrlSchema.optional(),
  consentText: consentTextSchema.optional(),
  notify: notifyTargetSchema.optional(),
  policy: policySchema.optional(),
});

/** What a caller sends (JSON, durations as strings). */
export type AvatarConsentInput = z.input<typeof avatarConsentInputSchema>;
/** The same after validation (durations in milliseconds). */
export type ParsedAvatarConsentInput = z.output<typeof avatarConsentInputSchema>;

export interface ResolvedPolicy {
  pollInitialIntervalMs: number;
  pollMaxIntervalMs: number;
  pollBackoffCoefficient: number;
  pollWindowMs: number;
  deadlineMs: number;
  linkTtlMs: number;
  maxLinkRefreshes: number;
}

export function resolvePolicy(policy: ParsedAvatarConsentInput['policy']): ResolvedPolicy {
  const initial = policy?.pollInitialInterval ?? parseDuration(DEFAULT_POLICY.pollInitialInterval)!;
  const max = policy?.pollMaxInterval ?? parseDuration(DEFAULT_POLICY.pollMaxInterval)!;
  return {
    pollInitialIntervalMs: initial,
    // A cap below the first interval would be meaningless; the larger wins.
    pollMaxIntervalMs: Math.max(initial, max),
    pollBackoffCoefficient: policy?.pollBackoffCoefficient ?? DEFAULT_POLICY.pollBackoffCoefficient,
    pollWindowMs: policy?.pollWindow ?? parseDuration(DEFAULT_POLICY.pollWindow)!,
    deadlineMs: policy?.deadline ?? parseDuration(DEFAULT_POLICY.deadline)!,
    linkTtlMs: policy?.linkTtl ?? parseDuration(DEFAULT_POLICY.linkTtl)!,
    maxLinkRefreshes: policy?.maxLinkRefreshes ?? DEFAULT_POLICY.maxLinkRefreshes,
  };
}

export class InvalidInputError extends Error {
  override readonly name = 'InvalidInputError';
  constructor(
    readonly what: string,
    readonly issues: string,
  ) {
    super(`Invalid ${what}: ${issues}`);
  }
}

/** Validates a caller's input; throws InvalidInputError naming every bad field. */
export function parseAvatarConsentInput(raw: unknown): ParsedAvatarConsentInput {
  const result = avatarConsentInputSchema.safeParse(raw);
  if (!result.success) throw new InvalidInputError('avatarConsentWorkflow input', formatIssues(result.error));
  return result.data;
}

// ---------------------------------------------------------------------------------------------
// Result
// ---------------------------------------------------------------------------------------------

export const CONSENT_OUTCOMES = [
  'approved',
  'not_required',
  'failed',
  'group_not_found',
  'invalid_request',
  'email_undeliverable',
  'expired',
  'canceled',
] as const;
export type ConsentOutcome = (typeof CONSENT_OUTCOMES)[number];

/** Outcomes after which the avatar may be used. */
export function isSuccessfulOutcome(outcome: ConsentOutcome): boolean {
  return outcome === 'approved' || outcome === 'not_required';
}

/** Why a consent ended as it did, or what went wrong last (HeyGen's error shape). */
export type ConsentError = ApiError;

export interface CompletionNotice {
  workflowId: string;
  runId?: string;
  signalName: string;
  delivered: boolean;
  /** Why it was not delivered, e.g. the target workflow no longer exists. */
  reason?: string;
}

export interface AvatarConsentResult {
  outcome: ConsentOutcome;
  groupId: string;
  consentStatus: string | null;
  avatarStatus: string | null;
  consentUrl: string | null;
  /** When the workflow saw the approval (ISO-8601). */
  approvedAt?: string;
  error?: ConsentError;
  polls: number;
  emailsSent: number;
  linkGeneration: number;
  /** Whether the completion signal reached its target. */
  notification?: CompletionNotice;
}

// ---------------------------------------------------------------------------------------------
// Status (query), signals and updates
// ---------------------------------------------------------------------------------------------

export const CONSENT_PHASES = [
  'looking',
  'requesting',
  'emailing',
  'awaiting',
  'refreshing',
  'done',
] as const;
export type ConsentPhase = (typeof CONSENT_PHASES)[number];

/** Why the workflow cannot make progress until an operator acts (HeyGen 401/402/403). */
export type BlockedReason = 'credentials' | 'billing' | 'access';

export interface ConsentStatusView {
  groupId: string;
  phase: ConsentPhase;
  outcome: ConsentOutcome | null;
  consentStatus: string | null;
  avatarStatus: string | null;
  /** Polls made by `asOf`. While a window is open, `pollWindow` tells the polls made since (`pollProgress`). */
  polls: number;
  /** When the next poll was due as of `asOf` (ISO-8601); `pollProgress` gives it for any time. */
  nextPollAt: string | null;
  /** The open polling window's schedule (its activity's retries are the polls), or null. */
  pollWindow: PollWindowView | null;
  /**
   * When the workflow last woke (ISO-8601). A query cannot read the clock: the counts above are as of
   * this time, and the window's schedule covers what happened since.
   */
  asOf: string;
  lastError: ConsentError | null;
  blocked: BlockedReason | null;
  linkGeneration: number;
  linkExpiresAt: string | null;
  emailsSent: number;
  deadline: string;
}

/** A polling window's schedule: polls at `pollTimes`, then every `thenEveryMs` until `closesAt`. */
export interface PollWindowView {
  openedAt: string;
  closesAt: string;
  /** Polls before this window opened. */
  pollsBefore: number;
  /** The first polls of the window (ISO-8601), at most MAX_LISTED_POLL_TIMES. */
  pollTimes: string[];
  /** After the listed times, a poll this often (the backoff's cap), until the window closes. */
  thenEveryMs: number;
}

export const MAX_LISTED_POLL_TIMES = 24;

/**
 * Polls made and the next poll due at `nowMs`, from a status: exact to the schedule, which Temporal
 * keeps unless HeyGen asks for a longer wait (429) or no worker runs.
 */
export function pollProgress(
  status: Pick<ConsentStatusView, 'polls' | 'nextPollAt' | 'pollWindow'>,
  nowMs: number,
): { polls: number; nextPollAt: string | null } {
  const window = status.pollWindow;
  if (!window) return { polls: status.polls, nextPollAt: status.nextPollAt };
  const times = window.pollTimes.map((t) => Date.parse(t));
  const closesAt = Date.parse(window.closesAt);
  let polls = window.pollsBefore;
  let next: number | null = null;
  for (const at of times) {
    if (at <= nowMs) polls += 1;
    else {
      next = at;
      break;
    }
  }
  const last = times.at(-1);
  if (next === null && last !== undefined && window.thenEveryMs > 0) {
    const more = Math.max(0, Math.floor((Math.min(nowMs, closesAt) - last) / window.thenEveryMs));
    polls += more;
    const candidate = last + (more + 1) * window.thenEveryMs;
    next = candidate <= closesAt ? candidate : null;
  }
  return { polls, nextPollAt: next === null ? null : new Date(next).toISOString() };
}

export const resendEmailInputSchema = z
  .strictObject({
    /** Free text for the audit trail (not sent to the person). */
    reason: auditReasonSchema.optional(),
  })
  .optional();
export type ResendEmailInput = z.input<typeof resendEmailInputSchema>;

export interface ResendEmailResult {
  messageId: string;
  emailsSent: number;
  linkGeneration: number;
}

export interface CancelInput {
  reason?: string;
}

/** Sent to the caller (notify target, or the parent workflow) when the consent ends, whatever the outcome. */
export const avatarConsentCompletedSignal = defineSignal<[AvatarConsentResult]>(DEFAULT_COMPLETION_SIGNAL);
/** Poll HeyGen now instead of waiting for the next scheduled poll (a hint, never proof of approval). */
export const checkNowSignal = defineSignal('checkNow');
/** Stop waiting; the workflow ends with outcome `canceled` and still notifies the caller. */
export const cancelSignal = defineSignal<[CancelInput?]>('cancel');
/** Email the current link again; returns once the email is sent. */
export const resendEmailUpdate = defineUpdate<ResendEmailResult, [ResendEmailInput]>('resendEmail');
export const statusQuery = defineQuery<ConsentStatusView>('status');
