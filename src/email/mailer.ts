// SMTP delivery of the consent email, and the classification of SMTP failures into
// 'transient' (retry) and 'permanent' (the address or message is refused for good).
// No Temporal imports: the activity maps MailError.kind to retryable / non-retryable failures.
import { createTransport } from 'nodemailer';
import { SMTP_CONNECTION_TIMEOUT_MS, SMTP_SOCKET_TIMEOUT_MS } from '../config/timeouts.js';
import addressparser from 'nodemailer/lib/addressparser';
import { isValidEmailAddress, mailSafeName, parseConsentEmail } from './address.js';
import { renderConsentEmail } from './template.js';
import type { ConsentEmail } from './template.js';

export type MailFailureKind = 'transient' | 'permanent';

/**
 * Why a send failed, finer than `kind`, for logs, metrics and operator-facing status:
 * - `rejected`: the server refused the recipient or the message (5xx at RCPT TO / DATA) — permanent
 * - `temporary`: a 4xx reply (greylisting, mailbox busy, rate limit, 421 shutting down) — transient
 * - `auth`: the SMTP login failed (535, 530, 534, 538, EAUTH, ENOAUTH) — transient, needs an operator
 * - `config`: our side is misconfigured (sender refused, relay denied, server refuses us at connect) — transient, needs an operator
 * - `connection` / `timeout` / `dns` / `tls`: the server could not be reached or talked to — transient
 * - `protocol`: an unexpected reply or state (503, stray 2xx/3xx, EPROTOCOL) — transient
 * - `invalid-input`: the email itself is invalid (bad address, bad Message-ID) — permanent
 * - `unknown`: anything else — transient (an unknown error must not end a consent)
 */
export type MailFailureReason =
  | 'rejected'
  | 'temporary'
  | 'auth'
  | 'config'
  | 'connection'
  | 'timeout'
  | 'dns'
  | 'tls'
  | 'protocol'
  | 'invalid-input'
  | 'unknown';

export interface MailErrorDetails {
  kind: MailFailureKind;
  reason: MailFailureReason;
  /** SMTP reply code, e.g. 550; null when the failure had no SMTP reply (connection, timeout...). */
  responseCode?: number | null | undefined;
  /** nodemailer's error code (EENVELOPE, EAUTH, ESOCKET, ECONNECTION, ETIMEDOUT...) or a Node.js one. */
  smtpCode?: string | null | undefined;
  /** The underlying system code when nodemailer replaced it, e.g. ECONNREFUSED under ESOCKET. */
  originalCode?: string | null | undefined;
  /** RFC 3463 enhanced status code from the reply, e.g. '5.1.1'. */
  enhancedStatus?: string | null | undefined;
  /** The SMTP command that was answered with the error, e.g. 'RCPT TO', 'DATA', 'AUTH PLAIN'. */
  command?: string | null | undefined;
  /** True when retrying will not help until someone fixes the configuration (credentials, sender, relay). */
  needsOperator?: boolean | undefined;
}

/**
 * A classified email failure. Its message, stack and JSON never contain the SMTP password or the
 * SMTP URL with credentials, and it carries no `cause` (the raw nodemailer error stays inside
 * this module), so it is safe to log and to hand to Temporal as failure details.
 */
export class MailError extends Error {
  override readonly name = 'MailError';
  readonly kind: MailFailureKind;
  readonly reason: MailFailureReason;
  readonly responseCode: number | null;
  readonly smtpCode: string | null;
  readonly originalCode: string | null;
  readonly enhancedStatus: string | null;
  readonly command: string | null;
  readonly needsOperator: boolean;

  constructor(message: string, details: MailErrorDetails) {
    super(message);
    this.kind = details.kind;
    this.reason = details.reason;
    this.responseCode = details.responseCode ?? null;
    this.smtpCode = details.smtpCode ?? null;
    this.originalCode = details.originalCode ?? null;
    this.enhancedStatus = details.enhancedStatus ?? null;
    this.command = details.command ?? null;
    this.needsOperator = details.needsOperator ?? false;
  }

  get retryable(): boolean {
    return this.kind === 'transient';
  }

  toJSON(): Record<string, unknown> {
    return {
      name: this.name,
      message: this.message,
      kind: this.kind,
      reason: this.reason,
      responseCode: this.responseCode,
      smtpCode: this.smtpCode,
      originalCode: this.originalCode,
      enhancedStatus: this.enhancedStatus,
      command: this.command,
      needsOperator: this.needsOperator,
    };
  }
}

export function isMailError(err: unknown): err is MailError {
  return err instanceof MailError;
}

