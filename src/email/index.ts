// The email module: rendering, validation and SMTP delivery of the consent email.
// Plain code with no Temporal imports; the activity maps MailError.kind to retries.
export {
  consentSubject,
  escapeHtml,
  formatExpiryUtc,
  renderConsentEmail,
  type ConsentEmail,
  type RenderedConsentEmail,
} from './template.js';
export {
  consentEmailSchema,
  isSafeLinkUrl,
  isValidEmailAddress,
  isValidMessageId,
  mailSafeName,
  MAX_AVATAR_NAME_LENGTH,
  MAX_RECIPIENT_NAME_LENGTH,
  parseConsentEmail,
  type ConsentEmailParseResult,
} from './address.js';
export {
  classifySmtpError,
  createSmtpMailer,
  DEFAULT_CONNECTION_TIMEOUT_MS,
  DEFAULT_SOCKET_TIMEOUT_MS,
  isMailError,
  MailError,
  redactSmtpUrl,
  type ClassifyOptions,
  type Mailer,
  type MailErrorDetails,
  type MailFailureKind,
  type MailFailureReason,
  type SendConsentEmailResult,
  type SmtpMailerOptions,
} from './mailer.js';
