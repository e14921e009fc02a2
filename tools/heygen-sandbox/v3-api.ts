import type { IncomingMessage } from 'node:http';

import type { SandboxCore } from './core.js';
import type { ApiResponse } from './http.js';
import {
  apiError,
  decodePathSegment,
  invalidParameter,
  methodNotAllowed,
  notFound,
  readJsonBody,
  singleHeader,
} from './http.js';
import { IDEMPOTENCY_KEY_PATTERN } from './idempotency.js';
import { createAvatarRequestSchema, createConsentRequestSchema, listQuerySchema } from './schemas.js';
import type { FaultSpec, LedgerEntry } from './types.js';

export type ApiOutcome =
  | { kind: 'json'; response: ApiResponse; replayed: boolean }
  | { kind: 'raw'; status: number; contentType: string; body: string }
  | { kind: 'hang' };

const json = (response: ApiResponse, replayed = false): ApiOutcome => ({ kind: 'json', response, replayed });

const AUTH_FAILED_MESSAGE = 'Invalid or expired API key. Verify your x-api-key header.';
const RATE_LIMITED_MESSAGE =
  'Too many requests. Retry after the duration specified in the Retry-After header.';

/**
 * One /v3 request: faults first (they stand for the infrastructure in front of HeyGen), then
 * authentication, the per-key rate limit, and the route.
 */
export async function handleApiRequest(
  core: SandboxCore,
  req: IncomingMessage,
  url: URL,
  entry: LedgerEntry,
): Promise<ApiOutcome> {
  const method = req.method ?? 'GET';
  const fault = core.faults.take(method, url.pathname);
  if (fault) {
    entry.fault = fault.kind;
    if (fault.kind !== 'latency') return faultOutcome(fault);
    await core.sleep(fault.ms);
  }

  const client = core.authenticate(req);
  if (!client) return json(apiError(401, 'authentication_failed', AUTH_FAILED_MESSAGE));
  entry.authScheme = client.scheme;

  const limit = core.rateLimiter?.take(client.clientId);
  if (limit && !limit.allowed) return json(rateLimited(String(limit.retryAfterSeconds)));

  return route(core, req, method, url);
}

function faultOutcome(fault: Exclude<FaultSpec, { kind: 'latency' }>): ApiOutcome {
  switch (fault.kind) {
    case 'hang':
      return { kind: 'hang' };
    case 'body':
      return {
        kind: 'raw',
        status: fault.status ?? 200,
        contentType: fault.contentType ?? 'application/json',
        body: fault.body,
      };
    case 'rate_limit':
      return json(rateLimited(fault.retryAfter));
    case 'status':
      return json(serverError(fault.status));
  }
}

function rateLimited(retryAfter: string): ApiResponse {
  return apiError(429, 'rate_limit_exceeded', RATE_LIMITED_MESSAGE, null, { 'retry-after': retryAfter });
}

function serverError(status: 500 | 502 | 503 | 504): ApiResponse {
  switch (status) {
    case 500:
      return apiError(500, 'internal_error', 'An internal error occurred. Please retry.');
    case 502:
      return apiError(502, 'bad_gateway', 'Bad gateway. Please retry.');
    case 503:
      return apiError(503, 'service_unavailable', 'The service is temporarily unavailable. Please retry.');
    case 504:
      return apiError(504, 'gateway_timeout', 'The upstream service timed out. Please retry.');
  }
}

async function route(core: SandboxCore, req: IncomingMessage, method: string, url: URL): Promise<ApiOutcome> {
  const [, version, collection, rawGroupId, action, ...extra] = url.pathname.split('/');
  if (version !== 'v3' || collection !== 'avatars' || extra.length > 0) return json(notFound());

  if (rawGroupId === undefined) {
    if (method === 'GET') return json(listGroups(core, url));
    if (method === 'POST') return idempotent(core, req, 'POST /v3/avatars', () => createAvatar(core, req));
    return json(methodNotAllowed(['GET', 'POST']));
  }

  const groupId = decodePathSegment(rawGroupId);
  if (!groupId) return json(notFound());

  if (action === undefined) {
    if (method !== 'GET') return json(methodNotAllowed(['GET']));
    const group = core.groups.get(groupId);
    return json(group ? { status: 200, body: { data: group } } : groupNotFound());
  }

  if (action !== 'consent') return json(notFound());
  if (method !== 'POST') return json(methodNotAllowed(['POST']));
  // Scope is per endpoint and per path parameter: the same key on another group is independent.
  return idempotent(core, req, `POST /v3/avatars/{group_id}/consent ${groupId}`, (key) =>
    createConsent(core, req, groupId, key),
  );
}

