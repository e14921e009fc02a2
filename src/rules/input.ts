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

export const MAX_REROUTE_URL_LENGTH = 2048;
/** An "@" before the host: `scheme://…@host` (a backslash counts as "/" in http(s) URLs: it ends the authority too). */
const USERINFO = /^[A-Za-z][A-Za-z0-9+.-]*:[/\\]{2}[^/\\?#]*@/;

/**
 * Where a person's browser goes after the consent page. The URL parser silently drops tabs, line
 * breaks and leading spaces, so a check on the text and the destination used could differ: such
 * characters are refused outright. So are credentials (`user:pass@`): they would show in the
 * person's address bar and HeyGen's logs, and `https://trusted.example@evil.example` reads as trusted.
 */
export const rerouteUrlSchema = z
  .string()
  .max(MAX_REROUTE_URL_LENGTH, `must be at most ${MAX_REROUTE_URL_LENGTH} characters`)
  // eslint-disable-next-line no-control-regex
  .regex(/^[^\u0000-\u0020\u007f-\u009f\u2028\u2029]*$/, 'must not contain spaces or control characters')
  .refine(isHttpsOrLocalUrl, 'must be an https URL (plain http only for localhost)')
  .refine(
    (text) =>
      // Even an empty "@" in the authority is refused: there is no honest use for it.
      !USERINFO.test(text) &&
      (!URL.canParse(text) || (new URL(text).username === '' && new URL(text).password === '')),
    'must not contain a user name or password ("user:pass@")',
  );

/**
 * The same rule, giving the URL as the WHATWG parser normalises it (`URL.href`), never the caller's
 * text: what was checked is what is used (the contract's `rerouteUrl`).
 */
export const normalisedRerouteUrlSchema = rerouteUrlSchema
  .transform((text, ctx) => {
    const href = new URL(text).href;
    if (href.length > MAX_REROUTE_URL_LENGTH) {
      ctx.addIssue({
        code: 'custom',
        message: `must be at most ${MAX_REROUTE_URL_LENGTH} characters once normalised (percent-encoded)`,
      });
      return z.NEVER;
    }
    return href;
  })
  .meta({ format: 'uri' });

/**
 * The characters of a notify target's workflow ID. The ID is signalled, logged, and written by the
 * starter into the workflow's Markdown details for the Web UI: without spaces, line breaks, backticks,
 * brackets or angle brackets it can neither break out of its code span nor forge a link or a log
 * line. The set still covers UUIDs, tenant prefixes ("acme:", "orders/"), e-mail-like and base64 IDs.
 */
export const NOTIFY_WORKFLOW_ID_PATTERN = /^[A-Za-z0-9._:/@=+-]{1,255}$/;
export const NOTIFY_WORKFLOW_ID_RULE = 'must be 1-255 characters of A-Z, a-z, 0-9 and . _ : / @ = + -';

/** A Temporal workflow ID that the project signals (a caller's notify target). */
export const workflowIdSchema = z
  .string()
  .min(1, 'must not be empty')
  .regex(NOTIFY_WORKFLOW_ID_PATTERN, NOTIFY_WORKFLOW_ID_RULE);

/** A signal name a caller asks to be notified with. */
export const signalNameSchema = z
  .string()
  .regex(/^[A-Za-z0-9_.:-]{1,200}$/, 'must be 1-200 characters of A-Z, a-z, 0-9, "_", ".", ":" or "-"');

/** Free text for an audit trail (a resend or cancel reason): one line, bounded. */
export const auditReasonSchema = z
  .string()
  .max(MAX_AUDIT_REASON_LENGTH, `must be at most ${MAX_AUDIT_REASON_LENGTH} characters`)
  .regex(ONE_LINE_TEXT, 'must not contain control characters, line breaks or bidi controls');
