// Validation and cleaning for everything in a consent email that came from outside the worker.
// Pure functions, no I/O: the renderer and the mailer both rely on them.
import { z } from 'zod';
import {
  MAX_PERSON_NAME_LENGTH,
  emailAddressSchema,
  groupIdSchema,
  isValidEmailAddress,
} from '../rules/input.js';
import { formatIssues } from '../rules/issues.js';
import type { ConsentEmail } from './template.js';

export { isValidEmailAddress };

/** Longest display name kept for the recipient; longer names are cut (by code point). */
export const MAX_RECIPIENT_NAME_LENGTH = 120;
/** Longest avatar (group) name kept in the subject and body. */
export const MAX_AVATAR_NAME_LENGTH = 200;

// Characters that must never reach a header or a line of the body from user input:
// C0 controls (CR, LF, TAB included), DEL, C1 controls, and the Unicode line/paragraph separators.
const BREAKING_CHARS = /[\p{Cc}\u2028\u2029]/gu;
// Invisible characters that reorder or hide text (bidi embeddings/overrides/isolates, BOM): a name
// like "Alice\u202Eevil" could otherwise display differently from what it is. ZWJ/ZWNJ stay,
// some scripts and emoji need them.
const INVISIBLE_CHARS = /[\u202a-\u202e\u2066-\u2069\ufeff]/gu;

/**
 * Makes a display name safe for a mail header and for one line of text: line breaks, tabs and
 * other control characters become spaces, bidi controls are dropped, runs of whitespace collapse
 * to one space, the ends are trimmed and the result is cut to `maxLength` code points.
 * Decision: names are cleaned, not rejected, because the person's name is cosmetic and a stray
 * newline from a form must not stop a consent. Header injection is impossible regardless, since the
 * mailer hands the name to nodemailer as `{ name, address }` and nodemailer encodes it; this is the
 * second line of defence and keeps the text part tidy. May return '' (then no name is used).
 */
export function mailSafeName(name: string, maxLength: number = MAX_RECIPIENT_NAME_LENGTH): string {
  const cleaned = name.normalize('NFC').replace(INVISIBLE_CHARS, '').replace(BREAKING_CHARS, ' ');
  const collapsed = cleaned.replace(/\s+/gu, ' ').trim();
  const codePoints = Array.from(collapsed);
  return codePoints.length <= maxLength ? collapsed : codePoints.slice(0, maxLength).join('').trimEnd();
}

// RFC 5322 msg-id: "<" dot-atom-text "@" (dot-atom-text | no-fold-literal) ">". The angle brackets
// are required so that the header value equals the caller's string exactly (nodemailer would
// otherwise add them and a retry comparison would fail).
const ATEXT = "A-Za-z0-9!#$%&'*+/=?^_`{|}~-";
const MESSAGE_ID_PATTERN = new RegExp(
  `^<[${ATEXT}]+(?:\\.[${ATEXT}]+)*@(?:[${ATEXT}]+(?:\\.[${ATEXT}]+)*|\\[[\\x21-\\x5a\\x5e-\\x7e]*\\])>$`,
);
const MAX_MESSAGE_ID_LENGTH = 250;

/** True for a Message-ID such as `<avatar-consent.abc123@avatar-consent.local>`. */
export function isValidMessageId(messageId: string): boolean {
  return messageId.length <= MAX_MESSAGE_ID_LENGTH && MESSAGE_ID_PATTERN.test(messageId);
}

/** True when `url` is an absolute http(s) URL without whitespace or control characters. */
export function isSafeLinkUrl(url: string): boolean {
  // Whitespace or controls would break the text part (and hint at tampering); URL() would
  // silently strip some of them, so check the raw string first.
  if (url.length === 0 || url.length > 4096 || /[\s\p{Cc}]/u.test(url)) return false;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return false;
  }
  // Never javascript:, data: or the like in an href. http is allowed for the local sandbox.
  return (parsed.protocol === 'https:' || parsed.protocol === 'http:') && parsed.hostname.length > 0;
}

/**
 * The schema for a consent email's input. Everything here may come from a workflow input or from
 * HeyGen, so it is parsed before anything is rendered or sent.
 */
export const consentEmailSchema = z.object({
  to: z.object({
    email: emailAddressSchema,
    // The contract's length; control characters are cleaned here (mailSafeName), not refused.
    name: z.string().max(MAX_PERSON_NAME_LENGTH).optional(),
  }),
  avatarName: z
    .string()
    .max(1000)
    .refine((name) => mailSafeName(name, MAX_AVATAR_NAME_LENGTH).length > 0, {
      message: 'must contain visible characters',
    }),
  groupId: groupIdSchema,
  consentUrl: z.string().refine(isSafeLinkUrl, { message: 'must be an absolute http(s) URL' }),
  expiresAt: z.iso.datetime({ offset: true, message: 'must be an ISO-8601 date-time with Z or an offset' }),
  messageId: z.string().refine(isValidMessageId, { message: 'must look like <id@domain>' }),
  generation: z.number().int().min(1).max(10_000),
  reminder: z.boolean().optional(),
}) satisfies z.ZodType<ConsentEmail>;

export type ConsentEmailParseResult = { ok: true; value: ConsentEmail } | { ok: false; problems: string[] };

/**
 * Parses a consent email's input. Problems name the field and the rule, never the value (values
 * are personal data and have no place in error messages or logs).
 */
export function parseConsentEmail(input: unknown): ConsentEmailParseResult {
  const result = consentEmailSchema.safeParse(input);
  if (result.success) return { ok: true, value: result.data };
  return { ok: false, problems: result.error.issues.map((issue) => formatIssues([issue])) };
}
