/**
 * Every rule for input that comes from outside, written once: the public contract, the HeyGen
 * client, the mailer, the gateway and the sandbox all take their checks from here. Pure (no I/O,
 * no Node built-ins), so workflow code can use it.
 */
import { z } from 'zod';

/** HeyGen group IDs go into a request path: a safe character set means they can never change it. */
export const GROUP_ID_PATTERN = /^[A-Za-z0-9_-]{1,128}$/;
export const groupIdSchema = z
  .string()
  .regex(GROUP_ID_PATTERN, 'must be 1-128 characters of A-Z, a-z, 0-9, "_" or "-"');

// C0 controls (CR, LF, TAB, NUL, ESC...), DEL, C1 controls and the Unicode line/paragraph separators.
// eslint-disable-next-line no-control-regex
export const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

/** RFC 5321 limits: 254 for the whole path, 64 for the local part. */
export const MAX_EMAIL_ADDRESS_LENGTH = 254;
export const MAX_EMAIL_LOCAL_PART_LENGTH = 64;

/**
 * The one email rule, from the starter to the mailer: what browsers accept for
 * `<input type="email">` (no spaces, quotes, angle brackets, commas or control characters, so an
 * address can never carry a second address or a header; domain labels of 1-63 characters that do
 * not start or end with "-"), within RFC 5321's lengths. Quoted local parts and non-ASCII
 * (SMTPUTF8) addresses are refused on purpose.
 */
export const emailAddressSchema = z
  .string()
  .max(MAX_EMAIL_ADDRESS_LENGTH, `must be at most ${MAX_EMAIL_ADDRESS_LENGTH} characters`)
  .pipe(z.email({ pattern: z.regexes.html5Email, message: 'must be a plain email address (name@domain)' }))
  .refine((address) => (address.split('@')[0] ?? '').length <= MAX_EMAIL_LOCAL_PART_LENGTH, {
    message: `the part before "@" must be at most ${MAX_EMAIL_LOCAL_PART_LENGTH} characters`,
  });

/** True for an address the project is willing to send to. */
export function isValidEmailAddress(address: string): boolean {
  return emailAddressSchema.safeParse(address).success;
}

export const MAX_PERSON_NAME_LENGTH = 200;
/** The recipient's name: shown in the email's greeting and To header. */
export const personNameSchema = z
  .string()
  .trim()
  .min(1, 'must not be empty')
  .max(MAX_PERSON_NAME_LENGTH, `must be at most ${MAX_PERSON_NAME_LENGTH} characters`)
  .refine((name) => !CONTROL_CHARACTERS.test(name), 'must not contain control characters or line breaks');

/** HeyGen's own rule for consent_text: at most 1000 characters, no "<" or ">". */
export const MAX_CONSENT_TEXT_LENGTH = 1000;
export const consentTextSchema = z
  .string()
  .min(1, 'must not be empty')
  .max(MAX_CONSENT_TEXT_LENGTH, `must be at most ${MAX_CONSENT_TEXT_LENGTH} characters (HeyGen limit)`)
  .refine((text) => !/[<>]/.test(text), 'must not contain "<" or ">" (HeyGen rejects them)');

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
  .max(500, 'must be at most 500 characters')
  .refine((text) => !CONTROL_CHARACTERS.test(text), 'must not contain control characters');
