import { inspect } from 'node:util';

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';

import { HeyGenClient, isLocalSandboxUrl } from '../../src/heygen/client.js';
import type { HeyGenClientOptions } from '../../src/heygen/client.js';
import { HeyGenError } from '../../src/heygen/failures.js';
import type { HeyGenFailureKind } from '../../src/heygen/failures.js';
import { RateGate } from '../../src/heygen/rate-gate.js';
import { avatarGroupItemSchema, idempotencyKeySchema } from '../../src/heygen/schemas.js';
import type { AvatarGroupItem } from '../../src/heygen/types.js';
import { eventually } from '../../tools/kit/eventually.js';
import { startFakeHttpServer, unusedLocalPort } from '../helpers/fake-http-server.js';
import type { FakeHttpServer } from '../helpers/fake-http-server.js';

const API_KEY = 'hg_test_SUPERSECRET_4f1c9e2a7b';
const KEY = 'avatar-consent:0b9c6a1e-1111-4d2e-9f00-000000000001:g1';

const group = {
  id: 'ag_1',
  name: 'Anna',
  created_at: 1711929600,
  looks_count: 1,
  consent_status: 'pending',
  status: 'pending_consent',
  some_field_heygen_added_later: { nested: true },
};

function errorEnvelope(code: string, message: string, param: string | null = null) {
  return { error: { code, message, param, doc_url: null } };
}

async function catchError(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected the promise to reject');
}

async function catchHeyGenError(promise: Promise<unknown>): Promise<HeyGenError> {
  const err = await catchError(promise);
  expect(err).toBeInstanceOf(HeyGenError);
  return err as HeyGenError;
}

let server: FakeHttpServer;
let redirectTarget: FakeHttpServer;

beforeAll(async () => {
  server = await startFakeHttpServer();
  redirectTarget = await startFakeHttpServer();
});

afterAll(async () => {
  await server.close();
  await redirectTarget.close();
});

afterEach(() => {
  // Every scripted answer must have been used (a leftover would mean a call that never happened),
  // and each test sees only its own requests.
  const leftover = server.pendingResponses();
  server.reset();
  redirectTarget.reset();
  expect(leftover).toBe(0);
});

function makeClient(overrides: Partial<HeyGenClientOptions> = {}): HeyGenClient {
  return new HeyGenClient({ baseUrl: server.url, apiKey: API_KEY, timeoutMs: 2_000, ...overrides });
}

