/**
 * The public contract as zod schemas: what callers send (the workflow input, the updates' and the
 * cancel signal's inputs) and what they get back (the result, which is also the completion signal's
 * payload, the status query's answer, the updates' results). The starter and the worker parse input
 * with them (zod stays out of workflow code: see ./definitions.ts), and tools/contract writes them
 * out as the published JSON Schema (contract/*.schema.json).
 *
 * Rules for every language: an optional field may be absent or `null` (what Jackson, Go without
 * `omitempty` and Python's `asdict` send), and the parsed value then has it absent; a field the
 * contract does not know is an error that names it; durations are strings, "30s" or ISO-8601 "PT30S".
 */
import { z } from 'zod';
import type { ApiError } from '../rules/api-error.js';
import {
  auditReasonSchema,
  consentTextSchema,
  emailAddressSchema,
  groupIdSchema,
  personNameSchema,
  normalisedRerouteUrlSchema,
  signalNameSchema,
  workflowIdSchema,
} from '../rules/input.js';
import {
  BLOCKED_REASONS,
  CONSENT_OUTCOMES,
  CONSENT_PHASES,
  DURATION_PATTERN,
  InvalidInputError,
  MAX_LISTED_POLL_TIMES,
  parseDuration,
  withoutNulls,
} from './definitions.js';
import type {
  AvatarConsentResult,
  CancelInput,
  ChangeRecipientResult,
  CompletionNotice,
  ConsentError,
  ConsentStatusView,
  FieldIssue,
  PollWindowView,
  ResendEmailResult,
} from './definitions.js';

/** Unknown field names are the caller's text: shown shortened, so an error never echoes a long value. */
const MAX_KEY_IN_MESSAGE = 64;
const shortKey = (key: string) =>
  key.length > MAX_KEY_IN_MESSAGE ? `${key.slice(0, MAX_KEY_IN_MESSAGE)}…` : key;

/**
 * zod's issues as the contract's field issues (path and reason, never the value). An unknown field
 * becomes an issue of its own, at its own path ("recipient.emial"), like every other bad field.
 */
export function fieldIssues(error: z.ZodError): FieldIssue[] {
  return error.issues.flatMap((issue) => {
    const path = issue.path.map(String);
    if (issue.code === 'unrecognized_keys')
      return issue.keys.map((key) => ({ path: [...path, shortKey(key)].join('.'), message: issue.message }));
    return [{ path: path.join('.') || '(input)', message: issue.message }];
  });
}

/**
 * An object of the contract: unknown fields are refused (JSON Schema `additionalProperties: false`),
 * and optional fields that arrived as `null` are absent from the parsed value.
 */
function contractObject<Shape extends z.ZodRawShape>(shape: Shape) {
  const allowed = Object.keys(shape).join(', ');
  return z
    .strictObject(shape, {
      error: (issue) =>
        issue.code === 'unrecognized_keys' ? `is not a field here (allowed: ${allowed})` : undefined,
    })
    .transform(withoutNulls);
}

/** An optional field: absent or null both mean "not given". */
const optional = <T extends z.ZodType>(schema: T) => schema.nullish();
/** An optional argument (an update's or a signal's): absent or null parse as undefined. */
const optionalArgument = <T extends z.ZodType>(schema: T) =>
  schema.nullish().transform((value) => value ?? undefined);

const DURATION_RULE = 'a duration such as "30s", "15m", "7d" or ISO-8601 "PT30S", "PT1H30M", "P7D"';

const durationString = (min: string, max: string) => {
  const minMs = parseDuration(min)!;
  const maxMs = parseDuration(max)!;
  return z
    .string({
      // A bare number is refused on purpose: seconds or milliseconds? The unit must be written.
      error: `must be ${DURATION_RULE} (a string with its unit: a bare number is ambiguous)`,
    })
    .max(32, 'must be at most 32 characters')
    .regex(new RegExp(DURATION_PATTERN), {
      error: (issue) =>
        `${typeof issue.input === 'string' && issue.input.length <= 32 ? `"${issue.input}"` : 'it'} is not ${DURATION_RULE} (no years or months: their length varies)`,
    })
    .transform((text, ctx) => {
      const ms = parseDuration(text)!;
      if (ms < minMs || ms > maxMs) {
        ctx.addIssue({ code: 'custom', message: `must be between ${min} and ${max}, got ${text}` });
        return z.NEVER;
      }
      return ms;
    })
    .meta({ description: `Between ${min} and ${max}: ${DURATION_RULE}.` });
};

