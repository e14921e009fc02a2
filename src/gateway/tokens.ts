/**
 * Signed return links for the consent-return gateway.
 *
 * HeyGen sends the person's browser to `reroute_url` after the consent page. We point it at
 * `${PUBLIC_BASE_URL}/consent-return?t=<token>`, where the token names the workflow to nudge and the
 * caller's own final redirect. The redirect is not signed by HeyGen, so the token only proves that
 * *we* minted the link: it lets the gateway send `checkNow` (a hint) and pick the destination, never
 * more.
 *
 * Token format (v1): `base64url(JSON payload) "." base64url(HMAC-SHA256(key, CONTEXT + payloadPart))`
 * - payload: `{ v: 1, wid, rid?, exp (unix seconds), to? }`, keys in that order.
 * - The MAC covers the payload segment exactly as sent, with a context prefix so a key shared with
 *   some other use can never produce a valid token by accident.
 * - Both segments must be canonical base64url (no padding, no stray bits), so a token has exactly
 *   one spelling.
 *
 * Secrets (`GATEWAY_SECRET`, or `GATEWAY_SECRETS` for rotation):
 * - Each secret is `hex:<hex>`, `base64:<base64 or base64url>`, or any other text taken as its UTF-8
 *   bytes. After decoding it must be at least 32 bytes and not one character (or a short pattern)
 *   repeated. Surrounding whitespace is ignored. In `GATEWAY_SECRETS` a plain secret cannot contain
 *   a comma (use `hex:` or `base64:`), and no secret may be listed twice.
 * - Rotation: `GATEWAY_SECRETS=new,old`: the first secret signs, every listed secret verifies.
 *   Roll out a new secret by listing it second everywhere, then first, then drop the old one once
 *   the tokens it signed have expired.
 * - The worker (which builds the links) and the gateway (which checks them) must use the same
 *   secrets: both parse them with `parseGatewaySecretsEnv`.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { inspect } from 'node:util';
import { z } from 'zod';
import { envVar, formatIssues } from '../config/env.js';
import { parseDuration } from '../contract/index.js';
import { isLocalHostname, rerouteUrlSchema } from '../rules/input.js';
import { duplicatePositions, isRepeatedPattern, REPEATED_PATTERN_RULE } from '../weak-secrets.js';

export const RETURN_TOKEN_VERSION = 1;
export const RETURN_PATH = '/consent-return';
export const MIN_SECRET_BYTES = 32;
/** More secrets than this is a misconfiguration, not a rotation. */
export const MAX_SECRETS = 8;
/** Verification refuses longer input before doing any work. */
export const MAX_TOKEN_LENGTH = 1800;
/** HeyGen's `reroute_url` and browsers are happy well below 2048 characters; we stay under this. */
export const MAX_RETURN_URL_LENGTH = 2000;
/** Workflow IDs in this project are `avatar-consent-<groupId ≤128>`; anything longer would bloat the URL. */
export const MAX_WORKFLOW_ID_LENGTH = 400;
/** Default token lifetime: longer than the longest consent-link TTL (7d), so a late click still works. */
export const DEFAULT_RETURN_TOKEN_TTL = '8d';

const MAC_CONTEXT = 'avatar-consent/consent-return/v1\n';
const MAC_BYTES = 32;
const base64UrlSegment = /^[A-Za-z0-9_-]+$/;

// ---------------------------------------------------------------------------------------------
// Secrets
// ---------------------------------------------------------------------------------------------

/** A configuration problem (secrets, base URL). The message names variables, never their values. */
export class GatewayConfigError extends Error {
  override readonly name = 'GatewayConfigError';
}

/**
 * The HMAC keys. The bytes stay inside this object: it prints as a count only (console.log,
 * JSON.stringify, util.inspect), so a stray log line can never leak a key.
 */
export class GatewaySecrets {
  readonly #keys: readonly Buffer[];

  /** Raw keys, each at least MIN_SECRET_BYTES; the first signs. Throws GatewayConfigError otherwise. */
  constructor(keys: readonly Uint8Array[]) {
    if (keys.length === 0 || keys.length > MAX_SECRETS) {
      throw new GatewayConfigError(`Between 1 and ${MAX_SECRETS} gateway secrets are required`);
    }
    if (keys.some((key) => key.length < MIN_SECRET_BYTES)) {
      throw new GatewayConfigError(`Every gateway secret must be at least ${MIN_SECRET_BYTES} bytes`);
    }
    // Copies: later changes to the caller's buffers must not change our keys.
    this.#keys = keys.map((key) => Buffer.from(key));
  }