describe('HeyGenClient.createConsent', () => {
  it('sends x-api-key, Idempotency-Key and a snake_case JSON body; returns the parsed result', async () => {
    server.enqueue({
      status: 200,
      body: { data: { avatar_group: group, url: 'https://app.heygen.com/consent/abc' } },
    });
    const client = makeClient();
    const result = await client.createConsent(
      'ag_1',
      { reroute_url: 'https://example.com/done', consent_text: 'I agree.' },
      { idempotencyKey: KEY },
    );

    expect(server.requests).toHaveLength(1);
    const req = server.requests[0]!;
    expect(req.method).toBe('POST');
    expect(req.url).toBe('/v3/avatars/ag_1/consent');
    expect(req.headers['x-api-key']).toBe(API_KEY);
    expect(req.headers['idempotency-key']).toBe(KEY);
    expect(req.headers['content-type']).toBe('application/json');
    expect(req.headers.accept).toBe('application/json');
    expect(req.headers['user-agent']).toMatch(/^avatar-consent\/\d+\.\d+\.\d+/);
    expect(req.headers.authorization).toBeUndefined();
    expect(JSON.parse(req.bodyText)).toEqual({
      reroute_url: 'https://example.com/done',
      consent_text: 'I agree.',
    });

    expect(result.url).toBe('https://app.heygen.com/consent/abc');
    expect(result.avatarGroup).toMatchObject({
      id: 'ag_1',
      status: 'pending_consent',
      consent_status: 'pending',
    });
    // Spec defaults are filled; fields HeyGen adds pass through.
    expect(result.avatarGroup.preview_image_url).toBeNull();
    expect(result.avatarGroup.error).toBeNull();
    expect(result.avatarGroup).toHaveProperty('some_field_heygen_added_later', { nested: true });
  });

  it('sends only the fields given (an empty object when none)', async () => {
    server.enqueue({
      status: 200,
      body: { data: { avatar_group: group, url: 'http://127.0.0.1:1/consent' } },
    });
    await makeClient().createConsent('ag_1', {}, { idempotencyKey: KEY });
    expect(JSON.parse(server.requests[0]!.bodyText)).toEqual({});
  });

  it('keeps a base URL path prefix and a custom user agent', async () => {
    server.enqueue({ status: 200, body: { data: { avatar_group: group, url: 'https://x.example/c' } } });
    const client = makeClient({ baseUrl: `${server.url}/heygen/`, userAgent: 'custom/1.0' });
    await client.createConsent('ag_1', { reroute_url: null }, { idempotencyKey: KEY });
    expect(server.requests[0]!.url).toBe('/heygen/v3/avatars/ag_1/consent');
    expect(server.requests[0]!.headers['user-agent']).toBe('custom/1.0');
    expect(JSON.parse(server.requests[0]!.bodyText)).toEqual({ reroute_url: null });
  });

  it.each([
    ['empty', ''],
    ['a space', 'key with space'],
    ['a slash', 'a/b'],
    ['non-ASCII', 'clé'],
    ['256 characters', 'k'.repeat(256)],
  ])('refuses an Idempotency-Key with %s, without sending', async (_label, idempotencyKey) => {
    const err = await catchHeyGenError(makeClient().createConsent('ag_1', {}, { idempotencyKey }));
    expect(err.kind).toBe('invalid');
    expect(err.param).toBe('Idempotency-Key');
    expect(err.status).toBeNull();
    expect(server.requests).toHaveLength(0);
  });

  it.each([
    ['too long', 'a'.repeat(1001)],
    ['with <', 'I agree <b>'],
    ['with >', 'x > y'],
  ])('refuses consent_text %s, without sending', async (_label, consentText) => {
    const err = await catchHeyGenError(
      makeClient().createConsent('ag_1', { consent_text: consentText }, { idempotencyKey: KEY }),
    );
    expect(err.kind).toBe('invalid');
    expect(err.param).toBe('consent_text');
    expect(server.requests).toHaveLength(0);
  });

  it('accepts consent_text of exactly 1000 characters', async () => {
    server.enqueue({ status: 200, body: { data: { avatar_group: group, url: 'https://x.example/c' } } });
    await makeClient().createConsent('ag_1', { consent_text: 'a'.repeat(1000) }, { idempotencyKey: KEY });
    expect(server.requests).toHaveLength(1);
  });

  it('409 request_in_progress -> in_progress', async () => {
    server.enqueue({ status: 409, body: errorEnvelope('request_in_progress', 'Retry shortly.') });
    const err = await catchHeyGenError(makeClient().createConsent('ag_1', {}, { idempotencyKey: KEY }));
    expect(err.kind).toBe('in_progress');
    expect(err.code).toBe('request_in_progress');
  });
});

describe('group_id is validated and can never change the path', () => {
  it.each([
    ['empty', ''],
    ['path traversal', '../../v1/user'],
    ['a slash', 'ag_1/consent'],
    ['a query', 'ag_1?x=1'],
    ['a fragment', 'ag_1#x'],
    ['percent-encoding', '%2e%2e'],
    ['a space', 'ag 1'],
    ['a newline', 'ag_1\r\nx-evil: 1'],
    ['129 characters', 'a'.repeat(129)],
  ])('%s -> invalid group_id, nothing sent', async (_label, groupId) => {
    const client = makeClient();
    const errs = [
      await catchHeyGenError(client.getAvatarGroup(groupId)),
      await catchHeyGenError(client.createConsent(groupId, {}, { idempotencyKey: KEY })),
    ];
    for (const err of errs) {
      expect(err.kind).toBe('invalid');
      expect(err.param).toBe('group_id');
      expect(err.status).toBeNull();
      // The error names the template, never the rejected value.
      expect(err.path).toMatch(/\{group_id\}/);
    }
    expect(server.requests).toHaveLength(0);
  });
});

