/**
 * The one place where every HeyGen failure is classified: HTTP error answers, transport failures,
 * 2xx bodies that do not match the spec, requests we refuse to send, and calls held back by the rate gate.
 *
 * Plain code (no Temporal imports). Temporal activities map `HeyGenError.kind` to retry behaviour.
 *
 * Failure messages are stored unencrypted in Temporal history and logged, so they carry our own
 * words plus as little of HeyGen's as possible:
 * - no body content, ever: a body that is not what we expected is described by status, content
 *   type and length (it may hold the consent link, the consent text or the return link);
 * - texts that come from the outside (HeyGen's error message, code and param, transport cause
 *   messages) lose every URL and signed token (HeyGen quotes `reroute_url`, which carries the
 *   gateway's signed token), any `secrets` the caller passes (the client passes its API key, in case
 *   a server or proxy echoes it, even shortened) and control characters, and are truncated.
 * Nothing here ever sees request headers, and no raw `cause` object is ever attached.
 */
import { maskSecrets } from '../mask-secrets.js';
import { standardApiErrorEnvelopeSchema } from './schemas.js';

export type HeyGenFailureKind =
  | 'retryable' // 5xx, network error, timeout, 2xx body that does not match the spec
  | 'rate_limited' // 429, or the process-wide rate gate is closed (then nothing was sent)
  | 'in_progress' // 409 request_in_progress: retry soon with the same Idempotency-Key
  | 'needs_operator' // 401, 402, 403 (key, billing, access), unexpected redirect: retry slowly, alert
  | 'invalid' // 400 and other "our request is wrong" answers; also requests we refuse to send
  | 'not_found'; // 404 / 410

/** Codes we assign ourselves (HeyGen's own codes are passed through as they come). */
export const LOCAL_ERROR_CODES = {
  timeout: 'timeout',
  networkError: 'network_error',
  invalidResponse: 'invalid_response',
  rateGateClosed: 'rate_gate_closed',
  invalidParameter: 'invalid_parameter',
  unexpectedRedirect: 'unexpected_redirect',
} as const;

export interface HeyGenErrorInit {
  kind: HeyGenFailureKind;
  message: string;
  method: string;
  path: string;
  status?: number | null;
  code?: string | null;
  param?: string | null;
  retryAfterMs?: number | null;
  requestId?: string | null;
}

/** Plain, secret-free shape returned by `HeyGenError.toJSON()`. */
export interface HeyGenErrorJson {
  name: 'HeyGenError';
  kind: HeyGenFailureKind;
  retryable: boolean;
  status: number | null;
  code: string | null;
  param: string | null;
  retryAfterMs: number | null;
  requestId: string | null;
  method: string;
  path: string;
  message: string;
}

export class HeyGenError extends Error {
  override readonly name = 'HeyGenError' as const;
  readonly kind: HeyGenFailureKind;
  readonly retryable: boolean;
  /** HTTP status; null when no HTTP answer was received (network, timeout) or nothing was sent. */
  readonly status: number | null;
  /** HeyGen's error code, or one of LOCAL_ERROR_CODES. */
  readonly code: string | null;
  readonly param: string | null;
  /** For rate_limited (and a 503 that carries Retry-After): parsed, clamped milliseconds. */
  readonly retryAfterMs: number | null;
  readonly requestId: string | null;
  readonly method: string;
  /** Request path without the query string. */
  readonly path: string;

  constructor(init: HeyGenErrorInit) {
    super(init.message);
    this.kind = init.kind;
    this.retryable = isRetryableKind(init.kind);
    this.status = init.status ?? null;
    this.code = init.code ?? null;
    this.param = init.param ?? null;
    this.retryAfterMs = init.retryAfterMs ?? null;
    this.requestId = init.requestId ?? null;
    this.method = init.method;
    this.path = init.path;
  }

  toJSON(): HeyGenErrorJson {
    return {
      name: this.name,
      kind: this.kind,
      retryable: this.retryable,
      status: this.status,
      code: this.code,
      param: this.param,
      retryAfterMs: this.retryAfterMs,
      requestId: this.requestId,
      method: this.method,
      path: this.path,
      message: this.message,
    };
  }
}

export function isHeyGenError(value: unknown): value is HeyGenError {
  return value instanceof HeyGenError;
}

/**
 * Whether a later attempt can succeed without anyone changing our request. `needs_operator` counts as
 * retryable (slowly): once someone fixes the key or the billing, the same request works.
 */