// ---------------------------------------------------------------------------------------------
// Redaction

const CREDENTIALS_IN_URL = /([a-z][a-z0-9+.-]*:\/\/)([^\s/?#@]*)@/giu;

/**
 * Returns the URL as `smtp://user:****@host:port` (the password, if any, replaced; query and path
 * dropped since options there may hold secrets too). Never throws and never echoes an input it
 * cannot parse.
 */
export function redactSmtpUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url.trim());
  } catch {
    return '[unparseable SMTP URL]';
  }
  const user = parsed.username ? decodeSafe(parsed.username) : '';
  const userInfo = parsed.password ? `${user}:****@` : user ? `${user}@` : '';
  return `${parsed.protocol}//${userInfo}${parsed.host}`;
}

function decodeSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** Replaces every known secret and any `scheme://user:pass@` user info in `text`. */
function scrub(text: string, secrets: readonly string[]): string {
  let out = text;
  // Longest first, so a secret that contains another is replaced whole.
  for (const secret of [...secrets].sort((a, b) => b.length - a.length)) {
    if (secret.length > 0) out = out.split(secret).join('****');
  }
  return out.replace(CREDENTIALS_IN_URL, (_m, scheme: string, userInfo: string) => {
    const colon = userInfo.indexOf(':');
    return colon >= 0 ? `${scheme}${userInfo.slice(0, colon)}:****@` : `${scheme}${userInfo}@`;
  });
}

/** Every form in which the URL's credentials could show up in a reply or a message. */
function secretsOfUrl(url: string): string[] {
  const secrets: string[] = [];
  try {
    const parsed = new URL(url.trim());
    const user = decodeSafe(parsed.username);
    const pass = decodeSafe(parsed.password);
    if (pass) {
      secrets.push(url, url.trim(), pass, parsed.password, parsed.href);
      // AUTH PLAIN / AUTH LOGIN send these base64 encoded; a server could echo them back.
      secrets.push(Buffer.from(`\u0000${user}\u0000${pass}`).toString('base64'));
      secrets.push(Buffer.from(pass).toString('base64'));
    }
  } catch {
    // Unparseable URLs are refused by createSmtpMailer; hide the raw string all the same.
    secrets.push(url, url.trim());
  }
  return secrets;
}

// ---------------------------------------------------------------------------------------------
// Classification

const CONNECTION_CODES = new Set([
  'ECONNECTION',
  'ESOCKET',
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'EADDRNOTAVAIL',
  'EPROXY',
  'EABORT',
]);
const TIMEOUT_CODES = new Set(['ETIMEDOUT', 'ESOCKETTIMEDOUT', 'ETIME']);
const DNS_CODES = new Set([
  'EDNS',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EAI_FAIL',
  'EAI_NONAME',
  'ENODATA',
  'ESERVFAIL',
]);
const AUTH_CODES = new Set(['EAUTH', 'ENOAUTH', 'EOAUTH2']);
// 530 authentication required, 534 mechanism too weak, 535 credentials invalid, 538 encryption
// required for the mechanism (RFC 4954).
const AUTH_REPLY_CODES = new Set([530, 534, 535, 538]);
const RELAY_DENIED = /relay(ing)?\s+(access\s+)?(denied|not\s+permitted|not\s+allowed|prohibited)/iu;
const ENHANCED_STATUS = /^\d{3}[ -]([245]\.\d{1,3}\.\d{1,3})\b/u;

function isTlsCode(code: string): boolean {
  return (
    code === 'ETLS' ||
    code === 'EREQUIRETLS' ||
    code.startsWith('ERR_TLS_') ||
    code.startsWith('ERR_SSL_') ||
    code.startsWith('CERT_') ||
    code.includes('SELF_SIGNED') ||
    code === 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' ||
    code === 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY' ||
    code === 'HOSTNAME_MISMATCH'
  );
}

interface RawSmtpError {
  message: string;
  code: string | null;
  originalCode: string | null;
  responseCode: number | null;
  response: string | null;
  command: string | null;
}

function readRawError(err: unknown): RawSmtpError | null {
  if (typeof err !== 'object' || err === null) return null;
  const o = err as Record<string, unknown>;
  const str = (v: unknown): string | null => (typeof v === 'string' && v.length > 0 ? v : null);
  let responseCode =
    typeof o.responseCode === 'number' && Number.isFinite(o.responseCode) ? o.responseCode : null;
  const response = str(o.response);
  if (responseCode === null && response !== null) {
    const m = /^(\d{3})\b/u.exec(response);
    if (m?.[1]) responseCode = Number(m[1]);
  }
  return {
    message: str(o.message) ?? '',
    code: str(o.code),
    originalCode: str(o.originalCode) ?? str((o.cause as Record<string, unknown> | undefined)?.code),
    responseCode,
    response,
    command: str(o.command),
  };
}

