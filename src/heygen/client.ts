/**
 * HeyGen API client for the consent flow. Plain code, no Temporal imports: every failure is thrown as a
 * classified `HeyGenError` (see failures.ts) that the activities turn into retries.
 *
 * Every call: validates its arguments (nothing unsafe is ever sent), passes the process-wide RateGate,
 * has a timeout covering the whole exchange (headers and body), does not follow redirects (a redirect
 * could carry x-api-key to another origin), caps the body size, and validates 2xx bodies with zod.
 *
 * Caller cancellation: when the caller's `signal` aborts, the call rejects with `signal.reason` as is
 * (not a HeyGenError), so e.g. Temporal's CancelledFailure propagates unchanged.
 */
import { createRequire } from 'node:module';

import type { z } from 'zod';
import { HEYGEN_HTTP_TIMEOUT_DEFAULT_MS } from '../config/timeouts.js';
import { GROUP_ID_PATTERN, isLocalHostname } from '../rules/input.js';
import { formatIssues } from '../rules/issues.js';

import {
  classifyHeyGenResponse,
  classifyHeyGenTransportError,
  invalidHeyGenRequest,
  invalidHeyGenResponse,
  parseRetryAfter,
  rateGateClosedError,
} from './failures.js';
import { RateGate } from './rate-gate.js';
import {
  createConsentRequestSchema,
  createConsentResponseSchema,
  getAvatarGroupResponseSchema,
  httpsCreateConsentResponseSchema,
  idempotencyKeySchema,
  listAvatarGroupsResponseSchema,
} from './schemas.js';
import type { AvatarGroupItem } from './types.js';

export const DEFAULT_TIMEOUT_MS = HEYGEN_HTTP_TIMEOUT_DEFAULT_MS;
/** Largest body we read; list pages of 50 groups are a few tens of KB. */
export const MAX_BODY_BYTES = 2 * 1024 * 1024;
/** Safe charset for path parameters (the contract's group ID rule): never adds a path segment, query or fragment. */
export { GROUP_ID_PATTERN };

export interface HeyGenClientOptions {
  /** e.g. https://api.heygen.com or the sandbox URL (a path prefix is kept). */
  baseUrl: string;
  /** Sent as `x-api-key`. Never appears in errors or logs. */
  apiKey: string;
  /** Per request (connect, headers and body), default 15 000 ms. */
  timeoutMs?: number;
  /** Share one per worker process; default: a new gate per client. */
  rateGate?: RateGate;
  /** Told of every 429 with its Retry-After (ms), after the gate closed: to close a gate shared by hosts. */
  onRateLimited?: (retryAfterMs: number) => void;
  fetch?: typeof fetch;
  /** Default `avatar-consent/<package version>`. */
  userAgent?: string;
  now?: () => number;
}

export interface CreateConsentBody {
  reroute_url?: string | null;
  consent_text?: string | null;
}

export interface CreateConsentResult {
  avatarGroup: AvatarGroupItem;
  url: string;
}

export interface ListAvatarGroupsOptions {
  /** 1–50 (HeyGen's default is 20). */
  limit?: number;
  token?: string;
  ownership?: string;
  signal?: AbortSignal;
}

export interface ListAvatarGroupsResult {
  data: AvatarGroupItem[];
  hasMore: boolean;
  nextToken: string | null;
}

interface RequestSpec<T> {
  method: 'GET' | 'POST';
  /** Already-encoded path, used in the URL. */
  path: string;
  query?: URLSearchParams;
  headers?: Record<string, string>;
  jsonBody?: unknown;
  schema: z.ZodType<T>;
  signal: AbortSignal | undefined;
}

function packageVersion(): string {
  try {
    // src/heygen/ and dist/heygen/ are both two levels below package.json.
    const pkg: unknown = createRequire(import.meta.url)('../../package.json');
    const version = (pkg as { version?: unknown } | null)?.version;
    return typeof version === 'string' && /^[0-9A-Za-z.+-]{1,64}$/.test(version) ? version : '0.0.0';
  } catch {
    return '0.0.0';
  }
}

