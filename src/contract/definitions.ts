/**
 * The public contract of avatar-consent, the part workflow code may load: names, search attributes,
 * durations, the policy, results, status, signals, queries and updates. Backend services in other
 * languages start the workflow by these names with JSON, so everything here is a compatibility promise.
 *
 * No zod here, on purpose: workflow code is evaluated once per cached workflow, and zod's module
 * state cost about 0.8 MB per waiting consent (docs/benchmark.md). The input schemas are in
 * ./schemas.ts, which the worker, the starter and the tools use; ./index.ts exports both.
 */
import { SearchAttributeType, defineSearchAttributeKey } from '@temporalio/common';
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { ApiError } from '../rules/api-error.js';
import { shortDigest } from '../rules/digest.js';
import {
  EMAIL_ADDRESS_RULE,
  MAX_AUDIT_REASON_LENGTH,
  MAX_PERSON_NAME_LENGTH,
  isValidEmailAddress,
  oneLineTextProblems,
} from '../rules/text.js';
import type {
  AvatarConsentInput,
  ChangeRecipientInput,
  NotifyTarget,
  ParsedAvatarConsentInput,
  ResendEmailInput,
} from './schemas.js';

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

/**
 * The workflow ID of a group's consent: a second trigger for the same group attaches to the running
 * workflow instead of starting a second consent. Multi-tenant callers may put a tenant prefix in
 * front (letters, digits, ".", "_" or "-", ending in ":" or "/"), e.g. `acme:avatar-consent-ag_1`.
 */
export function workflowIdForGroup(groupId: string, tenantPrefix = ''): string {
  return `${tenantPrefix}avatar-consent-${groupId}`;
}

const TENANT_PREFIX = /^(?:[A-Za-z0-9._-]{1,64}[:/])?$/;

/**
 * Why a workflow ID is not the group's (null when it is). The workflow refuses any other ID, so a
 * caller that picks its own ID gets a clear error instead of a second consent and a second email.
 */
export function workflowIdProblem(workflowId: string, groupId: string): string | null {
  const own = workflowIdForGroup(groupId);
  if (workflowId.endsWith(own) && TENANT_PREFIX.test(workflowId.slice(0, -own.length))) return null;
  return `must be "${own}", optionally after a tenant prefix such as "acme:", so that a group has one consent at a time`;
}

/**
 * A short digest of an email address (trimmed, lower-case), so that a caller can tell whether a
 * running consent was sent to the same person without the address being shown: the status query
 * carries it, the starter compares it. Not a secret: a known address can be matched against it.
 */
