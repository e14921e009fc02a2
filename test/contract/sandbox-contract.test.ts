// Contract test: every answer the sandbox gives over real HTTP is validated against HeyGen's own
// OpenAPI text (vendor/heygen/create-avatar-consent.openapi.yaml, vendored: see its README), loaded
// and compiled at run time.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { Ajv2020 } from 'ajv/dist/2020.js';
import type { ValidateFunction } from 'ajv/dist/2020.js';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';

import { startSandbox } from '../../tools/heygen-sandbox/server.js';
import type { AvatarStatus, Sandbox } from '../../tools/heygen-sandbox/types.js';
import { eventually } from '../../tools/kit/eventually.js';

const SPEC_PATH =
  process.env.HEYGEN_SPEC_PATH ??
  fileURLToPath(new URL('../../vendor/heygen/create-avatar-consent.openapi.yaml', import.meta.url));
const SPEC_ID = 'https://spec.heygen.test/create-avatar-consent.json';
const CONSENT_PATH = '/v3/avatars/{group_id}/consent';
const KEY = 'contract-key';

type Json = Record<string, unknown>;

/** A JSON pointer into the spec document, usable as a $ref or with ajv.getSchema. */
function specRef(...parts: string[]): string {
  const encoded = parts.map((p) => encodeURIComponent(p.replaceAll('~', '~0').replaceAll('/', '~1')));
  return `${SPEC_ID}#/${encoded.join('/')}`;
}

let spec: Json;
let ajv: Ajv2020;
let sandbox: Sandbox;

function compile(schema: Json): ValidateFunction {
  return ajv.compile(schema);
}

/** The schema of a documented response of the consent endpoint, following a response $ref. */
function consentResponseRef(status: string): string {
  const responses = (((spec.paths as Json)[CONSENT_PATH] as Json).post as Json).responses as Json;
  const response = responses[status] as Json | undefined;
  if (!response) throw new Error(`the spec documents no ${status} response for POST ${CONSENT_PATH}`);
  const ref = response.$ref;
  if (typeof ref === 'string') {
    const name = ref.replace('#/components/responses/', '');
    return specRef('components', 'responses', name, 'content', 'application/json', 'schema');
  }
  return specRef('paths', CONSENT_PATH, 'post', 'responses', status, 'content', 'application/json', 'schema');
}

// The spec's envelopes do not mark `data`/`error` required, so `{}` would pass them: require the key too.
const withRequired = (ref: string, key: 'data' | 'error'): Json => ({
  allOf: [{ $ref: ref }, { type: 'object', required: [key], properties: { [key]: true } }],
});

const validators = {} as Record<
  | 'consent200'
  | 'consent400'
  | 'consent401'
  | 'consent404'
  | 'consent409'
  | 'consent429'
  | 'errorEnvelope'
  | 'groupEnvelope'
  | 'listEnvelope'
  | 'consentRequest',
  ValidateFunction
>;

beforeAll(async () => {
  spec = parse(readFileSync(SPEC_PATH, 'utf8')) as Json;
  ajv = new Ajv2020({ strict: true, allErrors: true });
  // OpenAPI's own keywords and vendor extensions: known, carrying no validation.
  ajv.addVocabulary([
    'openapi',
    'info',
    'servers',
    'security',
    'tags',
    'paths',
    'components',
    'example',
    'x-cli-visible',
    'x-mcp-visible',
  ]);
  ajv.addSchema(spec, SPEC_ID);

  validators.consent200 = compile(withRequired(consentResponseRef('200'), 'data'));
  for (const status of ['400', '401', '404', '409', '429'] as const) {
    validators[`consent${status}`] = compile(withRequired(consentResponseRef(status), 'error'));
  }
  const standardError = specRef('components', 'schemas', 'StandardAPIError');
  const group = specRef('components', 'schemas', 'AvatarGroupItem');
  // Per API-NOTES: failures are {error: StandardAPIError}; GET group is {data: AvatarGroupItem};
  // lists are {data: [...], has_more, next_token}.
  validators.errorEnvelope = compile({
    type: 'object',
    required: ['error'],
    properties: { error: { $ref: standardError } },
  });
  validators.groupEnvelope = compile({
    type: 'object',
    required: ['data'],
    properties: { data: { $ref: group } },
  });
  validators.listEnvelope = compile({
    type: 'object',
    required: ['data', 'has_more', 'next_token'],
    properties: {
      data: { type: 'array', items: { $ref: group } },
      has_more: { type: 'boolean' },
      next_token: { type: ['string', 'null'] },
    },
  });
  validators.consentRequest = compile({
    $ref: specRef('components', 'schemas', 'CreateAvatarConsentRequest'),
  });

  sandbox = await startSandbox({ apiKeys: [KEY] });
});