  /** Parses secret texts (see the module comment for the encodings); the first one signs. */
  static fromTexts(texts: readonly string[]): GatewaySecrets {
    const result = secretListSchema.safeParse(texts);
    if (!result.success)
      throw new GatewayConfigError(`Invalid gateway secrets: ${formatIssues(result.error)}`);
    return new GatewaySecrets(result.data);
  }

  get count(): number {
    return this.#keys.length;
  }

  /** MAC with the signing (first) key. */
  sign(data: string): Buffer {
    return createHmac('sha256', this.#keys[0]!).update(data, 'utf8').digest();
  }

  /** True when `mac` matches under any key. Compares in constant time and always tries every key. */
  verify(data: string, mac: Buffer): boolean {
    if (mac.length !== MAC_BYTES) return false;
    let matched = false;
    for (const key of this.#keys) {
      const expected = createHmac('sha256', key).update(data, 'utf8').digest();
      if (timingSafeEqual(expected, mac)) matched = true;
    }
    return matched;
  }

  toJSON(): string {
    return this.toString();
  }

  toString(): string {
    return `[GatewaySecrets: ${this.#keys.length} key(s)]`;
  }

  [inspect.custom](): string {
    return this.toString();
  }
}

/** Decodes one secret text; issues never include the value. */
const secretSchema = z.string().transform((raw, ctx): Buffer => {
  const text = raw.trim();
  let bytes: Buffer;
  if (text.startsWith('hex:')) {
    const hex = text.slice(4);
    if (!/^(?:[0-9a-fA-F]{2})+$/.test(hex)) {
      ctx.addIssue({ code: 'custom', message: 'after "hex:" must be an even number of hex digits' });
      return z.NEVER;
    }
    bytes = Buffer.from(hex, 'hex');
  } else if (text.startsWith('base64:')) {
    const b64 = text.slice(7);
    if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(b64)) {
      ctx.addIssue({ code: 'custom', message: 'after "base64:" must be base64 or base64url' });
      return z.NEVER;
    }
    bytes = Buffer.from(b64, 'base64');
  } else {
    bytes = Buffer.from(text, 'utf8');
  }
  if (bytes.length < MIN_SECRET_BYTES) {
    ctx.addIssue({
      code: 'custom',
      message: `must be at least ${MIN_SECRET_BYTES} bytes after decoding (got ${bytes.length}); e.g. "hex:$(openssl rand -hex 32)"`,
    });
    return z.NEVER;
  }
  return bytes;
});

/**
 * A secret read from the environment: also not a hand-typed pattern ("aaaa…", "hex:0000…").
 * (GatewaySecrets itself accepts any bytes of the right length, for tests and tools.)
 */
const envSecretSchema = secretSchema.superRefine((bytes, ctx) => {
  if (isRepeatedPattern(bytes)) ctx.addIssue({ code: 'custom', message: REPEATED_PATTERN_RULE });
});

/** Rotation lists the old and the new secret: the same one twice is a copy-paste slip. */
function noDuplicateSecrets(keys: readonly Buffer[], ctx: z.RefinementCtx): void {
  for (const [first, second] of duplicatePositions(keys)) {
    ctx.addIssue({
      code: 'custom',
      message: `entries ${first} and ${second} are the same secret; list each secret once`,
    });
  }
}

const secretListSchema = z
  .array(secretSchema)
  .min(1, 'at least one secret is required')
  .max(MAX_SECRETS, `at most ${MAX_SECRETS} secrets`);

/**
 * `GATEWAY_SECRET` (one secret) or `GATEWAY_SECRETS` (comma-separated, first signs): exactly one of
 * the two. Output: the parsed GatewaySecrets.
 */
