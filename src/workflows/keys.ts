/**
 * Deterministic names for side effects, computed in workflow code.
 *
 * `firstExecutionRunId` is stable across activity retries, worker crashes, server restarts and
 * continue-as-new, and new for a new execution with the same workflow ID. Keyed by it and the link
 * generation, HeyGen creates exactly one consent per generation, and a retried email is the same message.
 */

import { shortDigest } from '../rules/digest.js';

/** HeyGen's Idempotency-Key pattern (from the OpenAPI spec). */
export const IDEMPOTENCY_KEY_PATTERN = /^[A-Za-z0-9_\-:.]{1,255}$/;

function safeToken(runId: string): string {
  // Run IDs are UUIDs; anything else (a custom server) is digested so the key always fits the pattern.
  return /^[A-Za-z0-9-]{1,64}$/.test(runId) ? runId : `h${shortDigest(runId)}`;
}

export function consentIdempotencyKey(firstExecutionRunId: string, generation: number): string {
  return `avatar-consent:${safeToken(firstExecutionRunId)}:g${generation}`;
}

/**
 * Local part of the email's Message-ID: one per link generation, and one per operator resend
 * (`resend` > 0), so a retried send is recognisably the same message.
 */
export function emailMessageKey(firstExecutionRunId: string, generation: number, resend = 0): string {
  const base = `avatar-consent.${safeToken(firstExecutionRunId)}.g${generation}`;
  return resend > 0 ? `${base}.r${resend}` : base;
}
