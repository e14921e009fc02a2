import { z } from 'zod';

import { AVATAR_STATUSES } from './types.js';

// Request bodies. Unknown fields are ignored (z.object strips them), as the real API does.

/** CreateAvatarConsentRequest. `consent_text` is measured in code points, like JSON Schema maxLength. */
export const createConsentRequestSchema = z.object({
  reroute_url: z.string({ error: 'reroute_url must be a string or null.' }).nullable().default(null),
  consent_text: z
    .string({ error: 'consent_text must be a string or null.' })
    .refine((text) => [...text].length <= 1000, 'consent_text must be at most 1000 characters.')
    .refine((text) => !/[<>]/.test(text), 'consent_text must not contain the characters < or >.')
    .nullable()
    .default(null),
});

export const AVATAR_TYPES = ['digital_twin', 'photo', 'prompt'] as const;

export const createAvatarRequestSchema = z.object({
  type: z.enum(AVATAR_TYPES, { error: `type must be one of ${AVATAR_TYPES.join(', ')}.` }),
  name: z.string({ error: 'name must be a string.' }).min(1, 'name must not be empty.').max(255).optional(),
});

export const listQuerySchema = z.object({
  limit: z
    .string()
    .regex(/^\d{1,3}$/, 'limit must be an integer between 1 and 50.')
    .transform(Number)
    .pipe(z.number().min(1, 'limit must be at least 1.').max(50, 'limit must be at most 50.'))
    .optional(),
  token: z.string().optional(),
  // Accepted and ignored: every sandbox group belongs to the caller, and HeyGen documents no values.
  ownership: z.string().optional(),
});

const avatarErrorSchema = z.strictObject({ code: z.string(), message: z.string() });

/** The admin API's POST /_sandbox/groups body (the createGroup input). */
export const createGroupInputSchema = z.strictObject({
  id: z.string().min(1).max(255).optional(),
  name: z.string().optional(),
  consentRequired: z.boolean().optional(),
  consentStatus: z.string().nullable().optional(),
  status: z.enum(AVATAR_STATUSES).nullable().optional(),
  error: avatarErrorSchema.nullable().optional(),
});

/** A partial AvatarGroupItem, for updateGroup and PATCH /_sandbox/groups/{id}. */
export const groupPatchSchema = z.strictObject({
  id: z.string().optional(),
  name: z.string().optional(),
  created_at: z.number().int().optional(),
  looks_count: z.number().int().min(0).optional(),
  preview_image_url: z.string().nullable().optional(),
  preview_video_url: z.string().nullable().optional(),
  gender: z.string().nullable().optional(),
  default_voice_id: z.string().nullable().optional(),
  consent_status: z.string().nullable().optional(),
  status: z.enum(AVATAR_STATUSES).nullable().optional(),
  error: avatarErrorSchema.nullable().optional(),
});

export const advanceClockSchema = z.strictObject({ ms: z.number().min(0).max(Number.MAX_SAFE_INTEGER) });