afterAll(async () => {
  await sandbox?.close();
});

interface Answer {
  status: number;
  headers: Headers;
  body: unknown;
}

async function call(
  method: string,
  path: string,
  options: { body?: unknown; rawBody?: string; headers?: Record<string, string>; auth?: boolean } = {},
): Promise<Answer> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.auth !== false) headers['x-api-key'] ??= KEY;
  let body: string | undefined = options.rawBody;
  if (options.body !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(options.body);
  }
  const res = await fetch(`${sandbox.url}${path}`, { method, headers, body });
  const text = await res.text();
  expect(res.headers.get('content-type')).toMatch(/^application\/json\b/);
  return { status: res.status, headers: res.headers, body: JSON.parse(text) as unknown };
}

function expectValid(validate: ValidateFunction, answer: Answer, status: number): void {
  expect(answer.status).toBe(status);
  const valid = validate(answer.body);
  expect(validate.errors ?? [], JSON.stringify(answer.body)).toEqual([]);
  expect(valid).toBe(true);
}

function errorCode(answer: Answer): unknown {
  return (answer.body as { error: { code: unknown } }).error.code;
}

const consentPath = (groupId: string) => `/v3/avatars/${encodeURIComponent(groupId)}/consent`;

describe('the spec validators themselves', () => {
  it('reject bodies that break the spec, so passing answers mean something', () => {
    expect(validators.consent200({})).toBe(false);
    expect(validators.consent200({ data: { url: 'x' } })).toBe(false);
    expect(validators.consent400({ error: { code: 'x' } })).toBe(false);
    expect(validators.groupEnvelope({ data: { id: 'a', name: 'b', created_at: 1.5, looks_count: 1 } })).toBe(
      false,
    );
    expect(
      validators.groupEnvelope({
        data: { id: 'a', name: 'b', created_at: 1, looks_count: 1, status: 'training' },
      }),
    ).toBe(false);
    expect(validators.listEnvelope({ data: [], has_more: false })).toBe(false);
  });
});