/** One line, no controls, bounded: replies and messages come from a remote server. */
function oneLine(s: string, max = 300): string {
  const flat = s
    .replace(/\p{Cc}+/gu, ' ')
    .replace(/\s+/gu, ' ')
    .trim();
  return flat.length > max ? `${flat.slice(0, max)}…` : flat;
}

type Verdict = Pick<MailErrorDetails, 'kind' | 'reason' | 'needsOperator'>;

function verdictForReply(
  code: number,
  command: string | null,
  text: string,
  enhanced: string | null,
): Verdict {
  const cmd = (command ?? '').toUpperCase();
  // Auth replies first: a wrong SMTP password must not make a consent end as undeliverable.
  if (AUTH_REPLY_CODES.has(code) || cmd.startsWith('AUTH')) {
    return { kind: 'transient', reason: 'auth', needsOperator: true };
  }
  if (code >= 400 && code < 500) return { kind: 'transient', reason: 'temporary' };
  if (code >= 500 && code < 600) {
    // 503 bad sequence of commands: a session-state problem, the same message can go through
    // on a new connection (nodemailer's own isPermanentResponseCode agrees).
    if (code === 503) return { kind: 'transient', reason: 'protocol' };
    // Relay denied: our server does not accept us as a sender (usually missing/wrong auth).
    if (RELAY_DENIED.test(text)) return { kind: 'transient', reason: 'config', needsOperator: true };
    // A refusal before the recipient is named (greeting, EHLO, MAIL FROM) is about us, not about
    // the person's address: the sender or the connection is refused. An operator must fix it.
    if (cmd === 'CONN' || cmd === 'EHLO' || cmd === 'HELO' || cmd === 'LHLO' || cmd === 'MAIL FROM') {
      return { kind: 'transient', reason: 'config', needsOperator: true };
    }
    // 552 at RCPT TO is "too many recipients"/mailbox full (RFC 5321 4.5.3.1.10 says treat it as
    // 452), and x.2.2 is "mailbox full" anywhere: both can clear up, so retry.
    if (code === 552 && (cmd === 'RCPT TO' || enhanced?.endsWith('.2.2') === true)) {
      return { kind: 'transient', reason: 'temporary' };
    }
    return { kind: 'permanent', reason: 'rejected' };
  }
  // A 2xx/3xx reply where another was expected.
  return { kind: 'transient', reason: 'protocol' };
}

function verdictForCode(raw: RawSmtpError): Verdict {
  const codes = [raw.code, raw.originalCode].filter((c): c is string => c !== null);
  if (codes.some((c) => AUTH_CODES.has(c))) return { kind: 'transient', reason: 'auth', needsOperator: true };
  if (codes.some((c) => TIMEOUT_CODES.has(c))) return { kind: 'transient', reason: 'timeout' };
  if (codes.some((c) => DNS_CODES.has(c))) return { kind: 'transient', reason: 'dns' };
  if (codes.some(isTlsCode)) return { kind: 'transient', reason: 'tls' };
  if (codes.some((c) => CONNECTION_CODES.has(c))) return { kind: 'transient', reason: 'connection' };
  if (codes.includes('EPROTOCOL')) return { kind: 'transient', reason: 'protocol' };
  if (codes.includes('ECONFIG')) return { kind: 'transient', reason: 'config', needsOperator: true };
  // nodemailer refuses an address before talking to the server ("Invalid recipient ...").
  // Our own validation runs first, so this is rare; a bad sender is configuration, a bad
  // recipient is the input.
  if (codes.includes('EENVELOPE')) {
    return /sender/iu.test(raw.message)
      ? { kind: 'transient', reason: 'config', needsOperator: true }
      : { kind: 'permanent', reason: 'invalid-input' };
  }
  if (codes.includes('EMAXRECIPIENTS')) return { kind: 'permanent', reason: 'invalid-input' };
  // EMESSAGE without a reply: the message itself cannot be sent (e.g. over the server's SIZE).
  if (codes.includes('EMESSAGE')) return { kind: 'permanent', reason: 'rejected' };
  return { kind: 'transient', reason: 'unknown' };
}

export interface ClassifyOptions {
  /** Strings that must not appear in the resulting message (passwords, URLs with credentials). */
  secrets?: readonly string[] | undefined;
}