// ---------------------------------------------------------------------------------------------
// Input
// ---------------------------------------------------------------------------------------------

export const notifyTargetSchema = contractObject({
  workflowId: workflowIdSchema.meta({ description: 'The workflow to signal when the consent ends.' }),
  runId: optional(z.string().min(1).max(128)),
  signalName: optional(signalNameSchema.meta({ description: 'Default: avatarConsentCompleted.' })),
});

export type NotifyTarget = z.output<typeof notifyTargetSchema>;

/**
 * The lower bounds are low on purpose: tests and the benchmark run whole days scaled down by a
 * factor of a thousand. HeyGen is protected anyway by the worker's rate gate and Retry-After.
 */
export const policySchema = contractObject({
  pollInitialInterval: optional(durationString('10ms', '1d')),
  pollMaxInterval: optional(durationString('10ms', '1d')),
  pollBackoffCoefficient: optional(z.number().min(1).max(10)),
  /** How long one polling activity runs (its retries are the polls) before the workflow takes stock. */
  pollWindow: optional(durationString('1s', '1d')),
  deadline: optional(durationString('1s', '90d')),
  linkTtl: optional(durationString('1s', '7d')),
  maxLinkRefreshes: optional(z.number().int().min(0).max(100)),
});

export const recipientSchema = contractObject({
  email: emailAddressSchema,
  name: optional(personNameSchema),
});

export const avatarConsentInputSchema = contractObject({
  groupId: groupIdSchema,
  recipient: recipientSchema,
  rerouteUrl: optional(normalisedRerouteUrlSchema),
  consentText: optional(consentTextSchema),
  notify: optional(notifyTargetSchema),
  policy: optional(policySchema),
});

/** What a caller sends (JSON, durations as strings, optional fields absent or null). */
export type AvatarConsentInput = z.input<typeof avatarConsentInputSchema>;
/** The same after validation (durations in milliseconds, no nulls). */
export type ParsedAvatarConsentInput = z.output<typeof avatarConsentInputSchema>;

/** Validates a caller's input; throws InvalidInputError naming every bad field. */
export function parseAvatarConsentInput(raw: unknown): ParsedAvatarConsentInput {
  const result = avatarConsentInputSchema.safeParse(raw);
  if (!result.success) throw new InvalidInputError('avatarConsentWorkflow input', fieldIssues(result.error));
  return result.data;
}

const reasonField = optional(
  auditReasonSchema.meta({ description: 'Free text for the audit trail (not sent to the person).' }),
);

export const resendEmailInputSchema = optionalArgument(contractObject({ reason: reasonField }));
export type ResendEmailInput = z.input<typeof resendEmailInputSchema>;

export const changeRecipientInputSchema = contractObject({
  email: emailAddressSchema,
  name: optional(personNameSchema),
  reason: reasonField,
});
export type ChangeRecipientInput = z.input<typeof changeRecipientInputSchema>;

export const cancelInputSchema = optionalArgument(contractObject({ reason: reasonField }));

// ---------------------------------------------------------------------------------------------
// Output: what the workflow sends back. The interfaces in ./definitions.ts are what workflow code
// builds; these schemas describe them for other languages, and the compiler checks they agree.
// Objects here are not strict: a consumer should accept fields added in later versions.
// ---------------------------------------------------------------------------------------------

const isoTime = z.iso.datetime({ offset: true });

export const fieldIssueSchema = z.object({
  path: z.string().meta({ description: 'A dotted path such as "recipient.email"; "(input)" for the whole.' }),
  message: z.string(),
});

