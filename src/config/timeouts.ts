/**
 * How long each kind of activity attempt may take, and the client timeouts inside them. The
 * relations between them are checked here, in code: an HTTP or SMTP call must give up before
 * Temporal abandons its attempt, or a slow call would be retried while it is still running.
 * Pure constants: workflow code uses them too.
 */

/** One HeyGen call: the activity attempt's start-to-close timeout. */
export const HEYGEN_ATTEMPT_TIMEOUT_MS = 30_000;
/** Time an attempt keeps after its HTTP call gave up: classify the failure and report it. */
const ATTEMPT_MARGIN_MS = 5_000;
/** The largest HEYGEN_TIMEOUT_MS the worker accepts (the HTTP call's own timeout). */
export const HEYGEN_HTTP_TIMEOUT_MAX_MS = HEYGEN_ATTEMPT_TIMEOUT_MS - ATTEMPT_MARGIN_MS;
export const HEYGEN_HTTP_TIMEOUT_DEFAULT_MS = 15_000;

/** SMTP: connecting, then the whole conversation (nodemailer's connection and socket timeouts). */
export const SMTP_CONNECTION_TIMEOUT_MS = 10_000;
export const SMTP_SOCKET_TIMEOUT_MS = 30_000;
/** One email send: the activity attempt's start-to-close timeout. */
export const EMAIL_ATTEMPT_TIMEOUT_MS = 60_000;

/**
 * The request and email steps retry fast at first, then every minute: after an outage the first
 * success should come soon (HeyGen is protected by the rate gate and Retry-After; a 401 asks for
 * its own 5-minute delay).
 */
export const STEP_MAX_RETRY_INTERVAL_MS = 60_000;
/** A request or email step takes stock (records the last error for the status query) this often. */
export const STEP_WINDOW_MS = 10 * 60_000;

/** Throws when a change above breaks a relation between the timeouts. */
export function checkTimeoutRelations(): void {
  const problems: string[] = [];
  if (HEYGEN_HTTP_TIMEOUT_DEFAULT_MS > HEYGEN_HTTP_TIMEOUT_MAX_MS)
    problems.push('the default HeyGen HTTP timeout exceeds its maximum');
  if (SMTP_CONNECTION_TIMEOUT_MS + SMTP_SOCKET_TIMEOUT_MS + ATTEMPT_MARGIN_MS > EMAIL_ATTEMPT_TIMEOUT_MS)
    problems.push('SMTP connection + socket timeouts do not fit in the email attempt timeout');
  if (STEP_MAX_RETRY_INTERVAL_MS >= STEP_WINDOW_MS)
    problems.push('a step window must hold more than one retry interval');
  if (problems.length > 0) throw new Error(`Timeout relations broken: ${problems.join('; ')}`);
}
checkTimeoutRelations();