describe('HeyGenClient.getAvatarGroup', () => {
  it('GETs /v3/avatars/{id} with the key and no body or Idempotency-Key', async () => {
    server.enqueue({
      status: 200,
      body: { data: { ...group, status: 'completed', consent_status: 'approved' } },
    });
    const item: AvatarGroupItem = await makeClient().getAvatarGroup('ag_1');
    expect(item.status).toBe('completed');
    expect(item.consent_status).toBe('approved');
    const req = server.requests[0]!;
    expect(req.method).toBe('GET');
    expect(req.url).toBe('/v3/avatars/ag_1');
    expect(req.headers['x-api-key']).toBe(API_KEY);
    expect(req.headers['idempotency-key']).toBeUndefined();
    expect(req.headers['content-type']).toBeUndefined();
    expect(req.bodyText).toBe('');
  });

  it('keeps an unknown consent_status (an open string) and a failed group with its error', async () => {
    server.enqueue({
      status: 200,
      body: {
        data: {
          ...group,
          consent_status: 'rejected',
          status: 'failed',
          error: { code: 'consent_mismatch', message: 'm' },
        },
      },
    });
    const item = await makeClient().getAvatarGroup('ag_1');
    expect(item.consent_status).toBe('rejected');
    expect(item.error).toEqual({ code: 'consent_mismatch', message: 'm' });
  });

  it.each([
    [401, 'authentication_failed', 'needs_operator'],
    [402, 'insufficient_credit', 'needs_operator'],
    [403, 'resource_access_denied', 'needs_operator'],
    [404, 'avatar_group_not_found', 'not_found'],
    [400, 'invalid_parameter', 'invalid'],
    [500, 'internal_error', 'retryable'],
  ] as const)('%i %s -> %s', async (status, code, kind) => {
    server.enqueue({
      status,
      body: errorEnvelope(code, 'nope', code === 'invalid_parameter' ? 'group_id' : null),
    });
    const err = await catchHeyGenError(makeClient().getAvatarGroup('ag_1'));
    expect(err.kind).toBe(kind);
    expect(err.status).toBe(status);
    expect(err.code).toBe(code);
    if (code === 'invalid_parameter') expect(err.param).toBe('group_id');
  });

  it('an HTML 502 from a proxy is retryable', async () => {
    server.enqueue({
      status: 502,
      headers: { 'content-type': 'text/html' },
      body: '<html>Bad Gateway</html>',
    });
    const err = await catchHeyGenError(makeClient().getAvatarGroup('ag_1'));
    expect(err.kind).toBe('retryable');
    expect(err.status).toBe(502);
    expect(err.code).toBeNull();
  });
});

describe('HeyGenClient.listAvatarGroups', () => {
  it('sends the query and maps the list envelope', async () => {
    server.enqueue({
      status: 200,
      body: { data: [group, { ...group, id: 'ag_2' }], has_more: true, next_token: 't2' },
    });
    const page = await makeClient().listAvatarGroups({ limit: 2, token: 't 1&x=y', ownership: 'private' });
    const req = server.requests[0]!;
    expect(req.pathname).toBe('/v3/avatars');
    expect(req.searchParams.get('limit')).toBe('2');
    expect(req.searchParams.get('token')).toBe('t 1&x=y');
    expect(req.searchParams.get('ownership')).toBe('private');
    expect([...req.searchParams.keys()]).toEqual(['limit', 'token', 'ownership']);
    expect(page.hasMore).toBe(true);
    expect(page.nextToken).toBe('t2');
    expect(page.data.map((g) => g.id)).toEqual(['ag_1', 'ag_2']);
  });

  it('next_token may be absent', async () => {
    server.enqueue({ status: 200, body: { data: [], has_more: false } });
    const page = await makeClient().listAvatarGroups();
    expect(server.requests[0]!.url).toBe('/v3/avatars');
    expect(page).toEqual({ data: [], hasMore: false, nextToken: null });
  });

  it.each([0, 51, 1.5])('refuses limit %s without sending', async (limit) => {
    const err = await catchHeyGenError(makeClient().listAvatarGroups({ limit }));
    expect(err.kind).toBe('invalid');
    expect(err.param).toBe('limit');
    expect(server.requests).toHaveLength(0);
  });
});