export const gatewaySecretsEnvSchema = z
  .object({
    GATEWAY_SECRET: envVar(envSecretSchema.optional()),
    GATEWAY_SECRETS: envVar(
      z
        .string()
        .transform((list) => list.split(',').map((part) => part.trim()))
        .pipe(
          z
            .array(z.string().min(1, 'must not contain an empty entry').pipe(envSecretSchema))
            .max(MAX_SECRETS, `at most ${MAX_SECRETS} secrets`)
            .superRefine(noDuplicateSecrets),
        )
        .optional(),
    ),
  })
  .transform((env, ctx) => {
    if (env.GATEWAY_SECRET && env.GATEWAY_SECRETS) {
      ctx.addIssue({
        code: 'custom',
        path: ['GATEWAY_SECRETS'],
        message: 'set GATEWAY_SECRET or GATEWAY_SECRETS, not both',
      });
      return z.NEVER;
    }
    const keys = env.GATEWAY_SECRETS ?? (env.GATEWAY_SECRET ? [env.GATEWAY_SECRET] : []);
    if (keys.length === 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['GATEWAY_SECRET'],
        message: 'is required (or GATEWAY_SECRETS for rotation), e.g. "hex:$(openssl rand -hex 32)"',
      });
      return z.NEVER;
    }
    return keys;
  });

/** Issues with the secret variables, for callers that merge them with their own (all errors at once). */
export function gatewaySecretsIssues(
  env: Record<string, string | undefined>,
): { secrets: GatewaySecrets; issues: [] } | { secrets: undefined; issues: z.core.$ZodIssue[] } {
  const result = gatewaySecretsEnvSchema.safeParse(env);
  if (!result.success) return { secrets: undefined, issues: result.error.issues };
  return { secrets: new GatewaySecrets(result.data), issues: [] };
}

/** Parses `GATEWAY_SECRET` / `GATEWAY_SECRETS`; throws GatewayConfigError naming every problem. */
export function parseGatewaySecretsEnv(env: Record<string, string | undefined>): GatewaySecrets {
  const parsed = gatewaySecretsIssues(env);
  if (!parsed.secrets) {
    throw new GatewayConfigError(`Invalid gateway secrets: ${formatIssues(parsed.issues)}`);
  }
  return parsed.secrets;
}

// ---------------------------------------------------------------------------------------------
// Tokens
// ---------------------------------------------------------------------------------------------

export interface ReturnTokenPayload {
  v: typeof RETURN_TOKEN_VERSION;
  /** The workflow to nudge. */
  wid: string;
  /** firstExecutionRunId, for logs (the signal itself targets the latest run of `wid`). */
  rid?: string;
  /** Expiry, unix seconds: the token is valid while now < exp. */
  exp: number;
  /** The caller's final redirect (their `rerouteUrl`); absent → the gateway's thank-you page. */
  to?: string;
}

const payloadSchema = z.strictObject({
  v: z.literal(RETURN_TOKEN_VERSION),
  wid: z.string().min(1).max(MAX_WORKFLOW_ID_LENGTH),
  rid: z.string().min(1).max(128).optional(),
  exp: z
    .number()
    .int()
    .positive()
    .max(Number.MAX_SAFE_INTEGER / 1000),
  to: rerouteUrlSchema.optional(),
});

export type ReturnTokenErrorCode =
  /** Not a token: wrong shape, bad base64url, not JSON, or fields that do not fit. */
  | 'malformed'
  /** Well formed but the MAC matches none of the secrets (tampered, or signed with another key). */
  | 'bad_signature'
  /** Authentic but past `exp`. */
  | 'expired'
  /** Authentic but a payload version this gateway does not know. */
  | 'unsupported_version';

/** The only error `verifyReturnToken` throws. Its message never contains the token. */
export class ReturnTokenError extends Error {
  override readonly name = 'ReturnTokenError';
  constructor(
    readonly code: ReturnTokenErrorCode,
    message: string,
    /** Set once the MAC checked out (expired, unsupported_version), for logs. */
    readonly workflowId?: string,
  ) {
    super(message);
  }
}