export function recipientFingerprint(email: string): string {
  return `fp1:${shortDigest(email.trim().toLowerCase())}`;
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
const SHORT_DURATION = String.raw`(\d+(?:\.\d+)?)(ms|s|m|h|d|w)`;
const ISO_NUMBER = String.raw`(\d+(?:[.,]\d+)?)`;
/**
 * ISO-8601 durations of fixed length (what Java's Duration, .NET's XmlConvert and Python's isodate
 * write): weeks, days, hours, minutes, seconds. Years and months are refused: their length varies.
 */
const ISO_DURATION = `P(?!$)(?:${ISO_NUMBER}W)?(?:${ISO_NUMBER}D)?(?:T(?=\\d)(?:${ISO_NUMBER}H)?(?:${ISO_NUMBER}M)?(?:${ISO_NUMBER}S)?)?`;
/**
 * Every spelling of a duration the contract accepts, as one ECMA-262 pattern: the published JSON
 * Schema carries it, so a caller's validator agrees with the worker's.
 */
export const DURATION_PATTERN = `^(?:${SHORT_DURATION}|${ISO_DURATION})$`;
const durationPattern = new RegExp(DURATION_PATTERN);
const isoUnitsMs = [
  durationUnitsMs.w,
  durationUnitsMs.d,
  durationUnitsMs.h,
  durationUnitsMs.m,
  durationUnitsMs.s,
];

/**
 * Parses "30s", "15m", "7d"... or ISO-8601 ("PT30S", "P7D", "PT1H30M") into milliseconds;
 * undefined when the text is not a duration.
 */
export function parseDuration(text: string): number | undefined {
  const match = durationPattern.exec(text.trim());
  if (!match) return undefined;
  const [, amount, unit, ...iso] = match;
  let ms = 0;
  if (amount !== undefined) ms = Number(amount) * durationUnitsMs[unit as keyof typeof durationUnitsMs];
  else
    iso.forEach((part, i) => {
      if (part !== undefined) ms += Number(part.replace(',', '.')) * isoUnitsMs[i]!;
    });
  ms = Math.round(ms);
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

/** Defaults, documented in docs/design.md ("Polling in windows"). */
export const DEFAULT_POLICY = {
  pollInitialInterval: '15s',
  pollMaxInterval: '30m',
  pollBackoffCoefficient: 2,
  pollWindow: '4h',
  deadline: '7d',
  linkTtl: '23h',
  maxLinkRefreshes: 6,
} as const;

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

/** One problem with a caller's input: the field (a dotted path, "(input)" for the whole) and why. */
export interface FieldIssue {
  path: string;
  message: string;
}

export function describeFieldIssues(fields: readonly FieldIssue[]): string {
  return fields.map((field) => `${field.path}: ${field.message}`).join('; ');
}

export class InvalidInputError extends Error {
  override readonly name = 'InvalidInputError';
  readonly issues: string;
  constructor(
    readonly what: string,
    readonly fields: FieldIssue[],
  ) {
    const issues = describeFieldIssues(fields);
    super(`Invalid ${what}: ${issues}`);
    this.issues = issues;
  }
}

/** The same object with its null fields absent: to the contract, null means "not given". */
export type WithoutNulls<T> = { [K in keyof T]: Exclude<T[K], null> };
export function withoutNulls<T extends object>(value: T): WithoutNulls<T> {
  return Object.fromEntries(Object.entries(value).filter(([, field]) => field !== null)) as WithoutNulls<T>;
}

/**
 * An input that was checked when its consent started (by the worker, with ./schemas.ts), made into
 * the parsed form without checking it again: for runs continued as new, and for runs that started
 * before inputs were checked by an activity (their input passed the same rules then). What parsing
 * changes is redone: nulls become absent, durations milliseconds, the reroute URL its normal form.
 */
export function trustedInput(raw: AvatarConsentInput): ParsedAvatarConsentInput {
  const { policy, recipient, notify, rerouteUrl, ...rest } = withoutNulls(raw);
  const parsed: ParsedAvatarConsentInput = { ...withoutNulls(rest), recipient: withoutNulls(recipient) };
  if (notify) parsed.notify = withoutNulls(notify);
  if (rerouteUrl !== undefined)
    parsed.rerouteUrl = URL.canParse(rerouteUrl) ? new URL(rerouteUrl).href : rerouteUrl;
  if (!policy) return parsed;
  const durations = ['pollInitialInterval', 'pollMaxInterval', 'pollWindow', 'deadline', 'linkTtl'] as const;
  const times: Record<string, unknown> = withoutNulls(policy);
  for (const key of durations) {
    const text = policy[key];
    if (typeof text === 'string') times[key] = parseDuration(text);
  }
  return { ...parsed, policy: times };
}

/** The worker's verdict on a workflow input (see src/activities/check-input.ts). */
export type CheckedInput =
  | { ok: true; input: ParsedAvatarConsentInput }
  | {
      ok: false;
      fields: FieldIssue[];
      /** The caller to tell, when the notify target itself is valid. */
      notify: NotifyTarget | null;
      /** The notify target was given but is itself invalid: nobody can be told. */
      notifyInvalid: boolean;
      /** The group ID, when it is valid. */
      groupId: string | null;
    };

/** Problems with a resendEmail input, for the workflow's update validator (./schemas.ts: the same rule in zod). */
export function resendEmailInputProblems(raw: unknown): FieldIssue[] {
  if (raw === undefined || raw === null) return [];
  if (typeof raw !== 'object' || Array.isArray(raw))
    return [{ path: '(input)', message: 'must be an object' }];
  const problems: FieldIssue[] = Object.keys(raw)
    .filter((key) => key !== 'reason')
    .map((key) => ({ path: key, message: 'is not a field of resendEmail (allowed: reason)' }));
  const reason = (raw as { reason?: unknown }).reason;
  if (reason !== undefined && reason !== null) {
    for (const message of oneLineTextProblems(reason, MAX_AUDIT_REASON_LENGTH))
      problems.push({ path: 'reason', message });
  }
  return problems;
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
  'invalid_input',
] as const;
export type ConsentOutcome = (typeof CONSENT_OUTCOMES)[number];

/** Outcomes after which the avatar may be used. */
export function isSuccessfulOutcome(outcome: ConsentOutcome): boolean {
  return outcome === 'approved' || outcome === 'not_required';
}

/** Why a consent ended as it did, or what went wrong last (HeyGen's error shape). */
export interface ConsentError extends ApiError {
  /** For `invalid_input`: every bad field and why. */
  fields?: FieldIssue[];
}

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
export const BLOCKED_REASONS = ['credentials', 'billing', 'access'] as const;
export type BlockedReason = (typeof BLOCKED_REASONS)[number];

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
  /** recipientFingerprint() of the address the emails go to (never the address itself). */
  recipientFingerprint: string;
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

export interface ResendEmailResult {
  messageId: string;
  emailsSent: number;
  linkGeneration: number;
}

export interface ChangeRecipientResult {
  messageId: string;
  emailsSent: number;
  linkGeneration: number;
  recipientFingerprint: string;
}

/** Problems with a changeRecipient input, for the workflow's update validator (./schemas.ts: the same rule in zod). */
export function changeRecipientInputProblems(raw: unknown): FieldIssue[] {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    return [{ path: '(input)', message: 'must be an object with email (and optionally name, reason)' }];
  const fields = raw as Record<string, unknown>;
  const problems: FieldIssue[] = Object.keys(fields)
    .filter((key) => !['email', 'name', 'reason'].includes(key))
    .map((key) => ({
      path: key,
      message: 'is not a field of changeRecipient (allowed: email, name, reason)',
    }));
  if (typeof fields.email !== 'string' || !isValidEmailAddress(fields.email))
    problems.push({ path: 'email', message: EMAIL_ADDRESS_RULE });
  if (fields.name !== undefined && fields.name !== null) {
    for (const message of oneLineTextProblems(fields.name, MAX_PERSON_NAME_LENGTH))
      problems.push({ path: 'name', message });
  }
  if (fields.reason !== undefined && fields.reason !== null) {
    for (const message of oneLineTextProblems(fields.reason, MAX_AUDIT_REASON_LENGTH))
      problems.push({ path: 'reason', message });
  }
  return problems;
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
/**
 * Send the consent to someone else: checks the new address, records it, and emails the current link
 * to it at once (a new Message-ID). Later links (refreshes) go to the new address too.
 */
export const changeRecipientUpdate = defineUpdate<ChangeRecipientResult, [ChangeRecipientInput]>(
  'changeRecipient',
);
export const statusQuery = defineQuery<ConsentStatusView>('status');