describe('response validation: a non-conforming 2xx is retryable invalid_response', () => {
  it.each([
    [
      'HTML',
      '<!DOCTYPE html><html><body>Maintenance</body></html>',
      /body is not JSON \(application\/json, 52 bytes\)$/,
    ],
    ['truncated JSON', '{"data":{"id":"ag_1","na', /body is not JSON \(application\/json, 24 bytes\)$/],
    ['an empty body', '', /body is not JSON \(empty body, application\/json\)$/],
    ['JSON without data', '{"ok":true}', /data: .*expected object/i],
    ['data: null', '{"data":null}', /data: /],
    [
      'created_at as a string',
      JSON.stringify({ data: { ...group, created_at: '2024-04-01' } }),
      /data\.created_at/,
    ],
    ['a missing required field', JSON.stringify({ data: { ...group, name: undefined } }), /data\.name/],
    ['an unknown status', JSON.stringify({ data: { ...group, status: 'in_review' } }), /data\.status/],
    ['a JSON array', '[1,2,3]', /\(root\)/],
  ])('%s', async (_label, body, problem) => {
    server.enqueue({ status: 200, body, headers: { 'content-type': 'application/json' } });
    const err = await catchHeyGenError(makeClient().getAvatarGroup('ag_1'));
    expect(err.kind).toBe('retryable');
    expect(err.code).toBe('invalid_response');
    expect(err.status).toBe(200);
    expect(err.message).toMatch(/^HeyGen 200 on GET \/v3\/avatars\/ag_1: invalid response: /);
    expect(err.message).toMatch(problem);
  });

  it('a long non-JSON body is described, not quoted', async () => {
    server.enqueue({ status: 200, body: `<html>${'x'.repeat(10_000)}</html>` });
    const err = await catchHeyGenError(makeClient().getAvatarGroup('ag_1'));
    expect(err.code).toBe('invalid_response');
    expect(err.message).not.toContain('<html>');
    expect(err.message).toMatch(/body is not JSON \(.*, 10013 bytes\)$/);
  });

  it('a 2xx consent answer that is not JSON keeps the consent link out of the error', async () => {
    const link = 'https://app.heygen.com/consent/abc123?sig=0f9e8d7c6b5a';
    server.enqueue({
      status: 200,
      body: `data: url=${link}`,
      headers: { 'content-type': 'text/plain; charset=utf-8' },
    });
    const err = await catchHeyGenError(makeClient().createConsent('ag_1', {}, { idempotencyKey: KEY }));
    expect(err.code).toBe('invalid_response');
    expect(err.message).toMatch(/: invalid response: body is not JSON \(text\/plain, \d+ bytes\)$/);
    expect(err.message).not.toContain('heygen.com');
    expect(err.message).not.toContain('abc123');
  });

  it('a 400 quoting our reroute_url keeps neither the URL nor its token', async () => {
    const rerouteUrl =
      'https://consent.example.com/consent-return?t=eyJ2IjoxLCJ3aWQiOiJhdmF0YXIt.Zm9vYmFyYmF6cXV4cXV1eHF1dXhxdXV4cXV1eA';
    server.enqueue({
      status: 400,
      body: errorEnvelope('invalid_parameter', `reroute_url "${rerouteUrl}" is not allowed`, 'reroute_url'),
    });
    const err = await catchHeyGenError(
      makeClient().createConsent('ag_1', { reroute_url: rerouteUrl }, { idempotencyKey: KEY }),
    );
    expect(err.kind).toBe('invalid');
    expect(err.message).toContain('reroute_url "[url]" is not allowed');
    expect(err.message).not.toContain('consent.example.com');
    expect(err.message).not.toContain('eyJ2');
  });

  it('consent response without a usable url', async () => {
    for (const url of [undefined, '', 'javascript:alert(1)', 'not a url']) {
      server.enqueue({ status: 200, body: { data: { avatar_group: group, url } } });
      const err = await catchHeyGenError(makeClient().createConsent('ag_1', {}, { idempotencyKey: KEY }));
      expect(err.code).toBe('invalid_response');
      expect(err.message).toContain('data.url');
    }
  });

  it('a body over the size cap is rejected without being parsed', async () => {
    server.enqueue({ status: 200, body: `{"data":"${'x'.repeat(3 * 1024 * 1024)}"}` });
    const err = await catchHeyGenError(makeClient().getAvatarGroup('ag_1'));
    expect(err.code).toBe('invalid_response');
    expect(err.message).toContain('larger than');
  });
});