const DEFAULT_USER_AGENT = `avatar-consent/${packageVersion()}`;

/**
 * Whether a HeyGen base URL is a local sandbox, the only place consent links may be plain http: this
 * machine (localhost, *.localhost, 127.0.0.0/8, ::1) or a single-label host name, which public DNS
 * never answers (a compose or cluster service such as `http://heygen-sandbox:4010`). The real API
 * has a public, dotted name, and its links are https.
 */
export function isLocalSandboxUrl(url: URL): boolean {
  const host = url.hostname.toLowerCase().replace(/\.$/, '');
  if (isLocalHostname(host) || host.endsWith('.localhost') || /^127(?:\.\d{1,3}){3}$/.test(host)) return true;
  return host !== '' && !host.includes('.') && !host.startsWith('[');
}

function summarizeIssues(error: z.ZodError): string {
  const more = error.issues.length > 3 ? `; and ${error.issues.length - 3} more` : '';
  return `body does not match the spec: ${formatIssues(error.issues.slice(0, 3), { root: '(root)' })}${more}`;
}

async function readBodyCapped(
  res: Response,
  maxBytes: number,
): Promise<{ text: string; truncated: boolean }> {
  if (res.body === null) return { text: '', truncated: false };
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = (await reader.read()) as { done: boolean; value?: Uint8Array };
    if (done || value === undefined) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel().catch(() => undefined);
      return { text: new TextDecoder().decode(Buffer.concat(chunks)), truncated: true };
    }
    chunks.push(value);
  }
  return { text: new TextDecoder().decode(Buffer.concat(chunks)), truncated: false };
}

export class HeyGenClient {
  // ES private fields: invisible to util.inspect, JSON.stringify and enumeration.
  readonly #baseUrl: string;
  readonly #apiKey: string;
  readonly #timeoutMs: number;
  readonly #gate: RateGate;
  readonly #onRateLimited: ((retryAfterMs: number) => void) | undefined;
  readonly #fetch: typeof fetch;
  readonly #userAgent: string;
  readonly #now: () => number;
  readonly #consentResponseSchema: typeof createConsentResponseSchema;