describe('POST /v3/avatars/{group_id}/consent', () => {
  it('200 and its idempotent replay match CreateAvatarConsentResponse', async () => {
    const group = sandbox.createGroup({ name: 'Contract Anna' });
    const headers = { 'idempotency-key': 'contract-200' };
    const first = await call('POST', consentPath(group.id), {
      body: { reroute_url: 'https://example.test/back', consent_text: 'I agree to this.' },
      headers,
    });
    expectValid(validators.consent200, first, 200);
    const replay = await call('POST', consentPath(group.id), { body: {}, headers });
    expectValid(validators.consent200, replay, 200);
    expect(replay.body).toEqual(first.body);
  });

  it('400s for a long consent_text, "<" or ">", a bad Idempotency-Key and malformed JSON', async () => {
    const group = sandbox.createGroup();
    const cases: Array<[Parameters<typeof call>[2], string | null]> = [
      [{ body: { consent_text: 'x'.repeat(1001) } }, 'consent_text'],
      [{ body: { consent_text: 'I <b>agree</b>' } }, 'consent_text'],
      [{ body: { consent_text: 'a > b' } }, 'consent_text'],
      [{ body: { reroute_url: 42 } }, 'reroute_url'],
      [{ body: {}, headers: { 'idempotency-key': 'not allowed!' } }, 'Idempotency-Key'],
      [{ body: {}, headers: { 'idempotency-key': 'k'.repeat(256) } }, 'Idempotency-Key'],
      [{ rawBody: '{"consent_text": ', headers: { 'content-type': 'application/json' } }, null],
    ];
    for (const [options, param] of cases) {
      const answer = await call('POST', consentPath(group.id), options);
      expectValid(validators.consent400, answer, 400);
      expect(errorCode(answer)).toBe('invalid_parameter');
      expect((answer.body as { error: { param: unknown } }).error.param).toBe(param);
    }
  });

  it('401 without a key and with a wrong key, never echoing the key', async () => {
    const group = sandbox.createGroup();
    const none = await call('POST', consentPath(group.id), { body: {}, auth: false });
    expectValid(validators.consent401, none, 401);
    expect(errorCode(none)).toBe('authentication_failed');
    const wrong = await call('POST', consentPath(group.id), {
      body: {},
      headers: { 'x-api-key': 'wrong-key-do-not-echo' },
    });
    expectValid(validators.consent401, wrong, 401);
    expect(JSON.stringify(wrong.body)).not.toContain('wrong-key-do-not-echo');
  });

  it('404 avatar_group_not_found for an unknown group', async () => {
    const answer = await call('POST', consentPath('ag_does_not_exist'), { body: {} });
    expectValid(validators.consent404, answer, 404);
    expect(errorCode(answer)).toBe('avatar_group_not_found');
  });

  it('409 request_in_progress while the original request is in flight', async () => {
    const slow = await startSandbox({ apiKeys: [KEY], processingLatencyMs: 400 });
    try {
      const group = slow.createGroup();
      const init = {
        method: 'POST',
        headers: { 'x-api-key': KEY, 'content-type': 'application/json', 'idempotency-key': 'contract-409' },
        body: '{}',
      };
      const original = fetch(`${slow.url}${consentPath(group.id)}`, init);
      await eventually('the original request in the ledger', () => slow.ledger().length === 1, {
        intervalMs: 5,
        timeoutMs: 2_000,
      });
      const retry = await fetch(`${slow.url}${consentPath(group.id)}`, init);
      const answer = { status: retry.status, headers: retry.headers, body: await retry.json() };
      expectValid(validators.consent409, answer, 409);
      expect(errorCode(answer)).toBe('request_in_progress');
      expect((await original).status).toBe(200);
    } finally {
      await slow.close();
    }
  });

  it('429 rate_limit_exceeded with an integer Retry-After', async () => {
    const limited = await startSandbox({ apiKeys: [KEY], rateLimit: { limit: 1, windowMs: 30_000 } });
    try {
      const group = limited.createGroup();
      const send = () =>
        fetch(`${limited.url}${consentPath(group.id)}`, {
          method: 'POST',
          headers: { 'x-api-key': KEY, 'content-type': 'application/json' },
          body: '{}',
        });
      expect((await send()).status).toBe(200);
      const res = await send();
      const answer = { status: res.status, headers: res.headers, body: await res.json() };
      expectValid(validators.consent429, answer, 429);
      expect(errorCode(answer)).toBe('rate_limit_exceeded');
      // The spec: Retry-After is an integer (seconds).
      const retryAfter = res.headers.get('retry-after') ?? '';
      expect(retryAfter).toMatch(/^\d+$/);
      expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
      expect(Number(retryAfter)).toBeLessThanOrEqual(30);
    } finally {
      await limited.close();
    }
  });

  it('5xx faults answer in the StandardAPIError envelope', async () => {
    const group = sandbox.createGroup();
    for (const status of [500, 502, 503, 504] as const) {
      sandbox.injectFault({ kind: 'status', status, count: 1, pathPrefix: consentPath(group.id) });
      const answer = await call('POST', consentPath(group.id), { body: {} });
      expectValid(validators.errorEnvelope, answer, status);
    }
  });

  it('accepts exactly the bodies the spec accepts (apart from the documented "<" ">" rule)', async () => {
    const group = sandbox.createGroup();
    const text = fc.oneof(
      fc.constant(null),
      fc.string({ maxLength: 20 }),
      fc.string({ minLength: 995, maxLength: 1005 }),
      fc.constantFrom('a<b', 'a>b', '😀'.repeat(1000), '😀'.repeat(1001)),
      fc.integer(),
    );
    const body = fc.record(
      { reroute_url: fc.oneof(fc.constant(null), fc.webUrl(), fc.boolean()), consent_text: text },
      { requiredKeys: [] },
    );
    await fc.assert(
      fc.asyncProperty(body, async (candidate) => {
        const answer = await call('POST', consentPath(group.id), { body: candidate });
        const text = candidate.consent_text;
        const allowed =
          validators.consentRequest(candidate) && !(typeof text === 'string' && /[<>]/.test(text));
        if (allowed) expectValid(validators.consent200, answer, 200);
        else expectValid(validators.consent400, answer, 400);
      }),
      { numRuns: 60 },
    );
  });
});