describe('consent links are https unless HeyGen is a local sandbox', () => {
  /** A client whose base URL is `baseUrl`, its requests answered by the scripted server. */
  function clientAt(baseUrl: string): HeyGenClient {
    const origin = new URL(baseUrl).origin;
    return makeClient({
      baseUrl,
      fetch: (input, init) => {
        const target = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
        return fetch(target.replace(origin, server.url), init);
      },
    });
  }
  const answer = (url: string) =>
    server.enqueue({ status: 200, body: { data: { avatar_group: group, url } } });

  it('a plain http link from the real API is a retryable invalid_response that names the field, not the link', async () => {
    const link = 'http://app.heygen.com/consent/abc123?sig=0f9e8d7c';
    answer(link);
    const err = await catchHeyGenError(
      clientAt('https://api.heygen.com').createConsent('ag_1', {}, { idempotencyKey: KEY }),
    );
    expect(err.kind).toBe('retryable');
    expect(err.code).toBe('invalid_response');
    expect(err.message).toMatch(
      /invalid response: body does not match the spec: data\.url: must be an https URL \(plain http only from a local HeyGen sandbox\)$/,
    );
    expect(err.message).not.toContain('abc123');
    expect(err.message).not.toContain('app.heygen.com');
  });

  it('any scheme but https is refused from a public base URL, also a staging host on plain http', async () => {
    for (const [base, link] of [
      ['https://api.heygen.com', 'ftp://app.heygen.com/consent/x'],
      ['https://api.heygen.com/v-proxy', 'HTTP://app.heygen.com/consent/x'],
      ['http://heygen-staging.example.com', 'http://heygen-staging.example.com/consent/x'],
    ] as const) {
      answer(link);
      const err = await catchHeyGenError(clientAt(base).createConsent('ag_1', {}, { idempotencyKey: KEY }));
      expect(err.code, `${base} -> ${link}`).toBe('invalid_response');
      expect(err.message).toContain('data.url');
    }
  });

  it('an https link from the real API is accepted', async () => {
    answer('https://app.heygen.com/consent/abc');
    const result = await clientAt('https://api.heygen.com').createConsent(
      'ag_1',
      {},
      { idempotencyKey: KEY },
    );
    expect(result.url).toBe('https://app.heygen.com/consent/abc');
  });

  it.each([
    'http://127.0.0.1:4010',
    'http://localhost:4010/heygen',
    'http://[::1]:4010',
    'http://sandbox.localhost:4010',
    'http://heygen-sandbox:4010',
  ])('a plain http link from the local sandbox at %s is accepted', async (base) => {
    answer('http://localhost:4010/consent/abc');
    const result = await clientAt(base).createConsent('ag_1', {}, { idempotencyKey: KEY });
    expect(result.url).toBe('http://localhost:4010/consent/abc');
  });

  it('isLocalSandboxUrl: this machine and single-label service names only', () => {
    const local = (text: string) => isLocalSandboxUrl(new URL(text));
    for (const text of [
      'http://localhost:4010',
      'http://LOCALHOST.:4010',
      'http://127.0.0.1',
      'http://127.8.9.10:1',
      'http://[::1]:4010',
      'http://a.b.localhost',
      'http://heygen-sandbox:4010',
    ])
      expect(local(text), text).toBe(true);
    for (const text of [
      'https://api.heygen.com',
      'http://10.0.0.5:4010',
      'http://[2001:db8::1]',
      'http://localhost.evil.example',
      'http://127.0.0.1.nip.io',
    ])
      expect(local(text), text).toBe(false);
  });
});

describe('transport failures', () => {
  it('a server that never answers -> retryable timeout after timeoutMs', async () => {
    server.enqueue({ hang: true });
    const started = Date.now();
    const err = await catchHeyGenError(makeClient({ timeoutMs: 200 }).getAvatarGroup('ag_1'));
    const elapsed = Date.now() - started;
    expect(err.kind).toBe('retryable');
    expect(err.code).toBe('timeout');
    expect(err.status).toBeNull();
    expect(err.message).toBe('HeyGen request GET /v3/avatars/ag_1 timed out after 200ms');
    expect(elapsed).toBeGreaterThanOrEqual(150);
    expect(elapsed).toBeLessThan(5_000);
  });

  it('a server that stalls mid-body -> retryable timeout (the timeout covers the body)', async () => {
    server.enqueue({ status: 200, stallAfter: '{"data":{"id":"ag_1",' });
    const err = await catchHeyGenError(makeClient({ timeoutMs: 200 }).getAvatarGroup('ag_1'));
    expect(err.kind).toBe('retryable');
    expect(err.code).toBe('timeout');
  });

  it('connection refused -> retryable network_error', async () => {
    const port = await unusedLocalPort();
    const client = makeClient({ baseUrl: `http://127.0.0.1:${port}` });
    const err = await catchHeyGenError(client.getAvatarGroup('ag_1'));
    expect(err.kind).toBe('retryable');
    expect(err.code).toBe('network_error');
    expect(err.status).toBeNull();
    expect(err.message).toContain('ECONNREFUSED');
  });

  it('socket destroyed without an answer -> retryable network_error', async () => {
    server.enqueue({ destroy: true });
    const err = await catchHeyGenError(makeClient().getAvatarGroup('ag_1'));
    expect(err.kind).toBe('retryable');
    expect(err.code).toBe('network_error');
  });

  it('a redirect is not followed (the key would travel to another origin)', async () => {
    server.enqueue({ status: 302, headers: { location: `${redirectTarget.url}/steal` } });
    const err = await catchHeyGenError(makeClient().getAvatarGroup('ag_1'));
    expect(err.kind).toBe('needs_operator');
    expect(err.code).toBe('unexpected_redirect');
    expect(server.requests).toHaveLength(1);
    expect(redirectTarget.requests).toHaveLength(0);
  });
});

