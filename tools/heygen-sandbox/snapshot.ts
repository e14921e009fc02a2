import { z } from 'zod';

import type { SandboxCore } from './core.js';
import { AVATAR_STATUSES } from './types.js';

/**
 * The sandbox's state as data, so a sandbox can stop and a new one carry on (`npm run dev` keeps it
 * in its state folder): the avatar groups, the consent links (a link in an email sent before a
 * restart still opens) and the remembered idempotent responses (a retried POST consent gets the same
 * link, as from HeyGen for 24 h). Not kept: the ledger, pending faults, the rate-limit windows and
 * advanceClock's offset, which belong to one run of the sandbox.
 */
const avatarErrorSchema = z.object({ code: z.string(), message: z.string() });

const avatarGroupItemSchema = z.object({
  id: z.string().min(1),
  name: z.string(),
  created_at: z.number().int(),
  looks_count: z.number().int().min(0),
  preview_image_url: z.string().nullable(),
  preview_video_url: z.string().nullable(),
  gender: z.string().nullable(),
  default_voice_id: z.string().nullable(),
  consent_status: z.string().nullable(),
  status: z.enum(AVATAR_STATUSES).nullable(),
  error: avatarErrorSchema.nullable(),
});

const consentRecordSchema = z.object({
  groupId: z.string().min(1),
  idempotencyKey: z.string().nullable(),
  url: z.string(),
  token: z.string().min(1),
  rerouteUrl: z.string().nullable(),
  consentText: z.string().nullable(),
  createdAt: z.number(),
  decision: z.enum(['pending', 'approved', 'declined']),
  decidedAt: z.number().nullable(),
});

export const sandboxSnapshotSchema = z
  .object({
    version: z.literal(1),
    groups: z.array(
      z.object({
        item: avatarGroupItemSchema,
        seq: z.number().int().positive(),
        trainingCompletesAt: z.number().nullable(),
      }),
    ),
    consents: z.array(consentRecordSchema),
    idempotency: z.array(
      z.object({
        scope: z.string(),
        createdAt: z.number(),
        response: z.object({ status: z.number().int(), body: z.unknown() }),
      }),
    ),
  })
  .superRefine((snapshot, ctx) => {
    const unique = (values: string[], what: string) => {
      if (new Set(values).size !== values.length)
        ctx.addIssue({ code: 'custom', message: `${what} appears twice` });
    };
    unique(
      snapshot.groups.map((group) => group.item.id),
      'an avatar group id',
    );
    unique(
      snapshot.consents.map((record) => record.token),
      'a consent token',
    );
  });

export type SandboxSnapshot = z.infer<typeof sandboxSnapshotSchema>;

export function snapshotOf(core: SandboxCore): SandboxSnapshot {
  return {
    version: 1,
    groups: core.groups.export(),
    consents: core.consents.list(),
    idempotency: core.idempotency.export(),
  };
}

/** Loads a snapshot into a sandbox that holds nothing yet; returns what it restored. */
export function restoreInto(core: SandboxCore, raw: unknown): { groups: number; consents: number } {
  const snapshot = sandboxSnapshotSchema.parse(raw);
  const held = [core.groups.export(), core.consents.list(), core.idempotency.export()];
  if (held.some((list) => list.length > 0)) {
    throw new Error('restore: the sandbox already holds groups, consents or idempotency keys');
  }
  // Consents may outlive their group (DELETE /_sandbox/groups/{id}); their page says so, as before.
  core.groups.import(snapshot.groups);
  core.consents.import(snapshot.consents);
  core.idempotency.import(snapshot.idempotency);
  return { groups: snapshot.groups.length, consents: snapshot.consents.length };
}