function groupNotFound(): ApiResponse {
  return apiError(404, 'avatar_group_not_found', 'Avatar group not found.');
}

/**
 * Idempotency-Key handling per the spec: same key + same scope within 24 h (sandbox clock) replays
 * the first successful response, whatever the new body says; while the first is in flight, 409.
 */
async function idempotent(
  core: SandboxCore,
  req: IncomingMessage,
  scope: string,
  run: (idempotencyKey: string | null) => Promise<ApiResponse>,
): Promise<ApiOutcome> {
  const key = singleHeader(req, 'idempotency-key');
  if (key === undefined) return json(await run(null));
  if (!IDEMPOTENCY_KEY_PATTERN.test(key)) {
    return json(
      apiError(
        400,
        'invalid_parameter',
        'Idempotency-Key must be 1-255 characters from [A-Za-z0-9_:.-].',
        'Idempotency-Key',
      ),
    );
  }
  const begun = core.idempotency.begin(JSON.stringify([scope, key]));
  if (begun.kind === 'in_progress') {
    return json(
      apiError(
        409,
        'request_in_progress',
        'A request with this Idempotency-Key is already in progress. Retry shortly.',
      ),
    );
  }
  if (begun.kind === 'replay') return json(begun.response, true);
  try {
    const response = await run(key);
    begun.finish(response);
    return json(response);
  } catch (error) {
    begun.finish(null);
    throw error;
  }
}

async function createConsent(
  core: SandboxCore,
  req: IncomingMessage,
  groupId: string,
  idempotencyKey: string | null,
): Promise<ApiResponse> {
  const body = await readJsonBody(req, createConsentRequestSchema);
  if (!body.ok) return body.response;
  const group = core.groups.get(groupId);
  if (!group) return groupNotFound();
  // Sandbox decision (HeyGen documents nothing here): a group that needs no consent
  // (consent_status null) cannot start a consent flow.
  if (group.consent_status === null) {
    return apiError(400, 'invalid_parameter', 'Consent is not required for this avatar group.', 'group_id');
  }
  // Any other consent_status (pending, approved, unknown) gets a fresh link: earlier links stay valid,
  // and a link for an already approved group changes nothing when used.
  await core.sleep(core.processingLatencyMs);
  if (!core.groups.has(groupId)) return groupNotFound();
  const record = core.consents.create({
    groupId,
    idempotencyKey,
    rerouteUrl: body.value.reroute_url,
    consentText: body.value.consent_text,
    publicUrl: core.publicUrl,
  });
  return { status: 200, body: { data: { avatar_group: core.groups.get(groupId), url: record.url } } };
}

async function createAvatar(core: SandboxCore, req: IncomingMessage): Promise<ApiResponse> {
  const body = await readJsonBody(req, createAvatarRequestSchema);
  if (!body.ok) return body.response;
  const { type, name } = body.value;
  // Only digital twins need the person's consent; photo and prompt avatars are ready at once.
  const group = core.groups.create(
    type === 'digital_twin'
      ? { name, consentStatus: 'pending', status: 'pending_consent' }
      : { name, consentStatus: null, status: 'completed' },
  );
  return { status: 200, body: { data: group } };
}

const CURSOR_PATTERN = /^after:(\d{1,15})$/;

function listGroups(core: SandboxCore, url: URL): ApiResponse {
  const parsed = listQuerySchema.safeParse(Object.fromEntries(url.searchParams));
  if (!parsed.success) return invalidParameter(parsed.error);
  const { limit = 20, token } = parsed.data;
  let beforeSeq: number | null = null;
  // An empty token means "first page", as clients often send token= on the first call.
  if (token) {
    const match = CURSOR_PATTERN.exec(Buffer.from(token, 'base64url').toString('utf8'));
    if (!match?.[1])
      return apiError(400, 'invalid_parameter', 'token is not a valid pagination token.', 'token');
    beforeSeq = Number(match[1]);
  }
  const page = core.groups.page(limit, beforeSeq);
  return {
    status: 200,
    body: {
      data: page.items,
      has_more: page.nextCursor !== null,
      next_token:
        page.nextCursor === null ? null : Buffer.from(`after:${page.nextCursor}`).toString('base64url'),
    },
  };
}