/**
 * Turns whatever a send or verify threw into a MailError.
 *
 * Rules (edge cases decided here, documented for the activity):
 * - 5xx at RCPT TO or DATA (550, 551, 553, 554, 501 ...) → permanent `rejected`.
 * - 4xx (421, 450, 451, 452 ...) → transient `temporary`.
 * - Auth failures (530, 534, 535, 538, any reply to AUTH, EAUTH/ENOAUTH) → transient `auth`,
 *   needsOperator: a wrong SMTP password must not end a consent as email_undeliverable.
 * - 5xx at the greeting, EHLO or MAIL FROM, and "relay access denied" → transient `config`,
 *   needsOperator: these refuse *us* (sender, client, relay), not the person's address.
 * - 503 (bad sequence) → transient `protocol`; 552 at RCPT TO or with x.2.2 (mailbox full) → transient.
 * - No reply: connection refused/reset/closed, timeouts, DNS, TLS → transient; an invalid recipient
 *   refused by nodemailer itself → permanent `invalid-input`; anything unknown → transient.
 * An existing MailError is returned as is.
 */
export function classifySmtpError(err: unknown, options: ClassifyOptions = {}): MailError {
  if (err instanceof MailError) return err;
  const secrets = options.secrets ?? [];
  const raw = readRawError(err);
  if (raw === null) {
    return new MailError('Email delivery failed: a non-error value was thrown', {
      kind: 'transient',
      reason: 'unknown',
    });
  }
  const replyText = raw.response !== null ? oneLine(raw.response) : null;
  const enhanced = replyText !== null ? (ENHANCED_STATUS.exec(replyText)?.[1] ?? null) : null;
  const verdict =
    raw.responseCode !== null
      ? verdictForReply(raw.responseCode, raw.command, replyText ?? raw.message, enhanced)
      : verdictForCode(raw);

  // The message is built from parts, never from the raw error as a whole, and scrubbed.
  const detail = replyText ?? (oneLine(raw.message) || 'no details');
  const codes = [raw.code, raw.originalCode].filter(
    (c, i, a): c is string => c !== null && a.indexOf(c) === i,
  );
  const context = [raw.command ? `command ${raw.command}` : null, codes.length > 0 ? codes.join('/') : null]
    .filter((s): s is string => s !== null)
    .join(', ');
  const message = scrub(
    `Email delivery failed (${verdict.kind}, ${verdict.reason}): ${detail}${context ? ` [${context}]` : ''}`,
    secrets,
  );
  return new MailError(message, {
    ...verdict,
    responseCode: raw.responseCode,
    smtpCode: raw.code !== null ? scrub(raw.code, secrets) : null,
    originalCode: raw.originalCode !== null ? scrub(raw.originalCode, secrets) : null,
    enhancedStatus: enhanced,
    command: raw.command !== null ? scrub(oneLine(raw.command, 40), secrets) : null,
  });
}

// ---------------------------------------------------------------------------------------------
// Mailer

export interface SendConsentEmailResult {
  messageId: string;
  accepted: string[];
  response: string;
}

export interface Mailer {
  sendConsentEmail(e: ConsentEmail): Promise<SendConsentEmailResult>;
  /** Connects (and logs in, if the URL has credentials) and disconnects; rejects with a MailError. */
  verify(): Promise<void>;
  /** Releases the transport (and its pooled connections, if `?pool=true` was used). */
  close(): void;
}

export interface SmtpMailerOptions {
  /** e.g. `smtp://localhost:1025`, `smtps://user:pass@host:465`; nodemailer query options are honoured. */
  smtpUrl: string;
  /** The From header, e.g. `Avatar consent <consent@example.com>` (trusted configuration). */
  from: string;
  /** TCP connect and greeting timeout, default 10 s. */
  connectionTimeoutMs?: number | undefined;
  /** Inactivity timeout once connected, default 30 s. */
  socketTimeoutMs?: number | undefined;
}

/** Within the email activity's attempt timeout (src/config/timeouts.ts checks the relation). */
export const DEFAULT_CONNECTION_TIMEOUT_MS = SMTP_CONNECTION_TIMEOUT_MS;
export const DEFAULT_SOCKET_TIMEOUT_MS = SMTP_SOCKET_TIMEOUT_MS;

function positiveMs(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value <= 0)
    throw new TypeError(`${name} must be a positive number of milliseconds`);
  return value;
}