describe('caller cancellation', () => {
  it('an already-aborted signal rejects with its reason and sends nothing', async () => {
    const reason = new Error('cancelled before start');
    const err = await catchError(makeClient().getAvatarGroup('ag_1', { signal: AbortSignal.abort(reason) }));
    expect(err).toBe(reason);
    expect(server.requests).toHaveLength(0);
  });

  it('aborting in flight rejects with the caller reason as is (not a HeyGenError)', async () => {
    server.enqueue({ hang: true });
    const controller = new AbortController();
    const reason = new Error('activity cancelled');
    const pending = catchError(
      makeClient({ timeoutMs: 10_000 }).getAvatarGroup('ag_1', { signal: controller.signal }),
    );
    await server.waitForRequests(1);
    controller.abort(reason);
    expect(await pending).toBe(reason);
  });
});

describe('the rate gate', () => {
  function clock() {
    let t = 1_700_000_000_000;
    return { now: () => t, advance: (ms: number) => (t += ms) };
  }

  it('a 429 closes the gate for Retry-After; the next call throws rate_limited without reaching the server', async () => {
    const c = clock();
    const client = makeClient({ now: c.now });
    server.enqueue({
      status: 429,
      headers: { 'retry-after': '120' },
      body: errorEnvelope('rate_limit_exceeded', 'Too many requests'),
    });
    const first = await catchHeyGenError(client.getAvatarGroup('ag_1'));
    expect(first.kind).toBe('rate_limited');
    expect(first.code).toBe('rate_limit_exceeded');
    expect(first.retryAfterMs).toBe(120_000);
    expect(client.rateGate.closedFor()).toBe(120_000);
    expect(server.requests).toHaveLength(1);

    c.advance(30_000);
    const second = await catchHeyGenError(client.createConsent('ag_1', {}, { idempotencyKey: KEY }));
    expect(second.kind).toBe('rate_limited');
    expect(second.code).toBe('rate_gate_closed');
    expect(second.status).toBeNull();
    expect(second.retryAfterMs).toBe(90_000);
    expect(server.requests).toHaveLength(1);

    c.advance(90_000);
    server.enqueue({ status: 200, body: { data: group } });
    await expect(client.getAvatarGroup('ag_1')).resolves.toMatchObject({ id: 'ag_1' });
    expect(server.requests).toHaveLength(2);
  });

  it('a 429 closes the gate on its headers, before its body has arrived', async () => {
    const c = clock();
    const client = makeClient({ now: c.now });
    // The headers, then a body that never ends: the first call is still reading it.
    server.enqueue({ stallAfter: '{"error":', status: 429, headers: { 'retry-after': '30' } });
    const reading = new AbortController();
    const first = client.getAvatarGroup('ag_1', { signal: reading.signal }).catch(() => undefined);
    await eventually('the gate closed', () => client.rateGate.closedFor() === 30_000, { timeoutMs: 5_000 });
    const second = await catchHeyGenError(client.getAvatarGroup('ag_2'));
    expect(second.code).toBe('rate_gate_closed');
    expect(server.requests).toHaveLength(1);
    reading.abort(new Error('test over'));
    await first;
  });

  it('clients sharing one gate share the closure (one budget per process)', async () => {
    const c = clock();
    const gate = new RateGate({ now: c.now });
    const a = makeClient({ rateGate: gate, now: c.now });
    const b = makeClient({ rateGate: gate, now: c.now });
    server.enqueue({
      status: 429,
      headers: { 'retry-after': '5' },
      body: errorEnvelope('rate_limit_exceeded', 'x'),
    });
    expect((await catchHeyGenError(a.listAvatarGroups())).kind).toBe('rate_limited');
    const err = await catchHeyGenError(b.getAvatarGroup('ag_9'));
    expect(err.code).toBe('rate_gate_closed');
    expect(err.retryAfterMs).toBe(5_000);
    expect(server.requests).toHaveLength(1);
  });

  it('a 429 without Retry-After closes the gate for the default 60 s', async () => {
    const c = clock();
    const client = makeClient({ now: c.now });
    server.enqueue({ status: 429, body: '' });
    await catchHeyGenError(client.getAvatarGroup('ag_1'));
    expect(client.rateGate.closedFor()).toBe(60_000);
  });

  it('other errors leave the gate open', async () => {
    const client = makeClient();
    server.enqueue({ status: 503, headers: { 'retry-after': '30' }, body: '' });
    await catchHeyGenError(client.getAvatarGroup('ag_1'));
    expect(client.rateGate.closedFor()).toBe(0);
  });
});

