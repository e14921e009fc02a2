/**
 * The input half of the public contract: zod schemas for what callers send (the workflow input,
 * the resendEmail update), parsed by the starter and, for the workflow, by a local activity in the
 * worker (zod stays out of workflow code: see ./definitions.ts).
 */
import { z } from 'zod';
import {
  auditReasonSchema,
  consentTextSchema,
  emailAddressSchema,
  groupIdSchema,
  personNameSchema,
  rerouteUrlSchema,
  signalNameSchema,
  workflowIdSchema,
} from '../rules/input.js';
import { InvalidInputError, parseDuration } from './definitions.js';
import type { FieldIssue } from './definitions.js';

/** zod's issues as the contract's field issues (path and reason, never the value). */
export function fieldIssues(error: z.ZodError): FieldIssue[] {
  return error.issues.map((issue) => ({
    path: issue.path.map(String).join('.') || '(input)',
    message: issue.message,
  }));
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

/** Validates a caller's input; throws InvalidInputError naming every bad field. */
export function parseAvatarConsentInput(raw: unknown): ParsedAvatarConsentInput {
  const result = avatarConsentInputSchema.safeParse(raw);
  if (!result.success) throw new InvalidInputError('avatarConsentWorkflow input', fieldIssues(result.error));
  return result.data;
}

export const resendEmailInputSchema = z
  .strictObject({
    /** Free text for the audit trail (not sent to the person). */
    reason: auditReasonSchema.optional(),
  })
  .optional();
export type ResendEmailInput = z.input<typeof resendEmailInputSchema>;

export const changeRecipientInputSchema = z.strictObject({
  email: emailAddressSchema,
  name: personNameSchema.optional(),
  /** Free text for the audit trail (not sent to the person). */
  reason: auditReasonSchema.optional(),
});
export type ChangeRecipientInput = z.input<typeof changeRecipientInputSchema>;