  constructor(opts: HeyGenClientOptions) {
    let base: URL;
    try {
      base = new URL(opts.baseUrl);
    } catch {
      throw new Error('HeyGenClient: baseUrl is not a valid URL');
    }
    if (base.protocol !== 'https:' && base.protocol !== 'http:') {
      throw new Error('HeyGenClient: baseUrl must be http(s)');
    }
    if (base.username !== '' || base.password !== '' || base.search !== '' || base.hash !== '') {
      throw new Error('HeyGenClient: baseUrl must not contain credentials, a query or a fragment');
    }
    // Keep a path prefix (e.g. a sandbox mounted under /heygen), without a trailing slash.
    this.#baseUrl = `${base.origin}${base.pathname.replace(/\/+$/, '')}`;
    this.#consentResponseSchema = isLocalSandboxUrl(base)
      ? createConsentResponseSchema
      : httpsCreateConsentResponseSchema;

    // Visible ASCII only: anything else would be rejected by fetch in a message we do not control.
    if (typeof opts.apiKey !== 'string' || !/^[\x21-\x7e]{1,1024}$/.test(opts.apiKey)) {
      throw new Error('HeyGenClient: apiKey is empty or has characters not allowed in an HTTP header');
    }
    this.#apiKey = opts.apiKey;

    const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    // Node timers overflow above 2^31-1 ms and then fire after 1 ms: reject such values.
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0 || timeoutMs > 2_147_483_647) {
      throw new Error('HeyGenClient: timeoutMs must be a positive number of at most 2147483647');
    }
    this.#timeoutMs = timeoutMs;
    this.#now = opts.now ?? Date.now;
    this.#gate = opts.rateGate ?? new RateGate({ now: this.#now });
    this.#onRateLimited = opts.onRateLimited;
    const customFetch = opts.fetch;
    this.#fetch = customFetch ?? ((input, init) => fetch(input, init));
    const userAgent = opts.userAgent ?? DEFAULT_USER_AGENT;
    if (!/^[\x20-\x7e]{1,256}$/.test(userAgent)) {
      throw new Error('HeyGenClient: userAgent must be 1–256 printable ASCII characters');
    }
    this.#userAgent = userAgent;
  }

  /** The gate this client passes through (shared when one was given). */
  get rateGate(): RateGate {
    return this.#gate;
  }

  /**
   * `POST /v3/avatars/{group_id}/consent`: starts consent and returns the consent page URL, which
   * must be https unless the base URL is a local sandbox (else a retryable invalid_response).
   */
  async createConsent(
    groupId: string,
    body: CreateConsentBody,
    opts: { idempotencyKey: string; signal?: AbortSignal },
  ): Promise<CreateConsentResult> {
    const method = 'POST';
    const template = '/v3/avatars/{group_id}/consent';
    const encodedGroupId = this.#checkGroupId(groupId, method, template);
    const path = `/v3/avatars/${encodedGroupId}/consent`;

    const key = idempotencyKeySchema.safeParse(opts.idempotencyKey);
    if (!key.success) {
      throw invalidHeyGenRequest({
        method,
        path,
        param: 'Idempotency-Key',
        problem: 'must be 1–255 characters of [A-Za-z0-9_:.-]',
        secrets: [this.#apiKey],
      });
    }
    const parsedBody = createConsentRequestSchema.safeParse(body);
    if (!parsedBody.success) {
      const issue = parsedBody.error.issues[0];
      const param = issue?.path.length ? issue.path.map(String).join('.') : 'body';
      const problem = issue?.message ?? 'invalid body';
      throw invalidHeyGenRequest({ method, path, param, problem, secrets: [this.#apiKey] });
    }
    // Only the fields given; HeyGen defaults the rest to null.
    const jsonBody: Record<string, string | null> = {};
    if (parsedBody.data.reroute_url !== undefined) jsonBody.reroute_url = parsedBody.data.reroute_url;
    if (parsedBody.data.consent_text !== undefined) jsonBody.consent_text = parsedBody.data.consent_text;

    const res = await this.#request({
      method,
      path,
      headers: { 'idempotency-key': key.data },
      jsonBody,
      schema: this.#consentResponseSchema,
      signal: opts.signal,
    });
    return { avatarGroup: res.data.avatar_group, url: res.data.url };
  }

  /** `GET /v3/avatars/{group_id}`: the group, including `status` and `consent_status`. */
  async getAvatarGroup(groupId: string, opts: { signal?: AbortSignal } = {}): Promise<AvatarGroupItem> {
    const method = 'GET';
    const encodedGroupId = this.#checkGroupId(groupId, method, '/v3/avatars/{group_id}');
    const res = await this.#request({
      method,
      path: `/v3/avatars/${encodedGroupId}`,
      schema: getAvatarGroupResponseSchema,
      signal: opts.signal,
    });
    return res.data;
  }

  /** `GET /v3/avatars`: one page of avatar groups. */
  async listAvatarGroups(opts: ListAvatarGroupsOptions = {}): Promise<ListAvatarGroupsResult> {
    const method = 'GET';
    const path = '/v3/avatars';
    const query = new URLSearchParams();
    if (opts.limit !== undefined) {
      if (!Number.isInteger(opts.limit) || opts.limit < 1 || opts.limit > 50) {
        throw invalidHeyGenRequest({
          method,
          path,
          param: 'limit',
          problem: 'must be an integer from 1 to 50',
        });
      }
      query.set('limit', String(opts.limit));
    }
    if (opts.token !== undefined) {
      if (opts.token.length < 1 || opts.token.length > 4096) {
        throw invalidHeyGenRequest({ method, path, param: 'token', problem: 'must be 1–4096 characters' });
      }
      query.set('token', opts.token);
    }
    if (opts.ownership !== undefined) {
      if (!/^[A-Za-z0-9_-]{1,64}$/.test(opts.ownership)) {
        throw invalidHeyGenRequest({
          method,
          path,
          param: 'ownership',
          problem: 'must match [A-Za-z0-9_-]{1,64}',
        });
      }
      query.set('ownership', opts.ownership);
    }
    const res = await this.#request({
      method,
      path,
      query,
      schema: listAvatarGroupsResponseSchema,
      signal: opts.signal,
    });
    return { data: res.data, hasMore: res.has_more, nextToken: res.next_token };
  }

  /** Validates and encodes a group id; the error names the path template, never the rejected value. */
  #checkGroupId(groupId: string, method: string, template: string): string {
    if (typeof groupId !== 'string' || !GROUP_ID_PATTERN.test(groupId)) {
      throw invalidHeyGenRequest({
        method,
        path: template,
        param: 'group_id',
        problem: `must match ${GROUP_ID_PATTERN.source}`,
      });
    }
    // The charset already makes this a no-op; encoding anyway keeps the path safe if it ever widens.
    return encodeURIComponent(groupId);
  }

  async #request<T>(spec: RequestSpec<T>): Promise<T> {
    const { method, path, signal } = spec;
    const secrets = [this.#apiKey];

    signal?.throwIfAborted();
    const closedFor = this.#gate.closedFor();
    if (closedFor > 0) throw rateGateClosedError({ method, path, closedForMs: closedFor, secrets });

    const query = spec.query?.toString() ?? '';
    const url = `${this.#baseUrl}${path}${query === '' ? '' : `?${query}`}`;
    const headers: Record<string, string> = {
      accept: 'application/json',
      'user-agent': this.#userAgent,
      'x-api-key': this.#apiKey,
      ...spec.headers,
    };
    let requestBody: string | undefined;
    if (spec.jsonBody !== undefined) {
      headers['content-type'] = 'application/json';
      requestBody = JSON.stringify(spec.jsonBody);
    }

    const timeoutSignal = AbortSignal.timeout(this.#timeoutMs);
    const combined = signal ? AbortSignal.any([signal, timeoutSignal]) : timeoutSignal;

    let res: Response;
    let body: { text: string; truncated: boolean };
    try {
      res = await this.#fetch(url, {
        method,
        headers,
        body: requestBody,
        signal: combined,
        redirect: 'manual',
      });
      // One 429 holds back every call of this process until Retry-After has passed (and, through
      // onRateLimited, every worker: see src/queue-gate.ts). It closes the gate on its headers, not
      // after its body: a request sent meanwhile by another activity would land inside the window.
      if (res.status === 429) {
        const retryAfterMs = parseRetryAfter(res.headers.get('retry-after'), this.#now());
        this.#gate.closeFor(retryAfterMs);
        this.#onRateLimited?.(retryAfterMs);
      }
      // Still under the same signal: a server that stalls mid-body times out too.
      body = await readBodyCapped(res, MAX_BODY_BYTES);
    } catch (err) {
      if (signal?.aborted) throw signal.reason;
      throw classifyHeyGenTransportError(err, { method, path, timeoutMs: this.#timeoutMs, secrets });
    }

    if (res.status < 200 || res.status > 299) {
      const error = classifyHeyGenResponse({
        status: res.status,
        headers: res.headers,
        bodyText: body.text,
        bodyTruncated: body.truncated,
        method,
        path,
        now: this.#now(),
        secrets,
      });
      throw error;
    }

    const invalid = (problem: string, withExcerpt: boolean) =>
      invalidHeyGenResponse({
        status: res.status,
        method,
        path,
        problem,
        headers: res.headers,
        secrets,
        ...(withExcerpt ? { bodyText: body.text } : {}),
      });
    if (body.truncated) throw invalid(`body larger than ${MAX_BODY_BYTES} bytes`, false);
    let json: unknown;
    try {
      json = JSON.parse(body.text);
    } catch {
      throw invalid('body is not JSON', true);
    }
    const parsed = spec.schema.safeParse(json);
    if (!parsed.success) throw invalid(summarizeIssues(parsed.error), false);
    return parsed.data;
  }
}