describe('the API key appears nowhere in any error', () => {
  function expectNoKey(value: unknown): void {
    const err = value as Error;
    const renderings = [
      String(err),
      err.message,
      err.stack ?? '',
      JSON.stringify(err),
      inspect(err, { depth: 10 }),
      inspect(err, { depth: 10, showHidden: true }),
    ];
    for (const text of renderings) expect(text).not.toContain(API_KEY);
  }

  it('for every error kind, even when the server echoes the key', async () => {
    const echo = `your key ${API_KEY} is`;
    const c = { t: 1_700_000_000_000 };
    const now = () => c.t;
    const client = makeClient({ now, timeoutMs: 200 });
    const collected: HeyGenError[] = [];
    const run = async (p: Promise<unknown>) => collected.push(await catchHeyGenError(p));

    for (const [status, code] of [
      [400, 'invalid_parameter'],
      [401, 'unauthorized'],
      [402, 'insufficient_credit'],
      [403, 'forbidden'],
      [404, 'not_found'],
      [409, 'request_in_progress'],
      [500, 'internal_error'],
    ] as const) {
      server.enqueue({ status, body: errorEnvelope(code, echo, API_KEY) });
      await run(client.createConsent('ag_1', {}, { idempotencyKey: KEY }));
    }
    server.enqueue({ status: 502, body: `<html>${echo}</html>` });
    await run(client.getAvatarGroup('ag_1'));
    server.enqueue({ status: 200, body: `<html>${echo}</html>` });
    await run(client.getAvatarGroup('ag_1'));
    server.enqueue({ status: 200, body: { data: { ...group, name: 1, status: API_KEY } } });
    await run(client.getAvatarGroup('ag_1'));
    server.enqueue({ hang: true });
    await run(client.getAvatarGroup('ag_1'));
    server.enqueue({ destroy: true });
    await run(client.getAvatarGroup('ag_1'));
    const port = await unusedLocalPort();
    await run(makeClient({ baseUrl: `http://127.0.0.1:${port}` }).getAvatarGroup('ag_1'));
    // Misuse: the key passed where ids belong.
    await run(client.createConsent('ag_1', {}, { idempotencyKey: `${API_KEY} ` }));
    await run(client.getAvatarGroup(`${API_KEY}/x`));
    server.enqueue({ status: 404, body: errorEnvelope('not_found', echo) });
    await run(client.getAvatarGroup(API_KEY));
    // 429 and then the closed gate.
    server.enqueue({
      status: 429,
      headers: { 'retry-after': '10' },
      body: errorEnvelope('rate_limit_exceeded', echo),
    });
    await run(client.getAvatarGroup('ag_1'));
    await run(client.getAvatarGroup(API_KEY));

    const kinds = new Set<HeyGenFailureKind>(collected.map((e) => e.kind));
    expect([...kinds].sort()).toEqual(
      ['in_progress', 'invalid', 'needs_operator', 'not_found', 'rate_limited', 'retryable'].sort(),
    );
    expect(collected.map((e) => e.code)).toEqual(
      expect.arrayContaining(['timeout', 'network_error', 'invalid_response', 'rate_gate_closed']),
    );
    for (const err of collected) expectNoKey(err);
    // The key was really sent, so the test would notice a leak.
    expect(server.requests.some((r) => r.headers['x-api-key'] === API_KEY)).toBe(true);
  });

  it('nor in the client object itself, nor in constructor errors', () => {
    const client = makeClient();
    expect(inspect(client, { depth: 10, showHidden: true })).not.toContain(API_KEY);
    expect(JSON.stringify(client)).not.toContain(API_KEY);
    for (const apiKey of [`${API_KEY}\n`, `${API_KEY} x`, '']) {
      const err = (() => {
        try {
          new HeyGenClient({ baseUrl: server.url, apiKey });
        } catch (e) {
          return e as Error;
        }
        throw new Error('expected the constructor to throw');
      })();
      expect(err.message).toMatch(/apiKey/);
      expectNoKey(err);
    }
  });
});

