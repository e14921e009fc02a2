/**
 * Every rule for input that comes from outside, written once: the public contract, the HeyGen
 * client, the mailer, the gateway and the sandbox all take their checks from here. Pure (no I/O,
 * no Node built-ins), so workflow code can use it.
 */
import { z } from 'zod';
import {
  EMAIL_ADDRESS,
  EMAIL_ADDRESS_RULE,
  MAX_AUDIT_REASON_LENGTH,
  MAX_EMAIL_ADDRESS_LENGTH,
  MAX_PERSON_NAME_LENGTH,
  MULTI_LINE_TEXT,
  ONE_LINE_TEXT,
  isValidEmailAddress,
} from './text.js';

export { MAX_PERSON_NAME_LENGTH, isValidEmailAddress };

/** HeyGen group IDs go into a request path: a safe character set means they can never change it. */
export const GROUP_ID_PATTERN = /^[A-Za-z0-9_-]{1,128}$/;
export const groupIdSchema = z
  .string()
  .regex(GROUP_ID_PATTERN, 'must be 1-128 characters of A-Z, a-z, 0-9, "_" or "-"');

/**
 * The one email rule, from the starter to the mailer (./text.ts): what browsers accept for
 * `<input type="email">`, within RFC 5321's lengths.
 */
export const emailAddressSchema = z
  .string()
  .max(MAX_EMAIL_ADDRESS_LENGTH, EMAIL_ADDRESS_RULE)
  .regex(EMAIL_ADDRESS, EMAIL_ADDRESS_RULE);

/** The recipient's name: shown in the email's greeting and To header. */
export const personNameSchema = z
  .string()
  .trim()
  .min(1, 'must not be empty')
  .max(MAX_PERSON_NAME_LENGTH, `must be at most ${MAX_PERSON_NAME_LENGTH} characters`)
  .regex(ONE_LINE_TEXT, 'must not contain control characters, line breaks or bidi controls');

/** HeyGen's own rule for consent_text: at most 1000 characters, no "<" or ">". */
export const MAX_CONSENT_TEXT_LENGTH = 1000;
export const consentTextSchema = z
  .string()
  .min(1, 'must not be empty')
  .max(MAX_CONSENT_TEXT_LENGTH, `must be at most ${MAX_CONSENT_TEXT_LENGTH} characters (HeyGen limit)`)
  .regex(/^[^<>]*$/, 'must not contain "<" or ">" (HeyGen rejects them)')
  // Paragraphs (LF) are fine; CR, NUL, ESC, other controls and bidi overrides would reach HeyGen's page.
  .regex(MULTI_LINE_TEXT, 'must not contain control characters (other than line feeds) or bidi controls');

/** Host names that mean "this machine": plain http is allowed only for them. */
export const LOCAL_HOSTNAMES: ReadonlySet<string> = new Set(['localhost', '127.0.0.1', '[::1]', '::1']);
export function isLocalHostname(hostname: string): boolean {
  return LOCAL_HOSTNAMES.has(hostname);
}

/** An https URL; plain http only for this machine (local development). */
export function isHttpsOrLocalUrl(text: string): boolean {
  if (!URL.canParse(text)) return false;
  const url = new URL(text);
  return url.protocol === 'https:' || (url.protocol === 'http:' && isLocalHostname(url.hostname));
}

/** Where a person's browser goes after the consent page. */
export const rerouteUrlSchema = z
  .string()
  .max(2048, 'must be at most 2048 characters')
  .refine(isHttpsOrLocalUrl, 'must be an https URL (plain http only for localhost)');

/** A Temporal workflow ID that the project signals (a caller's notify target). */
export const workflowIdSchema = z
  .string()
  .min(1, 'must not be empty')
  .max(1000, 'must be at most 1000 characters');

/** A signal name a caller asks to be notified with. */
export const signalNameSchema = z
  .string()
  .regex(/^[A-Za-z0-9_.:-]{1,200}$/, 'must be 1-200 characters of A-Z, a-z, 0-9, "_", ".", ":" or "-"');

/** Free text for an audit trail (a resend or cancel reason): one line, bounded. */
export const auditReasonSchema = z
  .string()
  .max(MAX_AUDIT_REASON_LENGTH, `must be at most ${MAX_AUDIT_REASON_LENGTH} characters`)
  .regex(ONE_LINE_TEXT, 'must not contain control characters, line breaks or bidi controls');