export function isRetryableKind(kind: HeyGenFailureKind): boolean {
  switch (kind) {
    case 'retryable':
    case 'rate_limited':
    case 'in_progress':
    case 'needs_operator':
      return true;
    case 'invalid':
    case 'not_found':
      return false;
  }
}

// ---------------------------------------------------------------------------------------------
// Text hygiene

const MAX_TEXT_CHARS = 200;

// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f]+/g;

/** What a URL (or a signed token) in a text from the outside becomes. */
export const URL_PLACEHOLDER = '[url]';
export const TOKEN_PLACEHOLDER = '[token]';

/**
 * Anything that is, or looks like, a URL or a part of one that carries data. The token pattern
 * runs last, on what these left.
 */
// A URL runs to the next whitespace, double quote or angle bracket (none can appear in a URL
// unencoded); a single quote or a bracket can, so a quoted URL may take its closing quote along.
const URL_PATTERNS: readonly RegExp[] = [
  // scheme://…, also JSON-escaped (https:\/\/…) and percent-encoded (https%3A%2F%2F…). No word
  // boundary before the scheme: "seehttps://…" is a URL too.
  /[a-z][a-z0-9+.-]{0,30}(?::|%3a)(?:\/|\\\/|%2f){2}[^\s"<>]*/gi,
  // Protocol-relative: //host.example/…
  /(?<![\w:/])\/\/[a-z0-9-]+(?:\.[a-z0-9-]+)+[^\s"<>]*/gi,
  // www.host…, or host.tld (or an IP address) followed by a path, a port, a query or a fragment.
  /\b(?:www\.[a-z0-9-]+(?:\.[a-z0-9-]+)*|(?:[a-z0-9-]+\.)+[a-z0-9-]+(?=\/|:\d|\?|#))[^\s"<>]*/gi,
  // A path with a query string (/consent-return?t=…), or anything carrying one (x?t=…).
  /(?<![\w.])\/[^\s"<>?]*\?[^\s"<>]*/g,
  /[^\s"<>]*\?[^\s"<>=?]+=[^\s"<>]*/g,
];
/**
 * Signed tokens (the gateway's return token, a JWT): two or three base64url segments of 24+
 * characters (a MAC alone is 43), long enough not to catch dotted field names.
 */
const SIGNED_TOKEN = /[A-Za-z0-9_-]{24,}(?:\.[A-Za-z0-9_-]{24,}){1,2}/g;

/** Replaces URLs, URL-like text and signed tokens with placeholders. */
export function scrubUrls(text: string): string {
  let out = text;
  for (const pattern of URL_PATTERNS) out = out.replace(pattern, URL_PLACEHOLDER);
  return out.replace(SIGNED_TOKEN, TOKEN_PLACEHOLDER);
}

/**
 * Removes secrets (whole, or echoed by their first characters: see src/mask-secrets.ts) and control
 * characters, collapses whitespace, truncates to `maxChars`.
 */
export function sanitizeText(
  text: string,
  secrets: readonly string[] = [],
  maxChars = MAX_TEXT_CHARS,
): string {
  return cleanText(text, secrets, maxChars, false);
}

/** sanitizeText, and URLs and signed tokens replaced: for every text HeyGen wrote (message, code, param). */
export function sanitizeOutsideText(
  text: string,
  secrets: readonly string[] = [],
  maxChars = MAX_TEXT_CHARS,
): string {
  return cleanText(text, secrets, maxChars, true);
}

function cleanText(text: string, secrets: readonly string[], maxChars: number, urls: boolean): string {
  const scrub = (t: string): string => maskSecrets(t, secrets, '[redacted]');
  // Bounds the work on a huge text (the patterns below are not linear on pathological input). A
  // secret cut here keeps at most its echo-length prefix, which maskSecrets already masks; a URL
  // cut here still starts with its scheme and is still replaced.
  const bounded = text.length > maxChars * 5 ? text.slice(0, maxChars * 5) : text;
  let out = scrub(bounded).replace(CONTROL_CHARS, ' ').replace(/\s+/g, ' ').trim();
  // Collapsing whitespace could join fragments into a secret that contains a space: scrub again.
  out = scrub(out);
  if (urls) out = scrubUrls(out);
  // Truncate last, so a secret or a URL is always removed whole before any cut.
  return out.length > maxChars ? `${out.slice(0, maxChars)}…` : out;
}

/** The media type of a response (e.g. `text/html`), only when it looks like one: it is HeyGen's text too. */
function mediaTypeOf(headers: Headers | undefined): string | null {
  const raw = headers?.get('content-type')?.split(';')[0]?.trim().toLowerCase();
  if (raw === undefined || raw === '') return null;
  return /^[a-z0-9!#$&^_.+-]{1,40}\/[a-z0-9!#$&^_.+-]{1,80}$/.test(raw) ? raw : 'unrecognised content type';
}

function requestIdFrom(headers: Headers): string | null {
  const raw = headers.get('x-request-id') ?? headers.get('x-heygen-request-id');
  if (raw === null) return null;
  return /^[A-Za-z0-9._:-]{1,128}$/.test(raw.trim()) ? raw.trim() : null;
}

/** Paths carry caller-supplied ids: scrub them too, in case a secret was passed where an id belongs. */
function safePath(path: string, secrets: readonly string[]): string {
  return sanitizeText(path, secrets, 300);
}

function formatSeconds(ms: number): string {
  return `${Math.ceil(ms / 1000)}s`;
}

// ---------------------------------------------------------------------------------------------
// Retry-After

/** Defaults for parseRetryAfter: at least 1 s, at most 1 h, 60 s when the header is missing/unusable. */
export const RETRY_AFTER_DEFAULTS = { minMs: 1_000, maxMs: 3_600_000, defaultMs: 60_000 } as const;

export interface RetryAfterOptions {
  minMs?: number;
  maxMs?: number;
  defaultMs?: number;
}

/**
 * Parses a Retry-After header value into milliseconds to wait.
 * - integer seconds ("120") -> 120_000; "0" and dates in the past -> minMs (no hot retry loop)
 * - decimal seconds ("1.5"): not valid per RFC 9110, but its meaning is unambiguous, so accepted (1_500)
 * - HTTP-date in any of the three RFC 9110 forms -> time until then
 * - missing, empty, negative, garbage -> defaultMs; huge -> maxMs
 * Never throws; always returns a finite integer in [minMs, maxMs].
 */
export function parseRetryAfter(
  value: string | null | undefined,
  nowMs: number,
  opts: RetryAfterOptions = {},
): number {
  const { minMs, maxMs, defaultMs } = normalizeBounds(opts);
  const clamp = (ms: number): number => {
    if (Number.isNaN(ms)) return defaultMs;
    if (ms <= minMs) return minMs;
    if (ms >= maxMs) return maxMs;
    return Math.ceil(ms);
  };
  if (typeof value !== 'string') return defaultMs;
  const trimmed = value.trim();
  if (trimmed === '') return defaultMs;
  if (/^\d+(?:\.\d+)?$/.test(trimmed)) {
    // Very long digit strings become Infinity, which clamps to maxMs.
    return clamp(Number(trimmed) * 1000);
  }
  if (!Number.isFinite(nowMs)) return defaultMs;
  const dateMs = parseHttpDate(trimmed, nowMs);
  if (dateMs === null) return defaultMs;
  return clamp(dateMs - nowMs);
}

function normalizeBounds(opts: RetryAfterOptions): { minMs: number; maxMs: number; defaultMs: number } {
  const finiteOr = (v: number | undefined, fallback: number): number =>
    typeof v === 'number' && Number.isFinite(v) ? v : fallback;
  const minMs = Math.max(0, Math.ceil(finiteOr(opts.minMs, RETRY_AFTER_DEFAULTS.minMs)));
  const maxMs = Math.max(minMs, Math.floor(finiteOr(opts.maxMs, RETRY_AFTER_DEFAULTS.maxMs)));
  const rawDefault = Math.round(finiteOr(opts.defaultMs, RETRY_AFTER_DEFAULTS.defaultMs));
  return { minMs, maxMs, defaultMs: Math.min(maxMs, Math.max(minMs, rawDefault)) };
}

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
const DAY = '(?:mon|tue|wed|thu|fri|sat|sun)';
const LONG_DAY = '(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)';
const MONTH = '(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)';
const TIME = '(\\d{2}):(\\d{2}):(\\d{2})';
// Sun, 06 Nov 1994 08:49:37 GMT
const IMF_FIXDATE = new RegExp(`^${DAY}, (\\d{2}) ${MONTH} (\\d{4}) ${TIME} GMT$`, 'i');
// Sunday, 06-Nov-94 08:49:37 GMT
const RFC850_DATE = new RegExp(`^${LONG_DAY}, (\\d{2})-${MONTH}-(\\d{2}) ${TIME} GMT$`, 'i');
// Sun Nov  6 08:49:37 1994
const ASCTIME_DATE = new RegExp(`^${DAY} ${MONTH} ( \\d|\\d{2}) ${TIME} (\\d{4})$`, 'i');

/** Strict HTTP-date parser (Date.parse accepts far too much, e.g. "foo 1"). Returns epoch ms or null. */
export function parseHttpDate(text: string, nowMs: number = Date.now()): number | null {
  let day: string | undefined;
  let month: string | undefined;
  let year: number;
  let time: [string | undefined, string | undefined, string | undefined];
  let m = IMF_FIXDATE.exec(text);
  if (m) {
    day = m[1];
    month = m[2];
    year = Number(m[3]);
    time = [m[4], m[5], m[6]];
  } else if ((m = RFC850_DATE.exec(text))) {
    day = m[1];
    month = m[2];
    // RFC 9110: a two-digit year more than 50 years in the future means the previous century.
    const nowYear = new Date(Number.isFinite(nowMs) ? nowMs : Date.now()).getUTCFullYear();
    const yy = Number(m[3]);
    year = Math.floor(nowYear / 100) * 100 + yy;
    if (year > nowYear + 50) year -= 100;
    time = [m[4], m[5], m[6]];
  } else if ((m = ASCTIME_DATE.exec(text))) {
    month = m[1];
    day = m[2];
    time = [m[3], m[4], m[5]];
    year = Number(m[6]);
  } else {
    return null;
  }
  const monthIndex = MONTHS.indexOf((month ?? '').toLowerCase());
  const dayNum = Number((day ?? '').trim());
  const [hh, mm, ss] = time.map(Number) as [number, number, number];
  if (monthIndex < 0 || dayNum < 1 || dayNum > 31 || hh > 23 || mm > 59 || ss > 60) return null;
  const ms = Date.UTC(year, monthIndex, dayNum, hh, mm, ss);
  // Reject dates such as 31 Feb that Date.UTC would silently roll over.
  const check = new Date(ms);
  if (!Number.isFinite(ms) || check.getUTCDate() !== dayNum || check.getUTCMonth() !== monthIndex)
    return null;
  return ms;
}

// ---------------------------------------------------------------------------------------------
// HTTP error answers (non-2xx)

export interface ClassifyResponseInput {
  status: number;
  headers: Headers;
  bodyText: string;
  method: string;
  /** Request path without the query string. */
  path: string;
  now?: number;
  /** Strings to scrub from any text taken from the response (the client passes its API key). */
  secrets?: readonly string[];
  /** Set when the body was cut off at the client's size limit (it is then not parsed). */
  bodyTruncated?: boolean;
}

interface ParsedErrorBody {
  code: string | null;
  message: string | null;
  param: string | null;
  /** Short description of the body when it is not a StandardAPIError envelope. */
  shape: string | null;
}

function parseErrorBody(bodyText: string, headers: Headers, truncated: boolean): ParsedErrorBody {
  const none = (shape: string): ParsedErrorBody => ({ code: null, message: null, param: null, shape });
  if (truncated) return none('oversized body');
  if (bodyText.trim() === '') return none('empty body');
  let json: unknown;
  try {
    json = JSON.parse(bodyText);
  } catch {
    const contentType = mediaTypeOf(headers);
    return none(contentType ? `non-JSON body, ${contentType}` : 'non-JSON body');
  }
  const parsed = standardApiErrorEnvelopeSchema.safeParse(json);
  if (!parsed.success) return none('JSON body without an error envelope');
  const { code, message, param } = parsed.data.error;
  return { code, message, param: param ?? null, shape: null };
}

interface StatusClass {
  kind: HeyGenFailureKind;
  code?: string;
}

function classifyStatus(status: number, heygenCode: string | null): StatusClass {
  if (status === 429) return { kind: 'rate_limited' };
  if (status === 409) {
    // The spec documents exactly one 409: request_in_progress (same Idempotency-Key still in flight).
    // - that code, or a 409 whose body we cannot read (a proxy may have replaced it): in_progress,
    //   i.e. retry soon with the same key; a real conflict will keep answering and stay visible.
    // - any OTHER explicit code is an undocumented conflict that resending the same request with the
    //   same key cannot resolve, so we do not loop on it: `invalid` (terminal, with HeyGen's code and
    //   message for the operator).
    return heygenCode === null || heygenCode === 'request_in_progress'
      ? { kind: 'in_progress' }
      : { kind: 'invalid' };
  }
  if (status === 401 || status === 402 || status === 403 || status === 407) return { kind: 'needs_operator' };
  if (status === 404 || status === 410) return { kind: 'not_found' };
  // Request Timeout and Too Early: transient by definition.
  if (status === 408 || status === 425) return { kind: 'retryable' };
  if (status >= 500 && status <= 599) return { kind: 'retryable' };
  // Redirects are not followed (they could carry x-api-key to another origin); a redirect from the
  // API means a misconfigured base URL, which an operator must fix.
  if (status >= 300 && status <= 399)
    return { kind: 'needs_operator', code: LOCAL_ERROR_CODES.unexpectedRedirect };
  // 400, 405, 413, 415, 422 and the rest of 4xx: our request is wrong; resending it will not help.
  if (status >= 400 && status <= 499) return { kind: 'invalid' };
  // Anything else (a 1xx or 2xx passed here by mistake, a nonsense status): assume transient.
  return { kind: 'retryable' };
}

/** Classifies a non-2xx HeyGen answer. Tolerates any body (HTML from a proxy, truncated JSON, nothing). */
export function classifyHeyGenResponse(input: ClassifyResponseInput): HeyGenError {
  const { status, headers, method } = input;
  const secrets = input.secrets ?? [];
  const path = safePath(input.path, secrets);
  const body = parseErrorBody(input.bodyText, headers, input.bodyTruncated ?? false);
  const cls = classifyStatus(status, body.code);
  const code = body.code !== null ? sanitizeOutsideText(body.code, secrets, 64) : (cls.code ?? null);
  const param = body.param !== null ? sanitizeOutsideText(body.param, secrets, 64) : null;

  let retryAfterMs: number | null = null;
  const retryAfterHeader = headers.get('retry-after');
  if (cls.kind === 'rate_limited') {
    retryAfterMs = parseRetryAfter(retryAfterHeader, input.now ?? Date.now());
  } else if (status === 503 && retryAfterHeader !== null) {
    retryAfterMs = parseRetryAfter(retryAfterHeader, input.now ?? Date.now());
  }

  const what =
    body.message !== null
      ? sanitizeOutsideText(body.message, secrets)
      : status >= 300 && status <= 399
        ? `unexpected redirect (not followed)${body.shape ? `; ${body.shape}` : ''}`
        : (body.shape ?? 'no details');
  const parts = [`HeyGen ${status}`];
  if (code !== null) parts.push(code);
  let message = `${parts.join(' ')} on ${method} ${path}: ${what}`;
  if (param !== null) message += ` (param: ${param})`;
  if (retryAfterMs !== null) message += ` (retry after ${formatSeconds(retryAfterMs)})`;

  return new HeyGenError({
    kind: cls.kind,
    message,
    method,
    path,
    status,
    code,
    param,
    retryAfterMs,
    requestId: requestIdFrom(headers),
  });
}

// ---------------------------------------------------------------------------------------------
// Transport failures (no HTTP answer)

export interface TransportErrorContext {
  method: string;
  path: string;
  timeoutMs: number;
  secrets?: readonly string[];
}

const TIMEOUT_CAUSE_CODES = new Set([
  'ETIMEDOUT',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);

interface CauseFacts {
  names: string[];
  codes: string[];
  innermostMessage: string | null;
}

/** Walks err -> err.cause -> ... (bounded) and collects only names, codes and the innermost message. */
function causeFacts(err: unknown): CauseFacts {
  const facts: CauseFacts = { names: [], codes: [], innermostMessage: null };
  let current: unknown = err;
  for (let depth = 0; depth < 6 && typeof current === 'object' && current !== null; depth++) {
    const rec = current as { name?: unknown; code?: unknown; message?: unknown; cause?: unknown };
    if (typeof rec.name === 'string') facts.names.push(rec.name);
    if (typeof rec.code === 'string') facts.codes.push(rec.code);
    if (typeof rec.message === 'string' && rec.message !== '') facts.innermostMessage = rec.message;
    current = rec.cause;
  }
  return facts;
}

/**
 * Classifies a failure where no HTTP answer arrived. Timeouts and aborts -> retryable `timeout`;
 * everything else (fetch's TypeError, ECONNREFUSED, ECONNRESET, DNS, TLS, a socket closed mid-body, and
 * anything we do not recognise) -> retryable `network_error`: without an answer we cannot know that the
 * request was wrong, and treating an unknown transport failure as terminal would lose work.
 * Only the error's name/code and a scrubbed, truncated cause message are kept.
 */
export function classifyHeyGenTransportError(err: unknown, ctx: TransportErrorContext): HeyGenError {
  const { method, timeoutMs } = ctx;
  const secrets = ctx.secrets ?? [];
  const path = safePath(ctx.path, secrets);
  const facts = causeFacts(err);
  const isTimeout =
    facts.names.some((n) => n === 'TimeoutError' || n === 'AbortError') ||
    facts.codes.some((c) => TIMEOUT_CAUSE_CODES.has(c));
  if (isTimeout) {
    return new HeyGenError({
      kind: 'retryable',
      code: LOCAL_ERROR_CODES.timeout,
      message: `HeyGen request ${method} ${path} timed out after ${timeoutMs}ms`,
      method,
      path,
    });
  }
  const causeCode = facts.codes.find((c) => /^[A-Z][A-Z0-9_]{1,40}$/.test(c)) ?? null;
  const detail = facts.innermostMessage !== null ? sanitizeText(facts.innermostMessage, secrets) : null;
  let message = `HeyGen request ${method} ${path} failed: network error`;
  if (causeCode !== null) message += ` ${causeCode}`;
  if (detail !== null && detail !== '') message += ` (${detail})`;
  return new HeyGenError({
    kind: 'retryable',
    code: LOCAL_ERROR_CODES.networkError,
    message,
    method,
    path,
  });
}

// ---------------------------------------------------------------------------------------------
// Failures we produce ourselves

export interface InvalidResponseInput {
  status: number;
  method: string;
  path: string;
  /** What was wrong, e.g. "body is not JSON" or a summary of schema issues (our words, no values). */
  problem: string;
  /**
   * The body, when its size and type help to tell what came back (e.g. an HTML page instead of
   * JSON). Only its length is used: its content never goes into the message, because a 2xx body
   * can hold the consent link.
   */
  bodyText?: string;
  headers?: Headers;
  secrets?: readonly string[];
}

/** A 2xx answer whose body does not match the spec: retryable (`invalid_response`). */
export function invalidHeyGenResponse(input: InvalidResponseInput): HeyGenError {
  const secrets = input.secrets ?? [];
  const path = safePath(input.path, secrets);
  let message = `HeyGen ${input.status} on ${input.method} ${path}: invalid response: ${sanitizeText(input.problem, secrets)}`;
  if (input.bodyText !== undefined) {
    const bytes = new TextEncoder().encode(input.bodyText).length;
    const contentType = mediaTypeOf(input.headers) ?? 'no content type';
    message += bytes === 0 ? ` (empty body, ${contentType})` : ` (${contentType}, ${bytes} bytes)`;
  }
  return new HeyGenError({
    kind: 'retryable',
    code: LOCAL_ERROR_CODES.invalidResponse,
    message,
    method: input.method,
    path,
    status: input.status,
    requestId: input.headers ? requestIdFrom(input.headers) : null,
  });
}

/** A request we refuse to send because an argument is unsafe or breaks the spec (nothing was sent). */
export function invalidHeyGenRequest(input: {
  method: string;
  path: string;
  param: string;
  problem: string;
  secrets?: readonly string[];
}): HeyGenError {
  const path = safePath(input.path, input.secrets ?? []);
  return new HeyGenError({
    kind: 'invalid',
    code: LOCAL_ERROR_CODES.invalidParameter,
    param: input.param,
    message: `HeyGen request ${input.method} ${path} not sent: invalid ${input.param}: ${input.problem}`,
    method: input.method,
    path,
  });
}

/** The process-wide rate gate is closed after a 429: nothing was sent. */
export function rateGateClosedError(input: {
  method: string;
  path: string;
  closedForMs: number;
  secrets?: readonly string[];
}): HeyGenError {
  const path = safePath(input.path, input.secrets ?? []);
  const retryAfterMs = Math.max(1, Math.ceil(input.closedForMs));
  return new HeyGenError({
    kind: 'rate_limited',
    code: LOCAL_ERROR_CODES.rateGateClosed,
    retryAfterMs,
    message: `HeyGen request ${input.method} ${path} not sent: rate gate closed after a 429 (retry after ${formatSeconds(retryAfterMs)})`,
    method: input.method,
    path,
  });
}
