// Renders the consent email. Pure and deterministic: the same input gives byte-identical output
// (no clock, no randomness, no locale or time-zone dependent formatting), so a retried send is the
// same message and tests can compare exact strings.
import {
  MAX_AVATAR_NAME_LENGTH,
  MAX_RECIPIENT_NAME_LENGTH,
  mailSafeName,
  parseConsentEmail,
} from './address.js';
import { escapeHtml } from '../rules/html.js';

export interface ConsentEmail {
  to: { email: string; name?: string | undefined };
  /** HeyGen group name. */
  avatarName: string;
  groupId: string;
  consentUrl: string;
  /** ISO-8601 with Z or an offset; shown in UTC. */
  expiresAt: string;
  /** Used verbatim as the Message-ID header, e.g. `<avatar-consent.<hash>@avatar-consent.local>`. */
  messageId: string;
  /** 1 for the first link, 2.. for refreshed links. */
  generation: number;
  /** A resend requested by an operator. */
  reminder?: boolean | undefined;
}

export interface RenderedConsentEmail {
  subject: string;
  text: string;
  html: string;
}

export { escapeHtml };

const WEEKDAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'] as const;
const MONTHS = [
  'January',
  'February',
  'March',
  'April',
  'May',
  'June',
  'July',
  'August',
  'September',
  'October',
  'November',
  'December',
] as const;

/**
 * Formats an ISO-8601 instant as e.g. "Monday, 1 December 2025, 14:05 UTC". Built by hand from the
 * UTC fields instead of Intl so the output cannot change with the ICU data or the process locale.
 * Seconds are dropped (rounded down), so the shown time is never later than the real expiry.
 */
export function formatExpiryUtc(iso: string): string {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) throw new RangeError('expiresAt is not a valid date-time');
  const pad = (n: number): string => String(n).padStart(2, '0');
  const weekday = WEEKDAYS[date.getUTCDay()] ?? '';
  const month = MONTHS[date.getUTCMonth()] ?? '';
  return `${weekday}, ${date.getUTCDate()} ${month} ${date.getUTCFullYear()}, ${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())} UTC`;
}

/** The subject line: "Please approve the use of your likeness for avatar “<name>”", with a prefix for resends. */
export function consentSubject(avatarName: string, generation: number, reminder: boolean): string {
  const base = `Please approve the use of your likeness for avatar “${avatarName}”`;
  if (reminder) return `Reminder: ${base}`;
  if (generation > 1) return `New link: ${base}`;
  return base;
}

/**
 * Renders subject, plain text and HTML for one consent email.
 * Throws a TypeError (listing the invalid fields, never their values) when the input is invalid;
 * the mailer validates first and turns that into a MailError.
 */
export function renderConsentEmail(e: ConsentEmail): RenderedConsentEmail {
  const parsed = parseConsentEmail(e);
  if (!parsed.ok) throw new TypeError(`Invalid consent email: ${parsed.problems.join('; ')}`);
  const input = parsed.value;

  const personName = mailSafeName(input.to.name ?? '', MAX_RECIPIENT_NAME_LENGTH);
  const avatarName = mailSafeName(input.avatarName, MAX_AVATAR_NAME_LENGTH);
  const reminder = input.reminder === true;
  const isNewLink = input.generation > 1;
  const expiry = formatExpiryUtc(input.expiresAt);
  const url = input.consentUrl;
  const subject = consentSubject(avatarName, input.generation, reminder);

  // The paragraphs, as plain strings; the text part uses them as they are, the HTML part escapes them.
  const greeting = personName ? `Hello ${personName},` : 'Hello,';
  const lead: string[] = [];
  if (reminder)
    lead.push(`This is a reminder: your approval for the avatar “${avatarName}” is still needed.`);
  if (isNewLink) lead.push('The earlier approval link has expired or was replaced, so here is a new link.');
  const what =
    `A video of you was recorded to create a digital avatar named “${avatarName}” with HeyGen, ` +
    'an AI video service. Before the avatar can be used, HeyGen needs your consent to use your ' +
    'likeness (your appearance and voice) for it.';
  const action = 'To review the request and approve it, open this link:';
  const expires = `The link expires on ${expiry}.`;
  const onlyIf =
    'Only approve if you agreed to be filmed for this avatar. Please do not forward this email: the link is for you.';
  const unexpected = 'If you did not expect this email, you can ignore it and the link will expire.';
  const reference = `Reference: avatar group ${input.groupId}`;

  const text = [
    greeting,
    '',
    ...(lead.length > 0 ? [lead.join(' '), ''] : []),
    what,
    '',
    action,
    url,
    '',
    expires,
    '',
    onlyIf,
    unexpected,
    '',
    reference,
    '',
  ].join('\n');

  const p = (s: string): string => `<p style="margin:0 0 16px 0">${escapeHtml(s)}</p>`;
  const href = escapeHtml(url);
  const html = [
    '<!DOCTYPE html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${escapeHtml(subject)}</title>`,
    '</head>',
    '<body style="margin:0;padding:24px;font-family:Arial,Helvetica,sans-serif;font-size:16px;line-height:1.5;color:#1f2328">',
    '<div style="max-width:600px;margin:0 auto">',
    p(greeting),
    ...(lead.length > 0 ? [p(lead.join(' '))] : []),
    p(what),
    p(action),
    `<p style="margin:0 0 16px 0"><a href="${href}" style="display:inline-block;padding:12px 20px;background:#1f6feb;color:#ffffff;text-decoration:none;border-radius:6px">Review and approve</a></p>`,
    `<p style="margin:0 0 16px 0;font-size:14px;word-break:break-all">If the button does not work, copy this link into your browser:<br><a href="${href}">${href}</a></p>`,
    `<p style="margin:0 0 16px 0"><strong>${escapeHtml(expires)}</strong></p>`,
    p(onlyIf),
    p(unexpected),
    `<p style="margin:0;font-size:12px;color:#57606a">${escapeHtml(reference)}</p>`,
    '</div>',
    '</body>',
    '</html>',
    '',
  ].join('\n');

  return { subject, text, html };
}
