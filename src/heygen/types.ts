/**
 * HeyGen API types. The consent call's types come from the generated OpenAPI file (the contract); the
 * envelopes for the other calls are written by hand from API-NOTES.md, in terms of the generated types.
 *
 * Note: openapi-typescript marks properties that have a spec `default` (e.g. `preview_image_url`,
 * `consent_status`, `status`, `error`) as required. The zod schemas fill those defaults (null) when
 * HeyGen omits them, so parsed values always have them.
 */
import type { components } from './generated/openapi.js';

type Schemas = components['schemas'];

export type AvatarGroupItem = Schemas['AvatarGroupItem'];
export type AvatarStatus = Schemas['AvatarStatus'];
export type AvatarError = Schemas['AvatarError'];
export type CreateAvatarConsentRequest = Schemas['CreateAvatarConsentRequest'];
export type CreateAvatarConsentResponse = Schemas['CreateAvatarConsentResponse'];
export type StandardApiError = Schemas['StandardAPIError'];

// Type aliases (not interfaces) so that they keep implicit index signatures for the drift checks.

/** `POST /v3/avatars/{group_id}/consent` 200 body, with `data` required (the spec marks it optional). */
export type CreateAvatarConsentEnvelope = { data: CreateAvatarConsentResponse };

/** `GET /v3/avatars/{group_id}` 200 body (API-NOTES.md). */
export type GetAvatarGroupResponse = { data: AvatarGroupItem };

/** `GET /v3/avatars` 200 body (API-NOTES.md list envelope). */
export type ListAvatarGroupsResponse = {
  data: AvatarGroupItem[];
  has_more: boolean;
  next_token: string | null;
};

/** Any HeyGen failure body. */
export type StandardApiErrorEnvelope = { error: StandardApiError };

/** Every `status` value the spec documents. */
export const AVATAR_STATUSES = [
  'processing',
  'pending_consent',
  'failed',
  'completed',
] as const satisfies readonly AvatarStatus[];

/**
 * `consent_status` values documented or observed (API-NOTES.md). The field is an open string: any other
 * value is possible and must be treated as not terminal. `null` means consent is not required.
 */
export const KNOWN_CONSENT_STATUSES = ['pending', 'approved', 'skipped'] as const;