describe('GET /v3/avatars/{group_id} and GET /v3/avatars', () => {
  it('GET group matches {data: AvatarGroupItem} in every status', async () => {
    const groups = [
      sandbox.createGroup(),
      sandbox.createGroup({ consentRequired: false }),
      sandbox.createGroup({ consentStatus: 'approved', status: 'processing' }),
      sandbox.createGroup({ consentStatus: 'approved', status: 'completed' }),
      sandbox.createGroup({ consentStatus: 'approved', status: 'failed' }),
      sandbox.createGroup({ consentStatus: 'skipped', status: null }),
    ];
    const seen = new Set<AvatarStatus | null>();
    for (const group of groups) {
      const answer = await call('GET', `/v3/avatars/${group.id}`);
      expectValid(validators.groupEnvelope, answer, 200);
      seen.add((answer.body as { data: { status: AvatarStatus | null } }).data.status);
    }
    expect(seen).toEqual(new Set(['pending_consent', 'completed', 'processing', 'failed', null]));
  });

  it('GET group of an unknown id is a 404 error envelope', async () => {
    const answer = await call('GET', '/v3/avatars/ag_missing');
    expectValid(validators.errorEnvelope, answer, 404);
    expect(errorCode(answer)).toBe('avatar_group_not_found');
  });

  it('the list and its pages match the list envelope; bad parameters are 400 envelopes', async () => {
    for (let i = 0; i < 3; i++) sandbox.createGroup({ name: `List ${i}` });
    const first = await call('GET', '/v3/avatars?limit=2');
    expectValid(validators.listEnvelope, first, 200);
    const next = (first.body as { next_token: string }).next_token;
    const second = await call('GET', `/v3/avatars?limit=2&token=${encodeURIComponent(next)}`);
    expectValid(validators.listEnvelope, second, 200);
    for (const query of ['limit=0', 'limit=51', 'token=%21%21nope']) {
      expectValid(validators.errorEnvelope, await call('GET', `/v3/avatars?${query}`), 400);
    }
  });

  it('POST /v3/avatars answers {data: AvatarGroupItem}, or a 400 envelope for a bad type', async () => {
    expectValid(
      validators.groupEnvelope,
      await call('POST', '/v3/avatars', { body: { type: 'digital_twin', name: 'N' } }),
      200,
    );
    expectValid(
      validators.groupEnvelope,
      await call('POST', '/v3/avatars', { body: { type: 'photo', name: 'P' } }),
      200,
    );
    expectValid(
      validators.errorEnvelope,
      await call('POST', '/v3/avatars', { body: { type: 'hologram' } }),
      400,
    );
  });

  it('unknown routes, wrong methods and oversized bodies answer in the error envelope', async () => {
    expectValid(validators.errorEnvelope, await call('GET', '/v3/videos'), 404);
    expectValid(validators.errorEnvelope, await call('DELETE', '/v3/avatars'), 405);
    const group = sandbox.createGroup();
    const big = await call('POST', consentPath(group.id), {
      body: { consent_text: null, pad: 'x'.repeat(70_000) },
    });
    expectValid(validators.errorEnvelope, big, 413);
  });
});