describe('constructor validation', () => {
  it.each([
    ['not a URL', 'api.heygen.com'],
    ['ftp', 'ftp://api.heygen.com'],
    ['credentials', 'https://user:pw@api.heygen.com'],
    ['a query', 'https://api.heygen.com?x=1'],
  ])('rejects a base URL with %s', (_label, baseUrl) => {
    expect(() => new HeyGenClient({ baseUrl, apiKey: API_KEY })).toThrow(/baseUrl/);
  });

  it('rejects a timeout that is not a usable timer value', () => {
    for (const timeoutMs of [0, -1, Number.NaN, 2 ** 31]) {
      expect(() => new HeyGenClient({ baseUrl: server.url, apiKey: API_KEY, timeoutMs })).toThrow(
        /timeoutMs/,
      );
    }
  });
});

describe('schemas', () => {
  it('AvatarGroupItem: defaults to null, loose, consent_status open, status closed', () => {
    const minimal = avatarGroupItemSchema.parse({ id: 'ag', name: 'n', created_at: 1, looks_count: 0 });
    expect(minimal).toEqual({
      id: 'ag',
      name: 'n',
      created_at: 1,
      looks_count: 0,
      preview_image_url: null,
      preview_video_url: null,
      gender: null,
      default_voice_id: null,
      consent_status: null,
      status: null,
      error: null,
    });
    const base = { id: 'ag', name: 'n', created_at: 1, looks_count: 0 };
    expect(avatarGroupItemSchema.parse({ ...base, consent_status: 'skipped' }).consent_status).toBe(
      'skipped',
    );
    expect(avatarGroupItemSchema.parse({ ...base, consent_status: null }).consent_status).toBeNull();
    expect(avatarGroupItemSchema.safeParse({ ...base, status: 'archived' }).success).toBe(false);
    expect(avatarGroupItemSchema.safeParse({ ...base, created_at: 1.5 }).success).toBe(false);
    expect(avatarGroupItemSchema.parse({ ...base, extra: [1] })).toHaveProperty('extra', [1]);
  });

  it('idempotencyKeySchema follows the spec pattern (1–255 of [A-Za-z0-9_:.-])', () => {
    for (const ok of ['550e8400-e29b-41d4-a716-446655440000', KEY, 'a', 'A.b_c:d-e', 'x'.repeat(255)]) {
      expect(idempotencyKeySchema.safeParse(ok).success).toBe(true);
    }
    for (const bad of ['', 'x'.repeat(256), 'a b', 'a/b', 'a+b', 'ümlaut', 'a\n']) {
      expect(idempotencyKeySchema.safeParse(bad).success).toBe(false);
    }
  });

  it('the drift checks reject a schema that no longer matches the generated types (checked by tsc)', () => {
    type IsAssignable<From, To> = [From] extends [To] ? true : false;
    const drifted = avatarGroupItemSchema.extend({ created_at: z.string() });
    const demanding = avatarGroupItemSchema.extend({ owner_id: z.string() });
    // @ts-expect-error -- created_at: string is not the spec's integer
    const zodToSpec: IsAssignable<z.infer<typeof drifted>, AvatarGroupItem> = true;
    // @ts-expect-error -- the spec has no required owner_id
    const specToZod: IsAssignable<AvatarGroupItem, z.infer<typeof demanding>> = true;
    const sound: IsAssignable<z.infer<typeof avatarGroupItemSchema>, AvatarGroupItem> = true;
    expect([zodToSpec, specToZod, sound]).toEqual([true, true, true]);
    expect(drifted.safeParse({ id: 'a', name: 'n', created_at: 1, looks_count: 0 }).success).toBe(false);
    expect(demanding.safeParse({ id: 'a', name: 'n', created_at: 1, looks_count: 0 }).success).toBe(false);
  });
});
