/**
 * zod schemas mirroring the HeyGen spec, used to validate every response body.
 *
 * - Objects are loose (unknown fields pass through): HeyGen adds fields without notice.
 * - Fields the spec gives `default: null` accept absence and parse to null, which makes the parsed type
 *   equal to the generated one (openapi-typescript marks them required).
 * - `consent_status` is an open string (API-NOTES.md); `status` is the spec's enum or null.
 * - The type checks at the bottom make `tsc` fail when these schemas and the generated types drift apart.
 */
import { z } from 'zod';

import type {
  AvatarError,
  AvatarGroupItem,
  AvatarStatus,
  CreateAvatarConsentEnvelope,
  CreateAvatarConsentRequest,
  CreateAvatarConsentResponse,
  GetAvatarGroupResponse,
  ListAvatarGroupsResponse,
  StandardApiError,
  StandardApiErrorEnvelope,
} from './types.js';
import { AVATAR_STATUSES } from './types.js';

/** The spec's Idempotency-Key pattern: 1–255 characters of `[A-Za-z0-9_:.-]`. */
export const IDEMPOTENCY_KEY_PATTERN = /^[A-Za-z0-9_\-:.]{1,255}$/;
export const idempotencyKeySchema = z.string().min(1).max(255).regex(IDEMPOTENCY_KEY_PATTERN);

const nullableStringDefaultNull = () => z.string().nullable().default(null);

export const avatarStatusSchema = z.enum(AVATAR_STATUSES);

export const avatarErrorSchema = z.looseObject({
  code: z.string(),
  message: z.string(),
});

export const avatarGroupItemSchema = z.looseObject({
  id: z.string(),
  name: z.string(),
  preview_image_url: nullableStringDefaultNull(),
  preview_video_url: nullableStringDefaultNull(),
  gender: nullableStringDefaultNull(),
  created_at: z.number().int(),
  looks_count: z.number().int(),
  default_voice_id: nullableStringDefaultNull(),
  consent_status: nullableStringDefaultNull(),
  status: avatarStatusSchema.nullable().default(null),
  error: avatarErrorSchema.nullable().default(null),
});

/**
 * `CreateAvatarConsentResponse`. The spec says `url: string`; we also require a non-empty http(s) URL,
 * because it is emailed to a person as a link (the enterprise-only `consent_video` variant, which returns
 * no url, is never requested by this client).
 */
export const createConsentDataSchema = z.looseObject({
  avatar_group: avatarGroupItemSchema,
  url: z.url({ protocol: /^https?$/ }),
});

/** `POST /v3/avatars/{group_id}/consent` 200 body: `{data: {avatar_group, url}}`. */
export const createConsentResponseSchema = z.looseObject({ data: createConsentDataSchema });

export const CONSENT_URL_HTTPS_RULE = 'must be an https URL (plain http only from a local HeyGen sandbox)';

/**
 * The same body with an https consent link: what the client demands unless its base URL is a local
 * sandbox. The link is emailed to a person who opens it and agrees there; over plain http anyone on
 * the way could read or change that page.
 */
export const httpsCreateConsentResponseSchema = z.looseObject({
  data: createConsentDataSchema.extend({
    url: z.url({ protocol: /^https$/, error: CONSENT_URL_HTTPS_RULE }),
  }),
});

/** `GET /v3/avatars/{group_id}` 200 body: `{data: AvatarGroupItem}`. */
export const getAvatarGroupResponseSchema = z.looseObject({ data: avatarGroupItemSchema });

/** `GET /v3/avatars` 200 body. */
export const listAvatarGroupsResponseSchema = z.looseObject({
  data: z.array(avatarGroupItemSchema),
  has_more: z.boolean(),
  next_token: nullableStringDefaultNull(),
});

export const standardApiErrorSchema = z.looseObject({
  code: z.string(),
  message: z.string(),
  param: z.string().nullable().optional(),
  doc_url: z.string().nullable().optional(),
});

/** Failure body: `{error: {code, message, param?, doc_url?}}`. */
export const standardApiErrorEnvelopeSchema = z.looseObject({ error: standardApiErrorSchema });

/** `CreateAvatarConsentRequest` as we send it (checked before sending; fields are optional). */
export const createConsentRequestSchema = z.strictObject({
  reroute_url: z.string().nullable().optional(),
  // Spec: at most 1000 characters; `<` and `>` are rejected by HeyGen.
  consent_text: z
    .string()
    .max(1000)
    .regex(/^[^<>]*$/, 'must not contain < or >')
    .nullable()
    .optional(),
});

// ---------------------------------------------------------------------------------------------
// Drift checks: fail `tsc` when a schema no longer matches the generated (spec) type.
// zod -> spec: everything we return satisfies the spec's type.
// spec -> zod: the schema demands nothing the spec does not (and covers every enum member).

type IsAssignable<From, To> = [From] extends [To] ? true : false;
type Assert<T extends true> = T;
type Infer<S extends z.ZodType> = z.infer<S>;

export type SchemaDriftChecks = [
  Assert<IsAssignable<Infer<typeof avatarStatusSchema>, AvatarStatus>>,
  Assert<IsAssignable<AvatarStatus, Infer<typeof avatarStatusSchema>>>,
  Assert<IsAssignable<Infer<typeof avatarErrorSchema>, AvatarError>>,
  Assert<IsAssignable<AvatarError, Infer<typeof avatarErrorSchema>>>,
  Assert<IsAssignable<Infer<typeof avatarGroupItemSchema>, AvatarGroupItem>>,
  Assert<IsAssignable<AvatarGroupItem, Infer<typeof avatarGroupItemSchema>>>,
  Assert<IsAssignable<Infer<typeof createConsentDataSchema>, CreateAvatarConsentResponse>>,
  Assert<IsAssignable<CreateAvatarConsentResponse, Infer<typeof createConsentDataSchema>>>,
  Assert<IsAssignable<Infer<typeof createConsentResponseSchema>, CreateAvatarConsentEnvelope>>,
  Assert<IsAssignable<CreateAvatarConsentEnvelope, Infer<typeof createConsentResponseSchema>>>,
  Assert<IsAssignable<Infer<typeof httpsCreateConsentResponseSchema>, CreateAvatarConsentEnvelope>>,
  Assert<IsAssignable<Infer<typeof getAvatarGroupResponseSchema>, GetAvatarGroupResponse>>,
  Assert<IsAssignable<GetAvatarGroupResponse, Infer<typeof getAvatarGroupResponseSchema>>>,
  Assert<IsAssignable<Infer<typeof listAvatarGroupsResponseSchema>, ListAvatarGroupsResponse>>,
  Assert<IsAssignable<ListAvatarGroupsResponse, Infer<typeof listAvatarGroupsResponseSchema>>>,
  Assert<IsAssignable<Infer<typeof standardApiErrorSchema>, StandardApiError>>,
  Assert<IsAssignable<StandardApiError, Infer<typeof standardApiErrorSchema>>>,
  Assert<IsAssignable<Infer<typeof standardApiErrorEnvelopeSchema>, StandardApiErrorEnvelope>>,
  Assert<IsAssignable<StandardApiErrorEnvelope, Infer<typeof standardApiErrorEnvelopeSchema>>>,
  // What we send is the spec's request with both fields optional (HeyGen defaults them to null).
  Assert<IsAssignable<Infer<typeof createConsentRequestSchema>, Partial<CreateAvatarConsentRequest>>>,
  Assert<IsAssignable<Partial<CreateAvatarConsentRequest>, Infer<typeof createConsentRequestSchema>>>,
];