/** A problem building a token or link (a programming or configuration error, not a visitor's). */
export class ReturnLinkError extends Error {
  override readonly name = 'ReturnLinkError';
  constructor(
    readonly code: 'invalid_payload' | 'too_long' | 'invalid_base_url',
    message: string,
  ) {
    super(message);
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Decodes canonical base64url only: re-encoding must give the same text. */
function decodeSegment(segment: string): Buffer | undefined {
  if (!base64UrlSegment.test(segment)) return undefined;
  const bytes = Buffer.from(segment, 'base64url');
  return bytes.toString('base64url') === segment ? bytes : undefined;
}

/** Signs a payload. Throws ReturnLinkError when the payload is invalid or already expired at `nowMs`. */
export function signReturnToken(
  payload: ReturnTokenPayload,
  secrets: GatewaySecrets,
  nowMs: number = Date.now(),
): string {
  const parsed = payloadSchema.safeParse(payload);
  if (!parsed.success) {
    throw new ReturnLinkError(
      'invalid_payload',
      `Invalid return-token payload: ${formatIssues(parsed.error)}`,
    );
  }
  const p = parsed.data;
  if (p.exp * 1000 <= nowMs) {
    throw new ReturnLinkError('invalid_payload', 'Invalid return-token payload: exp is not in the future');
  }
  // Explicit key order: the same payload always gives the same token.
  const canonical: ReturnTokenPayload = {
    v: p.v,
    wid: p.wid,
    ...(p.rid !== undefined ? { rid: p.rid } : {}),
    exp: p.exp,
    ...(p.to !== undefined ? { to: p.to } : {}),
  };
  const payloadPart = Buffer.from(JSON.stringify(canonical), 'utf8').toString('base64url');
  const macPart = secrets.sign(MAC_CONTEXT + payloadPart).toString('base64url');
  return `${payloadPart}.${macPart}`;
}

/**
 * Checks a token and returns its payload. Throws ReturnTokenError (and nothing else) with code
 * malformed, bad_signature, unsupported_version or expired. Nothing in the payload is read before
 * the MAC checks out.
 */
export function verifyReturnToken(
  token: unknown,
  secrets: GatewaySecrets,
  nowMs: number = Date.now(),
): ReturnTokenPayload {
  if (typeof token !== 'string' || token.length === 0 || token.length > MAX_TOKEN_LENGTH) {
    throw new ReturnTokenError('malformed', 'The return token is missing or has an impossible length');
  }
  const dot = token.indexOf('.');
  if (dot <= 0 || dot !== token.lastIndexOf('.')) {
    throw new ReturnTokenError('malformed', 'The return token is not "<payload>.<mac>"');
  }
  const payloadPart = token.slice(0, dot);
  const payloadBytes = decodeSegment(payloadPart);
  const mac = decodeSegment(token.slice(dot + 1));
  if (!payloadBytes || !mac || mac.length !== MAC_BYTES) {
    throw new ReturnTokenError('malformed', 'The return token is not canonical base64url');
  }
  if (!secrets.verify(MAC_CONTEXT + payloadPart, mac)) {
    throw new ReturnTokenError('bad_signature', 'The return token was not signed by any configured secret');
  }

  let json: unknown;
  try {
    json = JSON.parse(utf8.decode(payloadBytes));
  } catch {
    throw new ReturnTokenError('malformed', 'The return token payload is not JSON');
  }
  const wid =
    typeof json === 'object' && json !== null && 'wid' in json && typeof json.wid === 'string'
      ? json.wid.slice(0, MAX_WORKFLOW_ID_LENGTH)
      : undefined;
  if (typeof json !== 'object' || json === null || !('v' in json) || json.v !== RETURN_TOKEN_VERSION) {
    throw new ReturnTokenError('unsupported_version', 'The return token has an unsupported version', wid);
  }
  const parsed = payloadSchema.safeParse(json);
  if (!parsed.success) {
    throw new ReturnTokenError('malformed', 'The return token payload has invalid fields', wid);
  }
  if (nowMs >= parsed.data.exp * 1000) {
    throw new ReturnTokenError('expired', 'The return token has expired', parsed.data.wid);
  }
  return parsed.data;
}

/** A short, non-reversible tag for logs, so a token can be correlated without being logged. */
export function tokenFingerprint(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex').slice(0, 12);
}

// ---------------------------------------------------------------------------------------------
// Return URLs
// ---------------------------------------------------------------------------------------------

/**
 * The gateway's public base URL: https (plain http only for localhost), optionally with a path
 * prefix (behind a reverse proxy), no query, fragment or credentials. Trailing slashes are dropped.
 */
export const publicBaseUrlSchema = z
  .string()
  .trim()
  .refine((text) => {
    if (!URL.canParse(text)) return false;
    const url = new URL(text);
    const schemeOk = url.protocol === 'https:' || (url.protocol === 'http:' && isLocalHostname(url.hostname));
    return schemeOk && !url.search && !url.hash && !url.username && !url.password && !text.includes('?');
  }, 'must be an https URL without query or fragment (plain http only for localhost)')
  .transform((text) => text.replace(/\/+$/, ''));

export interface BuildReturnUrlOptions {
  /** e.g. https://consent.example.com (or with a path prefix). */
  publicBaseUrl: string;
  workflowId: string;
  /** firstExecutionRunId, recorded in the token for logs. */
  runId?: string;
  /** The caller's own `rerouteUrl` (https; http only for localhost). */
  finalRedirect?: string;
  ttlMs: number;
  secrets: GatewaySecrets;
  nowMs?: number;
}

/**
 * `${publicBaseUrl}/consent-return?t=<token>`: what the activity sends to HeyGen as `reroute_url`.
 * Throws ReturnLinkError: invalid_base_url, invalid_payload, or too_long (over MAX_RETURN_URL_LENGTH,
 * e.g. a very long final redirect; callers should then fall back to the plain `rerouteUrl`).
 */
export function buildReturnUrl(options: BuildReturnUrlOptions): string {
  const base = publicBaseUrlSchema.safeParse(options.publicBaseUrl);
  if (!base.success) {
    throw new ReturnLinkError('invalid_base_url', `Invalid publicBaseUrl: ${formatIssues(base.error)}`);
  }
  if (!Number.isFinite(options.ttlMs) || options.ttlMs < 1000) {
    throw new ReturnLinkError('invalid_payload', 'ttlMs must be at least 1000');
  }
  const nowMs = options.nowMs ?? Date.now();
  const token = signReturnToken(
    {
      v: RETURN_TOKEN_VERSION,
      wid: options.workflowId,
      ...(options.runId !== undefined ? { rid: options.runId } : {}),
      exp: Math.floor((nowMs + options.ttlMs) / 1000),
      ...(options.finalRedirect !== undefined ? { to: options.finalRedirect } : {}),
    },
    options.secrets,
    nowMs,
  );
  const url = `${base.data}${RETURN_PATH}?t=${token}`;
  if (url.length > MAX_RETURN_URL_LENGTH || token.length > MAX_TOKEN_LENGTH) {
    throw new ReturnLinkError(
      'too_long',
      `The return URL would be ${url.length} characters (limit ${MAX_RETURN_URL_LENGTH}); shorten the final redirect`,
    );
  }
  return url;
}

// ---------------------------------------------------------------------------------------------
// Worker-side configuration
// ---------------------------------------------------------------------------------------------

export interface ReturnLinkConfig {
  publicBaseUrl: string;
  secrets: GatewaySecrets;
  ttlMs: number;
}

export const returnLinkEnvSchema = z.object({
  PUBLIC_BASE_URL: envVar(publicBaseUrlSchema.optional()),
  GATEWAY_TOKEN_TTL: envVar(
    z
      .string()
      .default(DEFAULT_RETURN_TOKEN_TTL)
      .transform((text, ctx) => {
        const ms = parseDuration(text);
        if (ms === undefined || ms < 60_000 || ms > 90 * 86_400_000) {
          ctx.addIssue({ code: 'custom', message: 'must be a duration between 1m and 90d, e.g. "8d"' });
          return z.NEVER;
        }
        return ms;
      }),
  ),
});

/**
 * For the worker: the return-link settings, or undefined when `PUBLIC_BASE_URL` is unset (the
 * gateway is not deployed; HeyGen then gets the caller's `rerouteUrl` as before). With
 * `PUBLIC_BASE_URL` set, a secret is required. Throws GatewayConfigError listing every problem.
 */
export function loadReturnLinkConfig(
  env: Record<string, string | undefined> = process.env,
): ReturnLinkConfig | undefined {
  if (!env.PUBLIC_BASE_URL?.trim()) return undefined;
  const base = returnLinkEnvSchema.safeParse(env);
  const secrets = gatewaySecretsIssues(env);
  if (!base.success || !secrets.secrets || base.data.PUBLIC_BASE_URL === undefined) {
    const issues = [...(base.success ? [] : base.error.issues), ...secrets.issues];
    throw new GatewayConfigError(`Invalid return-link environment: ${formatIssues(issues)}`);
  }
  return {
    publicBaseUrl: base.data.PUBLIC_BASE_URL,
    secrets: secrets.secrets,
    ttlMs: base.data.GATEWAY_TOKEN_TTL,
  };
}