function assertSmtpUrl(smtpUrl: string): void {
  let parsed: URL;
  try {
    parsed = new URL(smtpUrl.trim());
  } catch {
    throw new TypeError(`Invalid SMTP URL ${redactSmtpUrl(smtpUrl)}: cannot be parsed`);
  }
  if (parsed.protocol !== 'smtp:' && parsed.protocol !== 'smtps:') {
    throw new TypeError(`Invalid SMTP URL ${redactSmtpUrl(smtpUrl)}: the scheme must be smtp: or smtps:`);
  }
  if (!parsed.hostname) throw new TypeError(`Invalid SMTP URL ${redactSmtpUrl(smtpUrl)}: no host`);
}

function assertFrom(from: string): void {
  // The From is configuration, but a newline there would still be a header injection.
  if (/\p{Cc}/u.test(from)) throw new TypeError('Invalid from: control characters are not allowed');
  const parsed = addressparser(from, { flatten: true });
  const first = parsed[0];
  if (parsed.length !== 1 || !first || !isValidEmailAddress(first.address)) {
    throw new TypeError('Invalid from: expected exactly one address such as "Name <sender@example.com>"');
  }
}

/**
 * Creates a mailer that sends through the SMTP server in `smtpUrl`. Each send opens its own
 * connection (consent emails are rare; no idle connection to go stale); add `?pool=true` to the
 * URL for a pool. Throws a TypeError (with the URL redacted) when the options are invalid.
 */
export function createSmtpMailer(opts: SmtpMailerOptions): Mailer {
  assertSmtpUrl(opts.smtpUrl);
  assertFrom(opts.from);
  const connectionTimeout = positiveMs(
    opts.connectionTimeoutMs,
    DEFAULT_CONNECTION_TIMEOUT_MS,
    'connectionTimeoutMs',
  );
  const socketTimeout = positiveMs(opts.socketTimeoutMs, DEFAULT_SOCKET_TIMEOUT_MS, 'socketTimeoutMs');
  const secrets = secretsOfUrl(opts.smtpUrl);
  const classify = (err: unknown): MailError => classifySmtpError(err, { secrets });

  // Options next to `url` apply where the URL's query does not set them (nodemailer merges them).
  const transporter = createTransport({
    url: opts.smtpUrl.trim(),
    connectionTimeout,
    greetingTimeout: connectionTimeout,
    dnsTimeout: connectionTimeout,
    socketTimeout,
    logger: false,
    debug: false,
    // Nothing in a consent email is read from files or URLs; refuse it outright.
    disableFileAccess: true,
    disableUrlAccess: true,
  });

  return {
    async sendConsentEmail(e: ConsentEmail): Promise<SendConsentEmailResult> {
      const parsed = parseConsentEmail(e);
      if (!parsed.ok) {
        throw new MailError(`Email not sent, invalid input: ${parsed.problems.join('; ')}`, {
          kind: 'permanent',
          reason: 'invalid-input',
        });
      }
      const input = parsed.value;
      const rendered = renderConsentEmail(input);
      const headers: Record<string, string> = {
        'X-Avatar-Consent-Group': input.groupId,
        'X-Avatar-Consent-Generation': String(input.generation),
        // RFC 3834: tells auto-responders (vacation replies) not to answer.
        'Auto-Submitted': 'auto-generated',
      };
      if (input.reminder === true) headers['X-Avatar-Consent-Reminder'] = 'yes';

      let info: { messageId: string; accepted: unknown[]; rejected: unknown[]; response: string };
      try {
        info = await transporter.sendMail({
          from: opts.from,
          // Object form: nodemailer encodes the name as a display-name, so nothing in it can end the header.
          to: { name: mailSafeName(input.to.name ?? ''), address: input.to.email },
          subject: rendered.subject,
          text: rendered.text,
          html: rendered.html,
          messageId: input.messageId,
          headers,
        });
      } catch (err) {
        throw classify(err);
      }
      const accepted = info.accepted.map((a) => {
        if (typeof a === 'string') return a;
        const address = (a as { address?: unknown }).address;
        return typeof address === 'string' ? address : '';
      });
      if (accepted.length === 0) {
        // nodemailer normally throws when every recipient is refused; be explicit anyway.
        throw new MailError('Email delivery failed (permanent, rejected): the server accepted no recipient', {
          kind: 'permanent',
          reason: 'rejected',
        });
      }
      return { messageId: info.messageId, accepted, response: oneLine(info.response) };
    },

    async verify(): Promise<void> {
      try {
        await transporter.verify();
      } catch (err) {
        throw classify(err);
      }
    },

    close(): void {
      transporter.close();
    },
  };
}