export const consentErrorSchema = z.object({
  code: z
    .string()
    .meta({ description: 'Stable and machine-readable, e.g. invalid_parameter, smtp_550, invalid_input.' }),
  message: z.string().meta({ description: 'For people; never carries personal data or secrets.' }),
  param: z.string().nullable().optional(),
  fields: z.array(fieldIssueSchema).optional().meta({ description: 'For invalid_input: every bad field.' }),
});

export const completionNoticeSchema = z.object({
  workflowId: z.string(),
  runId: z.string().optional(),
  signalName: z.string(),
  delivered: z.boolean(),
  reason: z.string().optional(),
});

export const avatarConsentResultSchema = z.object({
  outcome: z.enum(CONSENT_OUTCOMES),
  groupId: z.string(),
  consentStatus: z.string().nullable(),
  avatarStatus: z.string().nullable(),
  consentUrl: z.string().nullable(),
  approvedAt: isoTime.optional(),
  error: consentErrorSchema.optional(),
  polls: z.number().int().min(0),
  emailsSent: z.number().int().min(0),
  linkGeneration: z.number().int().min(0),
  notification: completionNoticeSchema.optional(),
});

export const pollWindowViewSchema = z.object({
  openedAt: isoTime,
  closesAt: isoTime,
  pollsBefore: z.number().int().min(0),
  pollTimes: z.array(isoTime).max(MAX_LISTED_POLL_TIMES),
  thenEveryMs: z.number().min(0),
});

export const consentStatusViewSchema = z.object({
  groupId: z.string(),
  phase: z.enum(CONSENT_PHASES),
  outcome: z.enum(CONSENT_OUTCOMES).nullable(),
  consentStatus: z.string().nullable(),
  avatarStatus: z.string().nullable(),
  polls: z.number().int().min(0),
  nextPollAt: isoTime.nullable(),
  pollWindow: pollWindowViewSchema.nullable(),
  asOf: isoTime,
  lastError: consentErrorSchema.nullable(),
  blocked: z.enum(BLOCKED_REASONS).nullable(),
  linkGeneration: z.number().int().min(0),
  linkExpiresAt: isoTime.nullable(),
  emailsSent: z.number().int().min(0),
  deadline: isoTime,
  recipientFingerprint: z.string(),
});

export const resendEmailResultSchema = z.object({
  messageId: z.string(),
  emailsSent: z.number().int().min(0),
  linkGeneration: z.number().int().min(0),
});

export const changeRecipientResultSchema = resendEmailResultSchema.extend({
  recipientFingerprint: z.string(),
});

// ---------------------------------------------------------------------------------------------
// The compiler's proof that the interfaces and the schemas say the same: a field added to one and
// not the other fails the typecheck here.
// ---------------------------------------------------------------------------------------------

/** True only when A and B are the same type (not merely assignable). */
export type SameType<A, B> =
  (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
type Agree<T extends true> = T;

export type ContractAgreement = [
  Agree<SameType<z.output<typeof fieldIssueSchema>, FieldIssue>>,
  Agree<SameType<z.output<typeof consentErrorSchema>, ConsentError>>,
  Agree<SameType<Omit<z.output<typeof consentErrorSchema>, 'fields'>, ApiError>>,
  Agree<SameType<z.output<typeof completionNoticeSchema>, CompletionNotice>>,
  Agree<SameType<z.output<typeof avatarConsentResultSchema>, AvatarConsentResult>>,
  Agree<SameType<z.output<typeof pollWindowViewSchema>, PollWindowView>>,
  Agree<SameType<z.output<typeof consentStatusViewSchema>, ConsentStatusView>>,
  Agree<SameType<z.output<typeof resendEmailResultSchema>, ResendEmailResult>>,
  Agree<SameType<z.output<typeof changeRecipientResultSchema>, ChangeRecipientResult>>,
  Agree<SameType<z.output<typeof cancelInputSchema>, CancelInput | undefined>>,
];
